"""The learner's sequencing engine as stored: built from the session row (and the learner's global
objectives and shared data, where the course makes them global), saved back, and its root's rollup.

A module of its own because launch, navigation, a Terminate and a plain commit of a multi-SCO course
all rebuild the engine the same way.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from appliance.core.scorm.sequencing.engine import SequencingEngine
from appliance.services.library.courses import Course
from appliance.storage.sqlite.connection import one


def _learner_state(conn: apsw.Connection, learner_id: str, kind: str) -> dict[str, Any]:
    row = one(conn, "SELECT data FROM learner_state WHERE learner_id = ? AND kind = ?", (learner_id, kind))
    return json.loads(row["data"]) if row else {}


def load_engine(conn: apsw.Connection, course: Course, session: dict[str, Any]) -> SequencingEngine:
    """The learner's sequencing engine, with global objectives and shared data scoped as the course says."""
    shared = json.loads(session["shared_state"]) if session["shared_state"] else {}
    tree = course.tree
    objectives = (
        _learner_state(conn, session["learner_id"], "objectives")
        if tree.objectives_global_to_system
        else shared.get("objectives", {})
    )
    data = (
        _learner_state(conn, session["learner_id"], "shared_data")
        if tree.shared_data_global_to_system
        else shared.get("shared_data", {})
    )
    state = json.loads(session["sequencing_state"]) if session["sequencing_state"] else None
    return SequencingEngine(tree, state, global_objectives=objectives, shared_data=data)


def save_engine(
    conn: apsw.Connection, course: Course, session: dict[str, Any], engine: SequencingEngine, now: float
) -> None:
    shared = json.loads(session["shared_state"]) if session["shared_state"] else {}
    for kind, value, is_global in (
        ("objectives", engine.global_objectives, course.tree.objectives_global_to_system),
        ("shared_data", engine.shared_data, course.tree.shared_data_global_to_system),
    ):
        if is_global:
            conn.execute(
                "INSERT INTO learner_state (learner_id, kind, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (learner_id, kind) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                (session["learner_id"], kind, json.dumps(value), now),
            )
        else:
            shared[kind] = value
    conn.execute(
        "UPDATE sessions SET sequencing_state = ?, shared_state = ?, current_activity = ? WHERE id = ?",
        (json.dumps(engine.dump_state()), json.dumps(shared), engine.current, session["id"]),
    )


def root_rollup(engine: SequencingEngine) -> dict[str, Any] | None:
    """The root activity's rolled-up status, when sequencing knows it."""
    root = engine.tree.root
    completed = engine.tracking.completed(root)
    satisfied = engine.tracking.satisfied(root)
    rollup: dict[str, Any] = {}
    if completed is not None:
        rollup["completion_status"] = "completed" if completed else "incomplete"
    if satisfied is not None:
        rollup["success_status"] = "passed" if satisfied else "failed"
    return rollup or None
