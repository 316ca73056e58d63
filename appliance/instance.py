"""The running appliance's shared state: one object that the server, the CLI and the jobs all hold.

It owns the registry database and the cache of open tenant databases. A tenant's database is opened
only through `tenant_db(tenant_id)` with an id that authentication resolved, never from a URL.

With the `database` setting at its default (`sqlite`) these are the SQLite files of the data directory;
with a `postgresql://` URL they are the one PostgreSQL schema `database_schema`, reached through a
connection pool as the application role (docs/scale-out.md, "Databases"). Package files and uploads
are in `files`, the one file store of the `files` setting: the data directory by default, or an S3
bucket (docs/scale-out.md, "Files").
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.clock import Clock, SystemClock
from appliance.config import DURABILITY_LEVELS, Config, files_config
from appliance.storage.datadir import DataDir
from appliance.storage.files.base import FileStore
from appliance.storage.files.config import FilesConfig, open_file_store
from appliance.storage.sqlite.database import Database
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations

if TYPE_CHECKING:
    from appliance.storage.postgres.adapter import PgDatabase, PgStore

log = logging.getLogger("appliance.instance")
DURABILITY = {"normal": "NORMAL", "full": "FULL"}  # the `durability` setting: tenant files' synchronous level
assert set(DURABILITY) == set(DURABILITY_LEVELS)


def tenant_synchronous(durability: str) -> str:
    """The SQLite synchronous level of tenant databases for the `durability` setting (docs/service.md)."""
    try:
        return DURABILITY[durability.lower()]
    except KeyError:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}") from None


class Instance:
    """Config, clock, data directory, file store and databases of one appliance."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.data = DataDir(Path(config.data_dir))
        self.data.ensure()
        self._tenant_synchronous = tenant_synchronous(config.durability)
        self._tenant_dbs: dict[str, Database] = {}
        self._lock = threading.Lock()
        self.files_config: FilesConfig = files_config(config)
        self.files: FileStore = open_file_store(self.files_config)
        self.pg: PgStore | None = None
        if config.database != "sqlite":
            self.pg = open_pg_store(config)
            self.registry: Database | PgDatabase = self.pg.registry
        else:
            # The registry (tenants, keys, jobs) is small and rarely written: every commit survives power loss.
            self.registry = Database(self.data.registry_db, registry_migrations, self.clock.now(), synchronous="FULL")

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`: which store the databases are on."""
        return "sqlite" if self.pg is None else "postgresql"

    def tenant_db(self, tenant_id: str) -> Database:
        """The tenant's database, opened (and migrated) on first use and then cached."""
        if self.pg is not None:
            return self.pg.tenant_db(tenant_id)  # type: ignore[return-value]  # the same read/write interface
        with self._lock:
            db = self._tenant_dbs.get(tenant_id)
            if db is None:
                path = self.data.tenant_db(tenant_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                db = Database(path, tenant_migrations, self.clock.now(), synchronous=self._tenant_synchronous)
                self._tenant_dbs[tenant_id] = db
            return db

    def has_tenant_db(self, tenant_id: str) -> bool:
        """Whether the tenant still has its database: the services ask before a background pass touches a
        tenant, so that a tenant deleted meanwhile is skipped, not recreated empty. On SQLite that is its
        file; on PostgreSQL its registry row (deleting it deletes every row of the tenant)."""
        if self.pg is None:
            return self.data.tenant_db(tenant_id).exists()
        found = self.registry.read_sync(
            lambda c: c.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
        )
        return found is not None

    def database_problem(self, timeout: float = 2.0) -> str | None:
        """Why the databases cannot be used now (the error's kind), or None when they answer (the readiness route's check).
        SQLite: the registry answers a query. PostgreSQL: a pool connection, within `timeout` seconds,
        answers one (a down or unreachable server, or a full pool, is reported, not waited on)."""
        try:
            if self.pg is None:
                self.registry.read_sync(lambda c: c.execute("SELECT count(*) FROM _migrations").fetchone())
            else:
                with self.pg.pool.connection(timeout=timeout) as conn:
                    conn.execute("SELECT 1").fetchone()
        except Exception as exc:  # any failure means "not ready"
            # The detail (host, port, role) goes to the log only: the readiness route is unauthenticated.
            log.warning("database not ready (%s): %s", self.backend, exc)
            return type(exc).__name__
        return None

    def forget_tenant(self, tenant_id: str) -> None:
        """Close and drop a cached tenant database (before the tenant's files are deleted)."""
        with self._lock:
            db = self._tenant_dbs.pop(tenant_id, None)
        if db is not None:
            db.close()

    def open_tenant_ids(self) -> list[str]:
        """Tenants whose databases are open in this process."""
        with self._lock:
            return list(self._tenant_dbs)

    def close(self) -> None:
        """Close every database."""
        with self._lock:
            dbs = list(self._tenant_dbs.values())
            self._tenant_dbs.clear()
        for db in dbs:
            db.close()
        self.registry.close()
        if self.pg is not None:
            self.pg.close()


def open_pg_store(config: Config) -> PgStore:
    """The pool on the configured PostgreSQL schema, which must have been installed (`scorm-appliance
    database install` as an administrator, docs/scale-out.md): the application role cannot create it."""
    import psycopg

    from appliance.storage.postgres.adapter import PgStore, SchemaMismatch

    try:
        return PgStore(config.database, schema=config.database_schema, min_size=1, max_size=config.database_pool_size)
    except psycopg.errors.UndefinedTable:
        raise SchemaMismatch(
            f"the PostgreSQL schema {config.database_schema!r} is not installed (or not visible to this role): "
            'install it first (docs/scale-out.md, "Setting up a database")'
        ) from None
