"""LRS credentials: the HTTP Basic key and secret xAPI clients use, per tenant, with a scope.

xAPI clients (authoring tools' exports, cmi5 AUs, other LRSs forwarding to this one) authenticate with
HTTP Basic, as the specification's clients do: the username is the credential's id (`lrs_…`) and the
password its secret, shown once at creation and stored only as a hash. The id names the one row to
compare against, and the comparison of hashes is constant-time whether or not the id exists.

A scope limits what a credential may do: `all`, `read` (GET and HEAD only) or `write` (PUT, POST and
DELETE only: a content or forwarding client that must not read other learners' statements).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import apsw
import msgspec

from appliance.clock import rfc3339
from appliance.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from appliance.ids import new_id, new_secret, sha256_hex
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.tenancy.apikeys import verify_hashed_secret
from appliance.services.tenancy.tenants import Tenant, get_tenant
from appliance.storage.sqlite.connection import one, rows

SCOPES = ("all", "read", "write")
READ_METHODS = frozenset({"GET", "HEAD"})
AUTHORITY_HOME_PAGE = "urn:scorm-appliance:lrs-credential"
LAST_USED_RESOLUTION = 60.0
MAX_NAME_CHARS = 200


class LrsCredential(msgspec.Struct):
    """A credential's public record (never its secret)."""

    id: str
    tenant_id: str
    name: str | None
    scope: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        """Whether the credential was revoked."""
        return self.revoked_at is not None

    def allows(self, method: str) -> bool:
        """Whether the scope admits an HTTP method (after the alternate request syntax is unwrapped)."""
        if self.scope == "all":
            return True
        reading = method.upper() in READ_METHODS
        return reading if self.scope == "read" else not reading

    def authority(self) -> dict[str, Any]:
        """The `authority` of statements this credential stores: an Agent naming the credential."""
        agent: dict[str, Any] = {
            "objectType": "Agent",
            "account": {"homePage": AUTHORITY_HOME_PAGE, "name": self.id},
        }
        if self.name:
            agent["name"] = self.name
        return agent


