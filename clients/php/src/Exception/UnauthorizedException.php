<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 401 UNAUTHORIZED: no, malformed, unknown or revoked credentials. */
class UnauthorizedException extends ApiException
{
}
