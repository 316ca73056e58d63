"""A registration's rows on the tenant database: the course structure of its version, its AUs' progress, what is
satisfied, and the session JSON's `cmi5` member (progress_json, progress_of for a page of sessions).
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.core.cmi5 import au_rules, move_on
from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.core.cmi5.course_structure import Au, Course
from appliance.errors import NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.lrs.scorm_statements import home_page
from appliance.storage.sqlite.connection import one, rows


def course_of(conn: apsw.Connection, package_id: str, version: int) -> Course | None:
    """The course structure of a ready cmi5 version; None for SCORM (or a version not ready)."""
    row = one(
        conn,
        "SELECT status, standard, course FROM package_versions WHERE package_id = ? AND version = ?",
        (package_id, version),
    )
    if row is None or row["standard"] != cmi5_packaging.STANDARD or row["status"] != "ready" or not row["course"]:
        return None
    return cmi5_packaging.decode(row["course"])


def is_registration(conn: apsw.Connection, session_id: str) -> bool:
    """Whether the session is a cmi5 registration."""
    return one(conn, "SELECT 1 AS x FROM cmi5_registrations WHERE session_id = ?", (session_id,)) is not None


def course_for_session(conn: apsw.Connection, session: dict[str, Any]) -> Course:
    course = course_of(conn, session["package_id"], session["package_version"])
    if course is None:
        raise NotFound("the session is not a cmi5 registration", {"session_id": session["id"]})
    return course


def session_row(conn: apsw.Connection, session_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        raise NotFound(f"no session {session_id!r}", {"session_id": session_id})
    return row


def registration_row(conn: apsw.Connection, session_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM cmi5_registrations WHERE session_id = ?", (session_id,))
    if row is None:
        raise NotFound("the session is not a cmi5 registration", {"session_id": session_id})
    return row


def au_rows(conn: apsw.Connection, session_id: str) -> dict[str, dict[str, Any]]:
    found = rows(conn, "SELECT * FROM cmi5_aus WHERE session_id = ? ORDER BY position", (session_id,))
    return {r["au_id"]: r for r in found}


def au_progress(aus: dict[str, dict[str, Any]]) -> dict[str, move_on.AuProgress]:
    return {
        au_id: move_on.AuProgress(completed=bool(r["completed"]), passed=bool(r["passed"]), waived=bool(r["waived"]))
        for au_id, r in aus.items()
    }


def satisfied_nodes(conn: apsw.Connection, session_id: str) -> set[str]:
    return {r["node_id"] for r in rows(conn, "SELECT node_id FROM cmi5_satisfied WHERE session_id = ?", (session_id,))}


def progress_json(
    conn: apsw.Connection, session_id: str, courses: dict[tuple[str, int], Course | None] | None = None
) -> dict[str, Any] | None:
    """The session JSON's `cmi5` member: the registration and each AU's progress (None for SCORM).
    `courses` keeps the course structures read, by (package, version), for a page of sessions."""
    reg = one(conn, "SELECT * FROM cmi5_registrations WHERE session_id = ?", (session_id,))
    if reg is None:
        return None
    session = session_row(conn, session_id)
    key = (session["package_id"], session["package_version"])
    courses = {} if courses is None else courses
    if key not in courses:
        courses[key] = course_of(conn, *key)
    course = courses[key]
    satisfied = satisfied_nodes(conn, session_id)
    aus = []
    for r in au_rows(conn, session_id).values():
        aus.append(
            {
                "au_id": r["au_id"],
                "activity_id": r["activity_id"],
                "completion_status": "completed" if r["completed"] else ("incomplete" if r["launches"] else "unknown"),
                "success_status": "passed" if r["passed"] else ("failed" if r["failed"] else "unknown"),
                "score": {
                    "raw": r["score_raw"],
                    "min": r["score_min"],
                    "max": r["score_max"],
                    "scaled": r["score_scaled"],
                },
                "waived": bool(r["waived"]),
                "waive_reason": r["waive_reason"],
                "satisfied": r["au_id"] in satisfied,
                "launches": r["launches"],
                "time_seconds": r["time_seconds"],
            }
        )
    open_session = one(
        conn,
        "SELECT id, au_id, launched_at FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL "
        "ORDER BY launched_at DESC LIMIT 1",
        (session_id,),
    )
    return {
        "registration": reg["registration"],
        "course_id": course.id if course is not None else None,
        "satisfied": course is not None and course.id in satisfied,
        "actor": json.loads(reg["actor"]),
        "aus": aus,
        "blocks": [{"block_id": b.id, "satisfied": b.id in satisfied} for b in (course.blocks() if course else [])],
        "open_au_session": (
            {
                "id": open_session["id"],
                "au_id": open_session["au_id"],
                "launched_at": rfc3339(open_session["launched_at"]),
            }
            if open_session
            else None
        ),
    }


def progress_of(conn: apsw.Connection, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The `cmi5` member of each registration among the sessions, by session id (SCORM ones have none):
    one query finds the registrations of a page of sessions, each course structure is read once."""
    if not session_ids:
        return {}
    marks = ", ".join("?" * len(session_ids))
    found = rows(conn, f"SELECT session_id FROM cmi5_registrations WHERE session_id IN ({marks})", tuple(session_ids))
    courses: dict[tuple[str, int], Course | None] = {}
    progress = {r["session_id"]: progress_json(conn, r["session_id"], courses) for r in found}
    return {session_id: p for session_id, p in progress.items() if p is not None}


def lms_id(inst: Instance, registration: str, kind: str, position: int | None = None) -> str:
    """An LMS-generated activity id for an AU, block or the course of one registration (§8.1.5)."""
    base = f"{home_page(inst)}/cmi5/registrations/{registration}/{kind}"
    return base if position is None else f"{base}/{position}"


def pick_au(course: Course, satisfied: set[str], wanted: str | None) -> Au:
    aus = course.aus()
    if wanted is not None:
        for position, au in enumerate(aus):
            if wanted in (au.id, str(position)):
                return au
        raise ValidationFailed(
            f"the course has no AU {wanted!r}", {"errors": [{"field": "au"}], "aus": [au.id for au in aus]}
        )
    return next((au for au in aus if au.id not in satisfied), aus[0])


def au_state(
    reg: dict[str, Any], au_row: dict[str, Any], au: Au, au_session_id: str, launch_mode: str, **changes: Any
) -> au_rules.AuSession:
    return au_rules.AuSession(
        registration=reg["registration"],
        session_id=au_session_id,
        activity_id=au_row["activity_id"],
        publisher_id=au.id,
        actor=json.loads(reg["actor"]),
        mastery_score=au.mastery_score,
        launch_mode=launch_mode,
        **changes,
    )
