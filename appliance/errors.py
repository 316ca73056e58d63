"""The domain's errors: each carries a stable contract code, a message and details, and no HTTP.

Services raise these; `api/errors.py` is the one place that maps them to HTTP statuses, and the CLI
prints them and exits 1.
"""

from __future__ import annotations

from typing import Any


class ApplianceError(Exception):
    """Base of every expected error; `code` is one of the contract's error codes."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class Unauthorized(ApplianceError):
    """No or bad credentials."""

    code = "UNAUTHORIZED"


class Forbidden(ApplianceError):
    """Credentials are fine but the action is not allowed (suspended tenant, wrong scope)."""

    code = "FORBIDDEN"


class NotFound(ApplianceError):
    """Unknown resource, or one of another tenant."""

    code = "NOT_FOUND"


class ValidationFailed(ApplianceError):
    """A malformed body or parameter; details.errors lists the field problems."""

    code = "VALIDATION_ERROR"


class CmiValidationFailed(ApplianceError):
    """A CMI write that the SCORM data model rejects."""

    code = "CMI_VALIDATION_ERROR"


class SequencingTooCostly(ApplianceError):
    """A launch or navigation spent its CPU budget sequencing (a course far larger than the package limit)."""

    code = "SEQUENCING_TOO_COSTLY"


class VersionConflict(ApplianceError):
    """An optimistic-lock version is stale; details.current_version says the current one."""

    code = "VERSION_CONFLICT"


class PayloadTooLarge(ApplianceError):
    """An upload above the configured maximum."""

    code = "PAYLOAD_TOO_LARGE"


class QuotaExceeded(ApplianceError):
    """The tenant's storage quota would be exceeded."""

    code = "QUOTA_EXCEEDED"


class InsufficientStorage(ApplianceError):
    """The server's disk has less free space than the operator's floor (`min_free_disk_bytes`)."""

    code = "INSUFFICIENT_STORAGE"


class RateLimited(ApplianceError):
    """The tenant's request rate limit is used up; details.retry_after gives seconds."""

    code = "RATE_LIMITED"


class PackageNotReady(ApplianceError):
    """A session was asked for on a package that is processing or failed."""

    code = "PACKAGE_NOT_READY"


class SessionExpired(ApplianceError):
    """The session is past its expiry."""

    code = "SESSION_EXPIRED"


class InvalidPackage(ApplianceError):
    """An upload that is not a ZIP at all."""

    code = "INVALID_PACKAGE"
