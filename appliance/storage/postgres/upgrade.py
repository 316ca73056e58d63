"""Upgrading an installed PostgreSQL schema in place to this release's migrations.

The schema is generated from the SQLite migrations (appliance.storage.postgres.catalog): what a
release's migrations make is a catalog, and so is what an older release's made, because `_migrations`
records which steps the schema holds and the lists only ever grow at their end. The upgrade therefore
compares two catalogs — the migration lists cut at what the schema holds, and the whole lists — and
writes the PostgreSQL for the difference with the same generator as the installation (`schema.py`):

- a new table: CREATE TABLE with its indexes and, for a tenant table, tenant_id, RLS enabled and
  forced and the policy, exactly as installed; its seed rows for every existing tenant;
- a column added (SQLite's `ALTER TABLE … ADD COLUMN`, which appends): `ADD COLUMN`, with the same
  type, default and constraints (it lands after tenant_id, which nothing reads by position: the
  services name their INSERTs' columns and the adapter drops tenant_id by name);
- a foreign key added, an index added, changed or dropped, a table dropped;
- the triggers and the seed-rows trigger redefined (`CREATE OR REPLACE`), dropped when gone;
- the grants to the application role made again (new tables, new identity sequences).

Anything else (a column's type or constraints changed, a key changed: SQLite's table rebuild) is
refused by name, before anything is written: it needs a hand-written step here.

A migration step that also reads or writes rows (a backfill, a recount) has its data part run on
PostgreSQL by `DATA_STEPS`, written in SQLite's SQL and run per tenant through the adapter's
translation (appliance.storage.postgres.adapter.PgConnection), so it is the same statement. Which steps
touch rows is not a list kept by hand: the steps are traced while the catalog is built (every statement
that is not CREATE/ALTER/DROP), and an upgrade meeting such a step without a data step refuses
(tests/storage/postgres/test_upgrade.py fails first, for every step of the product).

Everything runs in one transaction, as the schema's owner, with `_migrations` locked: it all applies
or nothing does, and two upgrades at once run one after the other (the second finds nothing to do).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import apsw
import psycopg
from psycopg import sql as pgsql

from appliance.storage.postgres.adapter import PgConnection
from appliance.storage.postgres.catalog import Catalog, Table, catalog_of
from appliance.storage.postgres.schema import (
    SETTING,
    column_sql,
    fingerprint,
    foreign_key_sql,
    grant,
    in_dependency_order,
    index_sql,
    schema_ddl,
    table_ddl,
)
from appliance.storage.postgres.triggers import TRIGGER_SQL, _literal, or_replace, seed_rows_trigger
from appliance.storage.sqlite.migrations import Migrations

DataStep = Callable[[PgConnection], None]


def _backfill_analytics(conn: PgConnection) -> None:
    from appliance.services.learning.analytics_index import backfill

    backfill(conn)


# The data part of every migration step that reads or writes rows, in SQLite's SQL (translated), run once
# per tenant as that tenant (tenant steps) or once (registry steps), after the new tables and columns.
DATA_STEPS: dict[tuple[str, str], DataStep] = {
    ("tenant", "m007_analytics"): _backfill_analytics,
    ("tenant", "m008_session_row_bytes"): lambda c: c.execute(
        """UPDATE sessions SET data_bytes =
            (SELECT coalesce(sum(length(cmi)), 0) FROM session_activities WHERE session_id = sessions.id)
            + length(learner_id) + length(learner_name) + length(commit_seqs)
            + coalesce(length(sequencing_state), 0) + coalesce(length(shared_state), 0)"""
    ),
    ("tenant", "m020_xapi_bytes"): lambda c: c.execute(
        """UPDATE xapi_usage SET
            statement_bytes = (SELECT coalesce(sum(octet_length(body)), 0) FROM xapi_statements)
                + (SELECT coalesce(sum(length), 0) FROM xapi_attachments),
            document_bytes = (SELECT coalesce(sum(octet_length(content)), 0) FROM xapi_documents)
        WHERE id = 1"""
    ),
}


class UpgradeRefused(RuntimeError):
    """The schema cannot be upgraded by this release (made by a later one, or a change the generator
    cannot make in place); nothing was written."""


@dataclass(frozen=True)
class Applied:
    """What `_migrations` says a schema holds."""

    steps: dict[str, tuple[str, ...]]  # migration set -> step names, in the release's order
    fingerprint: str | None


@dataclass
class Plan:
    """What an upgrade will do: the steps it adds, the DDL, and the data steps to run per tenant."""

    pending: list[tuple[str, str]] = field(default_factory=list)  # (migration set, step)
    statements: list[str] = field(default_factory=list)
    seeds: list[Table] = field(default_factory=list)  # new tenant tables whose rows every tenant starts with
    data_steps: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def empty(self) -> bool:
        return not self.pending


def read_applied(conn: psycopg.Connection) -> Applied:
    """The schema's `_migrations` (the connection's search_path on the schema)."""
    steps: dict[str, list[str]] = {}
    found: str | None = None
    for migration_set, name in conn.execute("SELECT migration_set, name FROM _migrations ORDER BY applied_at, name"):
        if migration_set == "postgres":
            found = name
        else:
            steps.setdefault(migration_set, []).append(name)
    return Applied({k: tuple(v) for k, v in steps.items()}, found)


def _held(release: Migrations, applied: tuple[str, ...]) -> int:
    """How many of the release's steps the schema holds: they must be the first ones."""
    names = [n for n, _ in release.steps]
    unknown = sorted(set(applied) - set(names))
    if unknown:
        raise UpgradeRefused(
            f"the schema holds {release.name} migrations this release does not know ({', '.join(unknown)}): "
            "it was made by a later release; run that release (or a later one)"
        )
    held = len(applied)
    if set(names[:held]) != set(applied):
        raise UpgradeRefused(f"the schema's {release.name} migrations are not a prefix of this release's")
    return held


