"""The SQLite schemas as data: tables, columns, keys, indexes, read from the migrations themselves.

The PostgreSQL DDL (appliance.storage.postgres.schema) and the SQL translation
(appliance.storage.postgres.translate) both work from this catalog, and the catalog is what the
migration lists produce when applied to an empty in-memory SQLite database: a migration added to
`tenant_migrations` reaches PostgreSQL without anyone writing its DDL twice, and the two schemas
cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.storage.sqlite.migrations import Migrations

# SQLite's declared types, as PostgreSQL spells them. INTEGER is 64-bit in SQLite (the xAPI filter keys
# use the whole range), so bigint; REAL is an 8-byte float.
PG_TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea"}


@dataclass(frozen=True)
class Column:
    """One column as SQLite declares it."""

    name: str
    type: str  # SQLite's declared type: TEXT, INTEGER, REAL or BLOB
    notnull: bool
    default: str | None  # the default's SQL text, as declared
    check: str | None  # a column CHECK constraint's expression, as declared


@dataclass(frozen=True)
class ForeignKey:
    """`columns` of this table refer to `ref_columns` of `ref_table`."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str


@dataclass(frozen=True)
class Index:
    """A secondary index: unique or not, its columns (with DESC), and a partial index's WHERE."""

    name: str
    unique: bool
    columns: tuple[tuple[str, bool], ...]  # (column, descending)
    where: str | None


@dataclass(frozen=True)
class Table:
    """One table: its columns in order, primary key, unique constraints, foreign keys and indexes."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    uniques: tuple[tuple[str, ...], ...]  # UNIQUE constraints declared with the table
    foreign_keys: tuple[ForeignKey, ...]
    indexes: tuple[Index, ...]
    rowid_alias: bool  # `x INTEGER PRIMARY KEY`: SQLite numbers new rows itself
    seed_rows: tuple[tuple[Any, ...], ...] = ()  # rows the migrations themselves insert (every new file has them)

    def column(self, name: str) -> Column | None:
        """The column called `name`, or None."""
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per migration set
class Catalog:
    """Every table of one migration set, and its triggers' names."""

    name: str
    tables: dict[str, Table]
    triggers: tuple[str, ...]
    tenant_owned: bool  # tables of a tenant's own file: on PostgreSQL they gain tenant_id and RLS

    @functools.cached_property
    def nullable_columns(self) -> frozenset[str]:
        """Column names that are nullable in at least one table (ORDER BY on them needs NULLS FIRST)."""
        return frozenset(c.name for t in self.tables.values() for c in t.columns if not c.notnull)

    @functools.cached_property
    def integer_columns(self) -> frozenset[str]:
        """Column names declared INTEGER in every table that has them (SQLite's booleans among them)."""
        types: dict[str, set[str]] = {}
        for t in self.tables.values():
            for c in t.columns:
                types.setdefault(c.name, set()).add(c.type)
        return frozenset(name for name, found in types.items() if found == {"INTEGER"})

    @functools.cached_property
    def column_names(self) -> frozenset[str]:
        """Every column name of every table."""
        return frozenset(c.name for t in self.tables.values() for c in t.columns)


_CHECK = re.compile(r"\b(\w+)\s+\w+\s+PRIMARY KEY\s+CHECK\s*\((.*?)\)", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b(.*)$", re.IGNORECASE | re.DOTALL)


def _column_checks(create_sql: str) -> dict[str, str]:
    """Column CHECK constraints, which PRAGMA table_info does not report (only `id INTEGER PRIMARY KEY
    CHECK (...)` is used by the schemas: single-row tables)."""
    return {m.group(1): m.group(2) for m in _CHECK.finditer(create_sql)}


def _table(conn: apsw.Connection, name: str, create_sql: str) -> Table:
    checks = _column_checks(create_sql)
    info = list(conn.execute(f"PRAGMA table_info({name})"))  # cid, name, type, notnull, dflt_value, pk
    columns = tuple(
        Column(str(r[1]), str(r[2]).upper(), bool(r[3]) or r[5] > 0, r[4], checks.get(str(r[1]))) for r in info
    )
    primary_key = tuple(str(r[1]) for r in sorted((r for r in info if r[5] > 0), key=lambda r: r[5]))
    rowid_alias = len(primary_key) == 1 and columns[[c.name for c in columns].index(primary_key[0])].type == "INTEGER"
    uniques: list[tuple[str, ...]] = []
    indexes: list[Index] = []
    for _, index_name, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})"):
        cols = tuple(
            (str(r[2]), bool(r[3])) for r in conn.execute(f"PRAGMA index_xinfo({index_name})") if r[5] and r[2]
        )
        if origin == "u":
            uniques.append(tuple(c for c, _ in cols))
        elif origin == "c":
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (index_name,)).fetchone()[0]
            where = _WHERE.search(sql).group(1).strip() if partial else None
            indexes.append(Index(str(index_name), bool(unique), cols, where))
    fks: dict[int, list[tuple]] = {}
    for r in conn.execute(f"PRAGMA foreign_key_list({name})"):  # id, seq, table, from, to, on_update, on_delete
        fks.setdefault(r[0], []).append(r)
    foreign_keys = tuple(
        ForeignKey(tuple(r[3] for r in rs), rs[0][2], tuple(r[4] for r in rs), str(rs[0][6]))
        for _, rs in sorted(fks.items())
    )
    return Table(
        name,
        columns,
        primary_key,
        tuple(sorted(uniques)),
        foreign_keys,
        tuple(sorted(indexes, key=lambda i: i.name)),
        rowid_alias,
        tuple(tuple(r) for r in conn.execute(f"SELECT * FROM {name}")),
    )


def catalog_of(migrations: Migrations, *, tenant_owned: bool) -> Catalog:
    """Apply `migrations` to an empty in-memory SQLite database and describe what they made."""
    conn = apsw.Connection(":memory:")
    try:
        migrations.apply(conn, 0.0)
        found = list(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')"))
        tables = {
            str(name): _table(conn, str(name), str(sql))
            for kind, name, sql in found
            if kind == "table" and not str(name).startswith(("sqlite_", "_migrations"))
        }
        triggers = tuple(sorted(str(name) for kind, name, _ in found if kind == "trigger"))
    finally:
        conn.close()
    return Catalog(migrations.name, dict(sorted(tables.items())), triggers, tenant_owned)


@functools.cache
def tenant_catalog() -> Catalog:
    """The tables of a tenant's file (appliance.storage.sqlite.tenant_schema)."""
    from appliance.storage.sqlite.tenant_schema import tenant_migrations

    return catalog_of(tenant_migrations, tenant_owned=True)


@functools.cache
def registry_catalog() -> Catalog:
    """The registry's tables (appliance.storage.sqlite.registry_schema): tenants, keys, jobs and the rest."""
    from appliance.storage.sqlite.registry_schema import registry_migrations

    return catalog_of(registry_migrations, tenant_owned=False)
