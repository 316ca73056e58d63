"""A small but real LTI 1.3 platform for the tests: what Moodle or Canvas does, on 127.0.0.1.

It has its own RSA keys and serves, from a thread (`LtiPlatform.start`):

- `/jwks`: its public keys (the tool verifies id_tokens with them);
- `/course?hint=...`: a course page framing the tool: an iframe on the tool's OIDC login initiation URL;
- `/auth`: the OIDC authorisation endpoint. It checks the tool's request (client id, the registered
  redirect URI, `response_type=id_token`, `response_mode=form_post`, `scope=openid`, a nonce) and answers
  with a page that auto-posts a freshly signed id_token and the state to the tool's launch URL;
- `/token`: the OAuth 2 token endpoint, which verifies the tool's signed client assertion against the
  tool's JWKS before it issues a bearer token;
- `/lineitems` (GET by `resource_link_id`, POST to create) and `/lineitems/{n}/scores`: AGS, recording
  every line item and score it receives (only with a token it issued, and the right media types);
- `/memberships?page=n`: Names and Roles 2.0, the course's members `members_page` at a time, each page
  pointing at the next by a `Link: <...>; rel="next"` header (only with a token it issued for the
  membership scope, and the membership container media type asked for);
- `/deep-link-return`: verifies the tool's signed LtiDeepLinkingResponse (signature against the tool's
  JWKS, iss, aud, deployment, message type, version) and records its content items as new links.

`id_token(...)` signs claims with the platform's key, or a forger's, for the refusal tests.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
MEMBERSHIP_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@dataclass
class Message:
    """What the platform will launch for a `lti_message_hint`."""

    kind: str  # "LtiResourceLinkRequest" | "LtiDeepLinkingRequest"
    user: str
    link_id: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    roles: list[str] = field(default_factory=lambda: [LEARNER])
    name: str = "Ada Lovelace"


class LtiPlatform:
    """The platform, its keys, its recorded traffic, and the tool it has registered."""

    def __init__(self, client_id: str = "tool-client-1", deployment_id: str = "deployment-1") -> None:
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "platform-key-1"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.internal = f"http://127.0.0.1:{self.port}"  # what the tool's server calls
        self.browser = f"http://localhost:{self.port}"  # what the learner's browser sees: another site
        self.issuer = self.browser
        self.tool_login = self.tool_launch = self.tool_jwks = ""
        self.messages: dict[str, Message] = {}
        self.id_tokens: list[dict[str, str]] = []  # every id_token the auth endpoint issued, with its state
        self.auth_errors: list[str] = []
        self.tokens: dict[str, list[str]] = {}  # access token -> scopes
        self.token_requests: list[dict[str, Any]] = []
        self.lineitems: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []
        self.deep_link_responses: list[dict[str, Any]] = []
        self.deep_link_errors: list[str] = []
        self.leeway = 900  # seconds of clock difference allowed (the route tests move the tool's clock on)
        self.fail_scores = 0  # answer this many score posts with 503 (the tool must retry)
        self.nrps = True  # offer Names and Roles in resource link launches
        self.members: list[dict[str, Any]] = [
            {"user_id": f"user-{n}", "name": f"Member {n}", "email": f"member{n}@example.org", "roles": [LEARNER]}
            for n in range(1, 6)
        ] + [{"user_id": "teacher-1", "name": "Grace Hopper", "roles": [INSTRUCTOR], "status": "Active"}]
        self.members_page = 2
        self.next_base = ""  # where the next page links point (empty: this platform)
        self.membership_requests: list[dict[str, str]] = []
        self.fail_members = 0  # answer this many membership requests with 503
        self.tool_keys: Callable[[], dict[str, Any]] | None = None  # the tool's JWKS without HTTP (route tests)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> LtiPlatform:
        self._thread = threading.Thread(target=self.server.serve_forever, name="lti-platform", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def register_tool(self, login_url: str, launch_url: str, jwks_url: str) -> None:
        """What an LMS administrator pastes in: the tool's three URLs."""
        self.tool_login, self.tool_launch, self.tool_jwks = login_url, launch_url, jwks_url

    def registration(self) -> dict[str, Any]:
        """What the tool's administrator pastes in: this platform's identity and URLs."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "deployment_ids": [self.deployment_id],
            "jwks_url": f"{self.internal}/jwks",
            "auth_url": f"{self.browser}/auth",
            "token_url": f"{self.internal}/token",
            "name": "Test platform",
        }

    # -- links ----------------------------------------------------------------------------------------

    def course_page(self, message: Message) -> str:
        """The URL of a course page that launches `message` in the tool's iframe."""
        hint = secrets.token_urlsafe(8)
        self.messages[hint] = message
        return f"{self.browser}/course?hint={hint}"

    def login_query(self, hint: str) -> dict[str, str]:
        """The third-party login initiation parameters for a message hint."""
        message = self.messages[hint]
        return {
            "iss": self.issuer,
            "login_hint": message.user,
            "target_link_uri": self.tool_launch,
            "lti_message_hint": hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    # -- id_tokens ------------------------------------------------------------------------------------

    def claims(self, message: Message, nonce: str, now: float | None = None) -> dict[str, Any]:
        """The id_token claims of a launch (LTI Core 1.3 §5.3, Deep Linking 2.0 §4.4)."""
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": message.user,
            "iat": issued,
            "exp": issued + 300,
            "nonce": nonce,
            "name": message.name,
            LTI + "message_type": message.kind,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "roles": message.roles,
            LTI + "context": {"id": "course-101", "title": "Golf 101"},
        }
        if message.kind == "LtiResourceLinkRequest":
            claims[LTI + "target_link_uri"] = self.tool_launch
            claims[LTI + "resource_link"] = {"id": message.link_id, "title": "A course"}
            claims[LTI + "custom"] = message.custom
            claims[AGS] = {"scope": SCOPES, "lineitems": f"{self.internal}/lineitems"}
            if self.nrps:
                claims[NRPS] = {"context_memberships_url": f"{self.internal}/memberships", "service_versions": ["2.0"]}
        else:
            claims[LTI + "target_link_uri"] = self.tool_launch
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": f"{self.browser}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque-platform-data",
            }
        return claims

    def id_token(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """Sign claims with the platform's key (or another, for a forgery) under `kid`."""
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    # -- the tool's signatures --------------------------------------------------------------------------

    def verify_tool_jwt(self, token: str, audience: str) -> dict[str, Any]:
        """Verify a JWT the tool signed, against the tool's published JWKS (fetched now)."""
        document = self.tool_keys() if self.tool_keys else httpx.get(self.tool_jwks, trust_env=False, timeout=5).json()
        keyset = jwt.PyJWKSet.from_dict(document)
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(k for k in keyset.keys if k.key_id == kid)
        return dict(
            jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=audience,
                options={"require": ["exp", "iat"]},
                leeway=self.leeway,
            )
        )


