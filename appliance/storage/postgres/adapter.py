"""The services' view of a database, on PostgreSQL: an apsw-shaped connection and a Database-shaped object.

`PgConnection` offers the part of apsw's Connection the services use — `execute(sql, params)` returning
an iterable cursor of tuples with `get_description()`, `fetchone`/`fetchall`, `executemany`, `changes()`,
savepoints through plain SQL — and translates each statement (appliance.storage.postgres.translate),
so `appliance.storage.sqlite.connection.rows`/`one` and the services' functions run on it unchanged.

`PgDatabase` is one tenant's (or the registry's) database with `appliance.storage.sqlite.database.Database`'s
`read_sync`/`write_sync`/`read`/`write`. Every transaction sets `app.tenant_id` for itself only
(`set_config(..., true)`, the SET LOCAL of a function call), so a pooled connection never carries a
tenant into the next transaction. A write transaction first takes a transaction-scoped advisory lock on
its tenant: writes to one tenant are serialised across every worker, as SQLite's one writer per file
serialises them in one process, so the services' read-then-write transactions (numbering statements,
compare-and-swap of a session) stay correct. A write confined to one subject's rows (a learner's plain
commit: its session's rows, atomic upserts and outbox inserts) names the subject instead: it takes the
tenant's lock *shared* and the subject's exclusively, so one tenant's learners commit in parallel across
workers while every other write of the tenant still waits for them all, and they for it. A read runs in a
REPEATABLE READ, READ ONLY transaction: one snapshot, as a SQLite read transaction sees. The async forms run
on the store's own threads, one per pool connection (the default executor has only cores + 4).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, TypeVar

import apsw
import psycopg
from psycopg import sql as pgsql
from psycopg_pool import ConnectionPool

from appliance.errors import ApplianceError
from appliance.storage.postgres.catalog import Catalog, registry_catalog, tenant_catalog
from appliance.storage.postgres.schema import SETTING, fingerprint, schema_ddl
from appliance.storage.postgres.translate import TENANT_COLUMN, Untranslatable, translate

T = TypeVar("T")
# PRAGMAs the services send that mean nothing on PostgreSQL (SQLite memory tuning; foreign keys: always on there).
_HARMLESS_PRAGMAS = ("cache_size", "mmap_size", "temp_store", "wal_autocheckpoint", "foreign_keys")
_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_DEADLOCK_RETRIES = 3  # a subject write the server chose as a deadlock's victim runs again, up to this often


def _value(v: Any) -> Any:
    """A PostgreSQL value as SQLite would have returned it: numeric sums as int (or float), booleans 0/1."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def _param(v: Any) -> Any:
    """A parameter as SQLite stores it: a bool is 0 or 1 (PostgreSQL would refuse a boolean in a bigint)."""
    return int(v) if isinstance(v, bool) else v


class SchemaMismatch(ApplianceError, RuntimeError):
    """The schema in PostgreSQL is not the one this release's migrations describe (or is missing): `serve`
    and every CLI command stop with this message, naming what to run, instead of a traceback."""

    code = "DATABASE_ERROR"


class PgCursor:
    """The rows of one statement, read at once, as apsw's cursor yields them (tuples)."""

    def __init__(self, found: list[tuple[Any, ...]], description: list[tuple[str, str]]) -> None:
        self._rows = iter(found)
        self._description = description

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self._rows

    def __next__(self) -> tuple[Any, ...]:
        return next(self._rows)

    def get_description(self) -> list[tuple[str, str]]:
        """(name, declared type) per column, as apsw's."""
        return self._description

    @property
    def description(self) -> list[tuple[str, str]]:
        return self._description

    def fetchone(self) -> tuple[Any, ...] | None:
        return next(self._rows, None)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


