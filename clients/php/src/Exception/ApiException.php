<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/**
 * An error answer from the API: `{error, code, details}` (docs/errors.md). Branch on the class or
 * on `$code`, never on the message; an unknown code (a newer server) is still an ApiException.
 */
class ApiException extends ScormApplianceException
{
    /** @var array<string, class-string<ApiException>> */
    public const CLASSES = [
        'UNAUTHORIZED' => UnauthorizedException::class,
        'FORBIDDEN' => ForbiddenException::class,
        'NOT_FOUND' => NotFoundException::class,
        'METHOD_NOT_ALLOWED' => MethodNotAllowedException::class,
        'VALIDATION_ERROR' => ValidationException::class,
        'CMI_VALIDATION_ERROR' => CmiValidationException::class,
        'INVALID_PACKAGE' => InvalidPackageException::class,
        'UNSAFE_ARCHIVE' => UnsafeArchiveException::class,
        'SEQUENCING_TOO_COSTLY' => SequencingTooCostlyException::class,
        'VERSION_CONFLICT' => VersionConflictException::class,
        'PACKAGE_NOT_READY' => PackageNotReadyException::class,
        'SESSION_EXPIRED' => SessionExpiredException::class,
        'PAYLOAD_TOO_LARGE' => PayloadTooLargeException::class,
        'QUOTA_EXCEEDED' => QuotaExceededException::class,
        'RATE_LIMITED' => RateLimitedException::class,
        'INSUFFICIENT_STORAGE' => InsufficientStorageException::class,
        'INTERNAL_ERROR' => InternalErrorException::class,
    ];

    /**
     * @param array<string, mixed> $details
     * @param array<string, string> $headers lower-case names
     */
    final public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        string $message,
        public readonly array $details = [],
        public readonly ?string $requestId = null,
        public readonly array $headers = [],
    ) {
        parent::__construct("{$status} {$errorCode}: {$message}", $status);
    }

    /**
     * The typed exception for an error answer.
     *
     * @param array<string, string> $headers lower-case names
     */
    public static function fromResponse(int $status, mixed $body, array $headers): self
    {
        $body = is_array($body) ? $body : [];
        $code = is_string($body['code'] ?? null) ? $body['code'] : "HTTP_{$status}";
        $details = is_array($body['details'] ?? null) ? $body['details'] : [];
        $class = self::CLASSES[$code] ?? self::class;
        return new $class($status, $code, (string) ($body['error'] ?? ''), $details, $headers['x-request-id'] ?? null, $headers);
    }
}
