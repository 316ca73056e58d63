"""Many rows in few SQL calls, and the LRS's writer thread that runs statement batches beside the loop.

`insert_rows` writes rows with multi-row `INSERT … VALUES (…), (…)` statements of a few fixed sizes
(each prepared once and kept in the connection's statement cache): a third cheaper per row than
`executemany`, and SQLite runs each statement with the GIL released, not once per row.

`StatementWriter` is the statement store's writer for one tenant database: the event loop prepares a
batch (decoding, validation, ids, keys, JSON: appliance.services.lrs.statements.prepare_batch) and queues it
here; one thread takes everything queued, writes it in one transaction (the file's writer
connection, appliance.storage.sqlite.database.Database.write_sync) and answers each request's future. SQLite's
share of a batch (the B-tree inserts, the WAL at COMMIT) so runs on the second core while the loop
prepares the next batches, and batches arriving meanwhile share one COMMIT.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

import apsw

from appliance.storage.sqlite.connection import connect
from appliance.storage.sqlite.database import Database

ROWS_PER_INSERT = (256, 64, 16, 4, 1)  # the VALUES lists used, largest first
GROUP_STATEMENTS = 500  # a transaction waits for at most this many statements when writers are queueing …
GROUP_WAIT_SECONDS = 0.02  # … for at most this long …
GROUP_MEMORY = 8  # … and for no more than the largest of this many last transactions held
IDLE_SECONDS = 0.05  # the writer stops (and checkpoints) after this long without a batch
BUSY_CHECKPOINT_PAGES = 16000  # while the writer writes, a thread beside it checkpoints past this (64 MB) …
WAL_LIMIT_PAGES = 65536  # … and the writer itself past this (256 MB of WAL at most) …
DEFAULT_CHECKPOINT_PAGES = 1000  # … and SQLite's own autocheckpoint is set again when it stops
CHECKPOINTER_IDLE_SECONDS = 2.0  # the checkpointer's thread (and connection) ends after this long unused
log = logging.getLogger("appliance.lrs.bulk")


@functools.lru_cache(maxsize=64)
def _values_sql(target: str, width: int, rows: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO {target} VALUES " + ",".join([row] * rows)


def in_chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """`values` in pieces of at most `size`: one `IN (…)` list each, well under SQLite's variable limit."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


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
    runs as one (appliance.services.lrs.statements.write_simple_batches). Nobody is answered before the
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
        self._recent: deque[tuple[int, int]] = deque(maxlen=GROUP_MEMORY)  # (statements, items) per transaction
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lrs-writer-{db.path.stem}")
        self._checkpointer = _Checkpointer(db.path)

    async def submit(self, item: Any) -> Any:
        """Queue `item` and wait for its transaction; its result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queue.append((item, future, loop))
            self._queued += len(getattr(item, "pending", ())) or 1
            start = not self._running
            self._running = True
            self._lock.notify()
        if start:
            self._thread.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """Write what is queued, again and again until nothing has been queued for IDLE_SECONDS.

        While several writers are queueing (one of the last GROUP_MEMORY transactions took more than
        one item: one that took a single batch, the last of ten split off, does not end the waits), a
        transaction waits up to GROUP_WAIT_SECONDS for as many statements as the largest of the last
        GROUP_MEMORY transactions held (GROUP_STATEMENTS at most): a COMMIT writes each page the
        transaction changed once, and a batch's statements change pages all over the key index (a
        learner's, an activity's, a registration's), so a transaction of 2,000 statements costs a
        third of what four of 500 do. Ten clients' batches in flight so go into one transaction
        instead of two or three split by the time the loop takes to prepare them (5 ms was too short:
        about 70 ms of server CPU per 1,000 statements, against 53-66 ms), and fewer clients' are not
        held back waiting for statements that are not coming. A lone writer is never held back.

        While it writes, no commit of the file checkpoints the WAL itself (SQLite's autocheckpoint,
        which runs inside the COMMIT that crosses 1,000 pages, stalled every writer for the checkpoint's
        writes and fsyncs: a third of the throughput, and a p99 of half a second): a thread of its own
        (`_Checkpointer`) copies the WAL into the file beside the writer once it holds
        BUSY_CHECKPOINT_PAGES pages, the writer only past WAL_LIMIT_PAGES. When it stops, it
        checkpoints what is left on this thread and sets SQLite's autocheckpoint again, so no other
        writer of the file (a learner's commit on the event loop) ever runs a large checkpoint.
        """
        self._db.write_sync(self._hook_checkpointer, transaction=False)
        try:
            while True:
                with self._lock:
                    if not self._queue:
                        self._lock.wait_for(lambda: bool(self._queue), IDLE_SECONDS)
                    target = min(GROUP_STATEMENTS, max((n for n, _ in self._recent), default=0))
                    several = any(items > 1 for _, items in self._recent)
                    if several and self._queued < target:
                        self._lock.wait_for(lambda n=target: self._queued >= n, GROUP_WAIT_SECONDS)
                    taken, self._queue, queued, self._queued = self._queue, [], self._queued, 0
                    if not taken:  # idle: the next burst starts afresh
                        self._recent.clear()
                        break
                    self._recent.append((queued, len(taken)))
                self._write(taken)
                if self._checkpointer.pages >= WAL_LIMIT_PAGES:  # the checkpointer fell behind
                    self._checkpoint_every(0, now=True)
        finally:
            self._checkpoint_every(DEFAULT_CHECKPOINT_PAGES, now=True)
            with self._lock:
                self._running = bool(self._queue)  # queued during the final checkpoint: go on
                if self._running:
                    self._thread.submit(self._drain)

    def _write(self, taken: list[tuple[Any, asyncio.Future[Any], asyncio.AbstractEventLoop]]) -> None:
        """One transaction for the taken items; each caller answered after its COMMIT."""
        items = [item for item, _, _ in taken]
        try:
            outcomes = self._db.write_sync(functools.partial(self._run, items=items))
        except BaseException as exc:  # the COMMIT (or the disk) failed: nothing of these was written
            outcomes = [(None, exc)] * len(taken)
        for (_, future, loop), (result, error) in zip(taken, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, result, error)

    def _hook_checkpointer(self, conn: apsw.Connection) -> None:
        """The checkpointer's WAL hook on the writer connection, in place of SQLite's autocheckpoint (a
        SQLite file's: another store's connection has no WAL, appliance.storage.postgres)."""
        if isinstance(conn, apsw.Connection):
            conn.set_wal_hook(self._checkpointer.wal_hook)

    def _checkpoint_every(self, pages: int, *, now: bool = False) -> None:
        """The writer connection's autocheckpoint (`now`: checkpoint first), under the file's write lock."""

        def apply(conn: apsw.Connection) -> None:
            if not isinstance(conn, apsw.Connection):
                return
            if now:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            if pages:  # (0: the checkpointer's hook stays)
                conn.execute(f"PRAGMA wal_autocheckpoint={pages}").fetchall()

        try:
            self._db.write_sync(apply, transaction=False)
        except Exception:  # the database closed under us (shutdown): nothing left to tune
            log.debug("LRS writer of %s: checkpoint setting not applied", self._db.path, exc_info=True)


class _Checkpointer:
    """Checkpoints a file's WAL on a thread and connection of its own, beside its writer (PASSIVE: it
    copies what is committed into the file while the writer goes on appending to the WAL)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.pages = 0  # frames in the WAL after the last commit

    def wal_hook(self, conn: apsw.Connection, name: str, pages: int) -> int:
        """SQLite's WAL hook on the writer connection (after every COMMIT, on the committing thread)."""
        self.pages = pages
        if pages >= BUSY_CHECKPOINT_PAGES:
            self._wake.set()
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=f"lrs-checkpoint-{self._path.stem}")
                    self._thread.daemon = True
                    self._thread.start()
        return apsw.SQLITE_OK

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while True:
                if not self._wake.wait(CHECKPOINTER_IDLE_SECONDS):
                    with self._lock:
                        if not self._wake.is_set():
                            self._thread = None
                            return
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except apsw.Error:  # busy with another checkpoint, or the file went away: the next one will do
                    log.debug("LRS checkpoint of %s not made", self._path, exc_info=True)
        finally:
            conn.close()


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
