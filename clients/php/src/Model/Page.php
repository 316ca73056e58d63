<?php

declare(strict_types=1);

namespace ScormAppliance\Model;

/**
 * One page of a list: pass `$nextCursor` back as `cursor` (null on the last page).
 *
 * @template T
 */
final class Page
{
    /** @param list<T> $data */
    public function __construct(public readonly array $data, public readonly ?string $nextCursor)
    {
    }
}
