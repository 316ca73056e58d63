"""The run-time service behind the player: launch, commits from the browser API, and navigation.

Every commit is re-checked by the pure data model, applied all-or-nothing with optimistic locking and
per-client sequence numbers (so a replayed request is harmless), and a Terminate runs the attempt rules
and the sequencing engine in the same transaction. The answer tells the player what to deliver next.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import apsw
import msgspec

from appliance.config import Config
from appliance.core.scorm.attempt import end_session, names, next_launch_cmi
from appliance.core.scorm.datamodel import apply_patch
from appliance.core.scorm.elements import SUSPEND_DATA_12_SPM, datamodel_table
from appliance.core.scorm.launch import adl_data_access
from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing import outline
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.core.scorm.sequencing.navigation import NAV_REQUESTS
from appliance.errors import ApplianceError, CmiValidationFailed, NotFound, SequencingTooCostly, ValidationFailed
from appliance.instance import Instance
from appliance.services.learning import sequencing_pool
from appliance.services.learning.sequencing_snapshot import Read, Snapshot, Write, on_snapshot, swap
from appliance.services.learning.sessions import check_live, check_version, refresh_results, session_row
from appliance.services.library.courses import Course, load_course
from appliance.services.library.packages import scorm12_suspend_data_limit
from appliance.services.lrs import scorm_statements
from appliance.services.tenancy.tenants import tenant_status, tenant_suspend_data_limit
from appliance.storage.sqlite.connection import one
from appliance.storage.sqlite.database import Database

T = TypeVar("T")

# A gap longer than this between two signs of life does not count as time spent (a tab left open).
IDLE_SECONDS = 30 * 60
_OBJECTIVE_FIELD = re.compile(r"^cmi\.objectives\.(\d+)\.")
_OBJECTIVE_ID = re.compile(r"^cmi\.objectives\.(\d+)\.id$")
# A page's client id is a UUID (36 characters) or the player's fallback (under 40): room to spare, but a
# client cannot make the session row grow with it. The sequence numbers of this many pages are kept per
# session, most recently used last (see `_record_seq`); a seq stays a JavaScript safe integer.
MAX_CLIENT_ID_CHARS = 64
MAX_CLIENT_IDS = 16
MAX_SEQ = 2**53 - 1


class CommitIn(msgspec.Struct, forbid_unknown_fields=True):
    """A batch of SetValue changes from the browser runtime.

    `version` null means an unconditional commit (only the `pagehide` beacon sends one, since it cannot
    wait for an answer); `client_id` + `seq` make a replay harmless.
    """

    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_ID_CHARS)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    activity: str
    changes: dict[str, str] = {}
    version: int | None = None
    terminate: bool = False
    nav_request: str | None = None
    toc_key: str | None = None  # the key of the TOC outline the player holds (it is then not sent again)


class NavigateIn(msgspec.Struct, forbid_unknown_fields=True):
    """A navigation request from the player's controls when no SCO is running."""

    request: str
    target: str | None = None
    version: int | None = None
    toc_key: str | None = None  # as in CommitIn


# -- engine state ------------------------------------------------------------------------------------


def _learner_state(conn: apsw.Connection, learner_id: str, kind: str) -> dict[str, Any]:
    row = one(conn, "SELECT data FROM learner_state WHERE learner_id = ? AND kind = ?", (learner_id, kind))
    return json.loads(row["data"]) if row else {}


def _engine(conn: apsw.Connection, course: Course, session: dict[str, Any]) -> SequencingEngine:
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


