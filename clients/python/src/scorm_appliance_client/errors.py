"""The appliance's error codes as exceptions.

Every error the API answers has the body `{"error", "code", "details"}` (docs/errors.md). Programs
branch on `code`, never on the message, so each code gets its own exception class; an unknown code
(a newer server) still raises `ApiError` with the code kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ScormApplianceError(Exception):
    """Base of everything this client raises on purpose."""


class ApiError(ScormApplianceError):
    """An error answer from the API: HTTP status, stable `code`, message and `details`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})


class Unauthorized(ApiError):
    """401 UNAUTHORIZED: no, malformed, unknown or revoked credentials."""


class Forbidden(ApiError):
    """403 FORBIDDEN: a suspended tenant, or a role that may not use the route."""


class NotFound(ApiError):
    """404 NOT_FOUND: an unknown route or resource (or another tenant's)."""


class MethodNotAllowed(ApiError):
    """405 METHOD_NOT_ALLOWED."""


class ValidationError(ApiError):
    """422 VALIDATION_ERROR: `details["errors"]` lists `{field, message}`."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The field problems the server listed."""
        return list(self.details.get("errors") or [])


class CmiValidationError(ValidationError):
    """422 CMI_VALIDATION_ERROR: a CMI write the SCORM data model refused; nothing was stored."""


class InvalidPackage(ApiError):
    """422 INVALID_PACKAGE: the upload is not a ZIP at all."""


class UnsafeArchive(ApiError):
    """422 UNSAFE_ARCHIVE: an archive refused as hostile while the request was open."""


class SequencingTooCostly(ApiError):
    """422 SEQUENCING_TOO_COSTLY."""


class VersionConflict(ApiError):
    """409 VERSION_CONFLICT: the optimistic-lock version was stale; read again, then decide."""

    @property
    def current_version(self) -> int | None:
        """The resource's version now (`details.current_version`)."""
        value = self.details.get("current_version")
        return int(value) if value is not None else None


class PackageNotReady(ApiError):
    """409 PACKAGE_NOT_READY: a session was asked for on a processing or failed package."""


class SessionExpired(ApiError):
    """410 SESSION_EXPIRED."""


class PayloadTooLarge(ApiError):
    """413 PAYLOAD_TOO_LARGE: above the server's `max_upload_bytes` (`details.limit_bytes`)."""


class QuotaExceeded(ApiError):
    """403 QUOTA_EXCEEDED: storing this would exceed the tenant's quota (`used_bytes`, `limit_bytes`)."""


class RateLimited(ApiError):
    """429 RATE_LIMITED: wait `retry_after` seconds (the `Retry-After` header)."""

    @property
    def retry_after(self) -> float:
        """Seconds to wait, from `Retry-After` (else `details.retry_after`, else 1)."""
        return retry_after_seconds(self.headers, self.details)


class InsufficientStorage(ApiError):
    """507 INSUFFICIENT_STORAGE: the server's disk is too full; try later."""


class InternalError(ApiError):
    """500 INTERNAL_ERROR: `details.request_id` ties it to the server's log."""


class PackageFailed(ScormApplianceError):
    """A package's processing failed (not an HTTP error): `code` is a package failure code."""

    def __init__(self, package: Any) -> None:
        error = package.error or {}
        self.package = package
        self.code: str = error.get("code", "UNKNOWN")
        self.details: dict[str, Any] = dict(error.get("details") or {})
        super().__init__(f"package {package.id} failed: {self.code}: {error.get('message', '')}")


class WaitTimeout(ScormApplianceError, TimeoutError):
    """`wait_until_ready` gave up before the package left `processing`."""


class WebhookVerificationError(ScormApplianceError):
    """A webhook request whose signature or timestamp does not check out: answer it 400."""


ERROR_CLASSES: dict[str, type[ApiError]] = {
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "NOT_FOUND": NotFound,
    "METHOD_NOT_ALLOWED": MethodNotAllowed,
    "VALIDATION_ERROR": ValidationError,
    "CMI_VALIDATION_ERROR": CmiValidationError,
    "INVALID_PACKAGE": InvalidPackage,
    "UNSAFE_ARCHIVE": UnsafeArchive,
    "SEQUENCING_TOO_COSTLY": SequencingTooCostly,
    "VERSION_CONFLICT": VersionConflict,
    "PACKAGE_NOT_READY": PackageNotReady,
    "SESSION_EXPIRED": SessionExpired,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "QUOTA_EXCEEDED": QuotaExceeded,
    "RATE_LIMITED": RateLimited,
    "INSUFFICIENT_STORAGE": InsufficientStorage,
    "INTERNAL_ERROR": InternalError,
}


def retry_after_seconds(headers: Mapping[str, str], details: Mapping[str, Any] | None = None) -> float:
    """The wait a 429 asks for: `Retry-After` in seconds (the appliance never sends a date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for raw in (lowered.get("retry-after"), (details or {}).get("retry_after")):
        try:
            if raw is not None:
                return max(0.0, float(raw))
        except (TypeError, ValueError):
            continue
    return 1.0


def error_from_response(status: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    """The typed exception for an error answer (a body that is not the contract's still raises)."""
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"HTTP_{status}")
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    lowered = {k.lower(): v for k, v in headers.items()}
    cls = ERROR_CLASSES.get(code, ApiError)
    return cls(status, code, str(body.get("error") or ""), details, lowered.get("x-request-id"), lowered)
