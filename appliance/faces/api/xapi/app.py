"""The xAPI LRS face at `/xapi/`, served as plain ASGI before the Litestar application.

xAPI is its own protocol: its clients send HTTP Basic, an `X-Experience-API-Version` header on every
request, `multipart/mixed` bodies, ETag preconditions, and — in 1.0.3 — the alternate request syntax
(every method tunnelled through a form POST). Its answers are judged by status codes and headers, and
a store of statements in batches must not pay the framework's per-request machinery (as with learner
commits, appliance.faces.api.commit_endpoint). So the application's `__call__` (appliance.faces.app) hands every
`/xapi/` request here; this module turns it into one `XapiRequest` (alternate syntax unwrapped, version
negotiated, credential checked, its scope applied) and the resource's handler returns an
`XapiResponse`. CORS is open to any origin: credentials travel in the Authorization header, never in
cookies, and AUs on a content origin (cmi5) must reach the LRS.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from appliance.core.xapi.versions import negotiate
from appliance.errors import ApplianceError
from appliance.faces.api.errors import STATUS_BY_CODE, error_body
from appliance.faces.api.middleware import request_header_bytes, request_id
from appliance.faces.api.xapi import about, documents, resources, statements
from appliance.faces.api.xapi.messages import Handler, XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance
from appliance.logging_setup import bind_request, log_access, unbind_request
from appliance.services.lrs import credentials
from appliance.services.tenancy.ratelimit import AuthFailureLimiter

log = logging.getLogger("appliance.api.xapi")

PREFIX = "/xapi/"
MAX_BODY_BYTES = 64 * 1024 * 1024  # a batch of statements with attachments
FORM = "application/x-www-form-urlencoded"
# Form fields of the alternate request syntax that are request headers, not parameters.
ALTERNATE_HEADERS = frozenset(
    {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match", "if-none-match"}
)
ALLOW_HEADERS = (
    "Authorization, Content-Type, Content-Length, X-Experience-API-Version, If-Match, If-None-Match, "
    "X-Experience-API-Consistent-Through, Accept-Language, X-Request-ID"
)
EXPOSE_HEADERS = (
    "ETag, Last-Modified, Location, X-Experience-API-Version, X-Experience-API-Consistent-Through, X-Request-ID"
)
UNAUTHENTICATED = frozenset({"about"})  # the About resource answers anyone (xAPI 1.0.3 §7.7)
# What each resource answers, for the Allow header of a 405 (RFC 9110 §15.5.6) whichever handler refuses.
ALLOWED_METHODS = {
    "about": "GET, HEAD",
    "statements": "GET, HEAD, PUT, POST",
    "activities/state": "GET, HEAD, PUT, POST, DELETE",
    "activities/profile": "GET, HEAD, PUT, POST, DELETE",
    "agents/profile": "GET, HEAD, PUT, POST, DELETE",
    "activities": "GET, HEAD",
    "agents": "GET, HEAD",
}
DEFAULT_VERSION = "1.0.3"  # the answer's version when neither the request nor its client's history tells one
REMEMBERED_CLIENTS = 10_000  # Authorization headers whose last negotiated version is kept (then forgotten)


def _resources() -> dict[str, Handler]:
    """Resource path (under /xapi/) → handler."""
    return {
        "about": about.handle,
        "statements": statements.handle,
        "activities/state": documents.handle_state,
        "activities/profile": documents.handle_activity_profile,
        "agents/profile": documents.handle_agent_profile,
        "activities": resources.handle_activities,
        "agents": resources.handle_agents,
    }


def resource_of(path: str) -> str:
    """The resource a path under /xapi/ names, runs of slashes read as one: an LRS endpoint configured
    with its trailing slash (`…/xapi/`) makes some AU libraries ask for `/xapi//statements`."""
    if not path.startswith(PREFIX):
        return ""
    return "/".join(part for part in path[len(PREFIX) :].split("/") if part)


def xapi_path(path: str) -> bool:
    """Whether the application should hand this request to the LRS."""
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/")


class XapiApp:
    """Answers `/xapi/…` for the application's `__call__` (appliance.faces.app); started by the lifespan."""

    def __init__(self, header_limit: int) -> None:
        self.header_limit = header_limit
        self.instance: Instance | None = None
        self.auth_failures: AuthFailureLimiter | None = None
        self._handlers: dict[str, Handler] | None = None
        self._client_versions: dict[str, str] = {}  # hash of an Authorization header → its last version

    def start(self, inst: Instance, auth_failures: AuthFailureLimiter | None = None) -> None:
        """Serve `inst`; `auth_failures` is the API's limiter of failed authentications per address
        (the LRS's Basic credentials count with the API's keys and tokens: one budget per address)."""
        self.instance = inst
        self.auth_failures = auth_failures
        self._handlers = _resources()

    def stop(self) -> None:
        self.instance = None

    def ready(self) -> bool:
        """Whether the lifespan has started the instance."""
        return self.instance is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        rid = request_id(scope)
        bound = bind_request(rid)
        status = 500
        method = scope["method"]
        try:
            status, payload, headers = await self._answer(scope, receive, rid)
            headers.update(_cors(scope))
            headers["X-Request-ID"] = rid
            raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
            if status not in (204, 304):  # RFC 9110 §8.6: no Content-Length on a 204 (nor a 304's of its own)
                raw.append((b"content-length", str(len(payload)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" or status == 204 else payload})
        finally:
            log_access(method, scope["path"], status, started)
            unbind_request(bound)

    async def _answer(self, scope: dict[str, Any], receive: Any, rid: str) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) of the request: the handler's answer, or an error in the contract's form."""
        version = self._client_version(scope)
        resource = resource_of(scope["path"])
        try:
            if scope["method"] == "OPTIONS":  # a CORS preflight; every answer names its version, this one too
                return 204, b"", {"Access-Control-Max-Age": "600", "X-Experience-API-Version": version}
            size = request_header_bytes(scope["headers"])
            if size > self.header_limit:
                raise XapiError(413, "request headers too large", {"limit_bytes": self.header_limit})
            req = parse_request(scope, await _read_body(receive), default_version=version)
            version = req.version
            assert self.instance is not None and self._handlers is not None  # ready() was asked first
            handler = self._handlers.get(req.resource)
            if handler is None:
                raise XapiError(404, f"no xAPI resource {req.resource!r}")
            if req.resource not in UNAUTHENTICATED:
                self._authorize(scope, req)
                self._remember_version(req)
            answer = await handler(self.instance, req)
            return answer.status, *_encode_answer(answer, version)
        except XapiError as exc:
            headers = {**_base_headers(version, exc.status), **exc.headers}
            if exc.status == 401 and any(k == b"origin" for k, _ in scope["headers"]):
                # A browser's script (a cmi5 AU) handles its 401 itself: a challenge would make the browser
                # open a credentials prompt and hold the request (a headless one forever).
                headers.pop("WWW-Authenticate", None)
            if exc.status == 405 and resource in ALLOWED_METHODS:
                headers.setdefault("Allow", ALLOWED_METHODS[resource])
            return exc.status, _error(exc.status, exc.message, exc.details), headers
        except ApplianceError as exc:
            code = STATUS_BY_CODE.get(exc.code, 500)
            headers = _base_headers(version, code)
            if exc.code == "RATE_LIMITED" and "retry_after" in exc.details:
                headers["Retry-After"] = str(exc.details["retry_after"])
            return code, msgspec.json.encode(error_body(exc.code, exc.message, exc.details)), headers
        except Exception:
            log.exception("unhandled error on %s %s (request %s)", scope["method"], scope["path"], rid)
            body = msgspec.json.encode(error_body("INTERNAL_ERROR", "internal server error", {"request_id": rid}))
            return 500, body, _base_headers(version, 500)

    def _authorize(self, scope: dict[str, Any], req: XapiRequest) -> None:
        """`authorize`, behind the API's block of addresses that failed authentication too often: a
        blocked address is refused (429) before its credential is looked at, and a Basic credential
        that does not verify counts against its address, as a bad API key does (docs/rate-limits.md)."""
        assert self.instance is not None
        limiter, now = self.auth_failures, self.instance.clock.now()
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if limiter is not None:
            wait = limiter.retry_after(address, now)
            if wait is not None:
                raise XapiError(
                    429,
                    "too many failed authentication attempts from this address; try again later",
                    {"retry_after": wait, "scope": "address"},
                    {"Retry-After": str(wait)},
                )
        try:
            authorize(self.instance, req)
        except XapiError as exc:
            if exc.status == 401 and limiter is not None and req.headers.get("authorization"):
                limiter.failed(address, now)
            raise

    def _client_version(self, scope: dict[str, Any]) -> str:
        """The version this request's client last negotiated (by its Authorization header), else the default.

        A request without `X-Experience-API-Version` is refused (400), and the refusal must itself carry
        the header: a 1.0.3 client expects "1.0.3" there, a 2.0 client "2.0.0" (both conformance suites
        check it). The request does not say which it is, but the client's earlier requests did; the header
        is keyed by a hash of the whole Authorization value, so only the holder of the secret is answered
        from that client's history.
        """
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if authorization is None:
            return DEFAULT_VERSION
        return self._client_versions.get(_client_key(authorization), DEFAULT_VERSION)

    def _remember_version(self, req: XapiRequest) -> None:
        """Note an authenticated request's negotiated version for its client (see _client_version)."""
        authorization = req.headers.get("authorization")
        if authorization is None or req.alternate:
            return
        if len(self._client_versions) >= REMEMBERED_CLIENTS:
            self._client_versions.clear()
        self._client_versions[_client_key(authorization.encode("latin-1"))] = req.version


def _client_key(authorization: bytes) -> str:
    return hashlib.sha256(authorization).hexdigest()


def parse_request(scope: dict[str, Any], body: bytes, *, default_version: str = DEFAULT_VERSION) -> XapiRequest:
    """The request with the alternate syntax unwrapped and its version negotiated, or XapiError (400).

    `default_version` answers About when the request names no version (About needs none).
    """
    resource = resource_of(scope["path"])
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    method = scope["method"]
    if "method" in params and method != "POST":
        raise XapiError(400, "the alternate request syntax ('method' parameter) is only a POST")
    alternate = method == "POST" and "method" in params
    if alternate:
        method, params, headers, body = _unwrap_alternate(params, headers, body)
    raw_version = headers.get("x-experience-api-version")
    version = negotiate(raw_version)
    if version is None:
        if resource in UNAUTHENTICATED:  # About answers whatever the version header says (or lacks)
            version = default_version
        elif raw_version is None:
            raise XapiError(400, "the X-Experience-API-Version header is required")
        else:
            raise XapiError(
                400, f"unsupported X-Experience-API-Version {raw_version!r}", {"supported": ["1.0.3", "2.0.0"]}
            )
    if alternate and version.startswith("2."):
        raise XapiError(400, "xAPI 2.0 has no alternate request syntax: send the method and headers as they are")
    return XapiRequest(method, resource, params, headers, body, version, alternate=alternate)


def _unwrap_alternate(
    params: dict[str, str], headers: dict[str, str], body: bytes
) -> tuple[str, dict[str, str], dict[str, str], bytes]:
    """xAPI 1.0.3's alternate request syntax: `POST ?method=X` with the headers and body in a form."""
    if set(params) != {"method"}:
        raise XapiError(400, "the alternate request syntax takes no query parameter but 'method'")
    method = params["method"].upper()
    if method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise XapiError(400, f"unsupported method {params['method']!r} in the alternate request syntax")
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != FORM:
        raise XapiError(400, f"the alternate request syntax needs Content-Type: {FORM}")
    try:
        form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise XapiError(400, "the alternate request syntax's form is not valid") from None
    new_headers = {k: v for k, v in headers.items() if k not in ("content-type", "content-length")}
    new_params: dict[str, str] = {}
    content = b""
    for name, value in form:
        lowered = name.lower()
        if lowered in ALTERNATE_HEADERS:
            new_headers[lowered] = value
        elif name == "content":
            content = value.encode("utf-8")
        else:
            new_params[name] = value
    return method, new_params, new_headers, content


def authorize(inst: Instance, req: XapiRequest) -> None:
    """Authenticate the request's Basic credential and apply its scope (403 when it does not admit the method)."""
    if _authorize_cmi5(inst, req):
        return
    try:
        req.tenant, req.credential = credentials.authenticate(inst, req.headers.get("authorization"))
    except ApplianceError as exc:
        if exc.code == "UNAUTHORIZED":
            raise XapiError(401, exc.message) from None
        raise
    if not req.credential.allows(req.method):
        raise XapiError(
            403,
            f"this credential's scope ({req.credential.scope}) does not allow {req.method}",
            {"scope": req.credential.scope},
        )


def _authorize_cmi5(inst: Instance, req: XapiRequest) -> bool:
    """A cmi5 AU session's auth token (appliance.services.learning.cmi5_registrations): its grant and its limits."""
    from appliance.services.learning import (
        cmi5_registrations,  # late: it reaches the LRS store, which imports this module
    )

    try:
        grant = cmi5_registrations.authenticate(inst, req.headers.get("authorization"))
        if grant is None:
            return False
        cmi5_registrations.restrict(grant, req.method, req.resource, req.params, req.content_type, req.body)
    except cmi5_registrations.Denied as exc:
        raise XapiError(exc.status, exc.message) from None
    req.tenant, req.credential, req.cmi5 = grant.tenant, grant.credential, grant
    return True


def _base_headers(version: str, status: int) -> dict[str, str]:
    headers = {"X-Experience-API-Version": version, "Content-Type": "application/json"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="xAPI"'
    return headers


def _encode_answer(answer: XapiResponse, version: str) -> tuple[bytes, dict[str, str]]:
    headers = {"X-Experience-API-Version": version, **answer.headers}
    payload = answer.body if isinstance(answer.body, bytes) else msgspec.json.encode(answer.body)
    if answer.content_type is not None and (payload or answer.status != 204):
        headers.setdefault("Content-Type", answer.content_type)
    return payload, headers


# The `code` of an xAPI error body by status: the specification fixes the statuses (400 where the rest of the
# API says 422, 409/412 for documents), so the codes follow them (docs/errors.md, "xAPI LRS errors").
XAPI_ERROR_CODES = {
    400: "VALIDATION_FAILED",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


def xapi_error_code(status: int) -> str:
    """The error body's `code` for an xAPI error status (`HTTP_<status>` for one not listed)."""
    return XAPI_ERROR_CODES.get(status, f"HTTP_{status}")


def _error(status: int, message: str, details: dict[str, Any]) -> bytes:
    return msgspec.json.encode(error_body(xapi_error_code(status), message, details))


def _cors(scope: dict[str, Any]) -> dict[str, str]:
    """CORS for any origin: the credential is a header, never a cookie (see the module's docstring)."""
    origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": ALLOW_HEADERS,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }


async def _read_body(receive: Any) -> bytes:
    """The whole request body, refusing more than MAX_BODY_BYTES (413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise XapiError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise XapiError(413, "the request body is too large", {"limit_bytes": MAX_BODY_BYTES})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