def _save_engine(
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


# -- delivery ------------------------------------------------------------------------------------------


def _deliver(
    conn: apsw.Connection, course: Course, session: dict[str, Any], engine: SequencingEngine, nav: NavResult, now: float
) -> dict[str, Any]:
    """Prepare the delivered activity's CMI for a new SCO session and describe it for the player."""
    activity_id = nav.delivered
    assert activity_id is not None
    item = course.item(activity_id)
    if item is None or not item.href:
        raise NotFound(f"activity {activity_id!r} has nothing to launch")
    row = one(
        conn, "SELECT * FROM session_activities WHERE session_id = ? AND activity_id = ?", (session["id"], activity_id)
    )
    previous = json.loads(row["cmi"]) if row else None
    if row is not None and row["state"] == "running" and previous is not None:
        previous = _abandoned(course.scorm_version, previous)
    overrides = engine.initial_cmi_overrides(activity_id)
    force_new = course.scorm_version != SCORM_12 and nav.new_attempt and row is not None and row["attempt"] > 0
    cmi, new_attempt = next_launch_cmi(
        course.scorm_version,
        previous if row is not None and row["attempt"] > 0 else None,
        learner_id=session["learner_id"],
        learner_name=session["learner_name"] or session["learner_id"],
        force_new_attempt=force_new,
        item=item,
        shared_data=engine.shared_data,
    )
    if new_attempt:
        cmi.update({k: v for k, v in overrides.items() if not k.startswith("adl.nav")})
    else:
        _refresh_resumed(cmi, overrides)
    attempt = (row["attempt"] if row else 0) + (1 if new_attempt else 0)
    conn.execute(
        "INSERT INTO session_activities (session_id, activity_id, cmi, attempt, state, reported, launched_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'running', '[]', ?, ?) ON CONFLICT (session_id, activity_id) DO UPDATE SET cmi = excluded.cmi, "
        "attempt = excluded.attempt, state = 'running', reported = '[]', launched_at = excluded.launched_at, "
        "updated_at = excluded.updated_at",
        (session["id"], activity_id, json.dumps(cmi, separators=(",", ":")), max(attempt, 1), now, now),
    )
    return {
        "activity": activity_id,
        "title": item.title,
        "href": item.href,
        "attempt": max(attempt, 1),
        "new_attempt": new_attempt,
        "cmi": cmi,  # the answer's request_valid carries adl.nav.request_valid (the player adds it)
        "data_access": adl_data_access(item),
    }


def _refresh_resumed(cmi: dict[str, str], overrides: dict[str, str]) -> None:
    """Resuming: global objective reads and shared data may have changed since the SCO was suspended.

    Objective values go to the record with the same id (the SCO may have added records of its own);
    adl.data records are the item's data maps, in manifest order."""
    for key in [k for k in cmi if k.startswith("adl.data.") and k.endswith(".store")]:
        del cmi[key]  # the shared store as it is now (another SCO may have written or emptied it)
    cmi.update({k: v for k, v in overrides.items() if k.startswith("adl.data.")})
    by_id = {v: m.group(1) for k, v in cmi.items() if (m := _OBJECTIVE_ID.match(k))}
    count = len(by_id)
    for key, objective_id in overrides.items():
        match = _OBJECTIVE_ID.match(key)
        if match is None:
            continue
        index = by_id.get(objective_id)
        if index is None:
            index = by_id[objective_id] = str(count)
            count += 1
        prefix = f"cmi.objectives.{match.group(1)}."
        for name, value in overrides.items():
            if name.startswith(prefix):
                cmi[f"cmi.objectives.{index}.{name[len(prefix) :]}"] = value


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


def _abandoned(scorm_version: str, cmi: dict[str, str]) -> dict[str, str]:
    """A SCO session that never terminated (the tab was closed): close it, resuming by default.

    Content that did not say how it exited is treated as suspended, so the learner comes back to where
    they were rather than to a fresh attempt — what learners expect when they close a tab.
    """
    n = names(scorm_version)
    ended = end_session(scorm_version, cmi).cmi
    if scorm_version == SCORM_12 and "cmi.core.lesson_status" in cmi:
        # The 1.2 status rules (an unset status becomes "completed"; mastery score) are LMSFinish's,
        # and this SCO never called it: closing a tab must not complete a lesson.
        ended["cmi.core.lesson_status"] = cmi["cmi.core.lesson_status"]
    if not ended.get(n["exit"]):
        ended[n["exit"]] = "suspend"
    return ended


def _player_state(
    course: Course, session: dict[str, Any], engine: SequencingEngine, nav: NavResult | None, toc_key: str | None
) -> dict[str, Any]:
    """What the player shows: controls, the TOC and `request_valid` (for the delivered or running SCO's
    model) in their compact forms (`sequencing.outline`: at 5,000 activities a few KB instead of 1.7 MB);
    the TOC's outline only when it differs from the one the player holds (`toc_key`)."""
    hidden: set[str] = set()
    if engine.current:
        item = course.item(engine.current)
        if item is not None and item.presentation is not None:
            hidden = set(item.presentation.hide_lms_ui)
    with engine.tracking.frozen():  # controls, TOC and request_valid from one look-ahead table
        controls = {name: allowed and name not in hidden for name, allowed in engine.available_controls().items()}
        return {
            "version": session["version"],
            "status": session["status"],
            "current": engine.current,
            "controls": controls,
            "toc": outline.toc_state(engine.tracking, toc_key),
            "request_valid": outline.request_valid_state(engine.tracking) if course.scorm_version != SCORM_12 else None,
            "ended": bool(nav and nav.ended),
            "suspended": bool(nav and nav.suspended),
            "exception": nav.exception if nav else None,
        }


def _touch(
    conn: apsw.Connection,
    session: dict[str, Any],
    ttl: int,
    now: float,
    *,
    launching: bool = False,
    seqs: dict[str, int] | None = None,
) -> None:
    """Record a sign of life: server-side time spent, last activity, a pushed-back expiry, a new version."""
    fields = _sign_of_life(session, ttl, now, seqs, launching=launching)
    fields["updated_at"] = now
    assignments = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*fields.values(), session["id"]))


