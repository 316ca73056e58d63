"""One SQLite file: one writer connection behind a lock, and per-thread read connections.

Every write to a file goes through its one writer connection inside `BEGIN IMMEDIATE`, one transaction
at a time (a lock serialises them), so writers never fight over SQLite's lock inside this process; the
CLI in another process waits on the busy timeout. Reads use a connection per thread, which WAL lets run
beside the writer.

Async callers run their short write transactions inline on the event loop — a commit's transaction
takes a fraction of a millisecond, less than the hop to a thread would — grouped into one transaction
per round of the loop (see `write`); when a thread holds the file's lock they wait for it off the loop,
so the loop never blocks on someone else.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import apsw

from appliance.storage.sqlite.connection import connect
from appliance.storage.sqlite.migrations import Migrations

T = TypeVar("T")
Outcome = tuple["asyncio.Future[Any]", Any, Exception | None]


def _in_savepoint(conn: apsw.Connection, fn: Callable[[apsw.Connection], Any], future: asyncio.Future[Any]) -> Outcome:
    """Run one write of a group in its own savepoint: if it raises, only its changes are undone."""
    conn.execute("SAVEPOINT grouped_write")
    try:
        result = fn(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO grouped_write")
        conn.execute("RELEASE grouped_write")
        return future, None, exc
    conn.execute("RELEASE grouped_write")
    return future, result, None


class Database:
    """A SQLite file with migrations applied at open and a single writer connection."""

    def __init__(self, path: Path, migrations: Migrations, now: float, *, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous  # every connection's level; `write_sync(durable=True)` raises one write's
        self._local = threading.local()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-writer-{path.stem}")
        self._write_lock = threading.Lock()  # a plain Lock: `write` may take it on one thread, release on another
        self._async_lock = asyncio.Lock()
        self._batch: list[tuple[Callable[[apsw.Connection], Any], asyncio.Future[Any]]] = []
        self._flush_pending = False
        self._last_batch = 0  # writes in the last flush
        self._lock_owner: int | None = None  # the thread inside a write, which reads through the writer
        self._writer_conn: apsw.Connection | None = None
        self._closed = False
        self._all_conns: list[apsw.Connection] = []
        self._conns_lock = threading.Lock()
        self.write_sync(lambda conn: migrations.apply(conn, now), transaction=False)

    # -- connections -------------------------------------------------------------------------

    def _open(self) -> apsw.Connection:
        conn = connect(self.path, synchronous=self.synchronous)
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _read_conn(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _locked_write(self, fn: Callable[[apsw.Connection], T], transaction: bool, durable: bool = False) -> T:
        """Run one write with the lock already held by this thread (`durable`: its COMMIT syncs the WAL)."""
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        if self._writer_conn is None:
            self._writer_conn = self._open()
        conn = self._writer_conn
        self._lock_owner = threading.get_ident()
        raised = durable and self.synchronous != "FULL"
        try:
            if raised:
                conn.execute("PRAGMA synchronous=FULL")  # outside any transaction, for this one commit
            if not transaction:
                return fn(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        finally:
            if raised:
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._lock_owner = None

    def _run_write(self, fn: Callable[[apsw.Connection], T], transaction: bool, durable: bool = False) -> T:
        with self._write_lock:
            return self._locked_write(fn, transaction, durable)

    # -- public API --------------------------------------------------------------------------

    def write_sync(self, fn: Callable[[apsw.Connection], T], *, transaction: bool = True, durable: bool = False) -> T:
        """Run `fn(conn)` on the writer connection in one IMMEDIATE transaction and wait for it.

        `fn` raising rolls the whole transaction back: nothing is half-written. Called from inside a
        write (the same thread holds the lock), it joins that write instead of deadlocking. `durable`
        commits with synchronous=FULL whatever the file's level, so the transaction survives power loss
        once this returns (and so do all before it: the WAL is written in order); for state that files
        outside the database depend on, such as a package version marked ready.
        """
        if self._lock_owner == threading.get_ident() and self._writer_conn is not None:
            return fn(self._writer_conn)
        return self._run_write(fn, transaction, durable)

    async def write(self, fn: Callable[[apsw.Connection], T], *, subject: str | None = None) -> T:
        """Async form of `write_sync`: the transaction runs inline on the event loop, grouped.

        `subject` says the write touches only that subject's rows (PgDatabase runs those of different
        subjects in parallel); a file has one writer, so here it changes nothing.

        The writes that arrive while the event loop is busy with one round of ready requests are run
        together, in order, in one transaction, each inside its own savepoint: one that raises is rolled
        back alone and raises to its own caller, the others are committed. Nobody is answered before the
        shared COMMIT, so an acknowledged write is as durable as one committed alone. Grouping saves a
        COMMIT per write (writing the WAL is the largest single cost of a learner's commit).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._batch.append((fn, future))
        if not self._flush_pending:
            self._flush_pending = True
            loop.create_task(self._flush())  # runs after the requests already ready in this round
        return await future

    async def _flush(self) -> None:
        """Run the queued async writes. Flushes run one at a time (asyncio lock, first come first
        served); the file's lock is taken at once when it is free, else waited for off the loop (a
        thread — a job, a sync route — holds it), and the writes then run inline on the loop."""
        async with self._async_lock:
            if len(self._batch) * 2 < self._last_batch:
                # Fewer than half the writers of the last flush are here: the others were answered a
                # moment ago and their next writes are arriving; one more loop round takes them along
                # (a lone write after a group would otherwise pay a transaction of its own).
                await asyncio.sleep(0)
            if not self._write_lock.acquire(blocking=False):
                await asyncio.get_running_loop().run_in_executor(self._writer, self._write_lock.acquire)
            batch, self._batch, self._flush_pending = self._batch, [], False
            self._last_batch = len(batch)
            try:
                outcomes = self._run_batch(batch)
            finally:
                self._write_lock.release()
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def _run_batch(self, batch: list[tuple[Callable[[apsw.Connection], Any], asyncio.Future[Any]]]) -> list[Outcome]:
        """One transaction for the batch (the file's lock held), a savepoint around each write of several."""
        live = [(fn, future) for fn, future in batch if not future.cancelled()]
        if len(live) == 1:
            fn, future = live[0]
            try:
                return [(future, self._locked_write(fn, True), None)]
            except Exception as exc:
                return [(future, None, exc)]
        try:
            return self._locked_write(lambda conn: [_in_savepoint(conn, fn, future) for fn, future in live], True)
        except Exception as exc:  # the COMMIT (or the disk) failed: nothing of the batch was written
            return [(future, None, exc) for _, future in live]

    def read_sync(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run `fn(conn)` on this thread's read connection, in one read transaction.

        Inside a write on this thread, the read goes through the writer's own connection: it sees the
        transaction's changes, and a second connection of the same thread would wait on the lock that
        thread already holds.
        """
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        writer = self._writer_conn
        if self._lock_owner == threading.get_ident() and writer is not None and writer.in_transaction:
            return fn(writer)
        conn = self._read_conn()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    async def read(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Async form of `read_sync`, run in the default thread pool."""
        return await asyncio.to_thread(self.read_sync, fn)

    def close(self) -> None:
        """Finish pending writes and close every connection this object opened."""
        if self._closed:
            return
        with self._write_lock:
            self._closed = True
        self._writer.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()
