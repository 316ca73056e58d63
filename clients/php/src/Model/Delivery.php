<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** One event's delivery to one endpoint, with its attempts. */
final class Delivery
{
    /**
     * @param list<array<string, mixed>> $attempts
     * @param array<string, mixed> $raw
     */
    public function __construct(
        public readonly string $id,
        public readonly string $webhookId,
        public readonly string $eventId,
        public readonly string $eventType,
        public readonly string $status,
        public readonly int $attemptCount,
        public readonly ?int $lastStatusCode,
        public readonly array $attempts,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self(
            (string) $data['id'],
            (string) $data['webhook_id'],
            (string) $data['event_id'],
            (string) $data['event_type'],
            (string) $data['status'],
            (int) ($data['attempt_count'] ?? 0),
            isset($data['last_status_code']) ? (int) $data['last_status_code'] : null,
            array_values($data['attempts'] ?? []),
            $data,
        );
    }
}
