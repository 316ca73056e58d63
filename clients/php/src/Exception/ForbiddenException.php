<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 403 FORBIDDEN: a suspended tenant, or a role that may not use the route. */
class ForbiddenException extends ApiException
{
}