def touches_rows(migrations: Migrations) -> dict[str, list[str]]:
    """For each step, the statements it runs that are not DDL (reads or writes of rows), traced while the
    steps are applied to an empty in-memory SQLite database."""
    conn = apsw.Connection(":memory:")
    found: dict[str, list[str]] = {}
    try:
        for name, step in migrations.steps:
            seen: list[str] = []

            def tracer(_cursor: apsw.Cursor, statement: str, _bindings: object, seen: list[str] = seen) -> bool:
                if not statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
                    seen.append(" ".join(statement.split())[:80])
                return True

            conn.exec_trace = tracer
            step(conn)
            conn.exec_trace = None
            if seen:
                found[name] = seen
    finally:
        conn.close()
    return found


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_changes(old: Table, new: Table, tenant: bool) -> list[str]:
    """ALTER statements from `old` to `new` (one table of both catalogs); refuses what they cannot do."""
    if (
        old.columns != new.columns[: len(old.columns)]
        or old.primary_key != new.primary_key
        or old.uniques != new.uniques
        or old.rowid_alias != new.rowid_alias
        or not set(old.foreign_keys) <= set(new.foreign_keys)
    ):
        raise UpgradeRefused(
            f"table {new.name} changed other than by added columns, foreign keys and indexes (a rebuild): "
            "it needs a hand-written step in appliance.storage.postgres.upgrade"
        )
    statements = [
        f"ALTER TABLE {_q(new.name)} ADD COLUMN {column_sql(new, c)}" for c in new.columns[len(old.columns) :]
    ]
    statements += [
        f"ALTER TABLE {_q(new.name)} ADD {foreign_key_sql(fk, tenant)}"
        for fk in new.foreign_keys
        if fk not in old.foreign_keys
    ]
    old_ix, new_ix = {i.name: i for i in old.indexes}, {i.name: i for i in new.indexes}
    statements += [f"DROP INDEX {_q(name)}" for name, ix in old_ix.items() if new_ix.get(name) != ix]
    statements += [index_sql(new, ix, tenant) for name, ix in new_ix.items() if old_ix.get(name) != ix]
    return statements


