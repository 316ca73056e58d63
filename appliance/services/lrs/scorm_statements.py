"""SCORM sessions as xAPI: the run-time transactions' hook, the outbox, and the sweep that stores statements.

The run-time (appliance.services.learning.runtime and its commits, deliveries, terminations and
sequencing_steps; appliance.services.learning.sessions: the session's result) calls the `on_*` functions inside its own write transaction. Each turns the change into the
profile's events (appliance.core.xapi.scorm_profile, pure) and, when there are any, writes one row into the
tenant's `xapi_scorm_outbox` — so the events exist exactly when the change commits. Most commits mean
no event, decided from the changed element names before anything else is done; one that does pays a
small INSERT (and a count), not the statement store's writes. The hooks only read the tenant's switch
and the session's count and write, which is also what the sequencing steps computed on a read snapshot
may do: their writes are held back and applied with the rest (sequencing_snapshot.Snapshot). A session produces at
most MAX_SESSION_STATEMENTS statements, so that a learner's commits cannot grow the LRS without bound.

`flush_all` (a scheduler sweep, `xapi_scorm_flush_seconds`) turns each tenant's outbox rows into
statements, in order, with `appliance.services.lrs.statements.insert_statements`, and deletes them in the same
transaction: a statement is stored once, whatever crashes in between (its id is assigned then).

The tenant's switch (`set_enabled`, `GET/PUT /api/v1/xapi/scorm`) is a row of its own database; without
one, `xapi_scorm_statements` (default on) decides. Off, the hooks write nothing and the sweep drops what
was queued before.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import apsw
import msgspec

from appliance.core.scorm.attempt import SessionEnd, names
from appliance.core.xapi import scorm_profile as profile
from appliance.core.xapi.scorm_profile import Event, SessionFacts
from appliance.instance import Instance
from appliance.services.library.courses import Course
from appliance.services.lrs.credentials import AUTHORITY_HOME_PAGE
from appliance.services.lrs.statements import insert_statements
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.lrs.scorm")

# The `authority` of the statements the run-time writes (no LRS credential stored them).
AUTHORITY = {
    "objectType": "Agent",
    "name": "SCORM run-time",
    "account": {"homePage": AUTHORITY_HOME_PAGE, "name": "scorm"},
}
XAPI_VERSION = "1.0.3"
FLUSH_ROWS = 200  # outbox rows per transaction (a row holds a commit's few events)
# Statements one session may produce: far more than any course's real sessions (a SCO has at most 1,000
# interaction records), few enough that a learner's commits cannot grow the tenant's LRS without bound.
MAX_SESSION_STATEMENTS = 10_000


class _Row(msgspec.Struct):
    """One outbox row's content: the session's facts and its events."""

    facts: SessionFacts
    events: list[Event]


_encode = msgspec.json.encode
_decode_row = msgspec.json.Decoder(_Row).decode
_decode_cmi = msgspec.json.Decoder(dict[str, str]).decode


# -- the hooks (inside the run-time's write transaction) --------------------------------------------


def on_step(
    conn: Any,
    course: Course,
    session: Mapping[str, Any],
    delivery: Mapping[str, Any] | None,
    now: float,
    *,
    launching: bool = False,
) -> None:
    """A launch (the player launched the course) and/or a SCO delivered for a new SCO session
    (initialized, or resumed): `delivery` is the delivery the answer carries (deliveries.deliver)."""
    events = profile.launch_events(now) if launching else []
    if delivery is not None:
        sco = _sco(course, delivery["activity"], delivery["attempt"])
        events += profile.delivery_events(course.scorm_version, sco, delivery["cmi"], now)
    _queue(conn, course, session, events)


def on_commit(
    conn: Any,
    course: Course,
    session: Mapping[str, Any],
    activity_id: str,
    attempt: int,
    before: Mapping[str, str],
    after: Mapping[str, str],
    changes: Mapping[str, str],
    now: float,
) -> None:
    """A plain commit: interactions answered, progress, completion, success. The fast path: a commit
    changing no result or interaction element returns before anything else."""
    changed = [name for name in changes if before.get(name) != after.get(name)]  # most values are resent
    if not profile.is_relevant(course.scorm_version, changed):
        return
    sco = _sco(course, activity_id, attempt)
    _queue(conn, course, session, profile.commit_events(course.scorm_version, sco, before, after, changed, now))


def on_terminate(
    conn: Any,
    course: Course,
    session: Mapping[str, Any],
    activity_id: str,
    row: Mapping[str, Any],
    submitted: Mapping[str, str],
    ended: SessionEnd,
    final: Mapping[str, str],
    elapsed: float | None,
    now: float,
) -> None:
    """A Terminate: its last batch's and the attempt rules' changes, then suspended or terminated.

    `row` is the SCO's record as stored before the batch, `submitted` the CMI with the batch applied,
    `ended` what the attempt rules made of it and `final` the CMI stored (exit set by suspendAll).
    The session time is the one the SCO reported, else the one the server measured (`elapsed`, 2004)."""
    reported = names(course.scorm_version)["session_time"] in submitted
    seconds = ended.session_seconds if reported or elapsed is not None else None
    sco = _sco(course, activity_id, row["attempt"])
    before = _decode_cmi(row["cmi"])
    _queue(conn, course, session, profile.terminate_events(course.scorm_version, sco, before, final, seconds, now))


def on_result(conn: Any, course: Course, old_status: str, updated: Mapping[str, Any], now: float) -> None:
    """The session's (the course's) status reached completed, passed or failed."""
    _queue(conn, course, updated, profile.course_events(old_status, updated, now))


def _sco(course: Course, activity_id: str, attempt: int) -> profile.Sco:
    item = course.item(activity_id)
    return profile.Sco(activity_id, item.title if item is not None else activity_id, max(attempt, 1))


def _queue(conn: Any, course: Course, session: Mapping[str, Any], events: list[Event]) -> None:
    if not events:
        return
    state = one(
        conn,
        "SELECT (SELECT enabled FROM xapi_scorm_settings WHERE id = 1) AS enabled, "
        "(SELECT queued FROM xapi_scorm_sessions WHERE session_id = ?) AS queued",
        (session["id"],),
    )
    assert state is not None
    queued = state["queued"] or 0
    if state["enabled"] == 0 or queued >= MAX_SESSION_STATEMENTS:
        return  # off (the sweep applies the instance default), or the session's cap reached
    events = events[: MAX_SESSION_STATEMENTS - queued]
    if queued + len(events) >= MAX_SESSION_STATEMENTS:
        log.warning("session %s reached %d SCORM statements: it records no more", session["id"], MAX_SESSION_STATEMENTS)
    facts = SessionFacts(
        session_id=session["id"],
        learner_id=session["learner_id"],
        learner_name=session["learner_name"] or "",
        package_id=course.package_id,
        course_title=_course_title(course),
        scorm_version=course.scorm_version,
    )
    conn.execute(
        "INSERT INTO xapi_scorm_outbox (session_id, created_at, statements) VALUES (?, ?, ?)",
        (session["id"], events[0].at, _encode(_Row(facts, events))),
    )
    conn.execute(
        "INSERT INTO xapi_scorm_sessions (session_id, queued) VALUES (?, ?) "
        "ON CONFLICT (session_id) DO UPDATE SET queued = queued + excluded.queued",
        (session["id"], len(events)),
    )


def _course_title(course: Course) -> str:
    """The manifest's title, else its delivered organization's (most manifests title only that)."""
    manifest = course.manifest
    if manifest.title:
        return manifest.title
    found = [o.title for o in manifest.organizations if o.identifier == manifest.default_organization]
    return (found or [""])[0]


# -- the switch ------------------------------------------------------------------------------------


def enabled(inst: Instance, tenant_id: str) -> bool:
    """Whether the tenant's SCORM sessions become statements (its switch, else `xapi_scorm_statements`)."""
    row = inst.tenant_db(tenant_id).read_sync(lambda c: one(c, "SELECT enabled FROM xapi_scorm_settings WHERE id = 1"))
    return inst.config.xapi_scorm_statements if row is None else bool(row["enabled"])


