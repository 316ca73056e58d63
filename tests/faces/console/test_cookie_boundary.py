"""The Cookie header reaches the console's paths only (appliance.faces.api.middleware.header_limit_middleware):
learner and API routes never see it, and it counts toward the header limit nowhere."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appliance.faces.api.middleware import console_path, header_limit_middleware


def _seen(
    path: str, headers: list[tuple[bytes, bytes]], limit: int = 4096
) -> tuple[list[tuple[bytes, bytes]] | None, int | None]:
    """What an app behind the middleware sees of `headers` on `path`, and the status sent."""
    seen: dict[str, Any] = {}
    status: dict[str, int] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["headers"] = list(scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": path, "method": "GET", "headers": headers}
    asyncio.run(header_limit_middleware(limit)(app)(scope, receive, send))
    return seen.get("headers"), status.get("code")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/health",
        "/api/v1/packages",
        "/player/tok.sig",
        "/player/tok.sig/commit",
        "/static/player.js",
        "/xapi/statements",
        "/administrator",
        "/adminx/login",
        "/",
    ],
)
def test_learner_and_api_routes_never_see_cookie(path: str) -> None:
    headers, status = _seen(path, [(b"host", b"x"), (b"cookie", b"sa_console=abc; other=1")])
    assert status == 200
    assert headers is not None and all(k != b"cookie" for k, _ in headers)


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/admin/t/ten_1/packages", "/admin/login"])
def test_console_paths_keep_cookie(path: str) -> None:
    headers, _ = _seen(path, [(b"cookie", b"sa_console=abc")])
    assert headers is not None and (b"cookie", b"sa_console=abc") in headers
    assert console_path(path)


def test_cookie_never_counts_toward_the_header_limit() -> None:
    big = (b"cookie", b"c=" + b"x" * 10_000)
    assert _seen("/admin/tenants", [big], limit=1024)[1] == 200
    assert _seen("/api/v1/health", [big], limit=1024)[1] == 200
    assert _seen("/admin/tenants", [(b"x-big", b"x" * 2000)], limit=1024)[1] == 413
