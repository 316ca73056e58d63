<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 422 UNSAFE_ARCHIVE: an archive refused as hostile while the request was open. */
class UnsafeArchiveException extends ApiException
{
}
