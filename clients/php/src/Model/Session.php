<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** One learner's registration on a package; `$version` is the optimistic-lock token for PATCH. */
final class Session
{
    /**
     * @param array<string, string>|null $cmi with includeCmi: the current SCO's CMI data
     * @param array<string, mixed> $raw
     */
    public function __construct(
        public readonly string $id,
        public readonly string $packageId,
        public readonly int $packageVersion,
        public readonly string $learnerId,
        public readonly ?string $learnerName,
        public readonly string $status,
        public readonly ?string $completionStatus,
        public readonly ?string $successStatus,
        public readonly Score $score,
        public readonly ?float $progressMeasure,
        public readonly string $totalTime,
        public readonly float $totalTimeSeconds,
        public readonly int $attempt,
        public readonly int $version,
        public readonly ?string $launchUrl,
        public readonly ?string $expiresAt,
        public readonly ?array $cmi,
        public readonly array $raw,
    ) {
    }

    /** @param array<string, mixed> $data */
    public static function fromArray(array $data): self
    {
        return new self(
            (string) $data['id'],
            (string) $data['package_id'],
            (int) $data['package_version'],
            (string) ($data['learner']['id'] ?? ''),
            $data['learner']['name'] ?? null,
            (string) $data['status'],
            $data['completion_status'] ?? null,
            $data['success_status'] ?? null,
            Score::fromArray($data['score'] ?? null),
            isset($data['progress_measure']) ? (float) $data['progress_measure'] : null,
            (string) ($data['total_time'] ?? 'PT0S'),
            (float) ($data['total_time_seconds'] ?? 0),
            (int) ($data['attempt'] ?? 1),
            (int) $data['version'],
            $data['launch_url'] ?? null,
            $data['expires_at'] ?? null,
            isset($data['cmi']) ? (array) $data['cmi'] : null,
            $data,
        );
    }
}