def set_enabled(inst: Instance, tenant_id: str, value: bool | None) -> None:
    """Turn the tenant's SCORM statements on or off; None removes its choice (the instance default applies)."""
    now = inst.clock.now()

    def write(conn: apsw.Connection) -> None:
        if value is None:
            conn.execute("DELETE FROM xapi_scorm_settings")
            return
        conn.execute(
            "INSERT INTO xapi_scorm_settings (id, enabled, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
            (int(value), now),
        )

    inst.tenant_db(tenant_id).write_sync(write)


def settings_json(inst: Instance, tenant_id: str) -> dict[str, Any]:
    """The switch as `GET /api/v1/xapi/scorm` shows it."""

    def read(conn: apsw.Connection) -> tuple[dict[str, Any] | None, int]:
        row = one(conn, "SELECT enabled FROM xapi_scorm_settings WHERE id = 1")
        return row, conn.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0]

    row, queued = inst.tenant_db(tenant_id).read_sync(read)
    own = None if row is None else bool(row["enabled"])
    return {
        "enabled": inst.config.xapi_scorm_statements if own is None else own,
        "tenant_setting": own,
        "instance_default": inst.config.xapi_scorm_statements,
        "home_page": home_page(inst),
        "queued": queued,
    }


def home_page(inst: Instance) -> str:
    """The actor accounts' home page and the base of activity IRIs: `xapi_scorm_home_page`, else the
    public URL, else the address the server listens on."""
    config = inst.config
    return (config.xapi_scorm_home_page or config.public_url or f"http://{config.host}:{config.port}").rstrip("/")


