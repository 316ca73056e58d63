"""Cross-cutting HTTP concerns: the request id on every response, the request header size cap (which
never counts cookies), and the security headers of the learner routes, `/static` and the API docs.

Why cookies are ignored: course JavaScript runs on the player's origin (docs/security.md, "Course
content and the player"), so it can set cookies for that origin (or, with a content origin per tenant,
for the parent domain every tenant's content host shares); a few large ones would otherwise push every
later request from that browser, for every tenant, over the header limit. The appliance reads
no cookie anywhere (the API authenticates by the Authorization header, learners by the launch token
in the path), so the `Cookie` header is neither counted nor passed on; only the admin console's own
paths (`/admin`, appliance.faces.console) receive it, for their session cookie, and never count it either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.faces.api.errors import error_body
from appliance.ids import new_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_COOKIE = b"cookie"

# What the player page may load: its own modules and stylesheet, its runtime calls and the content frame,
# all from this origin. The inline `<script type="application/json">` is data, which CSP does not block.
# With a separate content origin (appliance.faces.api.hosts) all of these are served on the content host, so
# `'self'` is still exactly right: the content origin (with a wildcard, the tenant's own), never the API's.
PLAYER_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; base-uri 'none'; form-action 'none'"
)

# `/static` (the player's modules and CSS): never sniffed as another type, never a document of its own.
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


@lru_cache(maxsize=8)
def learner_headers(frame_ancestors: tuple[str, ...]) -> Mapping[str, str]:
    """Headers of the player's runtime answers and the package files (content), for `frame_ancestors`.

    No CSP beyond `frame-ancestors`: course content needs inline scripts, eval and whatever else its
    authoring tool produced. The player frames the content, so the player's own origin (`'self'`) is
    always among the content's ancestors, whatever else the operator allows. Built once per setting
    (read-only; callers copy it, `{**headers, ...}`).
    """
    others = [a for a in frame_ancestors if a not in ("'self'", "'none'")]
    return MappingProxyType(_framing(("'self'", *others)))


@lru_cache(maxsize=8)
def player_page_headers(frame_ancestors: tuple[str, ...]) -> Mapping[str, str]:
    """Headers of the player page: its CSP, and framing by exactly the configured `frame_ancestors`."""
    headers = _framing(frame_ancestors)
    headers["Content-Security-Policy"] = f"{PLAYER_PAGE_POLICY}; {headers['Content-Security-Policy']}"
    return MappingProxyType(headers)


def _framing(ancestors: tuple[str, ...]) -> dict[str, str]:
    """`frame-ancestors`, with the X-Frame-Options that says the same where it can.

    X-Frame-Options has no form for a list of origins, and a browser that sees `SAMEORIGIN` refuses an
    LMS's frame even when the CSP admits it, so it is left out when other origins are allowed.
    """
    headers = {
        "Content-Security-Policy": f"frame-ancestors {' '.join(ancestors)}",
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if ancestors == ("'self'",):
        headers["X-Frame-Options"] = "SAMEORIGIN"
    elif ancestors == ("'none'",):
        headers["X-Frame-Options"] = "DENY"
    return headers


# The default (`frame_ancestors = ["'self'"]`): framed by the appliance's own pages only.
FRAME_HEADERS = learner_headers(("'self'",))


def request_header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of a request's headers as `max_request_header_bytes` counts it: every header but Cookie."""
    return sum(len(k) + len(v) + 4 for k, v in headers if k != _COOKIE)


def request_id(scope: Scope) -> str:
    """The request's id: the client's `X-Request-ID` when it is sane, else a new one; fixed per request."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        rid = incoming if _SAFE_ID.match(incoming) else new_request_id()
        state["request_id"] = rid
    return str(rid)


async def add_request_id(message: Message, scope: Scope) -> None:
    """`before_send` hook: stamp X-Request-ID on every HTTP response, errors and 404s included.

    A response that already carries it (the commit endpoint writes its own headers) is left alone.
    """
    if message["type"] != "http.response.start":
        return
    raw = message.get("headers") or []
    if any(name.lower() == b"x-request-id" for name, _ in raw):
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["X-Request-ID"] = request_id(scope)
    for name, value in scope.get("state", {}).get("extra_headers", {}).items():
        headers[name] = value


def console_path(path: str) -> bool:
    """Whether `path` is the admin console's (`/admin`, `/admin/...`): the one face that reads a cookie,
    its session cookie (appliance.faces.console.auth; Path=/admin, SameSite=Strict)."""
    return path == "/admin" or path.startswith("/admin/")


def header_limit_middleware(limit: int) -> Any:
    """An ASGI middleware factory refusing requests whose headers exceed `limit` bytes (413).

    The `Cookie` header is dropped from the request first (see the module's docstring): it counts for
    nothing and no route can come to depend on it. The one exception is the admin console's paths
    (`console_path`), which keep it for their session cookie; it still counts for nothing there.
    """

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raw = scope.get("headers", [])
                if not console_path(scope["path"]) and any(k == _COOKIE for k, _ in raw):
                    scope["headers"] = raw = [(k, v) for k, v in raw if k != _COOKIE]
                size = request_header_bytes(raw)
                if size > limit:
                    await _send_json(
                        send,
                        413,
                        error_body(
                            "PAYLOAD_TOO_LARGE",
                            "request headers too large",
                            {"limit_bytes": limit, "received_bytes": size},
                        ),
                        request_id(scope),
                    )
                    return
            await app(scope, receive, send)

        return middleware

    return factory


def response_headers_middleware(headers: dict[str, str]) -> Any:
    """An ASGI middleware factory adding `headers` to every response of the routes it wraps.

    For routers whose handlers the appliance does not write (static files, the OpenAPI routes); a
    header the response already has is kept.
    """
    encoded = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    present = {name.lower() for name, _ in message.get("headers") or []}
                    message["headers"] = [*(message.get("headers") or []), *(h for h in encoded if h[0] not in present)]
                await send(message)

            await app(scope, receive, send_with_headers)

        return middleware

    return factory


async def _send_json(send: Send, status: int, body: dict[str, Any], rid: str) -> None:
    payload = msgspec.json.encode(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