def _ttl(inst: Instance, tenant_id: str) -> int:
    """The tenant's session time-to-live (its status lookup, cached for a few seconds)."""
    status, ttl = tenant_status(inst, tenant_id)
    return ttl if status is not None else inst.config.default_session_ttl_seconds


# -- public operations -----------------------------------------------------------------------------------


def bootstrap(inst: Instance, tenant_id: str, session_id: str) -> dict[str, Any]:
    """What the player page needs before anything runs: version, data-model table, course outline."""
    db = inst.tenant_db(tenant_id)
    session = db.read_sync(lambda c: session_row(c, session_id))
    check_live(session, inst.clock.now())
    course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
    limit = db.read_sync(lambda c: _suspend_data_limit(inst, tenant_id, c, course, session["package_id"]))
    return {
        "session_id": session_id,
        "scorm_version": course.scorm_version,
        "title": course.manifest.title,
        "table": datamodel_table(course.scorm_version, suspend_data_limit=limit),
        "multi_sco": len(course.launchable) > 1,
        # The player sends a sign of life well within this, so an open page does not expire.
        "ttl_seconds": _ttl(inst, tenant_id),
    }


# -- sequencing requests: computed on a snapshot, written with a compare-and-swap --------------------------

# CPU seconds one launch or navigation may spend sequencing (and on its look-ahead) before it is refused with
# SEQUENCING_TOO_COSTLY; a 5,000-activity course (the package limit) needs well under a tenth of this.
SEQUENCING_CPU_SECONDS = 2.0
# Optimistic attempts before the step is run under the tenant's writer lock (a learner whose other requests
# keep changing the session between our read and our write must still get an answer).
SEQUENCING_ATTEMPTS = 3


class _Computed(msgspec.Struct):
    """What a sequencing step decided, before anything is written (`rollup`: the root's, for the results).

    From a worker process the answer's values arrive encoded (`msgspec.Raw`), the delivery decoded."""

    session: dict[str, Any]
    rollup: dict[str, Any] | None
    delivery: dict[str, Any] | None
    answer: dict[str, Any]


class _Retry(Exception):
    """The snapshot is stale (the session changed, or its package version): compute again."""


def _cpu_budget(course: Course, seconds: float | None = None) -> Callable[[], None]:
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


def _compute_step(
    conn: Any,
    course: Course,
    session_id: str,
    step: Callable[[SequencingEngine, float], NavResult],
    now: float,
    version: int | None,
    budget: Callable[[], None],
    toc_key: str | None = None,
) -> _Computed:
    """Run the step and everything the answer needs (delivery CMI, controls, TOC, request_valid) on `conn`:
    a `Snapshot`, or the writer's connection when the step runs under the lock."""
    session = session_row(conn, session_id)
    check_live(session, now)
    if version is not None:
        check_version(session, version)
    if (session["package_id"], session["package_version"]) != (course.package_id, course.version):
        raise _Retry
    engine = _engine(conn, course, session)
    engine.tracking.budget = budget
    nav = step(engine, now)
    with engine.tracking.frozen():  # the state is final: one look-ahead table for the CMI, controls and TOC
        delivery = _deliver(conn, course, session, engine, nav, now) if nav.delivered else None
        _save_engine(conn, course, session, engine, now)
        answer = {"delivery": delivery, **_player_state(course, session, engine, nav, toc_key)}
    engine.tracking.budget = None
    return _Computed(session=session, rollup=_rollup(engine), delivery=delivery, answer=answer)


