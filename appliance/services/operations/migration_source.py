"""The embedded data directory as `scorm-appliance migrate` reads it: its databases and package files.

The source must be at rest while it is copied: no `serve` process and no other command may have its
SQLite files open. The appliance keeps no lock file of its own (several `serve` processes may share a
data directory), so the check asks SQLite's own lock instead: every connection to a WAL database holds
a shared lock on the "dead man switch" byte of its `-shm` file for as long as it is open, and only
when no other process holds one can an exclusive lock on that byte be taken (that is how SQLite itself
knows it is the first to open the file). `open_elsewhere` tries that exclusive lock, without waiting,
on the registry and on every tenant's file, and lets go at once. A `-shm` file that is missing means
no connection is open. Where `fcntl` is missing (Windows) nothing can be checked: stop the appliance.

Rows are read table by table in the catalog's column order (`appliance.storage.postgres.catalog`, the
same description the PostgreSQL schema is generated from), streamed from one read transaction per
file, so a table of any size is never held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from appliance.errors import ApplianceError
from appliance.storage.datadir import DataDir
from appliance.storage.postgres.catalog import Catalog, Table, registry_catalog, tenant_catalog
from appliance.storage.sqlite.connection import connect
from appliance.storage.sqlite.database import Database
from appliance.storage.sqlite.migrations import Migrations
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations

try:
    import fcntl
except ImportError:  # Windows: no POSIX record locks to ask
    fcntl = None  # type: ignore[assignment]

# SQLite's wal-index: 120 bytes of header, then 8 lock bytes (WAL_WRITE_LOCK, CKPT, RECOVER, READ 0-4),
# then the DMS ("dead man switch") byte that every open connection holds shared (src/os_unix.c).
_DMS_OFFSET = 120 + 8
DB_FILES = ("tenant.db", "tenant.db-wal", "tenant.db-shm", "tenant.db-journal")
FILE_FOLDERS = ("packages", "uploads")  # a tenant's space in a file store (docs/scale-out.md, "Files")


class MigrationRefused(ApplianceError):
    """The migration cannot start as things are: the source in use, the target not empty, a schema
    from another release."""

    code = "MIGRATION_REFUSED"


def open_elsewhere(db: Path) -> bool:
    """Whether another process has the SQLite database `db` open now (its `-shm` lock byte is held)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(f"{db}-shm", os.O_RDWR)
    except FileNotFoundError:
        return False  # the last connection to close removes it: none is open
    except PermissionError as exc:  # an exclusive POSIX lock needs a descriptor open for writing
        raise MigrationRefused(
            f"cannot tell whether the appliance is using {db.name}: run the migration as the user the appliance "
            "runs as (the owner of the data directory)",
            {"file": str(db)},
        ) from exc
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _DMS_OFFSET)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _DMS_OFFSET)
        return False
    finally:
        os.close(fd)


@dataclass(frozen=True)
class SourceFile:
    """One package file of a tenant: its tenant-relative path (the store's path) and where it is."""

    tenant_id: str
    path: str
    local: Path
    size: int


