<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A verified webhook body: {id, type, created_at, tenant_id, data}. */
final class WebhookEvent
{
    /** @param array<string, mixed> $data */
    public function __construct(
        public readonly string $id,
        public readonly string $type,
        public readonly string $createdAt,
        public readonly string $tenantId,
        public readonly array $data,
    ) {
    }

    /** @param array<string, mixed> $body */
    public static function fromArray(array $body): self
    {
        return new self(
            (string) $body['id'],
            (string) $body['type'],
            (string) $body['created_at'],
            (string) $body['tenant_id'],
            (array) ($body['data'] ?? []),
        );
    }
}
