"""`Client` (sync) and `AsyncClient` (asyncio) over httpx.

Both execute the same `_ops.Call`s: they differ only in how they send and sleep. What they add over
raw HTTP: typed models and exceptions, uploads streamed from disk, `Retry-After` honoured on 429,
`wait_until_ready` with exponential backoff, and `update_session_with_retry` for optimistic locking.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import IO, Any, TypeVar

import httpx

from . import _ops
from ._ops import Call, Upload
from .errors import PackageFailed, RateLimited, VersionConflict, WaitTimeout, error_from_response
from .models import (
    AnalyticsSummary,
    Delivery,
    Launch,
    Package,
    PackageAnalytics,
    PackageVersion,
    Page,
    RateLimit,
    Session,
    Webhook,
    XapiCredential,
)

__version__ = "0.1.0"
T = TypeVar("T")
CmiChange = Callable[[Session], "Mapping[str, str] | None"]


class _Base:
    """What both clients share: configuration, request building, answer handling."""

    def __init__(self, base_url: str, api_key: str, *, max_retries: int, timeout: float) -> None:
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/api/v1")
        self.max_retries = max_retries
        self.rate_limit: RateLimit | None = None
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"scorm-appliance-client-python/{__version__}",
        }
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))

    def _files(self, call: Call) -> tuple[dict[str, Any] | None, contextlib.ExitStack]:
        """The multipart `file` field, opened afresh for each attempt (a retry re-sends it whole)."""
        stack = contextlib.ExitStack()
        if call.upload is None:
            return None, stack
        upload = call.upload
        if isinstance(upload, (str, os.PathLike)):
            handle: IO[bytes] = stack.enter_context(open(upload, "rb"))  # noqa: SIM115
        else:
            handle = upload
            if handle.seekable():  # a retry starts again where the first attempt started
                if call.upload_start is None:
                    call.upload_start = handle.tell()
                handle.seek(call.upload_start)
        # httpx reads the file in chunks while sending: the ZIP is never held in memory.
        return {"file": (_ops._filename(upload), handle, "application/zip")}, stack

    def _handle(self, call: Call, response: httpx.Response) -> Any:
        """The parsed result of a success, or the typed exception of an error answer."""
        self._note_rate_limit(response.headers)
        if response.is_success:
            if call.raw_text:
                return response.text
            body = response.json() if response.content else None
            return call.parse(body)
        try:
            body = response.json()
        except ValueError:
            body = None
        raise error_from_response(response.status_code, body, dict(response.headers))

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        try:
            limit, remaining, reset = (
                int(headers[h]) for h in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
            )
        except (KeyError, ValueError):
            return
        self.rate_limit = RateLimit(limit, remaining, reset)

    def _request_kwargs(self, call: Call, files: dict[str, Any] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": call.query()}
        if call.json is not None:
            kwargs["json"] = call.json
        if files is not None:
            kwargs["files"] = files
            kwargs["data"] = dict(call.form or {})
        return kwargs


def _backoff(initial: float, factor: float, maximum: float) -> Iterator[float]:
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


class Client(_Base):
    """The synchronous client. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 2,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key, max_retries=max_retries, timeout=timeout)
        self._sleep = sleep
        self._http = http or httpx.Client(base_url=self.base_url, timeout=self._timeout, trust_env=False)
        self._http.headers.update(self._headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, call: Call) -> Any:
        """Send, sleeping `Retry-After` and trying again on 429 up to `max_retries` times."""
        for attempt in range(self.max_retries + 1):
            files, stack = self._files(call)
            with stack:
                response = self._http.request(call.method, call.url_path(), **self._request_kwargs(call, files))
            try:
                return self._handle(call, response)
            except RateLimited as exc:
                if attempt >= self.max_retries:
                    raise
                self._sleep(exc.retry_after)
        raise AssertionError("unreachable")

    # -- system --------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`GET /health` (no credentials needed)."""
        return self._call(_ops.health())

    def get_tenant(self) -> dict[str, Any]:
        """The tenant these credentials belong to, and how they authenticated."""
        return self._call(_ops.get_tenant())

    def get_usage(self) -> dict[str, Any]:
        """Stored bytes and API requests against the tenant's limits."""
        return self._call(_ops.get_usage())

    # -- packages ------------------------------------------------------------------------------------

    def upload_package(self, file: Upload, *, title: str | None = None) -> Package:
        """Upload a ZIP (a path or a binary file), streamed; the package comes back `processing`."""
        return self._call(_ops.upload_package(file, title))

    def upload_package_version(self, package_id: str, file: Upload) -> Package:
        """Upload a new version of a package, streamed."""
        return self._call(_ops.upload_package_version(package_id, file))

    def validate_package(self, file: Upload) -> dict[str, Any]:
        """Run every processing check on a ZIP and keep nothing: `{valid, error, warnings, ...}`."""
        return self._call(_ops.validate_package(file))

    def list_packages(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Package]:
        """One page of packages, oldest first."""
        return self._call(_ops.list_packages(status, limit, cursor))

    def get_package(self, package_id: str) -> Package:
        """The package with its latest version."""
        return self._call(_ops.get_package(package_id))

    def update_package(self, package_id: str, **changes: Any) -> Package:
        """PATCH `title`, `active_version`, `migrate_sessions`, `scorm12_suspend_data_limit`."""
        return self._call(_ops.update_package(package_id, changes))

    def delete_package(self, package_id: str) -> None:
        """Delete the package's files and metadata (sessions keep their results)."""
        self._call(_ops.delete_package(package_id))

    def list_package_versions(self, package_id: str) -> Page[PackageVersion]:
        """Every version of a package, oldest first."""
        return self._call(_ops.list_package_versions(package_id))

    def get_package_version(self, package_id: str, version: int) -> PackageVersion:
        """One version of a package."""
        return self._call(_ops.get_package_version(package_id, version))

    def wait_until_ready(
        self, package_id: str, *, timeout: float = 300.0, initial_delay: float = 0.25, max_delay: float = 5.0
    ) -> Package:
        """Poll until the package is `ready` (returned) or `failed` (PackageFailed), with backoff."""
        deadline = time.monotonic() + timeout
        for delay in _backoff(initial_delay, 2.0, max_delay):
            package = self.get_package(package_id)
            if package.status == "ready":
                return package
            if package.status == "failed":
                raise PackageFailed(package)
            if time.monotonic() + delay > deadline:
                raise WaitTimeout(f"package {package_id} still {package.status} after {timeout} s")
            self._sleep(delay)
        raise AssertionError("unreachable")

    # -- sessions ------------------------------------------------------------------------------------

    def create_session(
        self,
        package_id: str,
        learner_id: str,
        *,
        learner_name: str | None = None,
        package_version: int | None = None,
        resume: bool = True,
    ) -> Session:
        """A session for a learner; with `resume` (the default) their unfinished one if they have it."""
        return self._call(_ops.create_session(package_id, learner_id, learner_name, package_version, resume))

    def list_sessions(
        self,
        *,
        package_id: str | None = None,
        learner_id: str | None = None,
        learner: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Session]:
        """One page of sessions, oldest first (`launch_url` is None in lists). `learner_id` is an exact
        learner id; `learner` finds sessions whose learner id or name contains it (ASCII case ignored)."""
        return self._call(_ops.list_sessions(package_id, learner_id, learner, status, limit, cursor))

    def get_session(self, session_id: str, *, include_cmi: bool = False) -> Session:
        """The session: status, score, progress; with `include_cmi` its CMI data too."""
        return self._call(_ops.get_session(session_id, include_cmi))

    def update_session(
        self,
        session_id: str,
        *,
        version: int,
        cmi: Mapping[str, str] | None = None,
        activity: str | None = None,
        expires_at: str | None = None,
    ) -> Session:
        """PATCH with optimistic locking: VersionConflict if `version` is stale (nothing changed)."""
        return self._call(_ops.update_session(session_id, version, cmi, activity, expires_at))

    def update_session_with_retry(
        self, session_id: str, change: CmiChange, *, activity: str | None = None, attempts: int = 5
    ) -> Session:
        """Read the session, let `change(session)` decide the CMI writes, PATCH; on 409 read and decide again.

        `change` sees the current data every time (the point of the 409 is to look before writing
        again); returning None means "nothing to write" and ends with the session as read.
        """
        for attempt in range(attempts):
            session = self.get_session(session_id, include_cmi=True)
            cmi = change(session)
            if cmi is None:
                return session
            try:
                return self.update_session(session_id, version=session.version, cmi=cmi, activity=activity)
            except VersionConflict:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def launch_session(self, session_id: str) -> Launch:
        """A fresh signed `launch_url` for the learner's browser."""
        return self._call(_ops.launch_session(session_id))

    def delete_session(self, session_id: str) -> None:
        """Delete the session and its run-time data."""
        self._call(_ops.delete_session(session_id))

    # -- analytics -----------------------------------------------------------------------------------

    def analytics_summary(self, *, days: int | None = None) -> AnalyticsSummary:
        """Tenant-wide completion and pass rates."""
        return self._call(_ops.analytics_summary(days))

    def package_analytics(self, package_id: str, *, days: int | None = None) -> PackageAnalytics:
        """One package's figures, scores and per-question statistics."""
        return self._call(_ops.package_analytics(package_id, days))

    def package_analytics_csv(self, package_id: str, *, section: str | None = None) -> str:
        """One table of the package's report as CSV (per-question statistics by default)."""
        return self._call(_ops.package_analytics_csv(package_id, section))

    # -- webhooks ------------------------------------------------------------------------------------

    def create_webhook(
        self, url: str, events: list[str], *, description: str | None = None, enabled: bool | None = None
    ) -> Webhook:
        """Register an endpoint; the answer's `secret` is shown this once: store it."""
        return self._call(_ops.create_webhook(url, events, description, enabled))

    def list_webhooks(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Webhook]:
        """The tenant's endpoints (never with secrets)."""
        return self._call(_ops.list_webhooks(limit, cursor))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One endpoint."""
        return self._call(_ops.get_webhook(webhook_id))

    def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        """PATCH `url`, `events`, `description` or `enabled`."""
        return self._call(_ops.update_webhook(webhook_id, changes))

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete the endpoint and its delivery log."""
        self._call(_ops.delete_webhook(webhook_id))

    def test_webhook(self, webhook_id: str) -> Delivery:
        """Queue a `ping` event for the endpoint."""
        return self._call(_ops.test_webhook(webhook_id))

    def list_deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Delivery]:
        """The endpoint's delivery log, newest first."""
        return self._call(_ops.list_deliveries(webhook_id, status, limit, cursor))

    def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One delivery with its attempts."""
        return self._call(_ops.get_delivery(webhook_id, delivery_id))

    def retry_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """One more attempt now."""
        return self._call(_ops.retry_delivery(webhook_id, delivery_id))

    # -- xAPI LRS credentials ------------------------------------------------------------------------

    def create_xapi_credential(self, *, name: str | None = None, scope: str | None = None) -> XapiCredential:
        """A credential for the built-in LRS; `key` and `secret` are shown this once."""
        return self._call(_ops.create_xapi_credential(name, scope))

    def list_xapi_credentials(self, *, limit: int | None = None, cursor: str | None = None) -> Page[XapiCredential]:
        """The tenant's LRS credentials, revoked ones included."""
        return self._call(_ops.list_xapi_credentials(limit, cursor))

    def get_xapi_credential(self, credential_id: str) -> XapiCredential:
        """One LRS credential."""
        return self._call(_ops.get_xapi_credential(credential_id))

    def revoke_xapi_credential(self, credential_id: str) -> XapiCredential:
        """Revoke an LRS credential at once (it stays listed as `revoked`)."""
        return self._call(_ops.revoke_xapi_credential(credential_id))


