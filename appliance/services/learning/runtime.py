"""The run-time service behind the player: launch, commits from the browser API, and navigation.

Each operation here decides where its work runs. A plain commit is one transaction on the tenant's writer
(`commits`: the hot path, nothing else in between); a launch, a navigation (`sequencing_steps`) and a
Terminate (`terminations`) are computed on a read snapshot, or in a worker process for a large course
(`sequencing_jobs`), and swapped in with a compare-and-swap, falling back to the writer lock after
SEQUENCING_ATTEMPTS lost races. The answer tells the player what to deliver next.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import apsw
import msgspec

from appliance.core.scorm.elements import datamodel_table
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.core.scorm.sequencing.navigation import NAV_REQUESTS
from appliance.errors import NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.learning.commits import check_nav_request, commit_txn, request_name, suspend_data_limit
from appliance.services.learning.player_requests import CommitIn, NavigateIn
from appliance.services.learning.sequencing_jobs import Job, in_process, swap_in
from appliance.services.learning.sequencing_snapshot import on_snapshot
from appliance.services.learning.sequencing_steps import (
    SEQUENCING_ATTEMPTS,
    Launch,
    Navigate,
    Retry,
    compute_step,
    cpu_budget,
    current_course,
    finish_step,
)
from appliance.services.learning.sessions import check_live, session_row
from appliance.services.learning.signs_of_life import session_ttl
from appliance.services.learning.terminations import UnderLock, terminate_finish
from appliance.services.library.courses import Course, load_course
from appliance.storage.sqlite.connection import one
from appliance.storage.sqlite.database import Database

_encode = msgspec.json.encode


def launch(inst: Instance, tenant_id: str, session_id: str) -> dict[str, Any]:
    """Start or resume the course: the activity to deliver with its CMI, and the player state."""
    return _sequencing_step(inst, tenant_id, session_id, Launch(), launching=True)


def commit(inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int | None = None) -> dict[str, Any]:
    """Apply a batch of CMI changes; on Terminate, end the SCO session and run sequencing."""
    if body.terminate:
        return _terminate_step(inst, tenant_id, session_id, body, ttl)
    return inst.tenant_db(tenant_id).write_sync(commit_txn(inst, tenant_id, session_id, body, ttl))


async def commit_async(
    inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int
) -> dict[str, Any] | msgspec.Raw:
    """`commit` for the event loop: a plain commit is one hop to the tenant's writer and nothing else (the
    hot path); a Terminate sequences, in a worker thread, off the loop and outside the writer lock, and its
    answer is encoded there too (`msgspec.Raw`: the player state of a large course, with the TOC's outline
    when the player does not hold it, is 100 KB at 5,000 activities)."""
    if body.terminate:
        return await asyncio.to_thread(_encoded, _terminate_step, inst, tenant_id, session_id, body, ttl)
    # A plain commit writes its session's rows only (and outbox rows, atomic counters): on PostgreSQL the
    # commits of one tenant's sessions then run in parallel (PgDatabase.write_sync's `subject`).
    return await inst.tenant_db(tenant_id).write(commit_txn(inst, tenant_id, session_id, body, ttl), subject=session_id)


def _encoded(work: Callable[..., dict[str, Any]], *args: Any) -> msgspec.Raw:
    """`work`'s answer as JSON, encoded in the calling (worker) thread."""
    return msgspec.Raw(_encode(work(*args)))


def navigate(inst: Instance, tenant_id: str, session_id: str, body: NavigateIn) -> dict[str, Any]:
    """A request from the player's controls (the running SCO, if any, has already terminated)."""
    if request_name(body.request) not in NAV_REQUESTS:
        raise ValidationFailed(f"unknown navigation request {body.request!r}", {"errors": [{"field": "request"}]})
    return _sequencing_step(
        inst,
        tenant_id,
        session_id,
        Navigate(body.request, body.target),
        version=body.version,
        toc_key=body.toc_key,
    )


def bootstrap(inst: Instance, tenant_id: str, session_id: str) -> dict[str, Any]:
    """What the player page needs before anything runs: version, data-model table, course outline."""
    db = inst.tenant_db(tenant_id)
    session = db.read_sync(lambda c: session_row(c, session_id))
    check_live(session, inst.clock.now())
    course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
    limit = db.read_sync(lambda c: suspend_data_limit(inst, tenant_id, c, course, session["package_id"]))
    return {
        "session_id": session_id,
        "scorm_version": course.scorm_version,
        "title": course.manifest.title,
        "table": datamodel_table(course.scorm_version, suspend_data_limit=limit),
        "multi_sco": len(course.launchable) > 1,
        # The player sends a sign of life well within this, so an open page does not expire.
        "ttl_seconds": session_ttl(inst, tenant_id),
    }


def activity_state(inst: Instance, tenant_id: str, session_id: str, activity: str) -> dict[str, Any]:
    """The stored CMI and version of one SCO (the player re-reads it after a 409)."""

    def read(conn: apsw.Connection) -> dict[str, Any]:
        session = session_row(conn, session_id)
        row = one(
            conn, "SELECT * FROM session_activities WHERE session_id = ? AND activity_id = ?", (session_id, activity)
        )
        if row is None:
            raise NotFound(f"activity {activity!r} was not launched in this session")
        return {
            "version": session["version"],
            "activity": activity,
            "cmi": json.loads(row["cmi"]),
            "state": row["state"],
        }

    return inst.tenant_db(tenant_id).read_sync(read)


