"""OIDC third-party login initiation, id_token validation, and the resource link launch.

The flow (LTI Core 1.3 §5.1, 1EdTech Security Framework §5.1.1): the platform sends the browser to
`/lti/{tenant}/login` with its issuer, a login hint and the client id; the tool stores a fresh `state`
and `nonce` **server-side** (the `lti_states` table: no cookie, so a launch in the platform's iframe works
where third-party cookies are blocked) and redirects to the platform's authorisation endpoint; the
platform POSTs a signed id_token and the state back to `/lti/{tenant}/launch`.

The id_token is accepted only when: it is RS256 and verifies with the registration's JWKS (fetched
through the outbound guard, cached, re-read for an unknown `kid`); `iss` is the registration's issuer,
`aud` holds its client id (and `azp`, present or required with several audiences, is the client id);
`exp` is in the future and `iat` not in it (a minute of clock skew either way); the `nonce` is the one
stored with this state and was never used before (a replayed token is refused); the deployment id is
one of the registration's; the message type is a resource link or deep linking request; the version is
1.3.0. The state is consumed in the same transaction that records the nonce.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import apsw
import jwt

from appliance.errors import Forbidden, NotFound, RateLimited, Unauthorized, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.services.learning.launch_tokens import signing_secret
from appliance.services.learning.sessions import create_session, launch_url, session_json
from appliance.services.lms.lti import claims as c
from appliance.services.lms.lti.registrations import Registration, find_registration, get_registration
from appliance.services.tenancy.jwtauth import JwksCache
from appliance.services.tenancy.tenants import JwtConfig, Tenant, get_tenant, tenant_status
from appliance.storage.sqlite.connection import one

STATE_TTL_SECONDS = 600.0  # a login must come back within ten minutes
MAX_LIVE_STATES = 50_000  # unfinished logins a tenant keeps at once (each is a row until it expires)
NONCE_TTL_SECONDS = 86_400.0  # used nonces are remembered this long (longer than any id_token lives)
CLOCK_SKEW_SECONDS = 60.0
ALGORITHM = "RS256"
MESSAGE_TYPES = (c.RESOURCE_LINK_REQUEST, c.DEEP_LINKING_REQUEST)
TEACHER_ROLES = ("#Instructor", "#ContentDeveloper", "#Administrator", "#TeachingAssistant", "/Instructor")


@dataclass(frozen=True)
class ToolUrls:
    """The tool's public URLs for one tenant: what an LMS administrator pastes into the platform."""

    base: str
    tenant_id: str

    def _url(self, leaf: str) -> str:
        return f"{self.base.rstrip('/')}/lti/{self.tenant_id}/{leaf}"

    @property
    def login(self) -> str:
        """OIDC login initiation URL."""
        return self._url("login")

    @property
    def launch(self) -> str:
        """Redirect (launch) URL: the target link URI, the deep linking URL and the redirect URI at once."""
        return self._url("launch")

    @property
    def jwks(self) -> str:
        """The tool's public keys."""
        return self._url("jwks")

    def deep_link_pick(self, pick_id: str) -> str:
        """Where the package picker page posts the teacher's choice."""
        return self._url(f"deep-link/{pick_id}")

    def json(self) -> dict[str, str]:
        """The URLs as the API and the CLI show them."""
        return {
            "login_url": self.login,
            "launch_url": self.launch,
            "redirect_url": self.launch,
            "deep_linking_url": self.launch,
            "jwks_url": self.jwks,
        }


def active_tenant(inst: Instance, tenant_id: str) -> Tenant:
    """The tenant an LTI URL names: NOT_FOUND for none, FORBIDDEN for a suspended one."""
    status, _ = tenant_status(inst, tenant_id)
    if status is None:
        raise NotFound("no such LTI tool")
    tenant = get_tenant(inst, tenant_id)
    if not tenant.active:
        raise Forbidden("this organisation is suspended", {"tenant_id": tenant_id})
    return tenant


# -- login initiation ------------------------------------------------------------------------------------