# -- the sweep ---------------------------------------------------------------------------------------


def flush_all(inst: Instance) -> int:
    """Periodic sweep: store every tenant's queued SCORM statements; returns how many were stored."""
    found = inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants ORDER BY created_at"))
    total = 0
    for tenant_id in (r["id"] for r in found if inst.has_tenant_db(r["id"])):
        try:
            total += flush(inst, tenant_id)
        except Exception:
            log.exception("storing the SCORM statements of tenant %s failed", tenant_id)
    return total


def flush(inst: Instance, tenant_id: str) -> int:
    """Store the tenant's queued statements, oldest first, FLUSH_ROWS outbox rows per transaction.

    A batch that fails is taken again one row at a time, so that a row which cannot be stored (it
    should never happen: the statements are built valid) is dropped, logged, instead of holding up
    every statement queued after it."""
    db = inst.tenant_db(tenant_id)
    if db.read_sync(lambda c: one(c, "SELECT 1 AS queued FROM xapi_scorm_outbox LIMIT 1")) is None:
        return 0
    on = enabled(inst, tenant_id)
    base = home_page(inst)
    total = 0
    while True:
        try:
            stored = db.write_sync(lambda c: _flush_batch(c, base, on, inst.clock.now(), FLUSH_ROWS))
        except Exception:
            stored = db.write_sync(lambda c: _flush_one(c, base, on, inst.clock.now(), tenant_id))
        if stored is None:
            return total
        total += stored


def _flush_batch(conn: apsw.Connection, base: str, on: bool, now: float, limit: int) -> int | None:
    """One transaction: convert and store up to `limit` rows and delete them; None when none is left."""
    batch = rows(conn, "SELECT seq, statements FROM xapi_scorm_outbox ORDER BY seq LIMIT ?", (limit,))
    if not batch:
        return None
    statements: list[dict[str, Any]] = []
    if on:
        for row in batch:
            decoded = _decode_row(row["statements"])
            statements += profile.to_statements(base, decoded.facts, decoded.events)
    if statements:
        insert_statements(conn, statements, stored=now, authority=AUTHORITY, credential_id=None, version=XAPI_VERSION)
    conn.execute("DELETE FROM xapi_scorm_outbox WHERE seq <= ?", (batch[-1]["seq"],))
    return len(statements)


def _flush_one(conn: apsw.Connection, base: str, on: bool, now: float, tenant_id: str) -> int | None:
    """The oldest row alone, in a savepoint: stored, or dropped (logged) when it cannot be."""
    try:
        with conn:  # a savepoint inside the write transaction
            return _flush_batch(conn, base, on, now, 1)
    except Exception:
        row = one(conn, "SELECT seq, session_id FROM xapi_scorm_outbox ORDER BY seq LIMIT 1")
        assert row is not None
        log.exception(
            "tenant %s: dropped SCORM statements of session %s (outbox row %d)",
            tenant_id,
            row["session_id"],
            row["seq"],
        )
        conn.execute("DELETE FROM xapi_scorm_outbox WHERE seq = ?", (row["seq"],))
        return 0
