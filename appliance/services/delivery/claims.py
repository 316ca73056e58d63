"""Claiming one row of outbound work across workers: a webhook delivery, an xAPI forwarding target.

The job queue says when to look at a row; the row itself says who may work it. A job's worker claims
the row in one short transaction — on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` with row locks only
(`write_rows_sync`: no wait for the tenant's write lock, and none for a row another worker is claiming
right now, which is passed over) — and writes a lease on it, `lease_until`. While the lease holds, no
other worker takes the row; a worker killed mid-request leaves the lease to run out, and the next job
for the row takes it over then.

The lease is also the **fencing token**: the holder remembers the exact `lease_until` it wrote and every
write that records its work carries `AND lease_until = <that value>` (or locks the row and compares).
A new holder only claims after the old lease ran out, so it always writes a later value; a worker that
lost its lease (it hung past it) therefore writes nothing over the new holder's work. On SQLite one
process works the rows (one writer, no row locks): the same statements without the locking clause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import apsw

from appliance.config import Config
from appliance.storage.sqlite.database import Database

T = TypeVar("T")
LEASE_MARGIN_SECONDS = 2.0  # beyond a request's timeout: a live worker's request is never taken over


def shared(db: Database) -> bool:
    """Whether several worker processes may claim this database's rows (PostgreSQL's row locks)."""
    return callable(getattr(db, "write_rows_sync", None))


def write_rows(db: Database, fn: Callable[[apsw.Connection], T]) -> T:
    """A short write that takes row locks only on PostgreSQL (not the tenant's write lock); SQLite's one
    writer otherwise."""
    return db.write_rows_sync(fn) if shared(db) else db.write_sync(fn)  # type: ignore[attr-defined]


def skip_locked(db: Database) -> str:
    """The clause a claim's SELECT ends with: lock the row, and pass it over if another claim holds it."""
    return " FOR UPDATE SKIP LOCKED" if shared(db) else ""


def for_update(db: Database) -> str:
    """The clause a recording SELECT ends with: lock the row (waiting) before comparing its lease."""
    return " FOR UPDATE" if shared(db) else ""


def lease_seconds(config: Config, request_timeout: float) -> float:
    """How long a claimed row is leased: `job_lease_seconds`, and at least the request's timeout plus
    LEASE_MARGIN_SECONDS, so the lease cannot run out while its worker is still waiting for an answer."""
    return max(config.job_lease_seconds, request_timeout + LEASE_MARGIN_SECONDS)
