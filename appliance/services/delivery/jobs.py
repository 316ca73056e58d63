"""The durable job queue in the registry database: enqueue, claim, complete, retry, recover.

Jobs are rows, so a crash or restart loses none. Retries back off exponentially with jitter. A claimed
job carries a lease: the worker that claimed it (`claimed_by`) and until when (`lease_until`), renewed
while it runs (`renew`); completing or failing it is fenced by that claim, so a worker that lost its
lease cannot overwrite what the job's new holder does.

Two ways to share the queue (docs/scale-out.md "Jobs"):

- SQLite (embedded): one process works the queue; a job left running by a process that died goes back
  to the queue at the next start (`requeue_interrupted`), as before leases existed.
- PostgreSQL: any number of worker processes. A claim is one short transaction, `SELECT … FOR UPDATE
  SKIP LOCKED` then the lease, taking row locks only (`write_rows_sync`, not the registry's write lock),
  so no two workers claim one job and none waits for another's claim. A job whose lease ran out (its
  worker was killed or hung) is due again and the next claim takes it, the attempt counted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import apsw

from appliance.ids import new_id
from appliance.storage.sqlite.connection import rows
from appliance.storage.sqlite.database import Database

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0
LEASE_SECONDS = 60.0  # a claimed job's lease; the scheduler renews it every third of that
T = TypeVar("T")


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help; the job fails at once."""


@dataclass(frozen=True)
class Job:
    """A claimed job."""

    id: str
    kind: str
    tenant_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    claimed_by: str | None = None  # the worker holding the lease; None: not fenced (a job built by hand)
    lease_lost: bool = False  # claimed again after another worker's lease ran out (that worker is gone)


class LeaseLost(Exception):
    """The job is no longer this worker's (its lease ran out and another worker claimed it)."""


def shared(db: Database) -> bool:
    """Whether several processes may work this queue: a database that locks rows (PostgreSQL)."""
    return callable(getattr(db, "write_rows_sync", None))


