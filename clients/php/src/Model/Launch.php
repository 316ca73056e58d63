<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A freshly signed launch URL: hand it to the learner's browser (it expires). */
final class Launch
{
    public function __construct(
        public readonly string $sessionId,
        public readonly string $launchUrl,
        public readonly string $expiresAt,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self((string) $data['session_id'], (string) $data['launch_url'], (string) $data['expires_at']);
    }
}
