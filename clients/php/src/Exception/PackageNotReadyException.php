<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 409 PACKAGE_NOT_READY: a session was asked for on a processing or failed package. */
class PackageNotReadyException extends ApiException
{
}
