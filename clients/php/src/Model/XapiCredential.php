<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A credential for the built-in LRS (HTTP Basic key:secret); `$secret` only at creation. */
final class XapiCredential
{
    /** @param array<string, mixed> $raw */
    public function __construct(
        public readonly string $id,
        public readonly ?string $name,
        public readonly string $scope,
        public readonly string $status,
        public readonly string $endpoint,
        public readonly ?string $key,
        public readonly ?string $secret,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self(
            (string) $data['id'],
            $data['name'] ?? null,
            (string) $data['scope'],
            (string) $data['status'],
            (string) ($data['endpoint'] ?? ''),
            $data['key'] ?? null,
            $data['secret'] ?? null,
            $data,
        );
    }
}
