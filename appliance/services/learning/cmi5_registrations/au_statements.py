"""The AU's statements (cmi5 §9): every statement sent with a token is checked and recorded by the AU rules
(appliance.core.cmi5.au_rules) in the insert's transaction; then `satisfied` for what became satisfied, the
session's results, and its server time (as a SCORM session's: the time between signs of life).
"""

from __future__ import annotations

import json
import re
from typing import Any

import apsw

from appliance.core.cmi5 import au_rules
from appliance.core.cmi5 import vocabulary as v
from appliance.instance import Instance
from appliance.services.learning.cmi5_registrations.records import (
    au_rows,
    au_state,
    course_for_session,
    registration_row,
    session_row,
)
from appliance.services.learning.cmi5_registrations.results import refresh, write_satisfied
from appliance.services.learning.cmi5_registrations.tokens import AuGrant
from appliance.storage.sqlite.connection import one

IDLE_SECONDS = (
    30 * 60
)  # a gap this long is not counted as time spent (as appliance.services.learning.signs_of_life's SCORM sessions)


def _time_spent(session: dict[str, Any], now: float) -> float:
    """The server time an AU's statement adds (the session's `server_time_seconds`, as for SCORM): the time
    since the last sign of life (the AU's launch or its previous statement), a gap over IDLE_SECONDS not
    counted. A launch is a sign of life, never time spent: nothing runs between one AU session and the next."""
    last = session["last_activity_at"]
    return 0.0 if last is None else min(max(0.0, now - last), IDLE_SECONDS)


def store_statements(
    inst: Instance, conn: apsw.Connection, grant: AuGrant, statements: list[dict[str, Any]], insert: Any, now: float
) -> list[str]:
    """Check (au_rules.check: Rejected → 403) and record each statement, store them with `insert`, then
    write `satisfied` for what became satisfied and update the session's results: one transaction."""
    row = one(conn, "SELECT * FROM cmi5_au_sessions WHERE id = ?", (grant.au_session_id,))
    assert row is not None
    session = session_row(conn, grant.session_id)
    course = course_for_session(conn, session)
    reg = registration_row(conn, grant.session_id)
    au_row = au_rows(conn, grant.session_id)[grant.au_id]
    au = next(a for a in course.aus() if a.id == grant.au_id)
    state = au_state(
        reg,
        au_row,
        au,
        grant.au_session_id,
        row["launch_mode"],
        initialized=bool(row["initialized"]),
        ended=row["ended"],
        verbs=frozenset(json.loads(row["verbs"])),
    )
    registration = au_rules.AuRegistration(
        completed=bool(au_row["completed"]), passed=bool(au_row["passed"]), failed=bool(au_row["failed"])
    )
    before = (state, registration)
    scores: dict[str, Any] = {}
    duration = 0.0
    for statement in statements:
        au_rules.check(statement, state, registration)
        if not state.initialized and row["preferences_read_at"] is None:  # the check passed: initialized
            raise au_rules.Rejected(
                "11.0.0.0-3 (d2)", "the AU must ask for cmi5LearnerPreferences (the Agent Profile) before initialized"
            )
        state, registration = au_rules.record(statement, state, registration)
        if au_rules.cmi5_defined(statement):
            verb = statement["verb"]["id"]
            result = statement.get("result") or {}
            if verb in (v.PASSED, v.FAILED) and isinstance(result.get("score"), dict):
                scores = result["score"]
            if verb == v.TERMINATED:
                duration = _seconds(result.get("duration"))
    ids = insert(statements)
    spent = _time_spent(session, now)
    if (state, registration) == before:  # a statement of the AU's own (or one that moved nothing): time only
        conn.execute(
            "UPDATE sessions SET server_time_seconds = server_time_seconds + ?, last_activity_at = ?, "
            "updated_at = ?, version = version + 1 WHERE id = ?",
            (spent, now, now, grant.session_id),
        )
        return ids
    conn.execute(
        "UPDATE cmi5_au_sessions SET initialized = ?, verbs = ?, ended = ?, ended_at = ? WHERE id = ?",
        (
            int(state.initialized),
            json.dumps(sorted(state.verbs)),
            state.ended,
            now if state.ended else None,
            grant.au_session_id,
        ),
    )
    conn.execute(
        "UPDATE cmi5_aus SET completed = ?, passed = ?, failed = ?, time_seconds = time_seconds + ?, "
        "score_scaled = coalesce(?, score_scaled), score_raw = coalesce(?, score_raw), "
        "score_min = coalesce(?, score_min), score_max = coalesce(?, score_max) WHERE session_id = ? AND au_id = ?",
        (
            int(registration.completed),
            int(registration.passed),
            int(registration.failed),
            duration,
            scores.get("scaled"),
            scores.get("raw"),
            scores.get("min"),
            scores.get("max"),
            grant.session_id,
            grant.au_id,
        ),
    )
    write_satisfied(inst, conn, course, grant.session_id, grant.au_session_id, now)
    refresh(conn, course, grant.session_id, now, spent)
    return ids


def _seconds(duration: object) -> float:
    """An ISO 8601 duration's seconds (0 when absent or unreadable)."""
    if not isinstance(duration, str):
        return 0.0

    match = re.fullmatch(
        r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?", duration
    )
    if match is None:
        return 0.0
    d, h, m, s = (float(x) if x else 0.0 for x in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s