class DataDirSource:
    """The registry, the tenants and their files of one data directory, read for a migration."""

    def __init__(self, root: Path) -> None:
        self.data = DataDir(root)
        if not self.data.registry_db.is_file():
            raise MigrationRefused(
                f"{root} holds no registry.db: not an embedded data directory", {"data_dir": str(root)}
            )

    def check_at_rest(self, *, during: bool = False) -> None:
        """Refuse while any process has one of the data directory's databases open (module docstring).
        Call it before this process opens any of them: closing the descriptor it opens on a `-shm`
        file drops every POSIX lock this process holds on that file, SQLite's own included.
        `during`: asked again at the end, when an appliance started meanwhile makes the copy stale."""
        busy = [db for db in [self.data.registry_db, *self._tenant_files()] if open_elsewhere(db)]
        if not busy:
            return
        details = {"open": [str(p.relative_to(self.data.root)) for p in busy[:10]]}
        if during:
            raise MigrationRefused(
                "a process opened the data directory's databases during the migration: what it wrote may be "
                "missing from the target; stop it and run the migration again with --force",
                details,
            )
        raise MigrationRefused(
            "the appliance is running on this data directory (a process has its databases open): stop every "
            "`scorm-appliance serve` and command on it first",
            details,
        )

    def _tenant_files(self) -> list[Path]:
        if not self.data.tenants.is_dir():
            return []
        return sorted(p / "tenant.db" for p in self.data.tenants.iterdir() if (p / "tenant.db").is_file())

    def pending_upgrades(self) -> list[tuple[Path, Migrations]]:
        """The database files behind this release's migrations (nothing is written); a file made by a
        later release is refused."""
        found = [(self.data.registry_db, registry_migrations)] + [(p, tenant_migrations) for p in self._tenant_files()]
        return [(path, migrations) for path, migrations in found if _missing_steps(path, migrations)]

    def upgrade(self, pending: list[tuple[Path, Migrations]], now: float) -> list[str]:
        """Bring the `pending` files to this release's migrations, as the appliance does when it opens a
        file. Returns the files upgraded, relative to the data directory."""
        for path, migrations in pending:
            Database(path, migrations, now).close()
        return [str(path.relative_to(self.data.root)) for path, _ in pending]

    def check_tables(self, tenant_ids: list[str]) -> None:
        """Every file holds exactly this release's tables (after `upgrade`): checked for all before any row
        is written, so an unexpected file stops the run before it starts rather than half-way."""
        with self.open(self.data.registry_db) as conn:
            check_tables(conn, registry_catalog(), "registry.db")
        for tenant_id in tenant_ids:
            path = self.tenant_db(tenant_id)
            if path.is_file():
                with self.open(path) as conn:
                    check_tables(conn, tenant_catalog(), f"tenant {tenant_id}")

    def tenant_ids(self) -> list[str]:
        """The tenants of the registry, in id order."""
        with self.open(self.data.registry_db) as conn:
            return [str(r[0]) for r in conn.execute("SELECT id FROM tenants ORDER BY id")]

    def orphan_folders(self, tenant_ids: list[str]) -> list[str]:
        """Tenant folders without a registry row (a deletion interrupted): not copied, reported."""
        if not self.data.tenants.is_dir():
            return []
        known = set(tenant_ids)
        return sorted(p.name for p in self.data.tenants.iterdir() if p.is_dir() and p.name not in known)

    def open(self, path: Path) -> SourceConnection:
        """A connection on one database file, inside one read transaction (a consistent snapshot)."""
        return SourceConnection(path)

    def tenant_db(self, tenant_id: str) -> Path:
        return self.data.tenant_db(tenant_id)

    def files(self, tenant_id: str) -> Iterator[SourceFile]:
        """Every package file of the tenant (under packages/ and uploads/), in path order; a symlink or
        anything that is not a regular file is refused (the appliance never makes one)."""
        base = self.data.tenant_dir(tenant_id)
        for folder in FILE_FOLDERS:
            top = base / folder
            if not top.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                for name in sorted(filenames):
                    local = Path(dirpath) / name
                    if local.is_symlink() or not local.is_file():
                        raise ApplianceError(
                            f"{local} is not a regular file: the appliance never makes one; remove it and run again",
                            {"path": str(local)},
                        )
                    yield SourceFile(tenant_id, local.relative_to(base).as_posix(), local, local.stat().st_size)

    def other_entries(self, tenant_id: str) -> list[str]:
        """What a tenant's folder holds besides its database and package files (left where it is)."""
        base = self.data.tenant_dir(tenant_id)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.name not in DB_FILES and p.name not in FILE_FOLDERS)


def _missing_steps(path: Path, migrations: Migrations) -> list[str]:
    conn = connect(path)
    try:
        try:
            done = {
                str(r[0])
                for r in conn.execute("SELECT name FROM _migrations WHERE migration_set = ?", (migrations.name,))
            }
        except apsw.SQLError:
            done = set()
    finally:
        conn.close()
    known = [name for name, _ in migrations.steps]
    later = sorted(done - set(known))
    if later:
        raise MigrationRefused(
            f"{path.name} was made by a later release (migrations {', '.join(later)}): migrate with that release",
            {"file": str(path)},
        )
    return [name for name in known if name not in done]


class SourceConnection:
    """One SQLite file opened for reading, with a read transaction held while it is used (`with`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: apsw.Connection | None = None

    def __enter__(self) -> apsw.Connection:
        self.conn = connect(self.path)
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.execute("COMMIT")
            self.conn.close()
            self.conn = None


def table_names(conn: apsw.Connection) -> set[str]:
    """The file's own tables (SQLite's and the migrations' bookkeeping left out)."""
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in found if not str(r[0]).startswith(("sqlite_", "_migrations"))}


def check_tables(conn: apsw.Connection, catalog: Catalog, where: str) -> None:
    """The file holds exactly the catalog's tables (after `upgrade`, anything else is not ours to copy)."""
    extra = sorted(table_names(conn) - set(catalog.tables))
    missing = sorted(set(catalog.tables) - table_names(conn))
    if extra or missing:
        raise MigrationRefused(
            f"{where}: its tables are not this release's (extra: {', '.join(extra) or 'none'}; "
            f"missing: {', '.join(missing) or 'none'})",
            {"extra": extra, "missing": missing},
        )


def select_sql(table: Table) -> str:
    """Every column of `table` in the catalog's order."""
    return f"SELECT {', '.join(_q(c.name) for c in table.columns)} FROM {_q(table.name)}"


def source_rows(conn: apsw.Connection | None, table: Table) -> Iterator[tuple[Any, ...]]:
    """The table's rows, streamed; `conn` None is a tenant without a file yet, which holds exactly the
    rows its migrations would insert (what the tenant's registry row gives it on PostgreSQL)."""
    if conn is None:
        yield from table.seed_rows
        return
    yield from conn.execute(select_sql(table))


def highest(conn: apsw.Connection | None, table: Table) -> int:
    """The highest number an identity column has given out: the largest present, or SQLite's own counter
    of an AUTOINCREMENT table (which remembers numbers of rows since deleted), whichever is higher."""
    if conn is None or not table.rowid_alias:
        return max((int(r[0]) for r in table.seed_rows), default=0) if table.rowid_alias else 0
    column = table.primary_key[0]
    found = conn.execute(f"SELECT max({_q(column)}) FROM {_q(table.name)}").fetchone()[0] or 0
    has_sequence = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if has_sequence:
        counted = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).fetchone()
        if counted is not None:
            found = max(found, int(counted[0]))
    return int(found)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
