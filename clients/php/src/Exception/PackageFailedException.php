<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

use ScormAppliance\Model\Package;

/** A package whose processing failed (not an HTTP error); `$failureCode` is a package failure code. */
class PackageFailedException extends ScormApplianceException
{
    public readonly string $failureCode;
    /** @var array<string, mixed> */
    public readonly array $details;

    public function __construct(public readonly Package $package)
    {
        $error = $package->error ?? [];
        $this->failureCode = (string) ($error['code'] ?? 'UNKNOWN');
        $this->details = (array) ($error['details'] ?? []);
        parent::__construct("package {$package->id} failed: {$this->failureCode}: " . ($error['message'] ?? ''));
    }
}