def _finish_step(
    conn: apsw.Connection, course: Course, done: _Computed, ttl: int, now: float, launching: bool
) -> dict[str, Any]:
    """The rest of the write transaction: sign of life, status, results; the answer takes the new version."""
    session = done.session
    scorm_statements.on_step(conn, course, session, done.delivery, now, launching=launching)
    _touch(conn, session, ttl, now, launching=launching)
    if session["status"] == "not_started" and done.delivery is not None:
        conn.execute("UPDATE sessions SET status = 'incomplete' WHERE id = ?", (session["id"],))
    updated = refresh_results(conn, course, session_row(conn, session["id"]), now, done.rollup)
    return {**done.answer, "version": updated["version"], "status": updated["status"]}


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
    ttl = _ttl(inst, tenant_id)
    db = inst.tenant_db(tenant_id)
    first = db.read_sync(lambda conn: session_row(conn, session_id))
    course = load_course(inst, tenant_id, first["package_id"], first["package_version"])
    budget = _cpu_budget(course)
    for _ in range(SEQUENCING_ATTEMPTS):
        try:
            if isinstance(step, Launch | Navigate) and _in_process(inst, db, course):
                answer = _worker_step(inst, tenant_id, session_id, course, step, now, version, ttl, launching, toc_key)
            else:
                answer = _optimistic_step(db, course, session_id, step, now, version, budget, ttl, launching, toc_key)
        except _Retry:
            course = _current_course(inst, tenant_id, session_id)
            continue
        if answer is not None:
            return answer

    def locked(conn: apsw.Connection) -> dict[str, Any]:
        latest = session_row(conn, session_id)
        here = load_course(inst, tenant_id, latest["package_id"], latest["package_version"])
        done = _compute_step(conn, here, session_id, step, now, version, budget, toc_key)
        return _finish_step(conn, here, done, ttl, now, launching)

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
    job = _Job.of_step(inst, tenant_id, session_id, course, now, ttl, step, version, toc_key)
    return _swap_in(inst, tenant_id, job, lambda conn, done: _finish_step(conn, course, done, ttl, now, launching))


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
        lambda snapshot: _compute_step(snapshot, course, session_id, step, now, version, budget, toc_key),
        lambda conn, done: _finish_step(conn, course, done, ttl, now, launching),
    )


def _current_course(inst: Instance, tenant_id: str, session_id: str) -> Course:
    """The course of the session's package version as it is now (it may have been upgraded)."""
    session = inst.tenant_db(tenant_id).read_sync(lambda conn: session_row(conn, session_id))
    return load_course(inst, tenant_id, session["package_id"], session["package_version"])


def launch(inst: Instance, tenant_id: str, session_id: str) -> dict[str, Any]:
    """Start or resume the course: the activity to deliver with its CMI, and the player state."""
    return _sequencing_step(inst, tenant_id, session_id, Launch(), launching=True)


def commit(inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int | None = None) -> dict[str, Any]:
    """Apply a batch of CMI changes; on Terminate, end the SCO session and run sequencing."""
    if body.terminate:
        return _terminate_step(inst, tenant_id, session_id, body, ttl)
    return inst.tenant_db(tenant_id).write_sync(_commit_txn(inst, tenant_id, session_id, body, ttl))


async def commit_async(
    inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int
) -> dict[str, Any] | msgspec.Raw:
    """`commit` for the event loop: a plain commit is one hop to the tenant's writer and nothing else (the
    hot path); a Terminate sequences, in a worker thread, off the loop and outside the writer lock, and its
    answer is encoded there too (`msgspec.Raw`: the player state of a large course, with the TOC's outline
    when the player does not hold it, is 100 KB at 5,000 activities)."""
    if body.terminate:
        return await asyncio.to_thread(_encoded, _terminate_step, inst, tenant_id, session_id, body, ttl)
    return await inst.tenant_db(tenant_id).write(_commit_txn(inst, tenant_id, session_id, body, ttl))


def _encoded(work: Callable[..., dict[str, Any]], *args: Any) -> msgspec.Raw:
    """`work`'s answer as JSON, encoded in the calling (worker) thread."""
    return msgspec.Raw(_encode(work(*args)))