def paginate(fetch: Callable[..., Page[T]], **kwargs: Any) -> Iterator[T]:
    """Every item of a list, page after page: `paginate(client.list_sessions, package_id=...)`."""
    cursor: str | None = None
    while True:
        page = fetch(**kwargs, cursor=cursor)
        yield from page.data
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def apaginate(fetch: Callable[..., Awaitable[Page[T]]], **kwargs: Any) -> AsyncIterator[T]:
    """`paginate` for the async client."""
    cursor: str | None = None
    while True:
        page = await fetch(**kwargs, cursor=cursor)
        for item in page.data:
            yield item
        if not page.next_cursor:
            return
        cursor = page.next_cursor


class AsyncClient(_Base):
    """The asyncio client: the same methods as `Client`, awaited. `async with` or `await aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 2,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key, max_retries=max_retries, timeout=timeout)
        self._sleep = sleep
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout, trust_env=False)
        self._http.headers.update(self._headers)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, call: Call) -> Any:
        for attempt in range(self.max_retries + 1):
            files, stack = self._files(call)
            with stack:
                response = await self._http.request(call.method, call.url_path(), **self._request_kwargs(call, files))
            try:
                return self._handle(call, response)
            except RateLimited as exc:
                if attempt >= self.max_retries:
                    raise
                await self._sleep(exc.retry_after)
        raise AssertionError("unreachable")

    async def health(self) -> dict[str, Any]:
        return await self._call(_ops.health())

    async def get_tenant(self) -> dict[str, Any]:
        return await self._call(_ops.get_tenant())

    async def get_usage(self) -> dict[str, Any]:
        return await self._call(_ops.get_usage())

    async def upload_package(self, file: Upload, *, title: str | None = None) -> Package:
        return await self._call(_ops.upload_package(file, title))

    async def upload_package_version(self, package_id: str, file: Upload) -> Package:
        return await self._call(_ops.upload_package_version(package_id, file))

    async def validate_package(self, file: Upload) -> dict[str, Any]:
        return await self._call(_ops.validate_package(file))

    async def list_packages(
        self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Package]:
        return await self._call(_ops.list_packages(status, limit, cursor))

    async def get_package(self, package_id: str) -> Package:
        return await self._call(_ops.get_package(package_id))

    async def update_package(self, package_id: str, **changes: Any) -> Package:
        return await self._call(_ops.update_package(package_id, changes))

    async def delete_package(self, package_id: str) -> None:
        await self._call(_ops.delete_package(package_id))

    async def list_package_versions(self, package_id: str) -> Page[PackageVersion]:
        return await self._call(_ops.list_package_versions(package_id))

    async def get_package_version(self, package_id: str, version: int) -> PackageVersion:
        return await self._call(_ops.get_package_version(package_id, version))

    async def wait_until_ready(
        self, package_id: str, *, timeout: float = 300.0, initial_delay: float = 0.25, max_delay: float = 5.0
    ) -> Package:
        deadline = time.monotonic() + timeout
        for delay in _backoff(initial_delay, 2.0, max_delay):
            package = await self.get_package(package_id)
            if package.status == "ready":
                return package
            if package.status == "failed":
                raise PackageFailed(package)
            if time.monotonic() + delay > deadline:
                raise WaitTimeout(f"package {package_id} still {package.status} after {timeout} s")
            await self._sleep(delay)
        raise AssertionError("unreachable")

    async def create_session(
        self,
        package_id: str,
        learner_id: str,
        *,
        learner_name: str | None = None,
        package_version: int | None = None,
        resume: bool = True,
    ) -> Session:
        return await self._call(_ops.create_session(package_id, learner_id, learner_name, package_version, resume))

    async def list_sessions(
        self,
        *,
        package_id: str | None = None,
        learner_id: str | None = None,
        learner: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Session]:
        return await self._call(_ops.list_sessions(package_id, learner_id, learner, status, limit, cursor))

    async def get_session(self, session_id: str, *, include_cmi: bool = False) -> Session:
        return await self._call(_ops.get_session(session_id, include_cmi))

    async def update_session(
        self,
        session_id: str,
        *,
        version: int,
        cmi: Mapping[str, str] | None = None,
        activity: str | None = None,
        expires_at: str | None = None,
    ) -> Session:
        return await self._call(_ops.update_session(session_id, version, cmi, activity, expires_at))

    async def update_session_with_retry(
        self, session_id: str, change: CmiChange, *, activity: str | None = None, attempts: int = 5
    ) -> Session:
        for attempt in range(attempts):
            session = await self.get_session(session_id, include_cmi=True)
            cmi = change(session)
            if cmi is None:
                return session
            try:
                return await self.update_session(session_id, version=session.version, cmi=cmi, activity=activity)
            except VersionConflict:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    async def launch_session(self, session_id: str) -> Launch:
        return await self._call(_ops.launch_session(session_id))

    async def delete_session(self, session_id: str) -> None:
        await self._call(_ops.delete_session(session_id))

    async def analytics_summary(self, *, days: int | None = None) -> AnalyticsSummary:
        return await self._call(_ops.analytics_summary(days))

    async def package_analytics(self, package_id: str, *, days: int | None = None) -> PackageAnalytics:
        return await self._call(_ops.package_analytics(package_id, days))

    async def package_analytics_csv(self, package_id: str, *, section: str | None = None) -> str:
        return await self._call(_ops.package_analytics_csv(package_id, section))

    async def create_webhook(
        self, url: str, events: list[str], *, description: str | None = None, enabled: bool | None = None
    ) -> Webhook:
        return await self._call(_ops.create_webhook(url, events, description, enabled))

    async def list_webhooks(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Webhook]:
        return await self._call(_ops.list_webhooks(limit, cursor))

    async def get_webhook(self, webhook_id: str) -> Webhook:
        return await self._call(_ops.get_webhook(webhook_id))

    async def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        return await self._call(_ops.update_webhook(webhook_id, changes))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._call(_ops.delete_webhook(webhook_id))

    async def test_webhook(self, webhook_id: str) -> Delivery:
        return await self._call(_ops.test_webhook(webhook_id))

    async def list_deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[Delivery]:
        return await self._call(_ops.list_deliveries(webhook_id, status, limit, cursor))

    async def get_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        return await self._call(_ops.get_delivery(webhook_id, delivery_id))

    async def retry_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        return await self._call(_ops.retry_delivery(webhook_id, delivery_id))

    async def create_xapi_credential(self, *, name: str | None = None, scope: str | None = None) -> XapiCredential:
        return await self._call(_ops.create_xapi_credential(name, scope))

    async def list_xapi_credentials(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[XapiCredential]:
        return await self._call(_ops.list_xapi_credentials(limit, cursor))

    async def get_xapi_credential(self, credential_id: str) -> XapiCredential:
        return await self._call(_ops.get_xapi_credential(credential_id))

    async def revoke_xapi_credential(self, credential_id: str) -> XapiCredential:
        return await self._call(_ops.revoke_xapi_credential(credential_id))
