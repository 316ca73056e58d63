<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 403 QUOTA_EXCEEDED: storing this would exceed the tenant's quota. */
class QuotaExceededException extends ApiException
{
}
