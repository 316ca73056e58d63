<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 429 RATE_LIMITED: wait retryAfter() seconds (the Retry-After header). */
class RateLimitedException extends ApiException
{
    /** Seconds to wait: Retry-After, else details.retry_after, else 1. */
    public function retryAfter(): float
    {
        foreach ([$this->headers['retry-after'] ?? null, $this->details['retry_after'] ?? null] as $raw) {
            if ($raw !== null && is_numeric($raw)) {
                return max(0.0, (float) $raw);
            }
        }
        return 1.0;
    }
}
