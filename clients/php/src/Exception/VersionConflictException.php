<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 409 VERSION_CONFLICT: the optimistic-lock version was stale; read again, then decide. */
class VersionConflictException extends ApiException
{
    /** The resource's version now (details.current_version). */
    public function currentVersion(): ?int
    {
        $value = $this->details['current_version'] ?? null;
        return $value === null ? null : (int) $value;
    }
}
