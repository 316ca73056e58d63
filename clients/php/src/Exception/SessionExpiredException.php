<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 410 SESSION_EXPIRED. */
class SessionExpiredException extends ApiException
{
}
