"""What the LMS writes as results change: its own statements (launched, satisfied, abandoned, waived: cmi5
defined, §9.3), `satisfied` for the blocks and the course moveOn now satisfies (§9.3.9), and the session's
SCORM-shaped result fields with the same events and analytics as a SCORM session's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.core.cmi5 import au_rules, move_on
from appliance.core.cmi5 import vocabulary as v
from appliance.core.cmi5.course_structure import Course
from appliance.instance import Instance
from appliance.services.delivery.events import emit
from appliance.services.learning import analytics_index
from appliance.services.learning.cmi5_registrations.records import (
    au_progress,
    au_rows,
    lms_id,
    progress_json,
    registration_row,
    satisfied_nodes,
    session_row,
)
from appliance.services.learning.session_view import RESULT_EVENTS, result_event
from appliance.services.lrs.credentials import AUTHORITY_HOME_PAGE
from appliance.services.lrs.statements import insert_statements

XAPI_VERSION = "1.0.3"


AUTHORITY = {"objectType": "Agent", "name": "cmi5 LMS", "account": {"homePage": AUTHORITY_HOME_PAGE, "name": "cmi5"}}


def write_lms_statement(
    conn: apsw.Connection,
    state: au_rules.AuSession,
    verb: str,
    now: float,
    *,
    object_id: str | None = None,
    object_type: str | None = None,
    extensions: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    move_on: bool = False,
) -> str:
    """A statement the LMS writes (launched, satisfied, abandoned, waived): cmi5 defined, in the AU
    session's context (its session id, registration, the publisher grouping)."""
    context = state.context_template()
    context = {
        "registration": state.registration,
        "contextActivities": {
            **context["contextActivities"],
            "category": [{"id": v.CATEGORY_CMI5}, *([{"id": v.CATEGORY_MOVE_ON}] if move_on else [])],
        },
        "extensions": {**context["extensions"], **(extensions or {})},
    }
    obj: dict[str, Any] = {"objectType": "Activity", "id": object_id or state.activity_id}
    if object_type:
        obj["definition"] = {"type": object_type}
    statement: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": state.actor,
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1]}},
        "object": obj,
        "context": context,
        "timestamp": rfc3339(now),
    }
    if result:
        statement["result"] = result
    insert_statements(conn, [statement], stored=now, authority=AUTHORITY, credential_id=None, version=XAPI_VERSION)
    return str(statement["id"])


def write_satisfied(
    inst: Instance, conn: apsw.Connection, course: Course, session_id: str, au_session_id: str, now: float
) -> list[str]:
    """`satisfied` for every block and the course newly satisfied (inner blocks first, the course last:
    §9.3.9); the AUs newly satisfied are recorded without a statement. Returns every id newly satisfied."""
    aus = au_rows(conn, session_id)
    reg = registration_row(conn, session_id)
    done = satisfied_nodes(conn, session_id)
    now_satisfied = move_on.satisfied(course, au_progress(aus))
    order = [n for n in move_on._bottom_up(course) if n in now_satisfied and n not in done]
    positions = {b.id: i for i, b in enumerate(course.blocks())}
    first_au = next(iter(aus.values()))
    for node_id in order:
        if node_id in aus:  # an AU's satisfaction is its own statements': `satisfied` is for blocks and the course
            conn.execute(
                "INSERT OR IGNORE INTO cmi5_satisfied (session_id, node_id, satisfied_at) VALUES (?, ?, ?)",
                (session_id, node_id, now),
            )
            continue
        if node_id == course.id:
            object_id, object_type, publisher = lms_id(inst, reg["registration"], "course"), v.TYPE_COURSE, node_id
        else:
            object_id = lms_id(inst, reg["registration"], "block", positions[node_id])
            object_type, publisher = v.TYPE_BLOCK, node_id
        state = au_rules.AuSession(
            registration=reg["registration"],
            session_id=au_session_id,
            activity_id=first_au["activity_id"],
            publisher_id=publisher,
            actor=json.loads(reg["actor"]),
        )
        write_lms_statement(conn, state, v.SATISFIED, now, object_id=object_id, object_type=object_type)
        conn.execute(
            "INSERT OR IGNORE INTO cmi5_satisfied (session_id, node_id, satisfied_at) VALUES (?, ?, ?)",
            (session_id, node_id, now),
        )
    return order


def _results(course: Course, aus: dict[str, dict[str, Any]], satisfied: set[str], launched: bool) -> dict[str, Any]:
    """The session's SCORM-shaped result fields from its AUs (one model for integrators)."""
    if not launched and course.id not in satisfied:
        return {"status": "not_started", "completion_status": "unknown", "success_status": "unknown"}
    course_done = course.id in satisfied
    all_completed = all(r["completed"] or r["waived"] for r in aus.values())
    completion = "completed" if course_done or all_completed else "incomplete"
    judged = [r for r in aus.values() if r["passed"] or r["failed"]]
    if any(r["failed"] and not r["passed"] for r in judged):
        success = "failed"
    elif (
        judged
        and all(r["passed"] for r in judged)
        and (course_done or all(r["passed"] or r["waived"] for r in aus.values()))
    ):
        success = "passed"
    else:
        success = "unknown"
    status = success if success in ("passed", "failed") else completion
    scored = [r for r in aus.values() if r["score_scaled"] is not None]
    single = scored[0] if len(aus) == 1 and scored else None
    return {
        "status": status,
        "completion_status": completion,
        "success_status": success,
        "score_raw": single["score_raw"] if single else None,
        "score_min": single["score_min"] if single else None,
        "score_max": single["score_max"] if single else None,
        "score_scaled": sum(r["score_scaled"] for r in scored) / len(scored) if scored else None,
        "total_time_seconds": sum(r["time_seconds"] for r in aus.values()),
    }


def refresh(conn: apsw.Connection, course: Course, session_id: str, now: float, spent: float = 0.0) -> None:
    """The session's results from its AUs; `spent` seconds of the AU's own activity added to its server time."""
    session = session_row(conn, session_id)
    aus = au_rows(conn, session_id)
    launched = any(r["launches"] for r in aus.values())
    fields = _results(course, aus, satisfied_nodes(conn, session_id), launched)
    fields = {k: val for k, val in fields.items() if session.get(k) != val}
    fields["last_activity_at"] = now
    if spent:
        fields["server_time_seconds"] = session["server_time_seconds"] + spent
    update_session(conn, session, fields, now)


def update_session(conn: apsw.Connection, session: dict[str, Any], fields: dict[str, Any], now: float) -> None:
    """Set the session's columns, bump its version; the same events and analytics as a SCORM session."""
    fields = {**fields, "updated_at": now}
    assignments = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(
        f"UPDATE sessions SET {assignments}, version = version + 1 WHERE id = ?", (*fields.values(), session["id"])
    )
    updated = session_row(conn, session["id"])
    analytics_index.index_session(conn, updated, now, None, interactions=False)
    if updated["status"] != session["status"] and updated["status"] in RESULT_EVENTS:
        emit(
            conn,
            RESULT_EVENTS[updated["status"]],
            result_event(updated, progress_json(conn, session["id"])),
            now=now,
            subject_id=session["id"],
        )


def iso_seconds(seconds: float) -> str:
    return f"PT{round(seconds, 2):g}S"
