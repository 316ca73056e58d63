"""Large courses: a sequencing step or a Terminate computed in a worker process
(`appliance.services.learning.sequencing_pool`), sent as plain data and swapped in here.

A module of its own because the worker process runs only this (it is what the pool preloads), and the
job's shape and its answer's are what both sides must agree on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.instance import Instance
from appliance.services.learning import sequencing_pool, sequencing_steps
from appliance.services.learning.commits import commit_txn
from appliance.services.learning.player_requests import CommitIn
from appliance.services.learning.sequencing_snapshot import Read, Snapshot, Write, swap
from appliance.services.learning.sequencing_steps import Computed, Launch, Navigate, compute_step, cpu_budget
from appliance.services.learning.terminations import Terminated
from appliance.services.library.courses import Course, load_course

_encode = msgspec.json.encode

# -- large courses: the step computed in a worker process (appliance.services.learning.sequencing_pool) ------------------------


def in_process(inst: Instance, db: Any, course: Course) -> bool:
    """Whether this course's steps go to a worker process: the pool is on and the course is large. The
    worker reads the tenant's database itself, the SQLite file or the PostgreSQL schema
    (`sequencing_pool.WorkerInstance`)."""
    del db  # either backend
    return inst.config.sequencing_workers > 0 and len(course.tree.preorder) > sequencing_pool.PROCESS_MIN_ACTIVITIES


@dataclass(frozen=True)
class Job:
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
    ) -> Job:
        package = (course.package_id, course.version)
        return cls(
            inst.config,
            tenant_id,
            session_id,
            package,
            now,
            ttl,
            sequencing_steps.SEQUENCING_CPU_SECONDS,
            step,
            version,
            toc_key,
        )

    @classmethod
    def of_terminate(
        cls, inst: Instance, tenant_id: str, session_id: str, course: Course, now: float, ttl: int, body: CommitIn
    ) -> Job:
        package = (course.package_id, course.version)
        return cls(
            inst.config, tenant_id, session_id, package, now, ttl, sequencing_steps.SEQUENCING_CPU_SECONDS, body=body
        )


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


def _in_worker(job: Job) -> _Outcome:
    """The step on a snapshot of the worker's own read-only connection (runs in a worker process)."""
    inst: Any = sequencing_pool.worker_instance(job.config)
    try:
        course = load_course(inst, job.tenant_id, *job.package)  # kept by the worker, as in the server
        budget = cpu_budget(course, job.budget_seconds)

        def read(conn: apsw.Connection) -> tuple[Snapshot, Computed | Terminated]:
            snapshot = Snapshot(conn)
            if job.body is None:
                assert job.step is not None
                done = compute_step(
                    snapshot, course, job.session_id, job.step, job.now, job.version, budget, job.toc_key
                )
                return snapshot, done
            txn = commit_txn(
                inst, job.tenant_id, job.session_id, job.body, job.ttl, off_lock=True, budget=budget, now=job.now
            )
            return snapshot, txn(snapshot)

        snapshot, done = inst.tenant_db(job.tenant_id).read_sync(read)
    except ApplianceError as exc:
        return _Outcome([], [], {}, None, None, None, {}, failed=(type(exc), exc.message, exc.details))
    seqs = done.seqs if isinstance(done, Terminated) else None
    answer = {key: _encode(value) for key, value in done.answer.items()}
    return _Outcome(snapshot.reads, snapshot.writes, done.session, seqs, done.rollup, done.delivery, answer)


def swap_in(
    inst: Instance, tenant_id: str, job: Job, finish: Callable[[apsw.Connection, Any], dict[str, Any]]
) -> dict[str, Any] | None:
    """One attempt of a large course's step: computed by a worker process, then swapped in here (None when
    what it read has changed meanwhile). The answer's values stay as the worker encoded them."""
    outcome = sequencing_pool.run(inst.config.sequencing_workers, _in_worker, job)
    if outcome.failed is not None:
        error, message, details = outcome.failed
        raise error(message, details)
    session = outcome.session
    answer = {key: msgspec.Raw(value) for key, value in outcome.answer.items()}
    done: Computed | Terminated
    if outcome.seqs is None:
        done = Computed(session=session, rollup=outcome.rollup, delivery=outcome.delivery, answer=answer)
    else:
        course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
        done = Terminated(
            course=course,
            session=session,
            seqs=outcome.seqs,
            rollup=outcome.rollup,
            delivery=outcome.delivery,
            answer=answer,
            now=job.now,
        )
    return swap(inst.tenant_db(tenant_id), Snapshot(None, outcome.reads, outcome.writes), lambda c: finish(c, done))