def _catalog_changes(old: Catalog, new: Catalog) -> tuple[list[str], list[Table]]:
    """The DDL from `old` to `new`, and the new tables that have seed rows."""
    tenant = new.tenant_owned
    statements: list[str] = []
    seeds: list[Table] = []
    for table in in_dependency_order(new):
        before = old.tables.get(table.name)
        if before is None:
            statements += table_ddl(table, tenant)
            if tenant and table.seed_rows:
                seeds.append(table)
        else:
            statements += _table_changes(before, table, tenant)
    gone = [t for t in reversed(in_dependency_order(old)) if t.name not in new.tables]
    statements += [f"DROP TABLE {_q(t.name)}" for t in gone]
    return statements, seeds


def _trigger_changes(old: Catalog, new: Catalog) -> list[str]:
    """Every trigger of the new catalog redefined (a later release may have changed one), those gone dropped,
    and the seed-rows trigger on `tenants` made for the new tables."""
    statements = []
    for name in old.triggers:
        if name not in new.triggers:
            table = _trigger_table(name)
            statements += [f"DROP TRIGGER IF EXISTS {_q(name)} ON {_q(table)}", f"DROP FUNCTION IF EXISTS {_q(name)}()"]
    statements += [or_replace(TRIGGER_SQL[name]) for name in new.triggers if name in TRIGGER_SQL]
    missing = sorted(set(new.triggers) - set(TRIGGER_SQL))
    if missing:
        raise UpgradeRefused(f"no PL/pgSQL for the SQLite trigger(s) {', '.join(missing)}")
    statements.append(or_replace(seed_rows_trigger(new)))
    return statements


def _trigger_table(name: str) -> str:
    found = re.search(rf"CREATE TRIGGER {name} .*? ON (\w+)", TRIGGER_SQL.get(name, ""), re.S)
    if found is None:
        raise UpgradeRefused(f"cannot tell which table the trigger {name} is on")
    return found.group(1)


def plan(applied: Applied, registry: Migrations, tenant: Migrations) -> Plan:
    """What upgrading a schema holding `applied` to `registry` + `tenant` takes (nothing is written)."""
    result = Plan(fingerprint=fingerprint(_ddl(registry, tenant)))
    olds: dict[str, Catalog] = {}
    news: dict[str, Catalog] = {}
    for release, tenant_owned in ((registry, False), (tenant, True)):
        held = _held(release, applied.steps.get(release.name, ()))
        result.pending += [(release.name, n) for n, _ in release.steps[held:]]
        olds[release.name] = catalog_of(Migrations(release.name, release.steps[:held]), tenant_owned=tenant_owned)
        news[release.name] = catalog_of(release, tenant_owned=tenant_owned)
        with_rows = touches_rows(release)
        for name, _ in release.steps[held:]:
            if name in with_rows:
                if (release.name, name) not in DATA_STEPS:
                    raise UpgradeRefused(
                        f"migration {release.name}.{name} changes rows ({with_rows[name][0]}…) and has no "
                        "PostgreSQL data step (appliance.storage.postgres.upgrade.DATA_STEPS)"
                    )
                result.data_steps.append((release.name, name))
    if result.empty:
        if applied.fingerprint != result.fingerprint:
            raise UpgradeRefused(
                f"the schema holds this release's migrations but its DDL differs (fingerprint {applied.fingerprint}, "
                f"this release's {result.fingerprint}): it was made by another build; reinstall it"
            )
        return result
    for name in (registry.name, tenant.name):  # registry first: tenant tables refer to `tenants`
        statements, seeds = _catalog_changes(olds[name], news[name])
        result.statements += statements
        result.seeds += seeds
    result.statements += _trigger_changes(olds[tenant.name], news[tenant.name])
    return result