def _commit_txn(
    inst: Instance,
    tenant_id: str,
    session_id: str,
    body: CommitIn,
    ttl: int | None,
    *,
    off_lock: bool = False,
    budget: Callable[[], None] | None = None,
    now: float | None = None,
) -> Callable[[Any], Any]:
    """The commit transaction. A plain Commit only stores data (it does not trigger sequencing,
    rte-rules 2), so it takes the short path: validate, store, refresh the session's results.

    A Terminate of a running SCO sequences (`_terminate_compute`, then `_terminate_finish`). With
    `off_lock` the transaction runs on a `Snapshot` and stops there, returning the computed
    `_Terminated` for `_terminate_step` to swap in; any other case raises `_UnderLock` (it is short, and
    its reads follow its own writes: it runs as a whole under the lock). `now` is the server's time (for a
    worker process)."""
    _check_nav_request(body)
    now = inst.clock.now() if now is None else now
    ttl = ttl if ttl is not None else _ttl(inst, tenant_id)

    def txn(conn: apsw.Connection) -> Any:
        session = session_row(conn, session_id)
        check_live(session, now)
        seqs = _decode_seqs(session["commit_seqs"])
        if seqs.get(body.client_id, -1) >= body.seq:
            if off_lock:
                raise _UnderLock
            return {"replayed": True, "version": session["version"], "status": session["status"]}
        if body.version is not None:
            check_version(session, body.version)
        course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
        row = one(
            conn,
            "SELECT cmi, reported, state, attempt, launched_at FROM session_activities "
            "WHERE session_id = ? AND activity_id = ?",
            (session_id, body.activity),
        )
        if row is None:
            raise NotFound(f"activity {body.activity!r} was not launched in this session")
        stored = _decode_cmi(row["cmi"])
        changes = body.changes if row["state"] != "terminated" else _after_terminate(course.scorm_version, body.changes)
        cmi, errors = apply_patch(
            course.scorm_version,
            stored,
            changes,
            data_access=adl_data_access(course.item(body.activity)),
            suspend_data_limit=_suspend_data_limit(inst, tenant_id, conn, course, session["package_id"], body.changes),
        )
        if errors:
            raise CmiValidationFailed(
                f"{len(errors)} CMI value(s) rejected by the SCORM data model",
                {"errors": [msgspec.to_builtins(e) for e in errors]},
            )
        _record_seq(seqs, body.client_id, body.seq)
        reported = _decode_names(row["reported"])
        if not set(body.changes) <= set(reported):
            reported = sorted(set(reported) | set(body.changes))
        if not (body.terminate and row["state"] == "running"):
            if off_lock:
                raise _UnderLock
            conn.execute(
                "UPDATE session_activities SET cmi = ?, reported = ?, updated_at = ? WHERE session_id = ? AND activity_id = ?",
                (_encode(cmi).decode(), _encode(reported).decode(), now, session_id, body.activity),
            )
            scorm_statements.on_commit(conn, course, session, body.activity, row["attempt"], stored, cmi, changes, now)
            # A plain commit does not sequence, but the course's result is still the root's rollup (multi-SCO).
            rollup = _rollup(_engine(conn, course, session)) if len(course.launchable) > 1 else None
            updated = refresh_results(
                conn,
                course,
                session,
                now,
                rollup,
                changed=(body.activity, cmi),
                also=_sign_of_life(session, ttl, now, seqs),
                interactions_changed=_interactions_changed(stored, body.changes),
            )
            return {"replayed": False, "delivery": None, "version": updated["version"], "status": updated["status"]}
        done = _terminate_compute(conn, course, session, seqs, body, cmi, row, reported, now, budget)
        if off_lock:
            delivered = done.answer["delivery"]
            if delivered is not None and delivered["activity"] == body.activity:
                raise _UnderLock  # the delivery read the SCO's own row, which this step's held-back write changes
            return done
        return _terminate_finish(conn, done, ttl)

    return txn


def _check_nav_request(body: CommitIn) -> None:
    if body.nav_request is not None and _request_name(body.nav_request) not in NAV_REQUESTS:
        raise ValidationFailed(
            f"unknown navigation request {body.nav_request!r}", {"errors": [{"field": "nav_request"}]}
        )


class _Terminated(msgspec.Struct):
    """What a Terminate decided (the SCO's ended CMI, sequencing, the delivery, the player state), before
    the session's sign of life and results are written."""

    course: Course
    session: dict[str, Any]
    seqs: dict[str, int]
    rollup: dict[str, Any] | None
    delivery: dict[str, Any] | None
    answer: dict[str, Any]
    now: float


