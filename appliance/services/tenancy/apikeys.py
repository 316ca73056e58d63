"""API keys: issued with the secret shown once, stored only as a hash, verified in constant time.

A key reads `sak_<key body>_<secret>`; its id is `key_<key body>`. The id part lets verification find
the one row to compare against without scanning, and the comparison of hashes is constant-time.
"""

from __future__ import annotations

import hmac
from typing import Any

import apsw
import msgspec

from appliance.clock import rfc3339
from appliance.errors import NotFound, Unauthorized
from appliance.ids import new_id, new_secret, sha256_hex
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.tenancy.roles import DEFAULT_KEY_ROLE, check_role_name
from appliance.services.tenancy.tenants import Tenant, find_tenant, get_tenant
from appliance.storage.sqlite.connection import one, rows

KEY_PREFIX = "sak_"
_DUMMY_HASH = sha256_hex("no such key")


class ApiKey(msgspec.Struct):
    """A key's public record (never its secret)."""

    id: str
    tenant_id: str
    name: str | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    role: str = DEFAULT_KEY_ROLE  # appliance.services.tenancy.roles

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None


def _from_row(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        role=row["role"],
    )


def create_key(
    inst: Instance, tenant_ref: str, name: str | None = None, role: str = DEFAULT_KEY_ROLE
) -> tuple[ApiKey, str]:
    """Issue a key with a role for a tenant; returns the record and the secret, which is never stored."""
    check_role_name(role)
    tenant = get_tenant(inst, tenant_ref)
    key_id = new_id("key")
    secret = f"{KEY_PREFIX}{key_id.removeprefix('key_')}_{new_secret(32)}"
    now = inst.clock.now()
    inst.registry.write_sync(
        lambda c: c.execute(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at, role) VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, tenant.id, name, sha256_hex(secret), now, role),
        )
    )
    return get_key(inst, key_id), secret


def get_key(inst: Instance, key_id: str) -> ApiKey:
    """One key's record, or NotFound."""
    row = inst.registry.read_sync(lambda c: one(c, "SELECT * FROM api_keys WHERE id = ?", (key_id,)))
    if row is None:
        raise NotFound(f"no key {key_id!r}", {"key_id": key_id})
    return _from_row(row)


def list_keys(inst: Instance, tenant_ref: str) -> list[ApiKey]:
    """A tenant's keys, revoked ones included, oldest first."""
    tenant = get_tenant(inst, tenant_ref)
    found = inst.registry.read_sync(
        lambda c: rows(c, "SELECT * FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id", (tenant.id,))
    )
    return [_from_row(r) for r in found]


def page_keys(inst: Instance, tenant_id: str, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of a tenant's keys, oldest first, revoked ones included (`data` of ApiKey, `next_cursor`)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)
    found = inst.registry.read_sync(
        lambda c: rows(
            c,
            f"SELECT * FROM api_keys WHERE tenant_id = ? AND {where} ORDER BY created_at, id LIMIT ?",
            (tenant_id, *params, page.limit + 1),
        )
    )
    return page_result(found, page, _from_row)


def revoke_key(inst: Instance, key_id: str) -> ApiKey:
    """Revoke a key; it stops working at once, in a running server too."""
    key = get_key(inst, key_id)
    if not key.revoked:
        now = inst.clock.now()
        inst.registry.write_sync(lambda c: c.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (now, key_id)))
    return get_key(inst, key_id)


LAST_USED_RESOLUTION = 60.0


def note_key_use(inst: Instance, key: ApiKey) -> None:
    """Record when a key was last used, at most once a minute (not a write per request)."""
    now = inst.clock.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        inst.registry.write_sync(
            lambda c: c.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key.id))
        )


def _key_id_of(presented: str) -> str | None:
    if not presented.startswith(KEY_PREFIX):
        return None
    body, sep, _ = presented.removeprefix(KEY_PREFIX).partition("_")
    return f"key_{body}" if sep and body else None


def authenticate_key(conn: apsw.Connection, presented: str) -> tuple[Tenant, ApiKey]:
    """Resolve a presented key to its tenant on an open registry connection, or raise Unauthorized."""
    tenant, row = verify_hashed_secret(
        conn, "api_keys", "key_hash", _key_id_of(presented), presented, "invalid API key", "this API key was revoked"
    )
    return tenant, _from_row(row)


def verify_hashed_secret(
    conn: apsw.Connection, table: str, hash_column: str, row_id: str | None, secret: str, invalid: str, revoked: str
) -> tuple[Tenant, dict[str, Any]]:
    """(tenant, row) of a secret whose SHA-256 a registry table keeps (API keys, LRS credentials), or
    Unauthorized: `invalid` for an unknown id, a wrong secret and a deleted tenant alike, `revoked` for
    a revoked one. The hash comparison runs whether or not the id exists (constant time, and the same
    time either way), so a caller cannot tell them apart.
    """
    row = one(conn, f"SELECT * FROM {table} WHERE id = ?", (row_id,)) if row_id else None
    stored = row[hash_column] if row else _DUMMY_HASH
    matches = hmac.compare_digest(stored, sha256_hex(secret))
    if row is None or not matches:
        raise Unauthorized(invalid)
    if row["revoked_at"] is not None:
        raise Unauthorized(revoked)
    tenant = find_tenant(conn, row["tenant_id"])
    if tenant is None:
        raise Unauthorized(invalid)
    return tenant, row


def key_json(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    """The JSON form the CLI prints; `key` (the secret) only at creation."""
    data: dict[str, Any] = {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "role": key.role,
        "created_at": rfc3339(key.created_at),
        "last_used_at": rfc3339(key.last_used_at),
        "revoked_at": rfc3339(key.revoked_at),
        "status": "revoked" if key.revoked else "active",
    }
    if secret is not None:
        data["key"] = secret
    return data