def package_files(inst: Instance, tenant_id: str, session_id: str) -> Course:
    """The course whose files this session may read."""
    session = inst.tenant_db(tenant_id).read_sync(lambda c: session_row(c, session_id))
    return load_course(inst, tenant_id, session["package_id"], session["package_version"])


def _sequencing_step(
    inst: Instance,
    tenant_id: str,
    session_id: str,
    step: Callable[[SequencingEngine, float], NavResult],
    *,
    version: int | None = None,
    launching: bool = False,
    toc_key: str | None = None,
) -> dict[str, Any]:
    """One sequencing request: run `step`, deliver, save, and answer the player.

    The step and the look-ahead (the costly part, growing with the course) run on a read snapshot, outside
    the tenant's writer lock, so other learners' writes never wait for them; the writes are then applied in
    a short transaction if nothing the step read has changed (compare-and-swap), else the step is computed
    again. After SEQUENCING_ATTEMPTS lost races it runs inside the write transaction, as a plain request
    would. The engine's CPU time is bounded by SEQUENCING_CPU_SECONDS (SEQUENCING_TOO_COSTLY). A large
    course's step (`Launch`, `Navigate`) is computed in a worker process (`_in_worker`), so it never holds
    this process's GIL."""
    now = inst.clock.now()
    ttl = session_ttl(inst, tenant_id)
    db = inst.tenant_db(tenant_id)
    first = db.read_sync(lambda conn: session_row(conn, session_id))
    course = load_course(inst, tenant_id, first["package_id"], first["package_version"])
    budget = cpu_budget(course)
    for _ in range(SEQUENCING_ATTEMPTS):
        try:
            if isinstance(step, Launch | Navigate) and in_process(inst, db, course):
                answer = _worker_step(inst, tenant_id, session_id, course, step, now, version, ttl, launching, toc_key)
            else:
                answer = _optimistic_step(db, course, session_id, step, now, version, budget, ttl, launching, toc_key)
        except Retry:
            course = current_course(inst, tenant_id, session_id)
            continue
        if answer is not None:
            return answer

    def locked(conn: apsw.Connection) -> dict[str, Any]:
        latest = session_row(conn, session_id)
        here = load_course(inst, tenant_id, latest["package_id"], latest["package_version"])
        done = compute_step(conn, here, session_id, step, now, version, budget, toc_key)
        return finish_step(conn, here, done, ttl, now, launching)

    return db.write_sync(locked)


def _worker_step(
    inst: Instance,
    tenant_id: str,
    session_id: str,
    course: Course,
    step: Launch | Navigate,
    now: float,
    version: int | None,
    ttl: int,
    launching: bool,
    toc_key: str | None,
) -> dict[str, Any] | None:
    """One attempt, computed by a worker process, swapped in here; None when someone changed what it read."""
    job = Job.of_step(inst, tenant_id, session_id, course, now, ttl, step, version, toc_key)
    return swap_in(inst, tenant_id, job, lambda conn, done: finish_step(conn, course, done, ttl, now, launching))


def _optimistic_step(
    db: Database,
    course: Course,
    session_id: str,
    step: Callable[[SequencingEngine, float], NavResult],
    now: float,
    version: int | None,
    budget: Callable[[], None],
    ttl: int,
    launching: bool,
    toc_key: str | None,
) -> dict[str, Any] | None:
    """One attempt: compute on a snapshot, then swap its writes in; None when someone changed what it read."""
    return on_snapshot(
        db,
        lambda snapshot: compute_step(snapshot, course, session_id, step, now, version, budget, toc_key),
        lambda conn, done: finish_step(conn, course, done, ttl, now, launching),
    )


def _terminate_step(inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int | None) -> dict[str, Any]:
    """A commit that terminates the SCO, sequenced like `_sequencing_step`: on a read snapshot, outside the
    tenant's writer lock, its writes swapped in if nothing it read has changed; after SEQUENCING_ATTEMPTS
    lost races, or for a commit that does not sequence (a replay, a SCO already terminated), the plain
    transaction under the lock. The engine's CPU time is bounded by SEQUENCING_CPU_SECONDS. A large
    course's Terminate is computed in a worker process, as its launch is."""
    check_nav_request(body)  # before anything is read, as for a plain commit
    ttl = ttl if ttl is not None else session_ttl(inst, tenant_id)
    db = inst.tenant_db(tenant_id)
    course = current_course(inst, tenant_id, session_id)
    budget = cpu_budget(course)
    for _ in range(SEQUENCING_ATTEMPTS):
        try:
            if in_process(inst, db, course):
                job = Job.of_terminate(inst, tenant_id, session_id, course, inst.clock.now(), ttl, body)
                answer = swap_in(inst, tenant_id, job, lambda conn, done: terminate_finish(conn, done, ttl))
            else:
                answer = _optimistic_terminate(
                    db, commit_txn(inst, tenant_id, session_id, body, ttl, off_lock=True, budget=budget), ttl
                )
        except UnderLock:
            break
        if answer is not None:
            return answer
    return db.write_sync(commit_txn(inst, tenant_id, session_id, body, ttl, budget=budget))


def _optimistic_terminate(db: Database, txn: Callable[[Any], Any], ttl: int) -> dict[str, Any] | None:
    """One attempt: the Terminate computed on a snapshot, then swapped in; None when someone changed what it read."""
    return on_snapshot(db, txn, lambda conn, done: terminate_finish(conn, done, ttl))