class _UnderLock(Exception):
    """This commit is not a Terminate that sequences (or cannot be computed on a snapshot): run it whole
    under the writer lock."""


def _terminate_compute(
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
) -> _Terminated:
    """The costly part of a Terminate, on `conn` (a `Snapshot`, or the writer's connection): the attempt
    rules, sequencing, the next delivery, the engine's state, and the player state from one look-ahead."""
    engine = _engine(conn, course, session)
    engine.tracking.budget = budget
    nav = _terminate(conn, course, session, engine, body, cmi, row, reported, now)
    with engine.tracking.frozen():  # the state is final: one look-ahead table for the CMI, controls and TOC
        delivery = _deliver(conn, course, session, engine, nav, now) if nav.delivered else None
        _save_engine(conn, course, session, engine, now)
        state = _player_state(course, session, engine, nav, body.toc_key)
    engine.tracking.budget = None
    answer = {"replayed": False, "delivery": delivery, **state}
    return _Terminated(
        course=course, session=session, seqs=seqs, rollup=_rollup(engine), delivery=delivery, answer=answer, now=now
    )


def _terminate_finish(conn: apsw.Connection, done: _Terminated, ttl: int) -> dict[str, Any]:
    """The rest of a Terminate's write transaction: sign of life and results; the answer takes the new version."""
    _touch(conn, done.session, ttl, done.now, seqs=done.seqs)
    session = session_row(conn, done.session["id"])
    updated = refresh_results(conn, done.course, session, done.now, done.rollup)
    scorm_statements.on_step(conn, done.course, session, done.delivery, done.now)
    return {**done.answer, "version": updated["version"], "status": updated["status"]}


def _terminate_step(inst: Instance, tenant_id: str, session_id: str, body: CommitIn, ttl: int | None) -> dict[str, Any]:
    """A commit that terminates the SCO, sequenced like `_sequencing_step`: on a read snapshot, outside the
    tenant's writer lock, its writes swapped in if nothing it read has changed; after SEQUENCING_ATTEMPTS
    lost races, or for a commit that does not sequence (a replay, a SCO already terminated), the plain
    transaction under the lock. The engine's CPU time is bounded by SEQUENCING_CPU_SECONDS. A large
    course's Terminate is computed in a worker process, as its launch is."""
    _check_nav_request(body)  # before anything is read, as for a plain commit
    ttl = ttl if ttl is not None else _ttl(inst, tenant_id)
    db = inst.tenant_db(tenant_id)
    course = _current_course(inst, tenant_id, session_id)
    budget = _cpu_budget(course)
    for _ in range(SEQUENCING_ATTEMPTS):
        try:
            if _in_process(inst, db, course):
                job = _Job.of_terminate(inst, tenant_id, session_id, course, inst.clock.now(), ttl, body)
                answer = _swap_in(inst, tenant_id, job, lambda conn, done: _terminate_finish(conn, done, ttl))
            else:
                answer = _optimistic_terminate(
                    db, _commit_txn(inst, tenant_id, session_id, body, ttl, off_lock=True, budget=budget), ttl
                )
        except _UnderLock:
            break
        if answer is not None:
            return answer
    return db.write_sync(_commit_txn(inst, tenant_id, session_id, body, ttl, budget=budget))


def _optimistic_terminate(db: Database, txn: Callable[[Any], Any], ttl: int) -> dict[str, Any] | None:
    """One attempt: the Terminate computed on a snapshot, then swapped in; None when someone changed what it read."""
    return on_snapshot(db, txn, lambda conn, done: _terminate_finish(conn, done, ttl))


# -- large courses: the step computed in a worker process (appliance.services.learning.sequencing_pool) ------------------------


def _in_process(inst: Instance, db: Any, course: Course) -> bool:
    """Whether this course's steps go to a worker process: the pool is on, the course is large, and the
    tenant's database is a SQLite file (which the worker opens itself; another backend stays in-thread)."""
    if inst.config.sequencing_workers <= 0 or len(course.tree.preorder) <= sequencing_pool.PROCESS_MIN_ACTIVITIES:
        return False
    return isinstance(db, Database)