def login(inst: Instance, tenant_id: str, params: dict[str, str], urls: ToolUrls) -> str:
    """Validate a third-party login initiation and return the platform authorisation URL to redirect to."""
    active_tenant(inst, tenant_id)
    issuer, hint = params.get("iss", "").strip(), params.get("login_hint", "").strip()
    if not issuer or not hint:
        raise ValidationFailed(
            "an LTI login needs iss and login_hint",
            {"errors": [{"field": f, "message": "required"} for f in ("iss", "login_hint") if not params.get(f)]},
        )
    reg = find_registration(inst, tenant_id, issuer, params.get("client_id"))
    if reg is None:
        raise Unauthorized(
            "this platform is not registered with the tool (issuer and client id)",
            {"issuer": issuer, "client_id": params.get("client_id")},
        )
    deployment = params.get("lti_deployment_id")
    if deployment and deployment not in reg.deployment_ids:
        raise Unauthorized("this deployment id is not registered", {"deployment_id": deployment})
    state, nonce, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), inst.clock.now()

    def store(conn: apsw.Connection) -> None:
        conn.execute("DELETE FROM lti_states WHERE expires_at < ?", (now,))
        live = one(conn, "SELECT count(*) AS n FROM lti_states")
        if live is not None and live["n"] >= MAX_LIVE_STATES:  # logins nobody finishes must not fill the disk
            raise RateLimited("too many LTI logins in progress; try again in a few minutes", {"retry_after": 60})
        conn.execute(
            "INSERT INTO lti_states (state, registration_id, nonce, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (state, reg.id, nonce, now, now + STATE_TTL_SECONDS),
        )

    inst.tenant_db(tenant_id).write_sync(store)
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": reg.client_id,
        "redirect_uri": urls.launch,
        "login_hint": hint,
        "state": state,
        "nonce": nonce,
    }
    if params.get("lti_message_hint"):
        query["lti_message_hint"] = params["lti_message_hint"]
    separator = "&" if "?" in reg.auth_url else "?"
    return f"{reg.auth_url}{separator}{urlencode(query)}"


# -- the id_token --------------------------------------------------------------------------------------------


def _refuse(message: str, reason: str, **details: Any) -> Unauthorized:
    return Unauthorized(message, {"reason": reason, **details})


def _state_row(inst: Instance, tenant_id: str, state: str) -> dict[str, Any]:
    row = inst.tenant_db(tenant_id).read_sync(
        lambda conn: one(conn, "SELECT * FROM lti_states WHERE state = ?", (state,))
    )
    if row is None:
        raise _refuse("unknown login state: start the launch again from the course", "unknown_state")
    if row["used_at"] is not None:
        raise _refuse("this launch was already used: an id_token is accepted once (replay refused)", "replayed")
    if row["expires_at"] < inst.clock.now():
        raise _refuse("the login took too long: start the launch again from the course", "state_expired")
    return row


