"""The PostgreSQL schema `scorm-appliance migrate` copies into, reached as the schema's owner.

The copy connects with an administrator's URL (the one `database install --admin-url` used) and
works as the role that owns the tables (`SET ROLE`, found from the schema itself): the application
role may not set the identity counters past the copied numbers (`setval` needs the sequence's
owner) nor empty the tables for `--force`. The owner is bound by the forced row-level security like
every role but a superuser, so each tenant's rows are written and read back in a transaction that
names that tenant (`app.tenant_id`), exactly as the appliance will read them: a row written under
the wrong tenant could not be read back, and the verification would say so.

The schema's triggers stay on (switching them off would take each table's lock and outlive a
crash): the tables they fill — the analytics counters beside `session_interactions`, the LRS's
usage row beside `xapi_attachments`/`xapi_documents`, and the seed rows a new tenant gets — are
therefore copied after the tables that fire them, by deleting what the triggers wrote and inserting
the source's rows (`derived_tables`). COPY FROM is not allowed on tables under row-level security,
so rows go in as batched INSERTs (psycopg pipelines them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql as pgsql

from appliance.services.operations.migration_report import SequenceCheck, TableSum
from appliance.services.operations.migration_source import MigrationRefused
from appliance.storage.postgres.catalog import Catalog, Table, registry_catalog, tenant_catalog
from appliance.storage.postgres.schema import SETTING, fingerprint, schema_ddl
from appliance.storage.postgres.translate import TENANT_COLUMN
from appliance.storage.postgres.triggers import TRIGGERS_SQL

_WRITES = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)
READ_BATCH = 1000  # rows a server-side cursor brings over at a time while verifying


def derived_tables(catalog: Catalog) -> frozenset[str]:
    """Tables whose rows the schema's triggers write (and the seed rows of a new tenant): copied last, over
    what the triggers made of the rows copied before them."""
    written = {name for name in _WRITES.findall(TRIGGERS_SQL) if name in catalog.tables}
    return frozenset(written | {t.name for t in catalog.tables.values() if t.seed_rows})


def dependency_order(catalog: Catalog) -> list[Table]:
    """The tables with each one after those its foreign keys refer to (PostgreSQL checks each row as it
    goes in)."""
    done: dict[str, Table] = {}

    def visit(table: Table) -> None:
        if table.name in done:
            return
        for fk in table.foreign_keys:
            if fk.ref_table != table.name and fk.ref_table in catalog.tables:
                visit(catalog.tables[fk.ref_table])
        done[table.name] = table

    for table in catalog.tables.values():
        visit(table)
    return list(done.values())


def copy_order(catalog: Catalog) -> list[Table]:
    """Every table after those its foreign keys name, the derived tables at the end."""
    derived = derived_tables(catalog)
    ordered = dependency_order(catalog)
    return [t for t in ordered if t.name not in derived] + [t for t in ordered if t.name in derived]


def _q(name: str) -> pgsql.Identifier:
    return pgsql.Identifier(name)


class PgTarget:
    """One connection to the target schema, as its owner."""

    def __init__(self, url: str, schema: str) -> None:
        self.schema = schema
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise MigrationRefused(f"cannot connect to the target database: {exc}".strip(), {}) from exc
        try:
            self.owner = self._prepare()
        except BaseException:
            self.conn.close()
            raise

    def _prepare(self) -> str:
        found = self.conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'tenants'", (self.schema,)
        ).fetchone()
        if found is None:
            raise MigrationRefused(
                f"the schema {self.schema!r} is not installed: run `scorm-appliance database install` first",
                {"schema": self.schema},
            )
        owner = str(found[0])
        try:
            self.conn.execute(pgsql.SQL("SET ROLE {}").format(_q(owner)))
        except psycopg.Error as exc:
            raise MigrationRefused(
                f"the --to role cannot act as the tables' owner {owner!r}: give an administrator's URL "
                "(the one `database install --admin-url` used), not the application role's",
                {"owner": owner},
            ) from exc
        self.conn.execute(pgsql.SQL("SET search_path TO {}").format(_q(self.schema)))
        expected = fingerprint(schema_ddl())
        marks = [r[0] for r in self.conn.execute("SELECT name FROM _migrations WHERE migration_set = 'postgres'")]
        if marks != [expected]:
            raise MigrationRefused(
                f"the schema {self.schema!r} was made by another release (schema {', '.join(marks) or 'unknown'}, "
                f"this release's is {expected}); an older one: `scorm-appliance database upgrade` first",
                {"schema": self.schema},
            )
        return owner

    def close(self) -> None:
        self.conn.close()

    # -- state -------------------------------------------------------------------------------------

    def registry_empty(self) -> bool:
        """No row in any registry table (a tenant's rows cannot exist without its registry row)."""
        for table in registry_catalog().tables.values():
            if self.conn.execute(pgsql.SQL("SELECT 1 FROM {} LIMIT 1").format(_q(table.name))).fetchone():
                return False
        return True

    def tenant_has_rows(self, tenant_id: str) -> bool:
        """Whether the tenant has its registry row (what a copied tenant starts with)."""
        return self.conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant_id,)).fetchone() is not None

    def empty_everything(self) -> None:
        """`--force`: every table of the schema emptied and every identity back at 1 (TRUNCATE is not
        subject to row-level security, so it reaches every tenant's rows)."""
        names = [*registry_catalog().tables, *tenant_catalog().tables]
        self.conn.execute(
            pgsql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(pgsql.SQL(", ").join(_q(n) for n in names))
        )

    def analyze(self) -> None:
        """Planner statistics for every table, after the bulk load: autovacuum would gather them only
        later, and the workers' first queries would be planned without them."""
        for name in [*registry_catalog().tables, *tenant_catalog().tables]:
            self.conn.execute(pgsql.SQL("ANALYZE {}").format(_q(name)))

    # -- writing -----------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str | None) -> None:
        if tenant_id is not None:
            self.conn.execute("SELECT set_config(%s, %s, true)", (SETTING, tenant_id))

    def clear_tenant(self, tenant_id: str) -> None:
        """Delete every row of one tenant's tables (a tenant whose copy was interrupted), keeping its
        registry row; run inside the transaction that copies the tenant again."""
        for table in reversed(dependency_order(tenant_catalog())):
            self.conn.execute(pgsql.SQL("DELETE FROM {}").format(_q(table.name)))

    def insert(self, table: Table, tenant_id: str | None, batch: list[tuple[Any, ...]]) -> None:
        """One batch of source rows into `table` (the tenant's column set to its id)."""
        columns = [c.name for c in table.columns] + ([TENANT_COLUMN] if tenant_id is not None else [])
        statement = pgsql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            _q(table.name),
            pgsql.SQL(", ").join(_q(c) for c in columns),
            pgsql.SQL(", ").join(pgsql.Placeholder() for _ in columns),
        )
        params = [(*row, tenant_id) for row in batch] if tenant_id is not None else batch
        with self.conn.cursor() as cursor:
            cursor.executemany(statement, params)

    def replace_derived(self, table: Table) -> None:
        """Remove what the triggers (or the tenant's seed) wrote into a derived table, before its rows go in."""
        self.conn.execute(pgsql.SQL("DELETE FROM {}").format(_q(table.name)))

    def transaction(self, tenant_id: str | None) -> _Transaction:
        """A transaction with the tenant set for it only (None: the registry)."""
        return _Transaction(self, tenant_id)

    # -- reading -----------------------------------------------------------------------------------

    def rows(self, table: Table) -> Iterator[tuple[Any, ...]]:
        """The table's rows as the transaction's tenant sees them, through a server-side cursor (bounded
        memory), in the catalog's column order without `tenant_id`; inside `transaction`."""
        statement = pgsql.SQL("SELECT {} FROM {}").format(
            pgsql.SQL(", ").join(_q(c.name) for c in table.columns), _q(table.name)
        )
        with self.conn.cursor(name=f"verify_{table.name}") as cursor:
            cursor.itersize = READ_BATCH
            cursor.execute(statement)
            yield from cursor

    def table_sum(self, table: Table) -> TableSum:
        """Row count and checksum of a table as the current transaction's tenant sees it."""
        found = TableSum()
        for row in self.rows(table):
            found.add(row)
        return found

    # -- identities --------------------------------------------------------------------------------

    def identity_columns(self) -> list[tuple[str, str, str]]:
        """(table, column, sequence) of every identity column of the schema."""
        return [
            (str(t), str(c), str(s))
            for t, c, s in self.conn.execute(
                "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_schema) || '.' || "
                "quote_ident(table_name), column_name) FROM information_schema.columns "
                "WHERE table_schema = %s AND is_identity = 'YES' ORDER BY table_name",
                (self.schema,),
            )
        ]

    def next_value(self, sequence: str) -> int:
        """What the sequence gives the next row, without taking it."""
        last, start = self.conn.execute(
            "SELECT pg_sequence_last_value(%s::regclass), (SELECT seqstart FROM pg_sequence WHERE seqrelid = %s::regclass)",
            (sequence, sequence),
        ).fetchone()
        return int(start) if last is None else int(last) + 1

    def raise_sequence(self, sequence: str, highest: int) -> None:
        """Move the sequence past `highest` (never back): the next row gets `highest + 1` or more."""
        if highest > 0 and self.next_value(sequence) <= highest:
            self.conn.execute("SELECT setval(%s, %s, true)", (sequence, highest))

    def sequence_checks(self, highest: dict[str, int]) -> list[SequenceCheck]:
        """Every identity counter against the highest number the source gave out in its table."""
        return [
            SequenceCheck(table, column, highest.get(table, 0), self.next_value(sequence))
            for table, column, sequence in self.identity_columns()
        ]


class _Transaction:
    def __init__(self, target: PgTarget, tenant_id: str | None) -> None:
        self.target, self.tenant_id = target, tenant_id
        self._tx: Any = None

    def __enter__(self) -> PgTarget:
        self._tx = self.target.conn.transaction()
        self._tx.__enter__()
        self.target._tenant(self.tenant_id)
        return self.target

    def __exit__(self, *exc: Any) -> None:
        self._tx.__exit__(*exc)


def batches(rows: Iterable[tuple[Any, ...]], max_rows: int, max_bytes: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in lists of at most `max_rows`, cut early past `max_bytes` of text and bytes (a table of
    large blobs, such as xAPI attachments, is not gathered a thousand at a time)."""
    batch: list[tuple[Any, ...]] = []
    size = 0
    for row in rows:
        batch.append(tuple(row))
        size += sum(len(v) for v in row if isinstance(v, str | bytes))
        if len(batch) >= max_rows or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
