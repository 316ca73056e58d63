<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/** A session's score; every part is null until the content reports it. */
final class Score
{
    public function __construct(
        public readonly ?float $raw,
        public readonly ?float $min,
        public readonly ?float $max,
        public readonly ?float $scaled,
    ) {
    }

    /** @param array<string, mixed>|null $data */
    public static function fromArray(?array $data): self
    {
        $f = static fn (string $k): ?float => isset($data[$k]) ? (float) $data[$k] : null;
        return new self($f('raw'), $f('min'), $f('max'), $f('scaled'));
    }
}