def verify_id_token(
    inst: Instance, tenant_id: str, jwks: JwksCache, id_token: str, state: str
) -> tuple[Registration, dict[str, Any]]:
    """Check an id_token against its login state (see the module docstring); consume the state."""
    if not id_token or not state:
        raise ValidationFailed(
            "a launch needs id_token and state (form_post)",
            {
                "errors": [
                    {"field": f, "message": "required"} for f, v in (("id_token", id_token), ("state", state)) if not v
                ]
            },
        )
    row = _state_row(inst, tenant_id, state)
    reg = get_registration(inst, tenant_id, row["registration_id"])
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise _refuse("the id_token is not a JWT", "malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise _refuse(f"the id_token must be signed with {ALGORITHM}", "algorithm", alg=header.get("alg"))
    claims = _verified_claims(inst, reg, jwks, id_token, header.get("kid"))
    _check_claims(inst, reg, claims, row["nonce"])
    _consume(inst, tenant_id, reg, state, str(claims["nonce"]))
    return reg, claims


def _verified_claims(inst: Instance, reg: Registration, jwks: JwksCache, token: str, kid: str | None) -> dict[str, Any]:
    config = JwtConfig(issuer=reg.issuer, audience=reg.client_id, jwks_url=reg.jwks_url)
    now = inst.clock.now()
    keyset = jwks.keyset(config, now)
    key = _key(keyset, kid) or _key(jwks.keyset(config, now, refresh=True), kid)
    if key is None:
        raise _refuse("the id_token is signed by a key the platform's JWKS does not hold", "unknown_key", kid=kid)
    try:
        return dict(
            jwt.decode(
                token,
                key=key.key,
                algorithms=[ALGORITHM],
                audience=reg.client_id,
                issuer=reg.issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat", "sub"],
                },
            )
        )
    except jwt.InvalidSignatureError as exc:
        raise _refuse("the id_token's signature does not verify with the platform's keys", "signature") from exc
    except jwt.InvalidAudienceError as exc:
        raise _refuse("the id_token is not addressed to this tool's client id", "audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise _refuse("the id_token's issuer is not the registered platform", "issuer") from exc
    except jwt.PyJWTError as exc:
        raise _refuse(f"invalid id_token: {exc}", "invalid") from exc


def _key(keyset: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keyset.keys[0] if len(keyset.keys) == 1 else None
    return next((k for k in keyset.keys if k.key_id == kid), None)


def _check_claims(inst: Instance, reg: Registration, claims: dict[str, Any], nonce: str) -> None:
    now = inst.clock.now()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise _refuse("the id_token's exp and iat must be numbers", "invalid")
    if exp + CLOCK_SKEW_SECONDS < now:
        raise _refuse("the id_token has expired: start the launch again from the course", "expired")
    if iat - CLOCK_SKEW_SECONDS > now:
        raise _refuse("the id_token was issued in the future (check the platform's clock)", "issued_in_future")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != reg.client_id:
        raise _refuse("the id_token's azp is not this tool's client id", "azp")
    if claims.get("nonce") != nonce:
        raise _refuse("the id_token's nonce does not belong to this login", "nonce")
    if claims.get(c.VERSION) != c.LTI_VERSION:
        raise _refuse(f"only LTI {c.LTI_VERSION} launches are supported", "version", version=claims.get(c.VERSION))
    if claims.get(c.DEPLOYMENT_ID) not in reg.deployment_ids:
        raise _refuse(
            "the launch's deployment id is not registered with the tool",
            "deployment",
            deployment_id=claims.get(c.DEPLOYMENT_ID),
        )
    if claims.get(c.MESSAGE_TYPE) not in MESSAGE_TYPES:
        raise _refuse(
            "the tool accepts resource link and deep linking requests only",
            "message_type",
            message_type=claims.get(c.MESSAGE_TYPE),
        )


def _consume(inst: Instance, tenant_id: str, reg: Registration, state: str, nonce: str) -> None:
    """Mark the state used and remember the nonce, atomically: a second use of either is a replay."""
    now = inst.clock.now()

    def consume(conn: apsw.Connection) -> None:
        conn.execute("DELETE FROM lti_nonces WHERE expires_at < ?", (now,))
        conn.execute("UPDATE lti_states SET used_at = ? WHERE state = ? AND used_at IS NULL", (now, state))
        if conn.changes() != 1:
            raise _refuse("this launch was already used: an id_token is accepted once (replay refused)", "replayed")
        try:
            conn.execute(
                "INSERT INTO lti_nonces (issuer, nonce, expires_at) VALUES (?, ?, ?)",
                (reg.issuer, nonce, now + NONCE_TTL_SECONDS),
            )
        except apsw.ConstraintError:
            raise _refuse("this id_token's nonce was already used (replay refused)", "replayed") from None

    inst.tenant_db(tenant_id).write_sync(consume)


# -- the resource link launch ----------------------------------------------------------------------------------


def learner_id(issuer: str, sub: str) -> str:
    """The appliance learner id of a platform user: stable for (issuer, sub), bounded in length."""
    return "lti-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:32]


def learner_name(claims: dict[str, Any]) -> str:
    """The user's display name from the id_token, as far as the platform shares it."""
    name = claims.get("name") or " ".join(str(claims.get(k) or "") for k in ("given_name", "family_name")).strip()
    return str(name)[:200]


def _package_of(claims: dict[str, Any]) -> str:
    custom = claims.get(c.CUSTOM) or {}
    package_id = custom.get(c.PACKAGE_PARAMETER) if isinstance(custom, dict) else None
    if not isinstance(package_id, str) or not package_id.strip():
        raise ValidationFailed(
            f"this link names no package: set the custom parameter {c.PACKAGE_PARAMETER}=<package id> on the link, "
            "or add it with Deep Linking",
            {"errors": [{"field": f"custom.{c.PACKAGE_PARAMETER}", "message": "required"}]},
        )
    return package_id.strip()


def resource_link_launch(
    inst: Instance, tenant: Tenant, reg: Registration, claims: dict[str, Any], base_url: str
) -> str:
    """Start or resume the platform user's session on the link's package; the player URL to redirect to."""
    link = claims.get(c.RESOURCE_LINK) or {}
    link_id = link.get("id") if isinstance(link, dict) else None
    if not isinstance(link_id, str) or not link_id:
        raise _refuse("a resource link launch needs resource_link.id", "resource_link")
    package_id = _package_of(claims)
    sub = str(claims["sub"])
    signing_secret(inst)  # made once (a registry write) before the tenant's transaction, never inside it

    def find_or_start(conn: apsw.Connection) -> dict[str, Any]:
        # One write transaction of the tenant: its reads and the session's INSERT below join it. Writes to
        # a tenant are serialised by the database across every worker and connection (SQLite's one writer
        # per file, PostgreSQL's per-tenant advisory lock at BEGIN: docs/scale-out.md, "Transactions"),
        # so two launches of one link at once (a double click, two tabs, two workers) run one after the
        # other and the second resumes the session the first started, instead of starting another.
        session = _resumable(inst, tenant, reg, link_id, sub, package_id, base_url)
        if session is None:
            session, _ = create_session(
                inst,
                tenant,
                base_url,
                package_id=package_id,
                learner_id=learner_id(reg.issuer, sub),
                learner_name=learner_name(claims),
                package_version=None,
                resume=False,
            )
        _record_launch(inst, tenant.id, reg, claims, link_id, session["id"], package_id)
        return session

    session = inst.tenant_db(tenant.id).write_sync(find_or_start)
    return str(session["launch_url"])


def _resumable(
    inst: Instance, tenant: Tenant, reg: Registration, link_id: str, sub: str, package_id: str, base_url: str
) -> dict[str, Any] | None:
    """The user's incomplete session launched from this resource link, if any.

    Sessions are per resource link, not per learner and package: in the platform each link is an
    assignment of its own, with its own line item and grade, so two links to one package are two
    sessions (and two scores). Only the link's own incomplete session is resumed; a finished one is
    never reopened (the next launch of the link is a new attempt, as anywhere in the appliance).
    """
    now = inst.clock.now()

    def read(conn: apsw.Connection) -> dict[str, Any] | None:
        return one(
            conn,
            "SELECT s.* FROM lti_launches l JOIN sessions s ON s.id = l.session_id "
            "WHERE l.registration_id = ? AND l.resource_link_id = ? AND l.sub = ? AND s.package_id = ? "
            "AND s.status IN ('not_started', 'incomplete') AND s.expires_at > ? ORDER BY s.created_at DESC LIMIT 1",
            (reg.id, link_id, sub, package_id, now),
        )

    row = inst.tenant_db(tenant.id).read_sync(read)
    return None if row is None else session_json(row, launch_url(inst, base_url, tenant.id, row))


def _record_launch(
    inst: Instance,
    tenant_id: str,
    reg: Registration,
    claims: dict[str, Any],
    link_id: str,
    session_id: str,
    package_id: str,
) -> None:
    """Link the session to the platform's resource link, with its AGS endpoint (appliance.services.lms.lti.ags) and its
    Names and Roles memberships URL (appliance.services.lms.lti.nrps)."""
    ags = claims.get(c.AGS_ENDPOINT) if isinstance(claims.get(c.AGS_ENDPOINT), dict) else {}
    context = claims.get(c.CONTEXT) if isinstance(claims.get(c.CONTEXT), dict) else {}
    scopes = [s for s in ags.get("scope", []) if isinstance(s, str)] if isinstance(ags.get("scope"), list) else []
    now = inst.clock.now()

    memberships = memberships_url(claims)

    def upsert(conn: apsw.Connection) -> None:
        existing = one(
            conn,
            "SELECT id FROM lti_launches WHERE registration_id = ? AND resource_link_id = ? AND session_id = ?",
            (reg.id, link_id, session_id),
        )
        values = (ags.get("lineitem"), ags.get("lineitems"), json.dumps(scopes), context.get("id"), memberships, now)
        if existing is not None:
            conn.execute(
                "UPDATE lti_launches SET lineitem_url = COALESCE(?, lineitem_url), lineitems_url = ?, ags_scopes = ?, "
                "context_id = ?, memberships_url = ?, updated_at = ? WHERE id = ?",
                (*values, existing["id"]),
            )
            return
        conn.execute(
            "INSERT INTO lti_launches (id, registration_id, deployment_id, resource_link_id, sub, session_id, package_id, "
            "lineitem_url, lineitems_url, ags_scopes, context_id, memberships_url, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new_id("ltl"),
                reg.id,
                str(claims.get(c.DEPLOYMENT_ID)),
                link_id,
                str(claims["sub"]),
                session_id,
                package_id,
                *values[:5],
                now,
                now,
            ),
        )

    inst.tenant_db(tenant_id).write_sync(upsert)


def memberships_url(claims: dict[str, Any]) -> str | None:
    """The launch's `context_memberships_url`, when it offers NRPS 2.0 (a missing version list is 2.0)."""
    claim = claims.get(c.NRPS)
    if not isinstance(claim, dict) or not isinstance(claim.get("context_memberships_url"), str):
        return None
    versions = claim.get("service_versions")
    if isinstance(versions, list) and "2.0" not in versions:
        return None
    return str(claim["context_memberships_url"]) or None


def is_teacher(claims: dict[str, Any]) -> bool:
    """Whether the launching user may pick content (Deep Linking): an instructor, designer or admin."""
    roles = claims.get(c.ROLES) or []
    return isinstance(roles, list) and any(isinstance(r, str) and r.endswith(TEACHER_ROLES) for r in roles)