@dataclass(frozen=True)
class _Job:
    """A step for a worker process, as plain data: whose session, which course, the server's clock and
    settings, and either the sequencing step (launch, navigate) or the Terminate's commit."""

    config: Config
    tenant_id: str
    session_id: str
    package: tuple[str, int]
    now: float
    ttl: int
    budget_seconds: float
    step: Launch | Navigate | None = None
    version: int | None = None
    toc_key: str | None = None
    body: CommitIn | None = None

    @classmethod
    def of_step(
        cls,
        inst: Instance,
        tenant_id: str,
        session_id: str,
        course: Course,
        now: float,
        ttl: int,
        step: Launch | Navigate,
        version: int | None,
        toc_key: str | None,
    ) -> _Job:
        package = (course.package_id, course.version)
        return cls(
            inst.config, tenant_id, session_id, package, now, ttl, SEQUENCING_CPU_SECONDS, step, version, toc_key
        )

    @classmethod
    def of_terminate(
        cls, inst: Instance, tenant_id: str, session_id: str, course: Course, now: float, ttl: int, body: CommitIn
    ) -> _Job:
        package = (course.package_id, course.version)
        return cls(inst.config, tenant_id, session_id, package, now, ttl, SEQUENCING_CPU_SECONDS, body=body)


@dataclass
class _Outcome:
    """What a worker sends back: the snapshot's reads (the compare) and held-back writes (the swap), what
    the rest of the transaction needs, and the answer's values encoded (the server adds version and
    status); or the error the step raised (`failed`: an ApplianceError with its details, which pickling
    an exception would drop)."""

    reads: list[Read]
    writes: list[Write]
    session: dict[str, Any]
    seqs: dict[str, int] | None
    rollup: dict[str, Any] | None
    delivery: dict[str, Any] | None
    answer: dict[str, bytes]
    failed: tuple[type[ApplianceError], str, dict[str, Any]] | None = None


def _in_worker(job: _Job) -> _Outcome:
    """The step on a snapshot of the worker's own read-only connection (runs in a worker process)."""
    inst: Any = sequencing_pool.worker_instance(job.config)
    try:
        course = load_course(inst, job.tenant_id, *job.package)  # kept by the worker, as in the server
        budget = _cpu_budget(course, job.budget_seconds)

        def read(conn: apsw.Connection) -> tuple[Snapshot, _Computed | _Terminated]:
            snapshot = Snapshot(conn)
            if job.body is None:
                assert job.step is not None
                done = _compute_step(
                    snapshot, course, job.session_id, job.step, job.now, job.version, budget, job.toc_key
                )
                return snapshot, done
            txn = _commit_txn(
                inst, job.tenant_id, job.session_id, job.body, job.ttl, off_lock=True, budget=budget, now=job.now
            )
            return snapshot, txn(snapshot)

        snapshot, done = inst.tenant_db(job.tenant_id).read_sync(read)
    except ApplianceError as exc:
        return _Outcome([], [], {}, None, None, None, {}, failed=(type(exc), exc.message, exc.details))
    seqs = done.seqs if isinstance(done, _Terminated) else None
    answer = {key: _encode(value) for key, value in done.answer.items()}
    return _Outcome(snapshot.reads, snapshot.writes, done.session, seqs, done.rollup, done.delivery, answer)


def _swap_in(
    inst: Instance, tenant_id: str, job: _Job, finish: Callable[[apsw.Connection, Any], dict[str, Any]]
) -> dict[str, Any] | None:
    """One attempt of a large course's step: computed by a worker process, then swapped in here (None when
    what it read has changed meanwhile). The answer's values stay as the worker encoded them."""
    outcome = sequencing_pool.run(inst.config.sequencing_workers, _in_worker, job)
    if outcome.failed is not None:
        error, message, details = outcome.failed
        raise error(message, details)
    session = outcome.session
    answer = {key: msgspec.Raw(value) for key, value in outcome.answer.items()}
    done: _Computed | _Terminated
    if outcome.seqs is None:
        done = _Computed(session=session, rollup=outcome.rollup, delivery=outcome.delivery, answer=answer)
    else:
        course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
        done = _Terminated(
            course=course,
            session=session,
            seqs=outcome.seqs,
            rollup=outcome.rollup,
            delivery=outcome.delivery,
            answer=answer,
            now=job.now,
        )
    return swap(inst.tenant_db(tenant_id), Snapshot(None, outcome.reads, outcome.writes), lambda c: finish(c, done))