class PgConnection:
    """One psycopg connection inside one transaction, speaking the SQLite dialect the services write.

    On a tenant's connection, the `tenant_id` column that PostgreSQL adds is left out of every result
    (a `SELECT *` answers what it answers on SQLite, where the tenant is the file).
    """

    def __init__(self, raw: psycopg.Connection, catalog: Catalog) -> None:
        self.raw = raw
        self.catalog = catalog
        self._changes = 0
        self._hide_tenant = catalog.tenant_owned
        self._cursor: psycopg.Cursor[Any] | None = None

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def _params(self, params: Sequence[Any] | Mapping[str, Any] | None, named: bool) -> Any:
        if params is None:
            return {} if named else ()
        if isinstance(params, Mapping):
            return {k: _param(v) for k, v in params.items()}
        return tuple(_param(v) for v in params)

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = ()) -> PgCursor:
        """Run one statement (translated) and return its rows."""
        head = sql.lstrip()[:7].upper()
        if head.startswith("PRAGMA"):
            return self._pragma(sql)
        statement = translate(sql, self.catalog)
        cursor = self._cursor
        if cursor is None:
            cursor = self._cursor = self.raw.cursor()  # one per transaction: a learner's commit runs five statements
        try:
            cursor.execute(statement.sql, self._params(params, statement.named))
        except psycopg.errors.IntegrityError as exc:
            raise apsw.ConstraintError(str(exc).strip()) from exc
        if head.startswith(_DML):
            self._changes = max(cursor.rowcount, 0)
        result = cursor.pgresult
        if result is None or not result.nfields:
            return PgCursor([], [])
        # The names and type oids straight from the result (cursor.description builds an object per column).
        names = [(result.fname(i).decode(), str(result.ftype(i))) for i in range(result.nfields)]
        found = cursor.fetchall()
        keep = [i for i, (name, _) in enumerate(names) if not (self._hide_tenant and name == TENANT_COLUMN)]
        if len(keep) == len(names):
            return PgCursor([tuple(_value(v) for v in row) for row in found], names)
        return PgCursor([tuple(_value(row[i]) for i in keep) for row in found], [names[i] for i in keep])

    def executemany(self, sql: str, seq: Sequence[Sequence[Any] | Mapping[str, Any]]) -> PgCursor:
        """Run one statement per parameter set (psycopg pipelines them)."""
        statement = translate(sql, self.catalog)
        with self.raw.cursor() as cursor:
            try:
                cursor.executemany(statement.sql, [self._params(p, statement.named) for p in seq])
            except psycopg.errors.IntegrityError as exc:
                raise apsw.ConstraintError(str(exc).strip()) from exc
            self._changes = max(cursor.rowcount, 0)
        return PgCursor([], [])

    def changes(self) -> int:
        """Rows changed by the last INSERT, UPDATE or DELETE (a SELECT leaves it as it was, as in SQLite)."""
        return self._changes

    def _pragma(self, sql: str) -> PgCursor:
        name = sql.strip().split(None, 1)[1].split("=")[0].split("(")[0].strip().lower()
        if name in _HARMLESS_PRAGMAS:
            return PgCursor([], [])
        raise Untranslatable(f"PRAGMA {name} has no PostgreSQL meaning here")


