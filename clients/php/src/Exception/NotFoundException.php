<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 404 NOT_FOUND: an unknown route or resource (or another tenant's). */
class NotFoundException extends ApiException
{
}
