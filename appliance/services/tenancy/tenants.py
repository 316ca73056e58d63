"""The tenant lifecycle: create, list, show, suspend, resume, delete, quotas, JWT and run-time settings."""

from __future__ import annotations

import shutil
from typing import Any

import apsw
import msgspec

from appliance.clock import rfc3339
from appliance.core.scorm.elements import SUSPEND_DATA_12_MAX, SUSPEND_DATA_12_SPM
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.tenancy.quotas import PLANS
from appliance.services.tenancy.roles import DEFAULT_JWT_ROLE, check_role_name
from appliance.storage.sqlite.connection import one, rows


class JwtConfig(msgspec.Struct, omit_defaults=True):
    """How browser users' JWTs are verified for one tenant."""

    issuer: str
    audience: str
    jwks_file: str | None = None
    jwks_url: str | None = None
    claim: str = "org_id"
    claim_value: str | None = None  # defaults to the tenant id
    role_claim: str = "role"  # the claim naming the user's role (appliance.services.tenancy.roles.role_from_claims)
    role_prefix: str = ""
    default_role: str = DEFAULT_JWT_ROLE  # for a token without a role in role_claim


class Tenant(msgspec.Struct):
    """A tenant as the CLI and the API show it."""

    id: str
    name: str
    plan: str
    status: str
    storage_limit_bytes: int | None
    rate_limit_per_minute: int
    session_ttl_seconds: int
    created_at: float
    updated_at: float
    # Characters SCORM 1.2 cmi.suspend_data may hold in this tenant's sessions (a package may override it).
    scorm12_suspend_data_limit: int = SUSPEND_DATA_12_MAX
    jwt: JwtConfig | None = None

    @property
    def active(self) -> bool:
        """Whether the tenant may make requests."""
        return self.status == "active"


STATUS_CACHE_SECONDS = 5.0
# (read at, status, session ttl, 1.2 suspend_data limit) per (instance, tenant id)
_status_cache: dict[tuple[int, str], tuple[float, str | None, int, int]] = {}


def tenant_status(inst: Instance, tenant_id: str) -> tuple[str | None, int]:
    """(status or None when there is no such tenant, session ttl), cached for a few seconds.

    Learner traffic (the player and its commits) asks this on every request; a suspension or a deletion
    still takes effect within STATUS_CACHE_SECONDS. With `redis_url` set, a change made by any process
    is announced to every worker (appliance.storage.redis_state), which drops its copy at once.
    """
    cached = _cached_status(inst, tenant_id)
    return cached[1], cached[2]


def tenant_suspend_data_limit(inst: Instance, tenant_id: str) -> int:
    """The tenant's SCORM 1.2 cmi.suspend_data limit, cached with its status (the default for no tenant)."""
    return _cached_status(inst, tenant_id)[3]


def _cached_status(inst: Instance, tenant_id: str) -> tuple[float, str | None, int, int]:
    key = (id(inst), tenant_id)
    now = inst.clock.now()
    cached = _status_cache.get(key)
    if cached is not None and now - cached[0] < STATUS_CACHE_SECONDS:
        return cached
    if inst.config.redis_url:
        _listen(inst.config.redis_url)
    row = inst.registry.read_sync(
        lambda c: one(
            c,
            "SELECT status, session_ttl_seconds, scorm12_suspend_data_limit FROM tenants WHERE id = ?",
            (tenant_id,),
        )
    )
    if row is None:
        cached = (now, None, 0, SUSPEND_DATA_12_MAX)
    else:
        cached = (now, row["status"], int(row["session_ttl_seconds"]), int(row["scorm12_suspend_data_limit"]))
    _status_cache[key] = cached
    return cached


def _listen(url: str) -> None:
    """Subscribe this process's status cache to the other workers' tenant changes (once per process)."""
    from appliance.storage.redis_state import subscribe  # only with redis_url: the embedded default never imports redis

    subscribe(url, "tenant", _drop_cached)


def _drop_cached(tenant_id: str | None) -> None:
    """Forget a tenant's cached status in every instance of this process (None: every tenant's)."""
    if tenant_id is None:
        _status_cache.clear()
        return
    for key in [k for k in list(_status_cache) if k[1] == tenant_id]:
        _status_cache.pop(key, None)