class PgDatabase:
    """One tenant's rows (or the registry's) on PostgreSQL, with `Database`'s read/write interface."""

    def __init__(
        self, pool: ConnectionPool, catalog: Catalog, tenant_id: str | None, executor: Executor | None = None
    ) -> None:
        if catalog.tenant_owned and not tenant_id:
            raise ValueError("a tenant database needs its tenant id")
        self.pool = pool
        self.executor = executor  # the async forms' threads (None: the event loop's default executor)
        self.catalog = catalog
        self.tenant_id = tenant_id
        # Database.path's other use: naming the database in logs and thread names (lrs.bulk's writer
        # thread). No file is there; code that opens files by it is for the SQLite backend only.
        self.path = PurePosixPath("postgresql", tenant_id or "registry")
        self._local = threading.local()  # the connection of the write (or read) this thread is inside
        self._open_write, self._open_read = self._opening(True), self._opening(False)
        self._open_write_rows = self._opening(True, serialise=False)

    def _opening(self, write: bool, *, serialise: bool = True) -> bytes:
        """The statements that open a transaction, sent in one round trip: BEGIN (a read: one snapshot,
        read-only), the tenant for this transaction only, and for a write the tenant's lock — one writer
        per tenant across every worker, as SQLite has one writer per file (`serialise=False`: no lock)."""
        tenant = pgsql.Literal(self.tenant_id or "")
        parts = [pgsql.SQL("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")]
        if self.tenant_id is not None:
            parts.append(pgsql.SQL("SELECT set_config({}, {}, true)").format(pgsql.Literal(SETTING), tenant))
        if write and serialise:
            parts.append(pgsql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(tenant))
        return pgsql.SQL("; ").join(parts).as_bytes(None)

    def _subject_opening(self, subject: str) -> bytes:
        """BEGIN, the tenant, its lock shared and the subject's lock exclusive, in one round trip."""
        tenant = pgsql.Literal(self.tenant_id or "")
        return (
            pgsql.SQL(
                "BEGIN; SELECT set_config({}, {}, true); SELECT pg_advisory_xact_lock_shared(hashtextextended({}, 0)); "
                "SELECT pg_advisory_xact_lock(hashtextextended({}, 1))"
            )
            .format(pgsql.Literal(SETTING), tenant, tenant, pgsql.Literal(f"{self.tenant_id or ''}/{subject}"))
            .as_bytes(None)
        )

    def write_sync(
        self,
        fn: Callable[[PgConnection], T],
        *,
        transaction: bool = True,
        durable: bool = False,
        subject: str | None = None,
    ) -> T:
        """Run `fn(conn)` in one transaction with the tenant set and its write lock held; `fn` raising rolls
        it all back. Called inside a write or read on this thread, it joins it. `durable` is implied:
        PostgreSQL's commit is flushed (synchronous_commit on) before it returns.

        `subject` (a session id): `fn` writes only that subject's rows, plus inserts and atomic upserts
        whose order between subjects does not matter (outboxes read under the tenant's lock, counters kept
        by `ON CONFLICT DO UPDATE`). It then holds the tenant's lock shared and the subject's exclusive:
        writes of one subject run one at a time, of different subjects in parallel, and any write without
        a subject runs alone, as before."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            return fn(current)
        with self.pool.connection() as raw:
            if not transaction:
                return self._autocommit(raw, fn)
            if subject is None or self.tenant_id is None:
                return self._transaction(raw, self._open_write, fn)
            opening = self._subject_opening(subject)
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    return self._transaction(raw, opening, fn)
                except psycopg.errors.DeadlockDetected:
                    # Two subjects' counters (the analytics triggers' upserts) met in opposite orders:
                    # the server rolled one back whole; it runs again, as it would have queued.
                    if attempt == _DEADLOCK_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")

    def write_rows_sync(self, fn: Callable[[PgConnection], T]) -> T:
        """Like `write_sync` but without the tenant's write lock: for statements that lock the rows they
        change themselves (the job queue's `SELECT … FOR UPDATE SKIP LOCKED` claim and its single-row
        updates), so workers claiming jobs wait on no lock but the rows'. Inside a write, it joins it."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            return fn(current)
        with self.pool.connection() as raw:
            return self._transaction(raw, self._open_write_rows, fn)

    def _transaction(self, raw: psycopg.Connection, opening: bytes, fn: Callable[[PgConnection], T]) -> T:
        """`fn(conn)` between `opening` and COMMIT; `fn` raising rolls it back."""
        try:
            raw.execute(opening)
            self._local.conn = conn = PgConnection(raw, self.catalog)
            result = fn(conn)
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        finally:
            self._local.conn = None
        raw.execute("COMMIT")
        return result

    def _autocommit(self, raw: psycopg.Connection, fn: Callable[[PgConnection], T]) -> T:
        """`transaction=False`: each statement commits by itself, the tenant set for the session meanwhile."""
        if self.tenant_id is not None:
            raw.execute("SELECT set_config(%s, %s, false)", (SETTING, self.tenant_id))
        try:
            self._local.conn = conn = PgConnection(raw, self.catalog)
            return fn(conn)
        finally:
            self._local.conn = None
            if self.tenant_id is not None:
                raw.execute("SELECT set_config(%s, '', false)", (SETTING,))

    def read_sync(self, fn: Callable[[PgConnection], T]) -> T:
        """Run `fn(conn)` in one read-only snapshot of the tenant's rows (inside a write: in that write)."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            return fn(current)
        with self.pool.connection() as raw:
            try:
                raw.execute(self._open_read)
                self._local.conn = conn = PgConnection(raw, self.catalog)
                return fn(conn)
            finally:
                self._local.conn = None
                raw.execute("ROLLBACK")  # nothing to keep; ends the snapshot

    async def write(self, fn: Callable[[PgConnection], T], *, subject: str | None = None) -> T:
        """Async form of `write_sync`, on the store's threads (the pool's connections are synchronous)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: self.write_sync(fn, subject=subject))

    async def read(self, fn: Callable[[PgConnection], T]) -> T:
        """Async form of `read_sync`, on the store's threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.read_sync, fn)

    def close(self) -> None:
        """Nothing of its own to close: the connections belong to the store's pool."""


