"""The PostgreSQL schema against the SQLite one: the same tables, columns, keys, indexes and triggers,
plus tenant_id on every tenant table (so a migration added for SQLite cannot be missing on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from appliance.storage.postgres.schema import fingerprint, schema_ddl
from appliance.storage.postgres.triggers import SEED_TRIGGER, TRIGGERS
from appliance.storage.sqlite.connection import connect
from appliance.storage.sqlite.database import Database
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations
from tests.storage.postgres.conftest import PgSchema


def _sqlite_schema(path: Path, migrations) -> dict[str, dict]:
    """Tables of a real migrated SQLite file: columns in order, primary key, index names."""
    Database(path, migrations, 0.0).close()
    conn = connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ]
        found = {}
        for name in names:
            info = list(conn.execute(f"PRAGMA table_info({name})"))
            found[name] = {
                "columns": [r[1] for r in info],
                "pk": [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])],
                "indexes": sorted(r[1] for r in conn.execute(f"PRAGMA index_list({name})") if r[3] == "c"),
            }
        triggers = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    finally:
        conn.close()
    return {"tables": found, "triggers": triggers}


def _pg_schema(conn: psycopg.Connection, schema: str) -> dict[str, dict]:
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
        "ORDER BY table_name, ordinal_position",
        (schema,),
    ):
        columns.setdefault(table, []).append(column)
    pks: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT tc.table_name, k.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name "
        "AND k.table_schema = tc.table_schema WHERE tc.table_schema = %s AND tc.constraint_type = 'PRIMARY KEY' "
        "ORDER BY tc.table_name, k.ordinal_position",
        (schema,),
    ):
        pks.setdefault(table, []).append(column)
    indexes: dict[str, list[str]] = {}
    for table, index in conn.execute(
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s AND indexname NOT LIKE '%%_pkey' "
        "AND indexname NOT LIKE '%%_key'",
        (schema,),
    ):
        indexes.setdefault(table, []).append(index)
    triggers = sorted(
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s", (schema,)
        )
    )
    tables = {
        t: {"columns": c, "pk": pks.get(t, []), "indexes": sorted(indexes.get(t, []))} for t, c in columns.items()
    }
    return {"tables": tables, "triggers": triggers}


def test_tenant_tables_match_sqlite_plus_tenant_id(tmp_path: Path, pg_schema: PgSchema, admin_conn) -> None:
    lite = _sqlite_schema(tmp_path / "tenant.db", tenant_migrations)
    pg = _pg_schema(admin_conn, pg_schema.schema)
    for name, table in lite["tables"].items():
        if name == "_migrations":
            continue
        assert name in pg["tables"], f"{name} is missing on PostgreSQL"
        assert pg["tables"][name]["columns"] == [*table["columns"], "tenant_id"], name
        assert pg["tables"][name]["pk"] == ["tenant_id", *table["pk"]], name
        assert pg["tables"][name]["indexes"] == table["indexes"], name
    assert lite["triggers"] == sorted(TRIGGERS)  # a trigger added to a migration needs its PL/pgSQL here
    assert pg["triggers"] == sorted([*TRIGGERS, SEED_TRIGGER])


def test_registry_tables_match_sqlite_without_tenant_column(tmp_path: Path, pg_schema: PgSchema, admin_conn) -> None:
    lite = _sqlite_schema(tmp_path / "registry.db", registry_migrations)
    pg = _pg_schema(admin_conn, pg_schema.schema)
    for name, table in lite["tables"].items():
        assert pg["tables"][name]["columns"] == table["columns"], name
        assert pg["tables"][name]["pk"] == table["pk"], name
    tenant_tables = set(_sqlite_schema(tmp_path / "tenant.db", tenant_migrations)["tables"])
    assert set(pg["tables"]) == set(lite["tables"]) | tenant_tables  # nothing else on PostgreSQL


def test_every_migration_and_the_ddl_fingerprint_are_recorded(pg_schema: PgSchema, admin_conn) -> None:
    recorded = admin_conn.execute("SELECT migration_set, name FROM _migrations").fetchall()
    expected = {("tenant", n) for n, _ in tenant_migrations.steps} | {
        ("registry", n) for n, _ in registry_migrations.steps
    }
    assert set(recorded) == expected | {("postgres", fingerprint(schema_ddl()))}


def test_the_ddl_is_generated_not_copied() -> None:
    """A column added by a later migration (ALTER TABLE in m015) is in the generated DDL."""
    ddl = "\n".join(schema_ddl())
    assert '"standard" text COLLATE "C" NOT NULL DEFAULT \'scorm\'' in ddl
    assert ddl.count("FORCE ROW LEVEL SECURITY") == ddl.count("CREATE POLICY tenant_isolation")
