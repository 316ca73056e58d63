<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A SCORM package with its latest version; `$raw` keeps every field the server sent. */
final class Package
{
    /**
     * @param array{code: string, message: string, details: array<string, mixed>}|null $error
     * @param list<array<string, mixed>> $warnings
     * @param array<string, mixed>|null $launch
     * @param array<string, mixed> $raw
     */
    public function __construct(
        public readonly string $id,
        public readonly ?string $title,
        public readonly string $status,
        public readonly ?array $error,
        public readonly int $latestVersion,
        public readonly ?int $activeVersion,
        public readonly ?string $scormVersion,
        public readonly array $warnings,
        public readonly int $sizeBytes,
        public readonly ?array $launch,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self(
            (string) $data['id'],
            $data['title'] ?? null,
            (string) $data['status'],
            $data['error'] ?? null,
            (int) ($data['latest_version'] ?? 0),
            isset($data['active_version']) ? (int) $data['active_version'] : null,
            $data['scorm_version'] ?? null,
            array_values($data['warnings'] ?? []),
            (int) ($data['size_bytes'] ?? 0),
            $data['launch'] ?? null,
            $data,
        );
    }
}