class PgStore:
    """The pool of connections to one PostgreSQL schema, and the databases the services open on it."""

    def __init__(self, conninfo: str, *, schema: str, min_size: int = 1, max_size: int = 8) -> None:
        self.schema = schema
        self.pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            open=True,
        )
        self._tenants: dict[str, PgDatabase] = {}
        self._lock = threading.Lock()
        # One thread per connection the pool may open: every connection can be in use by the async paths
        # at once (a transaction mostly waits on the server), without taking the event loop's default
        # executor, which the file and CPU work share.
        self.executor = ThreadPoolExecutor(max_workers=max_size, thread_name_prefix="pg")
        self.registry = PgDatabase(self.pool, registry_catalog(), None, self.executor)
        try:
            self._check_schema()
        except BaseException:
            self.pool.close()
            self.executor.shutdown(wait=False)
            raise

    def _check_schema(self) -> None:
        """Refuse a schema made from other migrations than this release's (its DDL fingerprint differs):
        the translated SQL would meet tables it does not expect. The application role cannot alter the
        schema, so an older one is upgraded by `scorm-appliance database upgrade`, which the refusal names."""
        expected = fingerprint(schema_ddl())
        found = self.registry.read_sync(
            lambda c: [tuple(r) for r in c.execute("SELECT migration_set, name FROM _migrations")]
        )
        marks = [name for kind, name in found if kind == "postgres"]
        if marks != [expected]:
            from appliance.storage.sqlite.registry_schema import registry_migrations
            from appliance.storage.sqlite.tenant_schema import tenant_migrations

            known = {(m.name, n) for m in (registry_migrations, tenant_migrations) for n, _ in m.steps}
            held = {(kind, name) for kind, name in found if kind != "postgres"}
            if held < known:
                advice = (
                    f"it lacks {len(known - held)} of this release's migrations: run "
                    "`scorm-appliance database upgrade --admin-url …` first"
                )
            elif held - known:
                advice = "it holds migrations of a later release: run that release"
            else:
                advice = "install this release's schema"
            raise SchemaMismatch(
                f"the PostgreSQL schema {self.schema!r} was made by another release (schema {', '.join(marks) or 'unknown'}, "
                f"this release's is {expected}); {advice}"
            )

    def tenant_db(self, tenant_id: str) -> PgDatabase:
        """The tenant's database (one object per tenant, all on the one pool)."""
        with self._lock:
            db = self._tenants.get(tenant_id)
            if db is None:
                db = self._tenants[tenant_id] = PgDatabase(self.pool, tenant_catalog(), tenant_id, self.executor)
            return db

    def close(self) -> None:
        """Close the pool's connections (and its threads, once what they run is done)."""
        self.pool.close()
        self.executor.shutdown(wait=False)