def _ddl(registry: Migrations, tenant: Migrations) -> list[str]:
    from appliance.storage.sqlite.registry_schema import registry_migrations
    from appliance.storage.sqlite.tenant_schema import tenant_migrations

    if registry is registry_migrations and tenant is tenant_migrations:
        return schema_ddl()
    return schema_ddl(catalog_of(registry, tenant_owned=False), catalog_of(tenant, tenant_owned=True))


@dataclass(frozen=True)
class Upgraded:
    """What an upgrade did."""

    applied: list[str]  # "set.step" names added
    statements: int
    tenants: int
    fingerprint: str


def schema_owner(conn: psycopg.Connection, schema: str) -> str:
    """The role that owns the schema (its tables' owner, who alone may change them)."""
    found = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if found is None:
        raise UpgradeRefused(f"the schema {schema!r} is not installed: install it first")
    return str(found[0])


def upgrade(
    conn: psycopg.Connection,
    schema: str,
    *,
    app_role: str,
    now: float,
    registry: Migrations | None = None,
    tenant: Migrations | None = None,
    dry_run: bool = False,
) -> tuple[Plan, Upgraded | None]:
    """Bring `schema` to this release's migrations in one transaction, as its owner (`conn` is an
    administrator's, autocommit). Returns the plan and, unless `dry_run`, what was done."""
    from appliance.storage.sqlite.registry_schema import registry_migrations
    from appliance.storage.sqlite.tenant_schema import tenant_migrations

    registry, tenant = registry or registry_migrations, tenant or tenant_migrations
    owner = schema_owner(conn, schema)
    with conn.transaction():
        conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(owner)))
        conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(pgsql.Identifier(schema)))
        conn.execute("LOCK TABLE _migrations IN EXCLUSIVE MODE")  # one upgrade at a time; readers still read
        steps = plan(read_applied(conn), registry, tenant)
        if dry_run or steps.empty:
            return steps, None if dry_run else Upgraded([], 0, 0, steps.fingerprint)
        for statement in steps.statements:
            conn.execute(statement.encode())  # bytes: no %-placeholders are looked for
        tenant_ids = [str(r[0]) for r in conn.execute("SELECT id FROM tenants ORDER BY id")]
        new_tenant, new_registry = catalog_of(tenant, tenant_owned=True), catalog_of(registry, tenant_owned=False)
        for tenant_id in tenant_ids:
            conn.execute("SELECT set_config(%s, %s, true)", (SETTING, tenant_id))
            for table in steps.seeds:
                columns = ", ".join(_q(c.name) for c in table.columns)
                values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in table.seed_rows)
                conn.execute(
                    f"INSERT INTO {_q(table.name)} ({columns}) VALUES {values} ON CONFLICT DO NOTHING".encode()
                )
            adapted = PgConnection(conn, new_tenant)
            for key in steps.data_steps:
                if key[0] == tenant.name:
                    DATA_STEPS[key](adapted)
        conn.execute("SELECT set_config(%s, '', true)", (SETTING,))
        for key in steps.data_steps:
            if key[0] == registry.name:
                DATA_STEPS[key](PgConnection(conn, new_registry))
        grant(conn, schema, app_role)
        for migration_set, name in steps.pending:
            conn.execute("INSERT INTO _migrations VALUES (%s, %s, %s)", (migration_set, name, now))
        conn.execute(
            "UPDATE _migrations SET name = %s, applied_at = %s WHERE migration_set = 'postgres'",
            (steps.fingerprint, now),
        )
    return steps, Upgraded(
        [f"{s}.{n}" for s, n in steps.pending], len(steps.statements), len(tenant_ids), steps.fingerprint
    )


__all__ = ["DATA_STEPS", "Applied", "Plan", "UpgradeRefused", "Upgraded", "plan", "upgrade"]
