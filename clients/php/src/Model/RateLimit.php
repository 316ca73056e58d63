<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** The RateLimit-* headers of the last answer: the tenant's budget for this minute. */
final class RateLimit
{
    public function __construct(
        public readonly int $limit,
        public readonly int $remaining,
        public readonly int $resetSeconds,
    ) {
    }
}
