<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A webhook endpoint; `$secret` is set only in the answer that created it. */
final class Webhook
{
    /**
     * @param list<string> $events
     * @param array<string, mixed> $raw
     */
    public function __construct(
        public readonly string $id,
        public readonly string $url,
        public readonly array $events,
        public readonly bool $enabled,
        public readonly ?string $description,
        public readonly ?string $secret,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self(
            (string) $data['id'],
            (string) $data['url'],
            array_values($data['events'] ?? []),
            (bool) ($data['enabled'] ?? true),
            $data['description'] ?? null,
            $data['secret'] ?? null,
            $data,
        );
    }
}
