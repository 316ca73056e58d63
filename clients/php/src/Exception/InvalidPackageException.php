<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 422 INVALID_PACKAGE: the upload is not a ZIP at all. */
class InvalidPackageException extends ApiException
{
}
