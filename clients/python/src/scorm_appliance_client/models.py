"""Typed views of the API's JSON objects (docs/api.md).

Each model names the fields integrations use and keeps the whole object in `raw`, so a field the
server adds later is never lost and never breaks parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class RateLimit:
    """The `RateLimit-*` headers of the last answer: the tenant's budget for this minute."""

    limit: int
    remaining: int
    reset_seconds: int


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: pass `next_cursor` back as `cursor=` (None on the last page)."""

    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Package:
    """A SCORM package with its latest version."""

    id: str
    title: str | None
    status: str  # processing | ready | failed
    error: dict[str, Any] | None
    latest_version: int
    active_version: int | None
    scorm_version: str | None
    warnings: list[dict[str, Any]]
    size_bytes: int
    sco_count: int
    launch: dict[str, Any] | None
    created_at: str
    updated_at: str
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Package:
        return cls(
            id=data["id"],
            title=data.get("title"),
            status=data["status"],
            error=data.get("error"),
            latest_version=int(data.get("latest_version") or 0),
            active_version=data.get("active_version"),
            scorm_version=data.get("scorm_version"),
            warnings=list(data.get("warnings") or []),
            size_bytes=int(data.get("size_bytes") or 0),
            sco_count=int(data.get("sco_count") or 0),
            launch=data.get("launch"),
            created_at=data.get("created_at", ""),
            updated_at=data.get("updated_at", ""),
            raw=data,
        )


@dataclass(frozen=True)
class PackageVersion:
    """One uploaded version of a package."""

    package_id: str
    version: int
    status: str
    error: dict[str, Any] | None
    scorm_version: str | None
    upload_sha256: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackageVersion:
        return cls(
            package_id=data["package_id"],
            version=int(data["version"]),
            status=data["status"],
            error=data.get("error"),
            scorm_version=data.get("scorm_version"),
            upload_sha256=data.get("upload_sha256"),
            raw=data,
        )


@dataclass(frozen=True)
class Score:
    """A session's score; every part is None until the content reports it."""

    raw: float | None
    min: float | None
    max: float | None
    scaled: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Score:
        data = data or {}
        return cls(*(_opt_float(data.get(k)) for k in ("raw", "min", "max", "scaled")))


@dataclass(frozen=True)
class Learner:
    """Who a session belongs to, in your system's ids."""

    id: str
    name: str | None = None


@dataclass(frozen=True)
class Session:
    """One learner's registration on a package. `version` is the optimistic-lock token for PATCH."""

    id: str
    package_id: str
    package_version: int
    learner: Learner
    status: str  # not_started | incomplete | completed | passed | failed | expired
    completion_status: str | None
    success_status: str | None
    score: Score
    progress_measure: float | None
    total_time: str
    total_time_seconds: float
    attempt: int
    version: int
    launch_url: str | None
    created_at: str
    updated_at: str
    last_activity_at: str | None
    expires_at: str | None
    cmi: dict[str, str] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        learner = data.get("learner") or {}
        return cls(
            id=data["id"],
            package_id=data["package_id"],
            package_version=int(data["package_version"]),
            learner=Learner(str(learner.get("id", "")), learner.get("name")),
            status=data["status"],
            completion_status=data.get("completion_status"),
            success_status=data.get("success_status"),
            score=Score.from_json(data.get("score")),
            progress_measure=_opt_float(data.get("progress_measure")),
            total_time=data.get("total_time", "PT0S"),
            total_time_seconds=float(data.get("total_time_seconds") or 0.0),
            attempt=int(data.get("attempt") or 1),
            version=int(data["version"]),
            launch_url=data.get("launch_url"),
            created_at=data.get("created_at", ""),
            updated_at=data.get("updated_at", ""),
            last_activity_at=data.get("last_activity_at"),
            expires_at=data.get("expires_at"),
            cmi=data.get("cmi"),
            raw=data,
        )


@dataclass(frozen=True)
class Launch:
    """A freshly signed launch URL: hand it to the learner's browser (it expires)."""

    session_id: str
    launch_url: str
    expires_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Launch:
        return cls(data["session_id"], data["launch_url"], data["expires_at"])


@dataclass(frozen=True)
class Webhook:
    """A webhook endpoint; `secret` is set only in the answer that created it."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    secret: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Webhook:
        return cls(
            id=data["id"],
            url=data["url"],
            events=list(data.get("events") or []),
            enabled=bool(data.get("enabled", True)),
            description=data.get("description"),
            secret=data.get("secret"),
            raw=data,
        )


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one endpoint, with its attempts."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str  # pending | delivered | failed
    attempt_count: int
    last_status_code: int | None
    attempts: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        return cls(
            id=data["id"],
            webhook_id=data["webhook_id"],
            event_id=data["event_id"],
            event_type=data["event_type"],
            status=data["status"],
            attempt_count=int(data.get("attempt_count") or 0),
            last_status_code=data.get("last_status_code"),
            attempts=list(data.get("attempts") or []),
            raw=data,
        )


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook body: `{id, type, created_at, tenant_id, data}`."""

    id: str
    type: str
    created_at: str
    tenant_id: str
    data: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookEvent:
        return cls(data["id"], data["type"], data["created_at"], data["tenant_id"], dict(data.get("data") or {}))


@dataclass(frozen=True)
class XapiCredential:
    """A credential for the built-in LRS (HTTP Basic `key`:`secret`); `secret` only at creation."""

    id: str
    name: str | None
    scope: str  # all | read | write
    status: str  # active | revoked
    endpoint: str
    key: str | None
    secret: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> XapiCredential:
        return cls(
            id=data["id"],
            name=data.get("name"),
            scope=data["scope"],
            status=data["status"],
            endpoint=data.get("endpoint", ""),
            key=data.get("key"),
            secret=data.get("secret"),
            raw=data,
        )


@dataclass(frozen=True)
class AnalyticsSummary:
    """Tenant-wide figures (docs/analytics.md); the rest of the report is in `raw`."""

    sessions_by_status: dict[str, int]
    completed: int
    passed: int
    failed: int
    completion_rate: float | None
    pass_rate: float | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnalyticsSummary:
        sessions = data.get("sessions") or {}
        return cls(
            sessions_by_status=dict(sessions.get("by_status") or {}),
            completed=int(data.get("completed") or 0),
            passed=int(data.get("passed") or 0),
            failed=int(data.get("failed") or 0),
            completion_rate=_opt_float(data.get("completion_rate")),
            pass_rate=_opt_float(data.get("pass_rate")),
            raw=data,
        )


@dataclass(frozen=True)
class PackageAnalytics(AnalyticsSummary):
    """One package's figures: also the score distribution and per-question statistics."""

    score: dict[str, Any] = field(default_factory=dict)
    interactions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackageAnalytics:
        base = AnalyticsSummary.from_json(data)
        return cls(
            sessions_by_status=base.sessions_by_status,
            completed=base.completed,
            passed=base.passed,
            failed=base.failed,
            completion_rate=base.completion_rate,
            pass_rate=base.pass_rate,
            raw=data,
            score=dict(data.get("score") or {}),
            interactions=list(data.get("interactions") or []),
        )
