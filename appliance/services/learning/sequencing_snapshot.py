"""A sequencing step's read snapshot and its compare-and-swap (used by `appliance.services.learning.runtime`).

A step runs on a `Snapshot`: a read connection that remembers every row the step read and holds back
every write. The writes are then applied in one short write transaction, under the tenant's writer
lock, only if everything the step read is still as it was (`swap`). What a snapshot recorded is plain
data (SQL, parameters, rows), so a step computed in a worker process (`appliance.services.learning.sequencing_pool`)
sends it back and the server swaps it in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import apsw

from appliance.storage.sqlite.database import Database

T = TypeVar("T")
Read = tuple[str, Any, list[tuple[Any, ...]]]
Write = tuple[str, Any]


class Snapshot:
    """A read connection for one sequencing step: it remembers every row the step read and holds back every
    write, so the step runs outside the tenant's writer lock and its writes are applied later, in one short
    write transaction, only if everything it read is still as it was (`still_current`)."""

    def __init__(
        self, conn: apsw.Connection | None, reads: list[Read] | None = None, writes: list[Write] | None = None
    ):
        self.conn = conn
        self.reads: list[Read] = reads if reads is not None else []
        self.writes: list[Write] = writes if writes is not None else []

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql.lstrip()[:6].upper() != "SELECT":
            self.writes.append((sql, params))
            return None
        assert self.conn is not None, "a recorded snapshot is for swapping in, not for reading"
        cursor = self.conn.execute(sql, params)
        first = next(cursor, None)
        description = cursor.get_description() if first is not None else ()
        found = [] if first is None else [first, *cursor]
        self.reads.append((sql, params, found))
        return _Replay(found, description)

    def still_current(self, conn: apsw.Connection) -> bool:
        """The compare of the compare-and-swap: the session row (its version and every other column), the
        learner's global objectives and shared data, the delivered activity's record, read again."""
        return all(list(conn.execute(sql, params)) == found for sql, params, found in self.reads)

    def apply(self, conn: apsw.Connection) -> None:
        for sql, params in self.writes:
            conn.execute(sql, params)


class _Replay:
    """The rows of one recorded query, as the cursor `db.connection.rows` reads them."""

    def __init__(self, found: list[tuple[Any, ...]], description: Any) -> None:
        self._rows = iter(found)
        self._description = description

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> tuple[Any, ...]:
        return next(self._rows)

    def get_description(self) -> Any:
        return self._description


def on_snapshot(
    db: Any, compute: Callable[[Snapshot], T], finish: Callable[[apsw.Connection, T], dict[str, Any]]
) -> dict[str, Any] | None:
    """Run `compute` on a read snapshot of `db` (no writer lock), then, in a short write transaction, apply
    its held-back writes and `finish` — or answer None when any row it read has changed meanwhile."""
    snapshot: Snapshot | None = None

    def read(conn: apsw.Connection) -> T:
        nonlocal snapshot
        snapshot = Snapshot(conn)
        return compute(snapshot)

    done = db.read_sync(read)
    assert snapshot is not None
    return swap(db, snapshot, lambda conn: finish(conn, done))


def swap(
    db: Database, snapshot: Snapshot, finish: Callable[[apsw.Connection], dict[str, Any]]
) -> dict[str, Any] | None:
    """The swap: in one write transaction, if every row `snapshot` read is unchanged, its writes, then
    `finish`; None (nothing written) when something changed."""

    def write(conn: apsw.Connection) -> dict[str, Any] | None:
        if not snapshot.still_current(conn):
            return None
        snapshot.apply(conn)
        return finish(conn)

    return db.write_sync(write)