def _announce(inst: Instance, tenant_id: str) -> None:
    """With `redis_url`: tell every worker (this one included) that the tenant changed."""
    if inst.config.redis_url:
        from appliance.storage.redis_state import publish

        _drop_cached(tenant_id)
        publish(inst.config.redis_url, "tenant", tenant_id)


def _from_row(row: dict[str, Any]) -> Tenant:
    jwt = msgspec.json.decode(row["jwt_config"], type=JwtConfig) if row["jwt_config"] else None
    return Tenant(
        id=row["id"],
        name=row["name"],
        plan=row["plan"],
        status=row["status"],
        storage_limit_bytes=row["storage_limit_bytes"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
        session_ttl_seconds=row["session_ttl_seconds"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        scorm12_suspend_data_limit=row["scorm12_suspend_data_limit"],
        jwt=jwt,
    )


def create_tenant(inst: Instance, name: str, plan: str = "free") -> Tenant:
    """Create a tenant with the plan's default quotas and its own database file."""
    name = name.strip()
    if not name:
        raise ValidationFailed("tenant name must not be empty")
    if plan not in PLANS:
        raise ValidationFailed(f"unknown plan {plan!r}", {"plans": list(PLANS)})
    now = inst.clock.now()
    tenant_id = new_id("ten")
    limits = PLANS[plan]

    def insert(conn: apsw.Connection) -> None:
        if one(conn, "SELECT id FROM tenants WHERE name = ?", (name,)):
            raise ValidationFailed(f"a tenant named {name!r} exists already", {"name": name})
        conn.execute(
            "INSERT INTO tenants (id, name, plan, status, storage_limit_bytes, rate_limit_per_minute, "
            "session_ttl_seconds, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?)",
            (
                tenant_id,
                name,
                plan,
                limits.storage_bytes,
                limits.requests_per_minute,
                inst.config.default_session_ttl_seconds,
                now,
                now,
            ),
        )

    inst.registry.write_sync(insert)
    inst.tenant_db(tenant_id)  # create and migrate the tenant's file now, not on first request
    return get_tenant(inst, tenant_id)


def list_tenants(inst: Instance) -> list[Tenant]:
    """Every tenant, oldest first."""
    found = inst.registry.read_sync(lambda c: rows(c, "SELECT * FROM tenants ORDER BY created_at, id"))
    return [_from_row(r) for r in found]


def page_tenants(inst: Instance, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of tenants, oldest first (`data` of Tenant, `next_cursor`)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)
    found = inst.registry.read_sync(
        lambda c: rows(
            c, f"SELECT * FROM tenants WHERE {where} ORDER BY created_at, id LIMIT ?", (*params, page.limit + 1)
        )
    )
    return page_result(found, page, _from_row)


def find_tenant(conn: apsw.Connection, ref: str) -> Tenant | None:
    """A tenant by id or by name, on an open registry connection."""
    row = one(conn, "SELECT * FROM tenants WHERE id = ? OR name = ?", (ref, ref))
    return _from_row(row) if row else None


def get_tenant(inst: Instance, ref: str) -> Tenant:
    """A tenant by id or name, or NotFound."""
    tenant = inst.registry.read_sync(lambda c: find_tenant(c, ref))
    if tenant is None:
        raise NotFound(f"no tenant {ref!r}", {"tenant": ref})
    return tenant


def _update(inst: Instance, ref: str, sql: str, params: tuple[Any, ...]) -> Tenant:
    tenant = get_tenant(inst, ref)
    inst.registry.write_sync(
        lambda c: c.execute(
            f"UPDATE tenants SET {sql}, updated_at = ? WHERE id = ?", (*params, inst.clock.now(), tenant.id)
        )
    )
    _announce(inst, tenant.id)
    return get_tenant(inst, tenant.id)


def set_status(inst: Instance, ref: str, status: str) -> Tenant:
    """Suspend (`suspended`) or resume (`active`) a tenant; a suspended tenant's requests get 403."""
    if status not in ("active", "suspended"):
        raise ValidationFailed(f"unknown status {status!r}")
    return _update(inst, ref, "status = ?", (status,))


def set_plan(inst: Instance, ref: str, plan: str) -> Tenant:
    """Move a tenant to another plan, with that plan's storage and rate quotas (as `create_tenant` gives)."""
    if plan not in PLANS:
        raise ValidationFailed(f"unknown plan {plan!r}", {"plans": list(PLANS)})
    limits = PLANS[plan]
    return _update(
        inst,
        ref,
        "plan = ?, storage_limit_bytes = ?, rate_limit_per_minute = ?",
        (plan, limits.storage_bytes, limits.requests_per_minute),
    )


def set_quotas(
    inst: Instance,
    ref: str,
    *,
    storage_bytes: int | None | type[Ellipsis] = ...,
    requests_per_minute: int | None = None,
    session_ttl_seconds: int | None = None,
) -> Tenant:
    """Change a tenant's quotas; arguments left out keep their value (storage None = unlimited)."""
    tenant = get_tenant(inst, ref)
    storage = tenant.storage_limit_bytes if storage_bytes is ... else storage_bytes
    rate = requests_per_minute if requests_per_minute is not None else tenant.rate_limit_per_minute
    ttl = session_ttl_seconds if session_ttl_seconds is not None else tenant.session_ttl_seconds
    if rate < 1 or ttl < 60:
        raise ValidationFailed("the rate must be at least 1/min and the session ttl at least 60 s")
    return _update(
        inst,
        tenant.id,
        "storage_limit_bytes = ?, rate_limit_per_minute = ?, session_ttl_seconds = ?",
        (storage, rate, ttl),
    )


def set_jwt(inst: Instance, ref: str, config: JwtConfig | None) -> Tenant:
    """Configure (or, with None, remove) JWT verification for a tenant's browser users."""
    if config is not None and bool(config.jwks_file) == bool(config.jwks_url):
        raise ValidationFailed("give exactly one of a JWKS file or a JWKS URL")
    if config is not None:
        check_role_name(config.default_role, "default_role")
    payload = None if config is None else msgspec.json.encode(config).decode()
    return _update(inst, ref, "jwt_config = ?", (payload,))


def check_suspend_data_limit(value: object, field: str = "scorm12_suspend_data_limit") -> int:
    """A SCORM 1.2 cmi.suspend_data limit: an integer from the spec's 4096 (strict) to 64000."""
    if isinstance(value, bool) or not isinstance(value, int) or not SUSPEND_DATA_12_SPM <= value <= SUSPEND_DATA_12_MAX:
        message = f"must be an integer from {SUSPEND_DATA_12_SPM} to {SUSPEND_DATA_12_MAX}"
        raise ValidationFailed(
            f"{field} {message} (characters), not {value!r}", {"errors": [{"field": field, "message": message}]}
        )
    return value


def set_suspend_data_limit(inst: Instance, ref: str, limit: int) -> Tenant:
    """Set how many characters SCORM 1.2 cmi.suspend_data may hold in the tenant's sessions.

    4096 is the spec's limit (strict: longer values get error 405, "Incorrect Data Type"); the default,
    64000, lets authoring tools that write more resume. This process sees the change at once, another
    (a running server, after this CLI) within STATUS_CACHE_SECONDS.
    """
    tenant = _update(inst, ref, "scorm12_suspend_data_limit = ?", (check_suspend_data_limit(limit),))
    _status_cache.pop((id(inst), tenant.id), None)
    return tenant


def delete_tenant(inst: Instance, ref: str) -> Tenant:
    """Delete a tenant: its keys, jobs, database file and package files."""
    tenant = get_tenant(inst, ref)

    def delete(conn: apsw.Connection) -> None:
        conn.execute("DELETE FROM jobs WHERE tenant_id = ?", (tenant.id,))
        conn.execute("DELETE FROM tenants WHERE id = ?", (tenant.id,))

    inst.registry.write_sync(delete)
    inst.forget_tenant(tenant.id)
    _announce(inst, tenant.id)
    shutil.rmtree(inst.data.tenant_dir(tenant.id), ignore_errors=True)
    for folder in ("packages", "uploads"):  # in an object store (`files = "s3://…"`): the tenant's objects
        inst.files.delete_folder(tenant.id, folder)
    return tenant


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    """The JSON form the CLI prints and the API returns."""
    data: dict[str, Any] = msgspec.to_builtins(tenant)
    data["created_at"] = rfc3339(tenant.created_at)
    data["updated_at"] = rfc3339(tenant.updated_at)
    return data
