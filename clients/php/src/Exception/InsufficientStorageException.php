<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 507 INSUFFICIENT_STORAGE: the server's disk is too full; try later. */
class InsufficientStorageException extends ApiException
{
}
