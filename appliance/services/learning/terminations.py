"""A Terminate: the SCO session ended by the attempt rules, sequencing told, and the next delivery
prepared, in the commit that carries it.

A module of its own because a Terminate is the costly commit (it sequences): it is computed on a
snapshot or in a worker process and then swapped in (`appliance.services.learning.runtime`), while a
plain commit (`appliance.services.learning.commits`) stays short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import apsw
import msgspec

from appliance.core.scorm.attempt import end_session, names
from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.services.learning.deliveries import deliver
from appliance.services.learning.engine_state import load_engine, root_rollup, save_engine
from appliance.services.learning.player_requests import CommitIn
from appliance.services.learning.player_state import player_state
from appliance.services.learning.sessions import refresh_results, session_row
from appliance.services.learning.signs_of_life import touch
from appliance.services.library.courses import Course
from appliance.services.lrs import scorm_statements

_OBJECTIVE_FIELD = re.compile(r"^cmi\.objectives\.(\d+)\.")


class Terminated(msgspec.Struct):
    """What a Terminate decided (the SCO's ended CMI, sequencing, the delivery, the player state), before
    the session's sign of life and results are written."""

    course: Course
    session: dict[str, Any]
    seqs: dict[str, int]
    rollup: dict[str, Any] | None
    delivery: dict[str, Any] | None
    answer: dict[str, Any]
    now: float


class UnderLock(Exception):
    """This commit is not a Terminate that sequences (or cannot be computed on a snapshot): run it whole
    under the writer lock."""


def terminate_compute(
    conn: Any,
    course: Course,
    session: dict[str, Any],
    seqs: dict[str, int],
    body: CommitIn,
    cmi: dict[str, str],
    row: dict[str, Any],
    reported: list[str],
    now: float,
    budget: Callable[[], None] | None,
) -> Terminated:
    """The costly part of a Terminate, on `conn` (a `Snapshot`, or the writer's connection): the attempt
    rules, sequencing, the next delivery, the engine's state, and the player state from one look-ahead."""
    engine = load_engine(conn, course, session)
    engine.tracking.budget = budget
    nav = _terminate(conn, course, session, engine, body, cmi, row, reported, now)
    with engine.tracking.frozen():  # the state is final: one look-ahead table for the CMI, controls and TOC
        delivery = deliver(conn, course, session, engine, nav, now) if nav.delivered else None
        save_engine(conn, course, session, engine, now)
        state = player_state(course, session, engine, nav, body.toc_key)
    engine.tracking.budget = None
    answer = {"replayed": False, "delivery": delivery, **state}
    return Terminated(
        course=course, session=session, seqs=seqs, rollup=root_rollup(engine), delivery=delivery, answer=answer, now=now
    )


def terminate_finish(conn: apsw.Connection, done: Terminated, ttl: int) -> dict[str, Any]:
    """The rest of a Terminate's write transaction: sign of life and results; the answer takes the new version."""
    touch(conn, done.session, ttl, done.now, seqs=done.seqs)
    session = session_row(conn, done.session["id"])
    updated = refresh_results(conn, done.course, session, done.now, done.rollup)
    scorm_statements.on_step(conn, done.course, session, done.delivery, done.now)
    return {**done.answer, "version": updated["version"], "status": updated["status"]}


def _terminate(
    conn: apsw.Connection,
    course: Course,
    session: dict[str, Any],
    engine: SequencingEngine,
    body: CommitIn,
    cmi: dict[str, str],
    row: dict[str, Any],
    reported: list[str],
    now: float,
) -> NavResult:
    """End the SCO session (attempt rules) and tell sequencing, which decides what comes next."""
    elapsed = max(0.0, now - row["launched_at"]) if row["launched_at"] and course.scorm_version != SCORM_12 else None
    before = cmi
    ended = end_session(course.scorm_version, cmi, elapsed_seconds=elapsed)
    cmi = ended.cmi
    # Statuses the attempt rules evaluated count as reported, like the ones the SCO set itself.
    reported = sorted(set(reported) | {k for k, v in cmi.items() if k.endswith("_status") and before.get(k) != v})
    request = body.nav_request or (ended.nav_request if ended.nav_request not in ("", "_none_") else None)
    exit_name = names(course.scorm_version)["exit"]
    if request == "suspendAll" and cmi.get(exit_name) != "logout":
        cmi[exit_name] = "suspend"
    conn.execute(
        "UPDATE session_activities SET cmi = ?, state = 'terminated', updated_at = ? WHERE session_id = ? AND activity_id = ?",
        (json.dumps(cmi, separators=(",", ":")), now, session["id"], body.activity),
    )
    scorm_statements.on_terminate(conn, course, session, body.activity, row, before, ended, cmi, elapsed, now)
    return engine.terminate(body.activity, _set_by_sco(cmi, reported), request or "_none_", now=now)


def _set_by_sco(cmi: dict[str, str], reported: list[str]) -> dict[str, str]:
    """Only what the SCO set: sequencing must not mistake an initial "unknown" for a report.

    The id of every objective the SCO reported a field of goes along too (sequencing maps a reported
    cmi.objectives.n to the activity's objective by its id, which the LMS may have supplied itself)."""
    values = {k: cmi[k] for k in reported if k in cmi}
    for key in reported:
        match = _OBJECTIVE_FIELD.match(key)
        if match:
            id_key = f"cmi.objectives.{match.group(1)}.id"
            if id_key in cmi:
                values[id_key] = cmi[id_key]
    return values
