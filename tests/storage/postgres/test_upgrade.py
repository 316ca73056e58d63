"""Upgrading an installed PostgreSQL schema in place, on the real server.

An older release's schema is made by installing a prefix of this release's migration lists (they are
data: `Migrations(name, steps[:k])`), then upgraded; the result must be the schema a fresh installation
of this release makes — every column with its type, default and nullability, key, foreign key, index,
policy, RLS flag, trigger, function and grant — and the rows kept, with the data steps run.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql as pgsql

from appliance.config import Config
from appliance.faces.cli import cli
from appliance.instance import Instance
from appliance.services.tenancy.tenants import create_tenant
from appliance.storage.postgres import upgrade as upgrade_module
from appliance.storage.postgres.adapter import PgStore, SchemaMismatch
from appliance.storage.postgres.schema import create_roles, install
from appliance.storage.postgres.upgrade import DATA_STEPS, UpgradeRefused, touches_rows, upgrade
from appliance.storage.sqlite.migrations import Migrations
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations
from tests.storage.postgres.conftest import ADMIN

NOW = 1_700_000_000.0
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test?connect_timeout=3"


def _older(registry_count: int, tenant_count: int) -> tuple[Migrations, Migrations]:
    return (
        Migrations(registry_migrations.name, registry_migrations.steps[:registry_count]),
        Migrations(tenant_migrations.name, tenant_migrations.steps[:tenant_count]),
    )


def _after(registry_count: int, tenant_count: int) -> list[str]:
    """This release's steps after those counts, as the upgrade names them (a later migration joins the list)."""
    return [f"registry.{n}" for n, _ in registry_migrations.steps[registry_count:]] + [
        f"tenant.{n}" for n, _ in tenant_migrations.steps[tenant_count:]
    ]


@pytest.fixture(scope="module")
def roles() -> Iterator[tuple[str, str, psycopg.Connection]]:
    suffix = secrets.token_hex(4)
    owner, app = f"t_up_owner_{suffix}", f"t_up_app_{suffix}"
    try:
        admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})")
    create_roles(admin, owner=owner, app_role=app)
    yield owner, app, admin
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (app,))
    for schema in [
        r[0] for r in admin.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"t_up_%_{suffix}",))
    ]:
        admin.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))
    for role in (app, owner):
        admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
    admin.close()


@pytest.fixture
def schemas(roles: tuple[str, str, psycopg.Connection]) -> Iterator[callable]:
    """Make a schema of this module (dropped with the roles); returns its name."""
    owner, app, admin = roles
    suffix = owner.rsplit("_", 1)[1]

    def make(registry: Migrations | None = None, tenant: Migrations | None = None) -> str:
        name = f"t_up_{secrets.token_hex(3)}_{suffix}"
        install(admin, name, owner=owner, app_role=app, now=NOW, registry=registry, tenant=tenant)
        return name

    yield make


def _shape(conn: psycopg.Connection, schema: str) -> dict[str, object]:
    """Everything that makes the schema what it is, with the schema's own name taken out."""

    def q(sql: str) -> list[tuple]:
        return [
            tuple(str(v).replace(schema + ".", "").replace(schema, "<schema>") for v in row)
            for row in conn.execute(sql, {"s": schema})
        ]

    columns = q(
        "SELECT table_name, column_name, data_type, collation_name, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_schema = %(s)s"
    )
    order = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %(s)s "
        "ORDER BY table_name, ordinal_position",
        {"s": schema},
    ):
        if column != "tenant_id":  # an upgrade's added columns follow tenant_id; the SQLite order is kept
            order.setdefault(table, []).append(column)
    constraints = q(
        "SELECT c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %(s)s"
    )
    indexes = q("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s")
    rls = q(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND c.relkind = 'r'"
    )
    policies = q("SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies WHERE schemaname = %(s)s")
    triggers = q(
        "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND NOT t.tgisinternal"
    )
    functions = q(
        "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s"
    )
    grants = q(
        "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE table_schema = %(s)s AND grantee NOT LIKE 't_up_owner_%%'"
    )
    owners = q(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %(s)s"
    )
    found = {
        "columns": columns,
        "order": order,
        "constraints": constraints,
        "indexes": indexes,
        "rls": rls,
        "policies": policies,
        "triggers": triggers,
        "functions": functions,
        "grants": grants,
        "owners": owners,
    }
    return {k: sorted(v) if isinstance(v, list) else v for k, v in found.items()}


def _migrations(conn: psycopg.Connection, schema: str) -> set[tuple[str, str]]:
    return set(
        conn.execute(pgsql.SQL("SELECT migration_set, name FROM {}._migrations").format(pgsql.Identifier(schema)))
    )


def test_every_step_that_touches_rows_has_a_postgresql_data_step() -> None:
    """A migration added with a backfill or a recount fails here until its data step is written."""
    for migrations in (registry_migrations, tenant_migrations):
        for name, statements in touches_rows(migrations).items():
            assert (migrations.name, name) in DATA_STEPS, f"{migrations.name}.{name}: {statements}"
    assert set(touches_rows(tenant_migrations)) == {"m007_analytics", "m008_session_row_bytes", "m020_xapi_bytes"}


