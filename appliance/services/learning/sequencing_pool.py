"""Worker processes for the sequencing of large courses, so it never holds the server's GIL.

`serve` is one process with one GIL: a 5,000-activity launch or navigation computed on a thread holds it
for 3-19 ms at a time, and every other tenant's request waits that long (bench/README.md, "Sequencing").
Above `PROCESS_MIN_ACTIVITIES` activities the run-time service (`appliance.services.learning.runtime`) hands the computation
to a worker process instead: the worker reads the tenant's SQLite file on a read-only connection of its
own (WAL lets readers in other processes run beside the writer), or on PostgreSQL the tenant's rows through
a small pool of its own in read-only snapshots, keeps the courses it loaded, computes
the step on its snapshot with the writes held back, and sends back the writes, what it read (the
compare of the compare-and-swap) and the answer already encoded. The server then swaps the writes in
under the tenant's writer lock as for a step computed on a thread.

The pool is started on first use, from a `forkserver` (a clean single-threaded process that forks the
workers; the server itself, which has threads, is never forked), and shut down with the server
(`shutdown`); a worker whose server was killed exits by itself. A worker that dies (killed, out of
memory) breaks the pool: the request in flight is answered `SequencingWorkerFailed` (500 INTERNAL_ERROR,
`details.retry: true`), and the next request gets a new pool.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import apsw

from appliance.clock import SystemClock
from appliance.config import Config, files_config
from appliance.errors import ApplianceError
from appliance.storage.datadir import DataDir
from appliance.storage.files.config import open_file_store
from appliance.storage.sqlite.connection import connect

T = TypeVar("T")

# Courses with more activities than this are sequenced in a worker process when the pool is on (the
# `sequencing_workers` setting). Below it a step costs well under 2 ms of CPU on a thread, less than
# the hop to a process and back; at 1,000 activities it is 3-6 ms, at 5,000 9-19 ms.
PROCESS_MIN_ACTIVITIES = 500
# What a worker process imports before it is forked from the forkserver, so a new worker is ready at once.
PRELOAD = ["appliance.services.learning.sequencing_jobs"]
# Read-only views of data directories a worker keeps (one per served appliance; tests make many).
WORKER_INSTANCES = 4
# A worker's young-collection threshold, as `serve` sets its own (appliance.faces.cli.serve.GC_YOUNG_THRESHOLD):
# a step builds tens of thousands of short-lived containers, which at Python's default of 700 are promoted
# while still in use and followed by full collections every few steps.
GC_YOUNG_THRESHOLD = 50_000
# How often a worker checks that the server is still there, where it cannot wait on a pidfd (not Linux).
WATCH_SECONDS = 1.0


class SequencingWorkerFailed(ApplianceError):
    """The worker process computing this request stopped (it was killed, or ran out of memory); nothing
    was written, and the same request sent again is computed by a new worker."""

    code = "INTERNAL_ERROR"


_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def _executor(workers: int) -> ProcessPoolExecutor:
    """The pool, started on first use with `workers` processes (restarted if the setting differs)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            old, _pool = _pool, None
            if old is not None:
                old.shutdown(wait=False, cancel_futures=True)
            context = _context()
            _pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_settle_worker, initargs=(os.getpid(),)
            )
            _pool_size = workers
        return _pool


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (Linux, macOS), with the run-time service imported once; else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _settle_worker(server_pid: int) -> None:
    """A new worker: its garbage collector as `serve`'s (what it imported frozen, young collections
    rarer), and a watch on the server that ends the worker with it (`_exit_with`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    threading.Thread(target=_exit_with, args=(server_pid,), name="server-watch", daemon=True).start()


def _exit_with(server_pid: int) -> None:
    """Exit once the server process is gone. A server stopped normally shuts its pool down; one that was
    killed (SIGKILL, the out-of-memory killer) would leave its workers waiting for work forever (a worker
    holds both ends of its task pipe, so it never reads end-of-file), and the forkserver alive with them."""
    try:
        watch = os.pidfd_open(server_pid)  # Linux: readable when the process has exited, whatever reuses its pid
    except (AttributeError, OSError):
        while _running(server_pid):
            time.sleep(WATCH_SECONDS)
    else:
        select.select([watch], [], [])
    os._exit(0)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _discard(broken: ProcessPoolExecutor) -> None:
    """Drop a broken pool (unless another request already replaced it): the next call starts a new one."""
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def run(workers: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker process, waited for on this thread (which holds no GIL meanwhile).

    `fn` and its arguments are pickled: a module-level function and plain data. A worker that dies
    raises SequencingWorkerFailed here; the exceptions `fn` raises are raised here as they are."""
    pool = _executor(workers)
    try:
        return pool.submit(fn, *args).result()
    except BrokenProcessPool:
        _discard(pool)
        raise SequencingWorkerFailed(
            "the worker process sequencing this request stopped before it answered; nothing was written: "
            "send the request again",
            {"retry": True},
        ) from None