_encode = msgspec.json.encode
_decode_cmi = msgspec.json.Decoder(dict[str, str]).decode
_decode_seqs = msgspec.json.Decoder(dict[str, int]).decode
_decode_names = msgspec.json.Decoder(list[str]).decode


def _suspend_data_limit(
    inst: Instance,
    tenant_id: str,
    conn: apsw.Connection,
    course: Course,
    package_id: str,
    changes: dict[str, str] | None = None,
) -> int | None:
    """SCORM 1.2 cmi.suspend_data's limit for the package (its setting, else its tenant's); None for 2004.

    For a commit (`changes`) it is read only when the new suspend_data is longer than the spec's 4096
    characters: a shorter value passes every limit, so the usual commit reads nothing more.
    """
    if course.scorm_version != SCORM_12:
        return None
    if changes is not None and len(changes.get("cmi.suspend_data", "")) <= SUSPEND_DATA_12_SPM:
        return None
    return scorm12_suspend_data_limit(conn, package_id, tenant_suspend_data_limit(inst, tenant_id))


def _record_seq(seqs: dict[str, int], client_id: str, seq: int) -> None:
    """Remember `seq` as `client_id`'s latest, keeping only the MAX_CLIENT_IDS most recently used pages.

    The numbers make a page's resent batch harmless: the copy that arrives second has a seq already
    seen. Every page load has a new client id, so a session reopened many times would otherwise keep
    one entry per load forever. A page is forgotten only after MAX_CLIENT_IDS other pages committed
    since its last commit — long after it was closed. Should such a page still resend a batch, a
    conditional commit (with `version`, all but the `pagehide` beacon) is refused by the version
    check as before; only an unconditional beacon of a page that old would be applied again.
    """
    if client_id in seqs:
        del seqs[client_id]  # re-inserted at the end: dicts keep insertion order, oldest first
    seqs[client_id] = seq
    while len(seqs) > MAX_CLIENT_IDS:
        del seqs[next(iter(seqs))]


def _after_terminate(scorm_version: str, changes: dict[str, str]) -> dict[str, str]:
    """The changes of a late batch for a SCO session that has ended, less its session_time.

    Terminate consumed the session time; a copy that arrives again under a new sequence number (a page
    going away may send its last values more than once) would otherwise be stored and counted a second
    time when the SCO is next launched.
    """
    name = names(scorm_version)["session_time"]
    return changes if name not in changes else {k: v for k, v in changes.items() if k != name}


def _sign_of_life(
    session: dict[str, Any], ttl: int, now: float, seqs: dict[str, int] | None, *, launching: bool = False
) -> dict[str, Any]:
    """The session columns any request of the learner moves: server-side time spent (not across a
    launch, nor a gap over IDLE_SECONDS), last activity, a pushed-back expiry, a new version, and the
    client sequence numbers when they changed. The session row is the one read in this transaction."""
    last = session["last_activity_at"]
    spent = 0.0 if launching or last is None else min(max(0.0, now - last), IDLE_SECONDS)
    fields: dict[str, Any] = {
        "server_time_seconds": session["server_time_seconds"] + spent,
        "last_activity_at": now,
        "expires_at": now + ttl,
        "version": session["version"] + 1,
    }
    if launching:
        fields["launch_started_at"] = now
    if seqs is not None:
        fields["commit_seqs"] = _encode(seqs).decode()
    return fields


def _interactions_changed(stored: dict[str, str], changes: dict[str, str]) -> bool:
    """Whether a commit changes any interaction value (most re-send the same ones, or none)."""
    return any(k.startswith("cmi.interactions.") and stored.get(k) != v for k, v in changes.items())


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


def navigate(inst: Instance, tenant_id: str, session_id: str, body: NavigateIn) -> dict[str, Any]:
    """A request from the player's controls (the running SCO, if any, has already terminated)."""
    if _request_name(body.request) not in NAV_REQUESTS:
        raise ValidationFailed(f"unknown navigation request {body.request!r}", {"errors": [{"field": "request"}]})
    return _sequencing_step(
        inst,
        tenant_id,
        session_id,
        Navigate(body.request, body.target),
        version=body.version,
        toc_key=body.toc_key,
    )


def _request_name(request: str) -> str:
    if request.startswith("{target="):
        return request.split("}", 1)[-1]
    return request


def _rollup(engine: SequencingEngine) -> dict[str, Any] | None:
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
