"""Quota events: `quota.warning` when stored bytes cross 80 % of the quota, `quota.exceeded` when an
upload is refused for quota (or storage is found above the quota). Each fires once per crossing.

The tenant database remembers where storage stands (`quota_state.level`: ok, warning, exceeded), and
an event is emitted only when the level goes up; going down re-arms it silently. A refusal holds the
`exceeded` level until space is freed (a package deleted) or an upload is accepted again, so a client
retrying a refused upload does not raise an event per attempt. Every function here runs inside the
caller's tenant transaction, which also writes the event, so nothing fires for a change that rolled back.
"""

from __future__ import annotations

from typing import Any

import apsw

from appliance.instance import Instance
from appliance.services.delivery.events import emit
from appliance.services.tenancy.usage import stored_bytes
from appliance.storage.sqlite.connection import one, rows

WARNING_RATIO = 0.8
_RANK = {"ok": 0, "warning": 1, "exceeded": 2}
_EVENT = {"warning": "quota.warning", "exceeded": "quota.exceeded"}
_SUBJECT = "quota"  # one ordering key: a receiver sees a tenant's quota events in order


def level_of(used: int, limit: int | None) -> str:
    """Where `used` bytes stand against `limit` (None = unlimited)."""
    if limit is None:
        return "ok"
    if used > limit:
        return "exceeded"
    return "warning" if used >= WARNING_RATIO * limit else "ok"


def current_level(conn: apsw.Connection) -> str:
    """The level recorded by the last crossing ("ok" before any)."""
    row = one(conn, "SELECT level FROM quota_state WHERE id = 1")
    return str(row["level"]) if row else "ok"


def _set_level(conn: apsw.Connection, level: str, now: float) -> None:
    conn.execute(
        "INSERT INTO quota_state (id, level, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at",
        (level, now),
    )


def _data(conn: apsw.Connection, limit: int | None, **extra: Any) -> dict[str, Any]:
    package_bytes, session_bytes = stored_bytes(conn)
    used = package_bytes + session_bytes
    data: dict[str, Any] = {
        "storage_bytes": used,
        "package_bytes": package_bytes,
        "session_bytes": session_bytes,
        "limit_bytes": limit,
        "percent": round(100 * used / limit, 1) if limit else None,
    }
    data.update(extra)
    return data


def settle(conn: apsw.Connection, limit: int | None, now: float, *, clear_refusal: bool = False) -> str | None:
    """After stored bytes changed: emit the event of an upward crossing; returns the event type or None.

    `clear_refusal` says the change made room (an upload fitted, a package was deleted), which ends the
    `exceeded` level a refusal set even though storage is still above 80 %.
    """
    package_bytes, session_bytes = stored_bytes(conn)
    level = level_of(package_bytes + session_bytes, limit)
    state = current_level(conn)
    if _RANK[level] > _RANK[state]:
        _set_level(conn, level, now)
        event = _EVENT[level]
        emit(conn, event, _data(conn, limit), now=now, subject_id=_SUBJECT)
        return event
    if _RANK[level] < _RANK[state]:
        if state == "exceeded" and level == "warning" and not clear_refusal:
            return None
        _set_level(conn, level, now)
    return None


def refused(conn: apsw.Connection, details: dict[str, Any], now: float) -> str | None:
    """An upload was refused for quota: emit `quota.exceeded` unless this crossing already did."""
    if current_level(conn) == "exceeded":
        return None
    _set_level(conn, "exceeded", now)
    extra = {"requested_bytes": details.get("requested_bytes")}
    emit(conn, "quota.exceeded", _data(conn, details.get("limit_bytes"), **extra), now=now, subject_id=_SUBJECT)
    return "quota.exceeded"


def note_refusal(inst: Instance, tenant_id: str, details: dict[str, Any]) -> str | None:
    """`refused` in its own transaction, for refusals that happen outside any write (upload checks)."""
    now = inst.clock.now()
    return inst.tenant_db(tenant_id).write_sync(lambda c: refused(c, details, now))


def watch(inst: Instance) -> int:
    """Periodic sweep: settle every tenant with a storage quota (session data grows, limits change).

    Returns how many events it emitted.
    """
    now = inst.clock.now()
    found = inst.registry.read_sync(lambda c: rows(c, "SELECT id, storage_limit_bytes FROM tenants"))
    emitted = 0
    for tenant in found:
        if not inst.has_tenant_db(tenant["id"]):
            continue
        limit = tenant["storage_limit_bytes"]
        db = inst.tenant_db(tenant["id"])
        # Read first: most tenants are where they were, and a read takes no write lock.
        level, state = db.read_sync(lambda c, lim=limit: (level_of(sum(stored_bytes(c)), lim), current_level(c)))
        if level == state or (state == "exceeded" and level == "warning"):
            continue
        if db.write_sync(lambda c, lim=limit: settle(c, lim, now)):
            emitted += 1
    return emitted
