/**
 * The appliance's error codes as classes (docs/errors.md). Every error answer is
 * `{error, code, details}`; programs branch on `code` (or `instanceof`), never on the message.
 */

export type Details = Record<string, unknown>;

/** Base of everything this client throws on purpose. */
export class ScormApplianceError extends Error {
  override name = "ScormApplianceError";
}

/** An error answer from the API. */
export class ApiError extends ScormApplianceError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Details = {},
    readonly requestId: string | null = null,
    readonly headers: Headers = new Headers(),
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

export class Unauthorized extends ApiError { override name = "Unauthorized"; }
export class Forbidden extends ApiError { override name = "Forbidden"; }
export class NotFound extends ApiError { override name = "NotFound"; }
export class MethodNotAllowed extends ApiError { override name = "MethodNotAllowed"; }

/** 422 VALIDATION_ERROR: `errors` lists `{field, message}`. */
export class ValidationError extends ApiError {
  override name = "ValidationError";
  get errors(): Array<Record<string, unknown>> {
    return Array.isArray(this.details.errors) ? (this.details.errors as Array<Record<string, unknown>>) : [];
  }
}

/** 422 CMI_VALIDATION_ERROR: `errors` lists `{element, value, scorm_error_code, message}`. */
export class CmiValidationError extends ValidationError { override name = "CmiValidationError"; }
export class InvalidPackage extends ApiError { override name = "InvalidPackage"; }
export class UnsafeArchive extends ApiError { override name = "UnsafeArchive"; }
export class SequencingTooCostly extends ApiError { override name = "SequencingTooCostly"; }

/** 409 VERSION_CONFLICT: read the resource again, then decide (`currentVersion` is its version now). */
export class VersionConflict extends ApiError {
  override name = "VersionConflict";
  get currentVersion(): number | null {
    const value = this.details.current_version;
    return typeof value === "number" ? value : null;
  }
}

export class PackageNotReady extends ApiError { override name = "PackageNotReady"; }
export class SessionExpired extends ApiError { override name = "SessionExpired"; }
export class PayloadTooLarge extends ApiError { override name = "PayloadTooLarge"; }
export class QuotaExceeded extends ApiError { override name = "QuotaExceeded"; }
export class InsufficientStorage extends ApiError { override name = "InsufficientStorage"; }
export class InternalError extends ApiError { override name = "InternalError"; }

/** 429 RATE_LIMITED: wait `retryAfter` seconds (the `Retry-After` header). */
export class RateLimited extends ApiError {
  override name = "RateLimited";
  get retryAfter(): number {
    return retryAfterSeconds(this.headers, this.details);
  }
}

/** A package whose processing failed (not an HTTP error); `code` is a package failure code. */
export class PackageFailed extends ScormApplianceError {
  override name = "PackageFailed";
  readonly code: string;
  readonly details: Details;
  constructor(readonly pkg: { id: string; error: { code: string; message: string; details?: Details } | null }) {
    super(`package ${pkg.id} failed: ${pkg.error?.code ?? "UNKNOWN"}: ${pkg.error?.message ?? ""}`);
    this.code = pkg.error?.code ?? "UNKNOWN";
    this.details = pkg.error?.details ?? {};
  }
}

/** `waitUntilReady` gave up while the package was still processing. */
export class WaitTimeout extends ScormApplianceError { override name = "WaitTimeout"; }

/** A webhook request whose signature or timestamp does not check out: answer it 400. */
export class WebhookVerificationError extends ScormApplianceError { override name = "WebhookVerificationError"; }

type ErrorClass = new (
  status: number, code: string, message: string, details: Details, requestId: string | null, headers: Headers,
) => ApiError;

export const ERROR_CLASSES: Record<string, ErrorClass> = {
  UNAUTHORIZED: Unauthorized,
  FORBIDDEN: Forbidden,
  NOT_FOUND: NotFound,
  METHOD_NOT_ALLOWED: MethodNotAllowed,
  VALIDATION_ERROR: ValidationError,
  CMI_VALIDATION_ERROR: CmiValidationError,
  INVALID_PACKAGE: InvalidPackage,
  UNSAFE_ARCHIVE: UnsafeArchive,
  SEQUENCING_TOO_COSTLY: SequencingTooCostly,
  VERSION_CONFLICT: VersionConflict,
  PACKAGE_NOT_READY: PackageNotReady,
  SESSION_EXPIRED: SessionExpired,
  PAYLOAD_TOO_LARGE: PayloadTooLarge,
  QUOTA_EXCEEDED: QuotaExceeded,
  RATE_LIMITED: RateLimited,
  INSUFFICIENT_STORAGE: InsufficientStorage,
  INTERNAL_ERROR: InternalError,
};

/** The wait a 429 asks for, in seconds: `Retry-After`, else `details.retry_after`, else 1. */
export function retryAfterSeconds(headers: Headers, details: Details = {}): number {
  for (const raw of [headers.get("retry-after"), details.retry_after]) {
    const value = Number(raw);
    if (raw !== null && raw !== undefined && Number.isFinite(value)) return Math.max(0, value);
  }
  return 1;
}

/** The typed error for an answer (a body that is not the contract's still gives an ApiError). */
export function errorFromResponse(status: number, body: unknown, headers: Headers): ApiError {
  const obj = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const code = typeof obj.code === "string" ? obj.code : `HTTP_${status}`;
  const details = obj.details && typeof obj.details === "object" ? (obj.details as Details) : {};
  const Cls = ERROR_CLASSES[code] ?? ApiError;
  return new Cls(status, code, String(obj.error ?? ""), details, headers.get("x-request-id"), headers);
}
