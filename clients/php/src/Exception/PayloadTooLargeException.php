<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 413 PAYLOAD_TOO_LARGE: above the server's max_upload_bytes. */
class PayloadTooLargeException extends ApiException
{
}
