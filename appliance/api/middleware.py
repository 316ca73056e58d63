"""Cross-cutting HTTP concerns: the request id on every response, the request header size cap, and
the framing headers of every learner route."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.api.errors import error_body
from appliance.ids import new_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# The player and everything it calls: framed by the appliance's own pages only, nothing more.
FRAME_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


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


def header_limit_middleware(limit: int) -> Any:
    """An ASGI middleware factory refusing requests whose headers exceed `limit` bytes (413)."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers", []))
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
