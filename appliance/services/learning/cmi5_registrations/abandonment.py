"""Abandoned AU sessions (cmi5 §9.3.6): the `abandoned` statement for an AU session launched and never
terminated, when the registration launches again, when the API abandons one, or by the periodic sweep.
"""

from __future__ import annotations

from typing import Any

import apsw

from appliance.core.cmi5 import vocabulary as v
from appliance.core.cmi5.course_structure import Course
from appliance.errors import NotFound
from appliance.instance import Instance
from appliance.services.learning.cmi5_registrations.records import (
    au_rows,
    au_state,
    course_for_session,
    registration_row,
    session_row,
)
from appliance.services.learning.cmi5_registrations.results import iso_seconds, refresh, write_lms_statement
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows


def abandon_au_session(
    inst: Instance,
    conn: apsw.Connection,
    course: Course,
    session: dict[str, Any],
    reg: dict[str, Any],
    row: dict[str, Any],
    now: float,
) -> None:
    """`abandoned` (§9.3.6) for an AU session launched and never terminated, with its duration (launch
    to now). The AU reported no time (no `terminated`), so the AU's `time_seconds` (the session's
    `total_time`, what the content reported, as for SCORM) is left as it was; the session's
    `server_time_seconds` already holds the time up to the AU's last statement."""
    au = next(a for a in course.aus() if a.id == row["au_id"])
    au_row = au_rows(conn, session["id"])[row["au_id"]]
    state = au_state(reg, au_row, au, row["id"], row["launch_mode"])
    elapsed = max(0.0, now - row["launched_at"])
    write_lms_statement(conn, state, v.ABANDONED, now, result={"duration": iso_seconds(elapsed)})
    conn.execute("UPDATE cmi5_au_sessions SET ended = 'abandoned', ended_at = ? WHERE id = ?", (now, row["id"]))


def abandon(inst: Instance, tenant: Tenant, session_id: str | None, au_session_id: str | None = None) -> dict[str, Any]:
    """The API's abandon: the open AU sessions of the registration (or the one AU session named, by
    its cmi5 session id) are abandoned; returns their ids."""
    now = inst.clock.now()

    def write(conn: apsw.Connection) -> dict[str, Any]:
        nonlocal session_id
        if au_session_id is not None:
            named = one(conn, "SELECT session_id FROM cmi5_au_sessions WHERE id = ?", (au_session_id,))
            if named is None or (session_id is not None and named["session_id"] != session_id):
                raise NotFound(f"no AU session {au_session_id!r}", {"au_session_id": au_session_id})
            session_id = str(named["session_id"])
        assert session_id is not None
        session = session_row(conn, session_id)
        course = course_for_session(conn, session)
        reg = registration_row(conn, session_id)
        found = rows(conn, "SELECT * FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL", (session_id,))
        if au_session_id is not None:
            found = [r for r in found if r["id"] == au_session_id]
        for row in found:
            abandon_au_session(inst, conn, course, session, reg, row, now)
        if found:
            refresh(conn, course, session_id, now)
        return {"session_id": session_id, "abandoned": [r["id"] for r in found]}

    return inst.tenant_db(tenant.id).write_sync(write)


_STALE = (
    "SELECT a.* FROM cmi5_au_sessions a JOIN sessions s ON s.id = a.session_id "
    "WHERE a.ended IS NULL AND (a.launched_at <= ? OR s.expires_at <= ?)"
)


def abandon_stale(inst: Instance) -> int:
    """Periodic sweep (§9.3.6): `abandoned` for AU sessions launched and not ended within the AU session
    TTL (`launch_token_ttl_seconds`: the AU's launch URL stops working then) or whose session expired."""
    now = inst.clock.now()
    cutoff = now - inst.config.launch_token_ttl_seconds
    total = 0
    for tenant_id in [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]:

        def sweep(conn: apsw.Connection) -> int:
            stale = rows(conn, _STALE, (cutoff, now))
            for row in stale:
                session = session_row(conn, row["session_id"])
                course = course_for_session(conn, session)
                abandon_au_session(inst, conn, course, session, registration_row(conn, session["id"]), row, now)
                refresh(conn, course, session["id"], now)
            return len(stale)

        db = inst.tenant_db(tenant_id)
        if db.read_sync(lambda c: one(c, _STALE.replace("a.*", "1 AS x") + " LIMIT 1", (cutoff, now))) is not None:
            total += db.write_sync(sweep)  # a write transaction only for a tenant with something to abandon
    return total
