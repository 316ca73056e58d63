"""A sequencing step (launch, navigation) computed on a read snapshot, and the rest of its write
transaction; its CPU budget and the attempts allowed before it runs under the writer lock.

A module of its own because the step is the part that grows with the course: it is computed outside the
tenant's writer lock (here, or in a worker process by `sequencing_jobs`) and only then written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.errors import SequencingTooCostly
from appliance.instance import Instance
from appliance.services.learning.deliveries import deliver
from appliance.services.learning.engine_state import load_engine, root_rollup, save_engine
from appliance.services.learning.player_state import player_state
from appliance.services.learning.sessions import check_live, check_version, refresh_results, session_row
from appliance.services.learning.signs_of_life import touch
from appliance.services.library.courses import Course, load_course
from appliance.services.lrs import scorm_statements

# CPU seconds one launch or navigation may spend sequencing (and on its look-ahead) before it is refused with
# SEQUENCING_TOO_COSTLY; a 5,000-activity course (the package limit) needs well under a tenth of this.
SEQUENCING_CPU_SECONDS = 2.0
# Optimistic attempts before the step is run under the tenant's writer lock (a learner whose other requests
# keep changing the session between our read and our write must still get an answer).
SEQUENCING_ATTEMPTS = 3


class Computed(msgspec.Struct):
    """What a sequencing step decided, before anything is written (`rollup`: the root's, for the results).

    From a worker process the answer's values arrive encoded (`msgspec.Raw`), the delivery decoded."""

    session: dict[str, Any]
    rollup: dict[str, Any] | None
    delivery: dict[str, Any] | None
    answer: dict[str, Any]


class Retry(Exception):
    """The snapshot is stale (the session changed, or its package version): compute again."""


def cpu_budget(course: Course, seconds: float | None = None) -> Callable[[], None]:
    """The engine's budget check: SEQUENCING_TOO_COSTLY once this thread has spent its CPU seconds
    (SEQUENCING_CPU_SECONDS, or `seconds`: the server's setting, given to a worker process)."""
    budget = SEQUENCING_CPU_SECONDS if seconds is None else seconds
    deadline = time.thread_time() + budget

    def check() -> None:
        if time.thread_time() > deadline:
            raise SequencingTooCostly(
                "sequencing this course took longer than the server allows for one request",
                {"budget_seconds": budget, "activities": len(course.tree.preorder)},
            )

    return check


@dataclass(frozen=True)
class Launch:
    """The launch step (plain data, so a worker process can be told to run it)."""

    def __call__(self, engine: SequencingEngine, now: float) -> NavResult:
        return engine.launch(now=now)


@dataclass(frozen=True)
class Navigate:
    """A navigation request as a step (plain data, as `Launch`)."""

    request: str
    target: str | None = None

    def __call__(self, engine: SequencingEngine, now: float) -> NavResult:
        return engine.navigate(self.request, self.target, now=now)


def compute_step(
    conn: Any,
    course: Course,
    session_id: str,
    step: Callable[[SequencingEngine, float], NavResult],
    now: float,
    version: int | None,
    budget: Callable[[], None],
    toc_key: str | None = None,
) -> Computed:
    """Run the step and everything the answer needs (delivery CMI, controls, TOC, request_valid) on `conn`:
    a `Snapshot`, or the writer's connection when the step runs under the lock."""
    session = session_row(conn, session_id)
    check_live(session, now)
    if version is not None:
        check_version(session, version)
    if (session["package_id"], session["package_version"]) != (course.package_id, course.version):
        raise Retry
    engine = load_engine(conn, course, session)
    engine.tracking.budget = budget
    nav = step(engine, now)
    with engine.tracking.frozen():  # the state is final: one look-ahead table for the CMI, controls and TOC
        delivery = deliver(conn, course, session, engine, nav, now) if nav.delivered else None
        save_engine(conn, course, session, engine, now)
        answer = {"delivery": delivery, **player_state(course, session, engine, nav, toc_key)}
    engine.tracking.budget = None
    return Computed(session=session, rollup=root_rollup(engine), delivery=delivery, answer=answer)


def finish_step(
    conn: apsw.Connection, course: Course, done: Computed, ttl: int, now: float, launching: bool
) -> dict[str, Any]:
    """The rest of the write transaction: sign of life, status, results; the answer takes the new version."""
    session = done.session
    scorm_statements.on_step(conn, course, session, done.delivery, now, launching=launching)
    touch(conn, session, ttl, now, launching=launching)
    if session["status"] == "not_started" and done.delivery is not None:
        conn.execute("UPDATE sessions SET status = 'incomplete' WHERE id = ?", (session["id"],))
    updated = refresh_results(conn, course, session_row(conn, session["id"]), now, done.rollup)
    return {**done.answer, "version": updated["version"], "status": updated["status"]}


def current_course(inst: Instance, tenant_id: str, session_id: str) -> Course:
    """The course of the session's package version as it is now (it may have been upgraded)."""
    session = inst.tenant_db(tenant_id).read_sync(lambda conn: session_row(conn, session_id))
    return load_course(inst, tenant_id, session["package_id"], session["package_version"])
