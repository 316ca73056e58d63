"""`POST /player/{token}/commit` served as plain ASGI, before the Litestar application.

The commit is the one request a course makes over and over (every Commit, Terminate, timer and
`pagehide`), so it skips the framework's per-request machinery: routing, the signature model,
dependency injection, guards, response objects, middleware and `before_send` hooks cost about as much
as the commit's own transaction (bench/README.md, "Runtime"). The application's `__call__`
(appliance.faces.app) hands commit requests to `CommitEndpoint` before anything else. What it keeps is
everything a learner route promises: the launch token checked once (signature, expiry, tenant active),
the learner rate limits (per session and per tenant), the header and body size limits (Cookie not
counted, as everywhere: appliance.faces.api.middleware), the contract's error bodies, the learner routes'
framing headers, the request id and the access line. Every other
request — including any other method on this path — goes on to Litestar, and the documented route in
`appliance.faces.api.player` answers the same way through the same `handle` function.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from appliance.errors import ApplianceError, PayloadTooLarge, ValidationFailed
from appliance.faces.api.deps import limit_learner
from appliance.faces.api.errors import STATUS_BY_CODE, error_body
from appliance.faces.api.middleware import learner_headers, request_header_bytes, request_id
from appliance.instance import Instance
from appliance.logging_setup import bind_request, log_access, unbind_request
from appliance.services.learning import runtime
from appliance.services.learning.launch_tokens import open_launch
from appliance.services.learning.player_requests import CommitIn
from appliance.services.tenancy.ratelimit import LearnerLimits

log = logging.getLogger("appliance.api")

PREFIX = "/player/"
SUFFIX = "/commit"
LOGGED_PATH = PREFIX + "…" + SUFFIX  # launch tokens are never logged (logging_setup.loggable_path)
MAX_BODY_BYTES = 10 * 1024 * 1024  # a batch of changes; the largest single value (suspend_data) is 64k chars

_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_decoder = msgspec.json.Decoder(CommitIn)
_encode = msgspec.json.encode


def commit_token(path: str) -> str | None:
    """The launch token of a commit path `/player/<token>/commit`, else None."""
    if not path.startswith(PREFIX) or not path.endswith(SUFFIX):
        return None
    token = path[len(PREFIX) : -len(SUFFIX)]
    return token if token and "/" not in token else None


def decode_commit(body: bytes) -> CommitIn:
    """The commit body (application/json, or the text/plain of a `sendBeacon`), or VALIDATION_ERROR."""
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$.")
        field = at[:-1] if at.endswith("`") else ""  # msgspec names the field as `$.client_id`
        raise ValidationFailed(f"invalid commit: {exc}", {"errors": [{"field": field, "message": message}]}) from None
    except msgspec.DecodeError:
        raise ValidationFailed(
            "the body is not valid JSON", {"errors": [{"field": "", "message": "invalid JSON"}]}
        ) from None


async def handle(
    inst: Instance, token: str, body: bytes, learner_limiter: LearnerLimits | None
) -> dict[str, Any] | msgspec.Raw:
    """The commit, start to end: decode, check the token, store. Raises ApplianceError for the client.
    A Terminate's answer comes already encoded (`msgspec.Raw`, encoded off the event loop)."""
    data = decode_commit(body)
    tenant_id, session_id, ttl = open_launch(inst, token)
    if learner_limiter is not None:
        limit_learner(learner_limiter, inst, tenant_id, session_id)
    return await runtime.commit_async(inst, tenant_id, session_id, data, ttl)


class CommitEndpoint:
    """Answers `POST /player/{token}/commit` for the application's `__call__` (appliance.faces.app).

    It writes the request's access line itself and binds the request id for the log lines written
    while it runs, as `access_log_middleware` does for every other request. The application's lifespan
    hands it the instance and the learner limiter (`start`) and takes them back (`stop`): until then
    the framework answers.
    """

    def __init__(self, header_limit: int, frame_ancestors: tuple[str, ...] = ("'self'",)) -> None:
        self.header_limit = header_limit
        framing = learner_headers(frame_ancestors)
        self.headers = [*_HEADERS, *((name.lower().encode(), value.encode()) for name, value in framing.items())]
        self.instance: Instance | None = None
        self.learner_limiter: LearnerLimits | None = None

    def start(self, inst: Instance, learner_limiter: LearnerLimits) -> None:
        self.instance, self.learner_limiter = inst, learner_limiter

    def stop(self) -> None:
        self.instance = self.learner_limiter = None

    def ready(self) -> bool:
        """Whether the lifespan has started the instance."""
        return self.instance is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any, token: str) -> None:
        started = time.perf_counter()
        rid = request_id(scope)
        bound = bind_request(rid)
        status = 500
        try:
            status, payload, extra = await self._answer(scope, receive, token, rid)
            headers = [
                *self.headers,
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", rid.encode("latin-1")),
                *extra,
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        finally:
            log_access("POST", LOGGED_PATH, status, started)
            unbind_request(bound)

    async def _answer(
        self, scope: dict[str, Any], receive: Any, token: str, rid: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """(status, body, extra headers) of the commit: the result, or the contract's error."""
        try:
            size = request_header_bytes(scope["headers"])
            if size > self.header_limit:
                raise PayloadTooLarge(
                    "request headers too large", {"limit_bytes": self.header_limit, "received_bytes": size}
                )
            body = await _read_body(receive)
            assert self.instance is not None  # ready() was asked first
            return 200, _encode(await handle(self.instance, token, body, self.learner_limiter)), []
        except ApplianceError as exc:
            extra = []
            if exc.code == "RATE_LIMITED" and "retry_after" in exc.details:
                extra.append((b"retry-after", str(exc.details["retry_after"]).encode()))
            return STATUS_BY_CODE.get(exc.code, 500), _encode(error_body(exc.code, exc.message, exc.details)), extra
        except Exception:
            log.exception("unhandled error on POST %s (request %s)", LOGGED_PATH, rid)
            return 500, _encode(error_body("INTERNAL_ERROR", "internal server error", {"request_id": rid})), []


async def _read_body(receive: Any) -> bytes:
    """The whole request body, refusing more than MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationFailed("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge("the commit body is too large", {"limit_bytes": MAX_BODY_BYTES})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