def test_an_older_schema_with_rows_is_upgraded_to_this_releases(roles, schemas) -> None:
    owner, app, admin = roles
    old = schemas(*_older(6, 17))  # before jobs' leases, cmi5 preferences, LTI memberships, xAPI usage
    fresh = schemas()
    conn_info = f"host=127.0.0.1 port=5432 user={app} dbname=test connect_timeout=3"
    with pytest.raises(SchemaMismatch, match="database upgrade"):  # serve refuses, naming the command
        PgStore(conn_info, schema=old, max_size=1).close()
    # Rows the older release wrote: a tenant with an xAPI document, a queued job.
    admin.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(old)))
    admin.execute(
        "INSERT INTO tenants (id, name, plan, created_at, updated_at) VALUES ('ten_old', 'Old', 'free', 0, 0)"
    )
    admin.execute(
        "INSERT INTO xapi_documents (kind, activity_id, agent_ifi, registration, document_id, content_type, content, etag, "
        "updated, tenant_id) VALUES ('state', 'act', 'mbox', '', 'd1', 'text/plain', 'twelve bytes', 'e', 0, 'ten_old')"
    )
    admin.execute(
        "INSERT INTO jobs (id, kind, tenant_id, payload, status, attempts, run_at, created_at, updated_at) "
        "VALUES ('job_1', 'k', 'ten_old', '{}', 'queued', 0, 0, 0, 0)"
    )
    admin.execute("RESET search_path")

    plan, done = upgrade(admin, old, app_role=app, now=NOW + 1)
    assert done is not None and done.tenants == 1
    assert [f"{s}.{n}" for s, n in plan.pending] == _after(6, 17)  # m007 leases, m018-m020, and any later
    assert plan.data_steps == [("tenant", "m020_xapi_bytes")]
    assert _shape(admin, old) == _shape(admin, fresh)
    assert _migrations(admin, old) == _migrations(admin, fresh)

    # The application role now opens it; the recount saw the document, the job kept its row and gained
    # the lease columns, and the new table's row is the tenant's alone (RLS on the new table).
    store = PgStore(conn_info, schema=old, max_size=2)
    try:
        usage = store.tenant_db("ten_old").read_sync(lambda c: c.execute("SELECT * FROM xapi_usage").fetchall())
        assert usage == [(1, 0, len("twelve bytes"))]
        job = store.registry.read_sync(lambda c: c.execute("SELECT status, claimed_by FROM jobs").fetchall())
        assert job == [("queued", None)]
        store.registry.write_sync(
            lambda c: c.execute(
                "INSERT INTO tenants (id, name, plan, created_at, updated_at) VALUES ('ten_new', 'New', 'free', 0, 0)"
            )
        )
        assert store.tenant_db("ten_new").read_sync(lambda c: c.execute("SELECT * FROM xapi_usage").fetchall()) == [
            (1, 0, 0)  # the seed-rows trigger was redefined for the new table
        ]
    finally:
        store.close()
    with psycopg.connect(conn_info, autocommit=True) as raw, raw.transaction():
        raw.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(old)))
        raw.execute("SELECT set_config('app.tenant_id', 'ten_new', true)")
        assert raw.execute("SELECT tenant_id FROM xapi_usage").fetchall() == [("ten_new",)]  # deliberately unfiltered

    # Once more: nothing to do.
    again, done = upgrade(admin, old, app_role=app, now=NOW + 2)
    assert again.empty and done is not None and done.statements == 0


@pytest.mark.parametrize(("registry_count", "tenant_count"), [(1, 1), (3, 6), (5, 9), (6, 12), (7, 14), (7, 19)])
def test_any_older_prefix_upgrades_to_the_fresh_schema(roles, schemas, registry_count, tenant_count) -> None:
    """New tables (with RLS), added columns with defaults, indexes, triggers and the analytics and row-bytes
    data steps, from schemas of several ages."""
    owner, app, admin = roles
    old = schemas(*_older(registry_count, tenant_count))
    admin.execute(
        pgsql.SQL(
            "INSERT INTO {}.tenants (id, name, plan, created_at, updated_at) VALUES ('t1', 'T', 'free', 0, 0)"
        ).format(pgsql.Identifier(old))
    )
    upgrade(admin, old, app_role=app, now=NOW + 1)
    fresh = schemas()
    assert _shape(admin, old) == _shape(admin, fresh)
    assert _migrations(admin, old) == _migrations(admin, fresh)