def _write_rows(db: Database, fn: Callable[[apsw.Connection], T]) -> T:
    """A write that takes row locks only where the backend has them; SQLite's one writer otherwise."""
    return db.write_rows_sync(fn) if shared(db) else db.write_sync(fn)  # type: ignore[attr-defined]


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): exponential, capped, with jitter."""
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return base * (0.5 + (rng or random).random() / 2)


def enqueue(
    conn: apsw.Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    now: float,
    tenant_id: str | None = None,
    run_at: float | None = None,
    max_attempts: int = 5,
    unique: bool = False,
) -> str:
    """Add a job inside the caller's registry transaction; returns its id.

    With `unique`, a queued or running job of the same kind with the same `payload["key"]` is reused
    (its id is returned) instead of adding a second one, so two jobs never work on one thing at once.
    The check and the insert share the caller's transaction, which makes them atomic.
    """
    if unique:
        existing = rows(
            conn,
            "SELECT id FROM jobs WHERE kind = ? AND status IN ('queued', 'running') "
            "AND json_extract(payload, '$.key') = ? LIMIT 1",
            (kind, str(payload["key"])),
        )
        if existing:
            return str(existing[0]["id"])
    job_id = new_id("job")
    conn.execute(
        "INSERT INTO jobs (id, kind, tenant_id, payload, status, attempts, max_attempts, run_at, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
        (job_id, kind, tenant_id, json.dumps(payload), max_attempts, run_at if run_at is not None else now, now, now),
    )
    return job_id


def claim(
    db: Database, now: float, limit: int, *, worker: str = "local", lease_seconds: float = LEASE_SECONDS
) -> list[Job]:
    """Mark up to `limit` due jobs running, leased to `worker` until `now + lease_seconds`, in one
    transaction, and return them (oldest due first)."""
    if limit <= 0:
        return []
    lease = (worker, now + lease_seconds)
    if shared(db):
        return db.write_rows_sync(lambda c: _claim_skip_locked(c, now, limit, lease))  # type: ignore[attr-defined]

    def take(conn: apsw.Connection) -> list[Job]:
        due = rows(
            conn,
            "SELECT * FROM jobs WHERE status = 'queued' AND run_at <= ? ORDER BY run_at, created_at LIMIT ?",
            (now, limit),
        )
        for row in due:
            conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_at = ?, claimed_by = ?, "
                "lease_until = ?, updated_at = ? WHERE id = ?",
                (now, *lease, now, row["id"]),
            )
        return [_job({**row, "attempts": row["attempts"] + 1}, worker, lost=False) for row in due]

    return db.write_sync(take)


def _claim_skip_locked(conn: apsw.Connection, now: float, limit: int, lease: tuple[str, float]) -> list[Job]:
    """PostgreSQL: lock the due rows no other claim holds (SKIP LOCKED: never wait for one), lease them.

    Due means queued with `run_at` passed, or running with its lease run out (or never leased)."""
    due = rows(
        conn,
        "SELECT id, status FROM jobs WHERE (status = 'queued' AND run_at <= ?) "
        "OR (status = 'running' AND (lease_until IS NULL OR lease_until < ?)) "
        "ORDER BY run_at, created_at LIMIT ? FOR UPDATE SKIP LOCKED",
        (now, now, limit),
    )
    if not due:
        return []
    lost = {r["id"] for r in due if r["status"] == "running"}
    order = {r["id"]: i for i, r in enumerate(due)}
    taken = rows(
        conn,
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_at = ?, claimed_by = ?, "
        "lease_until = ?, updated_at = ? WHERE id = ANY(?) "
        "RETURNING id, kind, tenant_id, payload, attempts, max_attempts",
        (now, *lease, now, list(order)),
    )
    taken.sort(key=lambda r: order[r["id"]])
    return [_job(r, lease[0], lost=r["id"] in lost) for r in taken]


def _job(row: dict[str, Any], worker: str, *, lost: bool) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        tenant_id=row["tenant_id"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        claimed_by=worker,
        lease_lost=lost,
    )


def renew(db: Database, claimed: Sequence[Job], now: float, lease_seconds: float = LEASE_SECONDS) -> set[str]:
    """Extend the leases of `claimed` (one worker's running jobs) to `now + lease_seconds`, in one short
    transaction; returns the ids whose lease is no longer theirs (another worker took the job)."""
    mine = [j for j in claimed if j.claimed_by is not None]
    if not mine:
        return set()

    def extend(conn: apsw.Connection) -> set[str]:
        lost = set()
        for job in mine:
            conn.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running' AND claimed_by = ? "
                "AND attempts = ?",
                (now + lease_seconds, job.id, job.claimed_by, job.attempts),
            )
            if not conn.changes():
                lost.add(job.id)
        return lost

    return _write_rows(db, extend)


def _finish(db: Database, job: Job, sql: str, params: tuple[Any, ...]) -> None:
    """Run one UPDATE of `job`'s row, fenced by its claim when it has one; raise LeaseLost if it no longer
    holds the job (the row is left to its new holder)."""
    if job.claimed_by is None:
        _write_rows(db, lambda c: c.execute(sql + " WHERE id = ?", (*params, job.id)))
        return

    def update(conn: apsw.Connection) -> int:
        conn.execute(
            sql + " WHERE id = ? AND status = 'running' AND claimed_by = ? AND attempts = ?",
            (*params, job.id, job.claimed_by, job.attempts),
        )
        return int(conn.changes())

    if not _write_rows(db, update):
        raise LeaseLost(f"job {job.id} (attempt {job.attempts}) is no longer held by {job.claimed_by}")


def complete(db: Database, job: Job, now: float) -> None:
    """Mark a job done (LeaseLost: it is not this worker's any more, and nothing was written)."""
    _finish(
        db,
        job,
        "UPDATE jobs SET status = 'done', locked_at = NULL, claimed_by = NULL, lease_until = NULL, "
        "last_error = NULL, updated_at = ?",
        (now,),
    )


def fail(db: Database, job: Job, now: float, error: str, *, permanent: bool = False) -> bool:
    """Record a failure: requeue with backoff, or fail for good. Returns True when it will retry
    (LeaseLost: it is not this worker's any more, and nothing was written)."""
    retry = not permanent and job.attempts < job.max_attempts
    if retry:
        _finish(
            db,
            job,
            "UPDATE jobs SET status = 'queued', locked_at = NULL, claimed_by = NULL, lease_until = NULL, "
            "last_error = ?, run_at = ?, updated_at = ?",
            (error[:2000], now + backoff_seconds(job.attempts), now),
        )
    else:
        _finish(
            db,
            job,
            "UPDATE jobs SET status = 'failed', locked_at = NULL, claimed_by = NULL, lease_until = NULL, "
            "last_error = ?, updated_at = ?",
            (error[:2000], now),
        )
    return retry


def requeue_interrupted(db: Database, now: float) -> int:
    """Put every job left `running` by a process that died back in the queue; returns how many.

    SQLite only, where one process works the queue, so at its start every running job is such a one. On
    PostgreSQL other workers' jobs are running too and nothing is requeued here (0): a dead worker's
    jobs are due again once their leases run out, and `claim` takes them over, counting the attempt.
    """
    if shared(db):
        return 0

    def requeue(conn: apsw.Connection) -> int:
        conn.execute(
            "UPDATE jobs SET status = 'queued', locked_at = NULL, claimed_by = NULL, lease_until = NULL, "
            "run_at = ?, updated_at = ? WHERE status = 'running'",
            (now, now),
        )
        return int(conn.changes())

    return db.write_sync(requeue)


def release(db: Database, job: Job, now: float) -> bool:
    """Give a held job back to the queue at once, its attempt counted (a worker stopping with the job
    still running: another takes it now rather than when the lease runs out). False if it was not held."""
    try:
        _finish(
            db,
            job,
            "UPDATE jobs SET status = 'queued', locked_at = NULL, claimed_by = NULL, lease_until = NULL, "
            "run_at = ?, updated_at = ?",
            (now, now),
        )
    except LeaseLost:
        return False
    return True


def pending_keys(db: Database, kind: str) -> set[str]:
    """The `key` payload values of a kind's queued or running jobs (to avoid enqueuing twice)."""
    found = db.read_sync(
        lambda c: rows(c, "SELECT payload FROM jobs WHERE kind = ? AND status IN ('queued', 'running')", (kind,))
    )
    return {str(json.loads(r["payload"]).get("key")) for r in found}


def purge_finished(db: Database, before: float) -> int:
    """Delete done jobs older than `before` (failed ones stay for inspection)."""

    def purge(conn: apsw.Connection) -> int:
        conn.execute("DELETE FROM jobs WHERE status = 'done' AND updated_at < ?", (before,))
        return int(conn.changes())

    return db.write_sync(purge)


def list_jobs(db: Database, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Jobs for inspection (CLI and doctor), newest first."""
    if status:
        sql, params = "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?", (status, limit)
    else:
        sql, params = "SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
    return db.read_sync(lambda c: rows(c, sql, params))
