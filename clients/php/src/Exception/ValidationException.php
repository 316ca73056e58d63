<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 422 VALIDATION_ERROR: errors() lists {field, message}. */
class ValidationException extends ApiException
{
    /** @return list<array<string, mixed>> */
    public function errors(): array
    {
        return array_values((array) ($this->details['errors'] ?? []));
    }
}