def _from_row(row: dict[str, Any]) -> LrsCredential:
    return LrsCredential(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        scope=row["scope"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def check_scope(scope: object) -> str:
    """The scope, or ValidationFailed naming the accepted ones."""
    if scope not in SCOPES:
        raise ValidationFailed(
            f"scope must be one of {', '.join(SCOPES)}",
            {"errors": [{"field": "scope", "message": f"unknown scope {scope!r}"}]},
        )
    return str(scope)


def check_name(name: str | None) -> str | None:
    """The label, trimmed (None when empty), or ValidationFailed past MAX_NAME_CHARS: it becomes the
    `name` of the authority in every statement the credential stores."""
    text = (name or "").strip()
    if len(text) > MAX_NAME_CHARS:
        raise ValidationFailed(
            f"name is limited to {MAX_NAME_CHARS} characters",
            {"errors": [{"field": "name", "message": "too long"}]},
        )
    return text or None


def create_credential(
    inst: Instance, tenant_ref: str, name: str | None = None, scope: str = "all"
) -> tuple[LrsCredential, str]:
    """Issue a credential for a tenant; returns the record and the secret, which is never stored."""
    check_scope(scope)
    name = check_name(name)
    tenant = get_tenant(inst, tenant_ref)
    cred_id = new_id("lrs")
    secret = new_secret(32)
    now = inst.clock.now()
    inst.registry.write_sync(
        lambda c: c.execute(
            "INSERT INTO lrs_credentials (id, tenant_id, name, scope, secret_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (cred_id, tenant.id, name, scope, sha256_hex(secret), now),
        )
    )
    return get_credential(inst, cred_id), secret


def get_credential(inst: Instance, cred_id: str, tenant_id: str | None = None) -> LrsCredential:
    """One credential's record (of `tenant_id` when given: no other tenant's), or NotFound."""
    row = inst.registry.read_sync(lambda c: one(c, "SELECT * FROM lrs_credentials WHERE id = ?", (cred_id,)))
    if row is None or (tenant_id is not None and row["tenant_id"] != tenant_id):
        raise NotFound(f"no LRS credential {cred_id!r}", {"credential_id": cred_id})
    return _from_row(row)


def list_credentials(inst: Instance, tenant_ref: str) -> list[LrsCredential]:
    """A tenant's credentials, revoked ones included, oldest first."""
    tenant = get_tenant(inst, tenant_ref)
    found = inst.registry.read_sync(
        lambda c: rows(c, "SELECT * FROM lrs_credentials WHERE tenant_id = ? ORDER BY created_at, id", (tenant.id,))
    )
    return [_from_row(r) for r in found]


def page_credentials(
    inst: Instance, tenant_id: str, *, limit: int | None, cursor: str | None, endpoint: str | None = None
) -> dict[str, Any]:
    """A page of a tenant's credentials, oldest first, as the API lists them (`data`, `next_cursor`)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)
    found = inst.registry.read_sync(
        lambda c: rows(
            c,
            f"SELECT * FROM lrs_credentials WHERE tenant_id = ? AND {where} ORDER BY created_at, id LIMIT ?",
            (tenant_id, *params, page.limit + 1),
        )
    )
    return page_result(found, page, lambda r: credential_json(_from_row(r), endpoint=endpoint))


def endpoint_url(inst: Instance, base_url: str | None = None) -> str:
    """The LRS endpoint xAPI clients are given: `public_url` (when set), else `base_url`, then `/xapi/`.

    The CLI has no request to take a base from, so without `public_url` it names the configured host
    and port (what `serve` listens on by default).
    """
    config = inst.config
    base = config.public_url or base_url or f"http://{config.host}:{config.port}"
    return base.rstrip("/") + "/xapi/"


def revoke_credential(inst: Instance, cred_id: str, tenant_id: str | None = None) -> LrsCredential:
    """Revoke a credential; it stops working at the next request, in a running server too."""
    cred = get_credential(inst, cred_id, tenant_id)
    if not cred.revoked:
        now = inst.clock.now()
        inst.registry.write_sync(
            lambda c: c.execute("UPDATE lrs_credentials SET revoked_at = ? WHERE id = ?", (now, cred_id))
        )
    return get_credential(inst, cred_id)


def basic_pair(authorization: str | None) -> tuple[str, str]:
    """(username, password) of an `Authorization: Basic …` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing credentials: send 'Authorization: Basic <key:secret>'")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise Unauthorized("use 'Authorization: Basic <key:secret>'")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not valid base64") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("the Basic credentials need 'key:secret'")
    return username, password


def verify_pair(conn: apsw.Connection, username: str, password: str) -> tuple[Tenant, LrsCredential]:
    """Resolve a key and secret to its tenant and credential on an open registry connection (API keys'
    check, appliance.services.tenancy.apikeys.verify_hashed_secret: one message for an unknown key, a wrong secret and a
    deleted tenant)."""
    tenant, row = verify_hashed_secret(
        conn,
        "lrs_credentials",
        "secret_hash",
        username if username.startswith("lrs_") else None,
        password,
        "invalid LRS credentials",
        "these LRS credentials were revoked",
    )
    return tenant, _from_row(row)


def authenticate(inst: Instance, authorization: str | None) -> tuple[Tenant, LrsCredential]:
    """The tenant and credential of a request's Basic header; suspended tenants are Forbidden."""
    username, password = basic_pair(authorization)
    tenant, cred = inst.registry.read_sync(lambda c: verify_pair(c, username, password))
    if not tenant.active:
        raise Forbidden("this tenant is suspended", {"tenant_id": tenant.id})
    _note_use(inst, cred)
    return tenant, cred


def _note_use(inst: Instance, cred: LrsCredential) -> None:
    """Record when a credential was last used, at most once a minute (not a write per request)."""
    now = inst.clock.now()
    if cred.last_used_at is None or now - cred.last_used_at >= LAST_USED_RESOLUTION:
        inst.registry.write_sync(
            lambda c: c.execute("UPDATE lrs_credentials SET last_used_at = ? WHERE id = ?", (now, cred.id))
        )


def credential_json(cred: LrsCredential, secret: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """The JSON form of the API and the CLI; `secret` (with the key to pair it with) only at creation,
    and the LRS `endpoint` to configure in the client when the caller knows it."""
    data: dict[str, Any] = {
        "id": cred.id,
        "tenant_id": cred.tenant_id,
        "name": cred.name,
        "scope": cred.scope,
        "created_at": rfc3339(cred.created_at),
        "last_used_at": rfc3339(cred.last_used_at),
        "revoked_at": rfc3339(cred.revoked_at),
        "status": "revoked" if cred.revoked else "active",
    }
    if endpoint is not None:
        data["endpoint"] = endpoint
    if secret is not None:
        data["key"] = cred.id
        data["secret"] = secret
    return data
