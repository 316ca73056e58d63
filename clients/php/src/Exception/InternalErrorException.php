<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 500 INTERNAL_ERROR: details.request_id ties it to the server's log. */
class InternalErrorException extends ApiException
{
}
