"""Host routing for a separate content origin (the `content_origin` setting, appliance.services.library.origins).

With the setting on, every request is first sorted by its `Host` name, before the commit endpoint,
the xAPI face or the framework see it (`Appliance.__call__`, appliance.faces.app):

- **A content host** (the configured name, or with a wildcard any name under it) serves only the
  player: `/player/{token}` with its runtime calls (`launch`, `commit`, `navigate`, `state`) and its
  package files, `/static` (the player's modules and stylesheet), and a dispatch's relay
  `/dispatch/{token}/...` (appliance.faces.api.dispatch), which frames the player and reads its end, so it
  shares the player's origin. Everything else — the API, its docs and schema, the xAPI face —
  answers `404 NOT_FOUND` there. With a wildcard, a launch token (and a dispatch token) is served
  only on its own tenant's label (`appliance.services.library.origins.tenant_label`): a token of tenant A sent to
  tenant B's host is not found, so A's player never runs on an origin that B's courses share.
- **Any other host** is the API's and serves no player: the player page `/player/{token}` redirects
  (302) to the same path on the token's content origin (launch links issued before the setting was
  turned on keep working), every other `/player/...` path and `/static` are not found.

Why the runtime calls are served on the content host rather than on the API origin through CORS: the
launch token in the path is the runtime's only credential, and it lives in the player page on the
content origin whichever way the calls go, so CORS on the API origin would protect nothing more while
it would put learner routes back on the API origin, open them to cross-origin callers, and add a
preflight before the hot path's commits. Served on the content host, the API origin answers no course
script at all (it sends no CORS headers, so a course's cross-origin reads are refused), and the player
page's CSP can keep `connect-src 'self'` and `frame-src 'self'`: exactly its own origin, which is its
tenant's (docs/security.md, "Course content and the player").

The tenant a token names is read here without checking the token's signature (`claimed_tenant`): the
route checks the token as it always does; this only decides which host may answer it. The cost on a
commit is finding the Host header and two cached lookups (the host's kind, the token's tenant): about
2 µs, against the ~220 µs of server CPU a commit takes (bench/README.md, "Runtime"); without the
setting, one attribute test in `Appliance.__call__`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import msgspec

from appliance.faces.api.errors import error_body
from appliance.faces.api.middleware import request_id
from appliance.logging_setup import log_access, loggable_path
from appliance.services.library.origins import ContentOrigin, host_name, parse_content_origin, tenant_label

PLAYER = "/player/"
STATIC = "/static/"
DISPATCH = "/dispatch/"  # a dispatch's relay frames the player, so it is served where the player is
MAX_TOKEN_CHARS = 1024  # an appliance token is ~130; a longer one is never decoded (nor cached)
_HOST = b"host"
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")  # base64url payload and signature
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass(frozen=True)
class Answer:
    """A response the router gives instead of passing the request on: a 404 in the contract's format,
    or the redirect of an API-host player page to its content origin."""

    status: int
    body: bytes
    location: str | None = None


_CONTENT_ONLY = Answer(
    404,
    msgspec.json.encode(error_body("NOT_FOUND", "not found: this host serves the player and course content only", {})),
)
_WRONG_HOST = Answer(404, msgspec.json.encode(error_body("NOT_FOUND", "no such launch", {})))
_NO_PLAYER = Answer(
    404,
    msgspec.json.encode(error_body("NOT_FOUND", "not found: the player is served on the content origin", {})),
)


@lru_cache(maxsize=4096)
def claimed_tenant(token: str) -> str | None:
    """The tenant id a launch token's payload names (appliance.services.learning.launch_tokens' format), unverified;
    None when it does not decode."""
    payload = token.partition(".")[0]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    tenant = data.get("t") if isinstance(data, dict) else None
    return tenant if isinstance(tenant, str) else None


def _token_and_rest(path: str) -> tuple[str, str]:
    """(`token`, `/rest`) of `/player/<token>/rest`."""
    token, sep, rest = path[len(PLAYER) :].partition("/")
    return token, sep + rest


def _tenant_of(token: str) -> str | None:
    return claimed_tenant(token) if 0 < len(token) <= MAX_TOKEN_CHARS else None


class HostRouter:
    """Sorts requests between the content host(s) and the API host (see the module's docstring)."""

    def __init__(self, origin: ContentOrigin, public_url: str | None = None) -> None:
        self.origin = origin
        if public_url:
            api_host = host_name(urlsplit(public_url).netloc)
            if origin.classify(api_host)[0]:
                raise ValueError(
                    f"content_origin: public_url's host {api_host!r} is a content host; the API needs a name of its own"
                )
        # Host headers repeat (a browser sends the same few), so each is sorted once; bounded, since
        # a client may send any.
        self._classify = lru_cache(maxsize=256)(self._classify_host)

    def _classify_host(self, host: bytes) -> tuple[bool, str | None]:
        return self.origin.classify(host_name(host.decode("latin-1")))

    def answer_for(self, scope: dict[str, Any]) -> Answer | None:
        """What to answer instead of the application, or None to pass the request on."""
        host = next((v for k, v in scope["headers"] if k == _HOST), b"")
        content, label = self._classify(host)
        path: str = scope["path"]
        if content:
            return self._on_content_host(path, label)
        if path.startswith(PLAYER):
            return self._player_on_api_host(scope["method"], path)
        if path.startswith(STATIC) or path == "/static":
            return _NO_PLAYER
        return None

    def _on_content_host(self, path: str, label: str | None) -> Answer | None:
        if path.startswith(STATIC):
            return None
        player = path.startswith(PLAYER)
        if not player and not path.startswith(DISPATCH):
            return _CONTENT_ONLY
        if not self.origin.wildcard:
            return None
        # A dispatch token is `<tenant>.<dispatch>.<signature>` (appliance.services.lms.dispatch), a launch token's
        # payload names its tenant: either is served on its own tenant's label only.
        tenant = _tenant_of(_token_and_rest(path)[0]) if player else path[len(DISPATCH) :].partition(".")[0]
        if tenant is None or label is None or tenant_label(tenant) != label:
            return _WRONG_HOST
        return None

    def _player_on_api_host(self, method: str, path: str) -> Answer:
        token, rest = _token_and_rest(path)
        tenant = _tenant_of(token)
        # Only a token of a launch token's characters goes into the Location header (the path is decoded).
        if method in ("GET", "HEAD") and rest in ("", "/") and tenant is not None and _TOKEN_CHARS.match(token):
            return Answer(302, b"", f"{self.origin.url_for(tenant)}{PLAYER}{token}")
        return _NO_PLAYER

    async def send(self, scope: dict[str, Any], send: Any, answer: Answer) -> None:
        """Send `answer`, with the request id and the access line every request gets."""
        started = time.perf_counter()
        headers = [
            *_HEADERS,
            (b"content-length", str(len(answer.body)).encode()),
            (b"x-request-id", request_id(scope).encode("latin-1")),
        ]
        if answer.location is not None:
            headers.append((b"location", answer.location.encode("latin-1")))
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            log_access(scope["method"], loggable_path(scope["path"]), answer.status, started)


def host_router(content_origin: str | None, public_url: str | None) -> HostRouter | None:
    """The router for the settings, or None in the default single-origin mode (no routing at all)."""
    if content_origin is None:
        return None
    return HostRouter(parse_content_origin(content_origin), public_url)
