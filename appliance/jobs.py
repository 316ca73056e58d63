"""The durable job queue in the registry database: enqueue, claim, complete, retry, recover.

Jobs are rows, so a crash or restart loses none: a job that was running when the process died goes
back to the queue at the next start. Retries back off exponentially with jitter.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.db.connection import rows
from appliance.db.database import Database
from appliance.ids import new_id

BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 3600.0


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


def claim(db: Database, now: float, limit: int) -> list[Job]:
    """Mark up to `limit` due jobs running, in one transaction, and return them."""
    if limit <= 0:
        return []

    def take(conn: apsw.Connection) -> list[Job]:
        due = rows(
            conn,
            "SELECT * FROM jobs WHERE status = 'queued' AND run_at <= ? ORDER BY run_at, created_at LIMIT ?",
            (now, limit),
        )
        claimed = []
        for row in due:
            conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_at = ?, updated_at = ? "
                "WHERE id = ?",
                (now, now, row["id"]),
            )
            claimed.append(
                Job(
                    id=row["id"],
                    kind=row["kind"],
                    tenant_id=row["tenant_id"],
                    payload=json.loads(row["payload"]),
                    attempts=row["attempts"] + 1,
                    max_attempts=row["max_attempts"],
                )
            )
        return claimed

    return db.write_sync(take)


def complete(db: Database, job: Job, now: float) -> None:
    """Mark a job done."""
    db.write_sync(
        lambda c: c.execute(
            "UPDATE jobs SET status = 'done', locked_at = NULL, last_error = NULL, updated_at = ? WHERE id = ?",
            (now, job.id),
        )
    )


def fail(db: Database, job: Job, now: float, error: str, *, permanent: bool = False) -> bool:
    """Record a failure: requeue with backoff, or fail for good. Returns True when it will retry."""
    retry = not permanent and job.attempts < job.max_attempts
    if retry:
        db.write_sync(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'queued', locked_at = NULL, last_error = ?, run_at = ?, updated_at = ? "
                "WHERE id = ?",
                (error[:2000], now + backoff_seconds(job.attempts), now, job.id),
            )
        )
    else:
        db.write_sync(
            lambda c: c.execute(
                "UPDATE jobs SET status = 'failed', locked_at = NULL, last_error = ?, updated_at = ? WHERE id = ?",
                (error[:2000], now, job.id),
            )
        )
    return retry


def requeue_interrupted(db: Database, now: float) -> int:
    """Put every job left `running` by a process that died back in the queue; returns how many."""

    def requeue(conn: apsw.Connection) -> int:
        conn.execute(
            "UPDATE jobs SET status = 'queued', locked_at = NULL, run_at = ?, updated_at = ? WHERE status = 'running'",
            (now, now),
        )
        return int(conn.changes())

    return db.write_sync(requeue)


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
