"""Many rows in few SQL calls, and the LRS's writer thread that runs statement batches beside the loop.

`insert_rows` writes rows with multi-row `INSERT … VALUES (…), (…)` statements of a few fixed sizes
(each prepared once and kept in the connection's statement cache): a third cheaper per row than
`executemany`, and SQLite runs each statement with the GIL released, not once per row.

`StatementWriter` is the statement store's writer for one tenant database: the event loop prepares a
batch (decoding, validation, ids, keys, JSON: appliance.lrs.statements.prepare_batch) and queues it
here; one thread takes everything queued, writes it in one transaction (the file's writer
connection, appliance.db.database.Database.write_sync) and answers each request's future. SQLite's
share of a batch (the B-tree inserts, the WAL at COMMIT) so runs on the second core while the loop
prepares the next batches, and batches arriving meanwhile share one COMMIT.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any

import apsw

from appliance.db.database import Database

ROWS_PER_INSERT = (256, 64, 16, 4, 1)  # the VALUES lists used, largest first
GROUP_STATEMENTS = 500  # a transaction waits for this many statements when writers are queueing …
GROUP_WAIT_SECONDS = 0.005  # … at most this long


@functools.lru_cache(maxsize=64)
def _values_sql(target: str, width: int, rows: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO {target} VALUES " + ",".join([row] * rows)


def insert_rows(conn: apsw.Connection, target: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """INSERT `rows` (tuples of `width` values) into `target` ("table (col, …)"), in their order."""
    at, total = 0, len(rows)
    for size in ROWS_PER_INSERT:
        if size * width > 32766:  # SQLite's default limit of bound parameters
            continue
        while total - at >= size:
            conn.execute(_values_sql(target, width, size), list(chain.from_iterable(rows[at : at + size])))
            at += size


Job = Callable[[apsw.Connection], Any]
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class StatementWriter:
    """One tenant database's queue of LRS writes, run in order on one thread, grouped per transaction.

    A job is either a callable of the connection (any write: its own savepoint, so one that raises
    is undone alone and raises to its own caller) or, through `group`, several jobs that the caller
    runs as one (appliance.lrs.statements.write_simple_batches). Nobody is answered before the
    transaction's COMMIT.
    """

    def __init__(
        self, db: Database, run: Callable[[apsw.Connection, list[Any]], list[tuple[Any, BaseException | None]]]
    ):
        self._db = db
        self._run = run  # (conn, the queued items in order) → (result, error) per item
        self._queue: list[tuple[Any, asyncio.Future[Any], asyncio.AbstractEventLoop]] = []
        self._queued = 0  # statements in the queue (a callable counts as one)
        self._lock = threading.Condition(threading.Lock())
        self._running = False
        self._last_group = 0  # items in the last transaction
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lrs-writer-{db.path.stem}")

    async def submit(self, item: Any) -> Any:
        """Queue `item` and wait for its transaction; its result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queue.append((item, future, loop))
            self._queued += len(getattr(item, "pending", ())) or 1
            start = not self._running
            self._running = True
            if self._queued >= GROUP_STATEMENTS:
                self._lock.notify()
        if start:
            self._thread.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """Write what is queued, again and again until the queue is empty.

        While several writers are queueing (the last transaction took more than one item), a
        transaction waits up to GROUP_WAIT_SECONDS for GROUP_STATEMENTS statements: a COMMIT writes
        each page the transaction changed once, and a batch's statements change pages all over the
        key index (a learner's, an activity's, a registration's), so a transaction of 2,000
        statements costs a third of what four of 500 do. A lone writer is never held back.
        """
        while True:
            with self._lock:
                if self._last_group > 1 and self._queued < GROUP_STATEMENTS:
                    self._lock.wait_for(lambda: self._queued >= GROUP_STATEMENTS, GROUP_WAIT_SECONDS)
                taken, self._queue, self._queued = self._queue, [], 0
                self._last_group = len(taken)
                if not taken:
                    self._running = False
                    return
            items = [item for item, _, _ in taken]
            try:
                outcomes = self._db.write_sync(functools.partial(self._run, items=items))
            except BaseException as exc:  # the COMMIT (or the disk) failed: nothing of these was written
                outcomes = [(None, exc)] * len(taken)
            for (_, future, loop), (result, error) in zip(taken, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def in_savepoint(conn: apsw.Connection, job: Job) -> tuple[Any, BaseException | None]:
    """(result, None) of `job`, or (None, its exception) with its changes undone."""
    conn.execute("SAVEPOINT lrs_write")
    try:
        result = job(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO lrs_write")
        conn.execute("RELEASE lrs_write")
        return None, exc
    conn.execute("RELEASE lrs_write")
    return result, None


_writers: weakref.WeakKeyDictionary[Database, StatementWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_for(
    db: Database, run: Callable[[apsw.Connection, list[Any]], list[tuple[Any, BaseException | None]]]
) -> StatementWriter:
    """The database's writer (created on first use; it goes with the Database object)."""
    with _writers_lock:
        found = _writers.get(db)
        if found is None:
            found = _writers[db] = StatementWriter(db, run)
        return found