def shutdown() -> None:
    """Stop the worker processes (the server is stopping); a later call to `run` starts them again."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def worker_pids() -> list[int]:
    """The worker processes' ids (for tests and diagnostics); empty when the pool is not running."""
    with _lock:
        processes = dict(getattr(_pool, "_processes", None) or {})
    return sorted(processes)


# -- inside a worker ---------------------------------------------------------------------------------


class ReadOnlyDatabase:
    """A tenant's (or the registry's) SQLite file as a worker sees it: one read-only connection, reads only.

    It offers `read_sync` as `appliance.storage.sqlite.database.Database` does; a read nested in another (the course
    loaded inside a step) joins the open read transaction. A file replaced on disk (a restore from
    backup, a tenant deleted and its files removed) is opened again rather than read as it was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: apsw.Connection | None = None
        self._inode = 0

    def read_sync(self, fn: Callable[[apsw.Connection], T]) -> T:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            return fn(conn)
        inode = os.stat(self.path).st_ino  # FileNotFoundError for a file that is gone
        if conn is None or inode != self._inode:
            if conn is not None:
                conn.close()
            conn, self._inode = connect(self.path, readonly=True), inode
            self._conn = conn
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    def write_sync(self, fn: Callable[[apsw.Connection], Any], **_: Any) -> Any:
        raise RuntimeError(f"a sequencing worker does not write ({self.path}): its writes go back to the server")


class ReadOnlyPgDatabase:
    """A tenant's (or the registry's) rows on PostgreSQL as a worker sees them: `PgDatabase.read_sync` (one
    read-only REPEATABLE READ snapshot, the tenant set for it; a nested read joins it), and no writes."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.path = db.path

    def read_sync(self, fn: Callable[[Any], T]) -> T:
        return self._db.read_sync(fn)

    def write_sync(self, fn: Callable[[Any], Any], **_: Any) -> Any:
        raise RuntimeError(f"a sequencing worker does not write ({self.path}): its writes go back to the server")


# Connections a worker keeps to one PostgreSQL schema: a worker computes one step at a time.
WORKER_PG_CONNECTIONS = 1


class WorkerInstance:
    """The part of `appliance.instance.Instance` a sequencing step reads through: config, clock, data
    directory and file store, the registry and the tenants' databases, all read-only (no migrations, no writer): the SQLite
    files, or on PostgreSQL the configured schema through a pool of the worker's own (the application role,
    row-level security as in the server)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = SystemClock()
        self.data = DataDir(Path(config.data_dir))
        self.files_config = files_config(config)
        self.files = open_file_store(self.files_config)  # a course's load checks its version's files are there
        self._pg: Any = None
        self.registry: ReadOnlyDatabase | ReadOnlyPgDatabase
        if config.database.startswith("postgresql"):
            from appliance.storage.postgres.adapter import PgStore

            self._pg = PgStore(
                config.database,
                schema=config.database_schema,
                min_size=WORKER_PG_CONNECTIONS,
                max_size=WORKER_PG_CONNECTIONS,
            )
            self.registry = ReadOnlyPgDatabase(self._pg.registry)
        else:
            self.registry = ReadOnlyDatabase(self.data.registry_db)
        self._tenant_dbs: dict[str, ReadOnlyDatabase | ReadOnlyPgDatabase] = {}

    def tenant_db(self, tenant_id: str) -> ReadOnlyDatabase | ReadOnlyPgDatabase:
        db = self._tenant_dbs.get(tenant_id)
        if db is None:
            if self._pg is not None:
                db = ReadOnlyPgDatabase(self._pg.tenant_db(tenant_id))
            else:
                db = ReadOnlyDatabase(self.data.tenant_db(tenant_id))
            self._tenant_dbs[tenant_id] = db
        return db

    def close(self) -> None:
        """Close the worker's PostgreSQL pool (the SQLite connections close when dropped)."""
        if self._pg is not None:
            self._pg.close()


_instances: dict[str, WorkerInstance] = {}


def worker_instance(config: Config) -> WorkerInstance:
    """This worker's read-only view of the appliance `config` describes, by data directory (kept: its
    connections stay open and its courses cached; a changed config makes a new one)."""
    key = str(config.data_dir)
    inst = _instances.get(key)
    if inst is None or inst.config != config:
        if inst is not None:
            _instances.pop(key).close()
        while len(_instances) >= WORKER_INSTANCES:
            _instances.pop(next(iter(_instances))).close()
        inst = _instances[key] = WorkerInstance(config)
    return inst