def test_a_failing_step_leaves_the_schema_as_it_was(roles, schemas, monkeypatch) -> None:
    owner, app, admin = roles
    old = schemas(*_older(7, 19))
    admin.execute(
        pgsql.SQL(
            "INSERT INTO {}.tenants (id, name, plan, created_at, updated_at) VALUES ('t1', 'T', 'free', 0, 0)"
        ).format(pgsql.Identifier(old))
    )
    before = _shape(admin, old), _migrations(admin, old)

    def broken(conn) -> None:
        conn.execute("UPDATE xapi_usage SET statement_bytes = 1 WHERE id = 1")
        raise RuntimeError("the data step failed")

    monkeypatch.setitem(DATA_STEPS, ("tenant", "m020_xapi_bytes"), broken)
    with pytest.raises(RuntimeError, match="the data step failed"):
        upgrade(admin, old, app_role=app, now=NOW + 1)
    assert (_shape(admin, old), _migrations(admin, old)) == before  # no xapi_usage, no new _migrations rows


def test_refused_schemas(roles, schemas, monkeypatch) -> None:
    owner, app, admin = roles
    later = schemas()
    admin.execute(
        pgsql.SQL(
            "INSERT INTO {0}._migrations VALUES ('tenant', 'm999_from_the_future', 0); "
            "UPDATE {0}._migrations SET name = 'a-later-ddl' WHERE migration_set = 'postgres'"
        ).format(pgsql.Identifier(later))
    )
    with pytest.raises(UpgradeRefused, match="later release"):
        upgrade(admin, later, app_role=app, now=NOW)
    conn_info = f"host=127.0.0.1 port=5432 user={app} dbname=test connect_timeout=3"
    with pytest.raises(SchemaMismatch, match="later release"):
        PgStore(conn_info, schema=later, max_size=1).close()
    # A step that touches rows without a data step is refused before anything is written.
    old = schemas(*_older(7, 19))
    monkeypatch.delitem(DATA_STEPS, ("tenant", "m020_xapi_bytes"))
    with pytest.raises(UpgradeRefused, match="m020_xapi_bytes changes rows"):
        upgrade(admin, old, app_role=app, now=NOW)
    # A table rebuilt (here: a key that is no longer the same) is named, not guessed at.
    fake_new = Migrations("tenant", [*tenant_migrations.steps[:19], ("m020_rebuild", _rebuild_with_another_key)])
    with pytest.raises(UpgradeRefused, match="table lti_nonces changed"):
        upgrade_module.plan(
            upgrade_module.Applied(
                {
                    "registry": tuple(n for n, _ in registry_migrations.steps),
                    "tenant": tuple(n for n, _ in tenant_migrations.steps[:19]),
                },
                None,
            ),
            registry_migrations,
            fake_new,
        )
    with pytest.raises(UpgradeRefused, match="not installed"):
        upgrade(admin, "t_up_nothing_here", app_role=app, now=NOW)


def _rebuild_with_another_key(conn) -> None:
    conn.execute("DROP TABLE lti_nonces")  # nothing refers to it
    conn.execute("CREATE TABLE lti_nonces (nonce TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (nonce, n))")


def test_cli_upgrade_dry_run_then_upgrade(roles, schemas, tmp_path: Path) -> None:
    owner, app, admin = roles
    old = schemas(*_older(7, 18))
    env = {
        "SCORM_APPLIANCE_DATABASE": f"postgresql://{app}@127.0.0.1:5432/test",
        "SCORM_APPLIANCE_DATABASE_SCHEMA": old,
    }
    args = ["database", "upgrade", "--data-dir", str(tmp_path), "--admin-url", ADMIN_URL, "--json"]
    # Before: the CLI (as `serve`) refuses the older schema with the contract's error, naming the command.
    refused = CliRunner().invoke(cli, ["tenants", "list", "--data-dir", str(tmp_path), "--json"], env=env)
    assert refused.exit_code == 1, refused.output
    error = json.loads(refused.output.strip().splitlines()[-1])
    assert error["code"] == "DATABASE_ERROR" and "scorm-appliance database upgrade" in error["error"]
    dry = CliRunner().invoke(cli, [*args, "--dry-run"], env=env, catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["migrations"] == _after(7, 18)
    assert any('ADD COLUMN "memberships_url"' in s for s in planned["statements"])
    assert ("tenant", "m020_xapi_bytes") not in _migrations(admin, old)  # the dry run changed nothing
    done = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["migrations"] == planned["migrations"]
    inst = Instance(Config(data_dir=tmp_path, database=env["SCORM_APPLIANCE_DATABASE"], database_schema=old))
    try:
        assert inst.has_tenant_db(create_tenant(inst, "After", "free").id)
    finally:
        inst.close()
    text = CliRunner().invoke(cli, args[:-1], env=env, catch_exceptions=False)
    assert text.exit_code == 0 and "is up to date" in text.output
    started = time.monotonic()
    refused = CliRunner().invoke(
        cli,
        [*args[:2], "--data-dir", str(tmp_path), "--admin-url", ADMIN_URL, "--json"],
        env={**env, "SCORM_APPLIANCE_DATABASE_SCHEMA": "t_up_absent"},
    )
    assert refused.exit_code == 1 and time.monotonic() - started < 10
    assert json.loads(refused.output.strip().splitlines()[-1])["code"] == "DATABASE_ERROR"