def _handler(platform: LtiPlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        # -- plumbing --
        def _send(
            self,
            status: int,
            body: bytes | str,
            media_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("content-type", media_type)
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, value: Any, media_type: str = "application/json") -> None:
            self._send(status, json.dumps(value), media_type)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _form(self) -> dict[str, str]:
            return {k: v[0] for k, v in parse_qs(self._body().decode()).items()}

        def _bearer(self) -> list[str] | None:
            auth = self.headers.get("authorization", "")
            return platform.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None

        # -- routes --
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/jwks":
                self._json(200, platform.jwks())
            elif url.path == "/course":
                login = f"{platform.tool_login}?{urlencode(platform.login_query(query['hint']))}"
                page = (
                    "<!DOCTYPE html><html><head><title>Golf 101</title></head><body><h1>Golf 101</h1>"
                    f'<iframe id="tool" name="tool" src="{html.escape(login, quote=True)}" '
                    'style="width:1000px;height:700px" allow="fullscreen"></iframe></body></html>'
                )
                self._send(200, page, "text/html")
            elif url.path == "/auth":
                self._auth(query)
            elif url.path == "/memberships":
                self._memberships(query)
            elif url.path == "/lineitems":
                if self._bearer() is None:
                    return self._json(401, {"error": "no token"})
                with platform._lock:
                    found = [i for i in platform.lineitems if i.get("resourceLinkId") == query.get("resource_link_id")]
                self._json(200, found, "application/vnd.ims.lis.v2.lineitemcontainer+json")
            else:
                self._json(404, {"error": "not found"})
            return None

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/token":
                self._token(self._form())
            elif url.path == "/lineitems":
                self._create_lineitem()
            elif url.path.startswith("/lineitems/") and url.path.endswith("/scores"):
                self._score(url.path)
            elif url.path == "/deep-link-return":
                self._deep_link_return(self._form())
            else:
                self._json(404, {"error": "not found"})

        def _auth(self, query: dict[str, str]) -> None:
            problems = [
                name
                for name, ok in (
                    ("scope", query.get("scope") == "openid"),
                    ("response_type", query.get("response_type") == "id_token"),
                    ("response_mode", query.get("response_mode") == "form_post"),
                    ("prompt", query.get("prompt") == "none"),
                    ("client_id", query.get("client_id") == platform.client_id),
                    ("redirect_uri", query.get("redirect_uri") == platform.tool_launch),
                    ("nonce", bool(query.get("nonce"))),
                    ("state", bool(query.get("state"))),
                    ("lti_message_hint", query.get("lti_message_hint") in platform.messages),
                )
                if not ok
            ]
            if problems:
                platform.auth_errors.append(",".join(problems))
                return self._json(400, {"error": "invalid_request", "fields": problems})
            message = platform.messages[query["lti_message_hint"]]
            if query.get("login_hint") != message.user:
                return self._json(400, {"error": "login_required"})
            token = platform.id_token(platform.claims(message, query["nonce"]))
            platform.id_tokens.append({"id_token": token, "state": query["state"]})
            page = (
                "<!DOCTYPE html><html><body>"
                f'<form id="f" method="post" action="{html.escape(query["redirect_uri"], quote=True)}">'
                f'<input type="hidden" name="id_token" value="{token}">'
                f'<input type="hidden" name="state" value="{html.escape(query["state"], quote=True)}"></form>'
                '<script>document.getElementById("f").submit()</script></body></html>'
            )
            self._send(200, page, "text/html")
            return None

        def _token(self, form: dict[str, str]) -> None:
            platform.token_requests.append(form)
            if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                return self._json(400, {"error": "unsupported_grant_type"})
            try:
                claims = platform.verify_tool_jwt(form.get("client_assertion", ""), f"{platform.internal}/token")
            except Exception as exc:  # any failure to verify is the OAuth error
                return self._json(401, {"error": "invalid_client", "error_description": str(exc)})
            if (
                claims.get("iss") != platform.client_id
                or claims.get("sub") != platform.client_id
                or not claims.get("jti")
            ):
                return self._json(401, {"error": "invalid_client"})
            scopes = [s for s in form.get("scope", "").split() if s in (*SCOPES, MEMBERSHIP_SCOPE)]
            token = secrets.token_urlsafe(16)
            platform.tokens[token] = scopes
            self._json(
                200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(scopes)}
            )
            return None

        def _memberships(self, query: dict[str, str]) -> None:
            scopes = self._bearer()
            platform.membership_requests.append({**query, "accept": self.headers.get("accept", "")})
            if scopes is None or MEMBERSHIP_SCOPE not in scopes:
                return self._json(401, {"error": "no membership scope"})
            if self.headers.get("accept") != MEMBERSHIP_TYPE:
                return self._json(406, {"error": "media type"})
            if platform.fail_members > 0:
                platform.fail_members -= 1
                return self._json(503, {"error": "try later"})
            page, size = int(query.get("page", "1")), platform.members_page
            members = platform.members[(page - 1) * size : page * size]
            headers = {}
            if page * size < len(platform.members):
                base = platform.next_base or platform.internal
                headers["link"] = f'<{base}/memberships?page={page + 1}>; rel="next"'
            body = {
                "id": f"{platform.internal}/memberships",
                "context": {"id": "course-101", "label": "GOLF101", "title": "Golf 101"},
                "members": members,
            }
            self._send(200, json.dumps(body), MEMBERSHIP_TYPE, headers)
            return None

        def _create_lineitem(self) -> None:
            scopes = self._bearer()
            if scopes is None or SCOPES[0] not in scopes:
                return self._json(401, {"error": "no lineitem scope"})
            if self.headers.get("content-type") != "application/vnd.ims.lis.v2.lineitem+json":
                return self._json(415, {"error": "media type"})
            item = json.loads(self._body())
            with platform._lock:
                item["id"] = f"{platform.internal}/lineitems/{len(platform.lineitems) + 1}"
                platform.lineitems.append(item)
            self._json(201, item, "application/vnd.ims.lis.v2.lineitem+json")
            return None

        def _score(self, path: str) -> None:
            scopes = self._bearer()
            if scopes is None or SCOPES[1] not in scopes:
                return self._json(401, {"error": "no score scope"})
            if self.headers.get("content-type") != "application/vnd.ims.lis.v1.score+json":
                return self._json(415, {"error": "media type"})
            lineitem = f"{platform.internal}{path.removesuffix('/scores')}"
            with platform._lock:
                known = any(i["id"] == lineitem for i in platform.lineitems)
                if known and platform.fail_scores > 0:
                    platform.fail_scores -= 1
                    return self._json(503, {"error": "try later"})
                if not known:
                    return self._json(404, {"error": "no such line item"})
                platform.scores.append({**json.loads(self._body()), "lineitem": lineitem})
            self._send(204, b"")
            return None

        def _deep_link_return(self, form: dict[str, str]) -> None:
            try:
                claims = platform.verify_tool_jwt(form.get("JWT", ""), platform.issuer)
                assert claims["iss"] == platform.client_id, "iss"
                assert claims[LTI + "deployment_id"] == platform.deployment_id, "deployment_id"
                assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse", "message_type"
                assert claims[LTI + "version"] == "1.3.0", "version"
                assert claims.get(DL + "data") == "opaque-platform-data", "data"
                items = claims[DL + "content_items"]
                assert all(i["type"] == "ltiResourceLink" and i["url"] == platform.tool_launch for i in items), "items"
            except Exception as exc:  # the platform shows the teacher what was wrong
                platform.deep_link_errors.append(f"{type(exc).__name__}: {exc}")
                return self._send(
                    400, f"<p id='error'>invalid deep linking response: {html.escape(str(exc))}</p>", "text/html"
                )
            platform.deep_link_responses.append(claims)
            titles = ", ".join(html.escape(i.get("title", "")) for i in items)
            self._send(200, f"<!DOCTYPE html><html><body><p id='added'>Added: {titles}</p></body></html>", "text/html")
            return None

    return Handler
