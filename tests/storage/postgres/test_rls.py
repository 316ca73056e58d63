"""Row-level security: as one tenant, nothing of another's is visible or writable, and the application
role can neither switch the policies off nor step around them."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql as pgsql

from appliance.storage.postgres.adapter import PgStore
from appliance.storage.postgres.catalog import tenant_catalog
from tests.storage.postgres.conftest import PgSchema, add_tenant

NOW = 1_700_000_000.0


def _session(conn, session_id: str) -> None:
    conn.execute(
        "INSERT INTO sessions (id, package_id, package_version, learner_id, created_at, updated_at, expires_at) "
        "VALUES (?, 'pkg_1', 1, 'learner', ?, ?, ?)",
        (session_id, NOW, NOW, NOW + 86400),
    )


@pytest.fixture(scope="module")
def two_tenants(pg_store: PgStore) -> tuple[str, str]:
    add_tenant(pg_store, "ten_rls_a")
    add_tenant(pg_store, "ten_rls_b")
    pg_store.tenant_db("ten_rls_a").write_sync(lambda c: _session(c, "ses_a1"))
    pg_store.tenant_db("ten_rls_b").write_sync(lambda c: (_session(c, "ses_b1"), _session(c, "ses_b2")))
    return "ten_rls_a", "ten_rls_b"


def _raw_app(pg_schema: PgSchema) -> psycopg.Connection:
    conn = psycopg.connect(pg_schema.app_conninfo, autocommit=True)
    conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(pg_schema.schema)))
    return conn


def test_unfiltered_select_sees_only_own_tenant(pg_schema: PgSchema, two_tenants: tuple[str, str]) -> None:
    with _raw_app(pg_schema) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (two_tenants[0],))
        found = conn.execute("SELECT id, tenant_id FROM sessions").fetchall()  # deliberately no WHERE
    assert found == [("ses_a1", "ten_rls_a")]


def test_adapter_select_star_hides_the_tenant_column(pg_store: PgStore, two_tenants: tuple[str, str]) -> None:
    rows = pg_store.tenant_db(two_tenants[1]).read_sync(lambda c: list(c.execute("SELECT * FROM sessions ORDER BY id")))
    assert [r[0] for r in rows] == ["ses_b1", "ses_b2"]
    assert len(rows[0]) == len(tenant_catalog().tables["sessions"].columns)


def test_no_tenant_set_sees_nothing_and_cannot_insert(pg_schema: PgSchema, two_tenants: tuple[str, str]) -> None:
    with _raw_app(pg_schema) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        with pytest.raises(psycopg.errors.UndefinedObject):  # current_setting('app.tenant_id') is unset
            conn.execute(
                "INSERT INTO webhooks (id, url, events, secret, created_at, updated_at) VALUES ('w', 'u', '[]', 's', 0, 0)"
            )


def test_insert_with_another_tenants_id_is_refused(pg_schema: PgSchema, two_tenants: tuple[str, str]) -> None:
    a, b = two_tenants
    with _raw_app(pg_schema) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (a,))
            conn.execute(
                "INSERT INTO sessions (id, package_id, package_version, learner_id, created_at, updated_at, "
                "expires_at, tenant_id) VALUES ('ses_x', 'p', 1, 'l', 0, 0, 0, %s)",
                (b,),
            )
        with conn.transaction():  # nor can a row of A's be moved to B
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (a,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute("UPDATE sessions SET tenant_id = %s WHERE id = 'ses_a1'", (b,))


def test_updates_and_deletes_do_not_reach_another_tenant(pg_store: PgStore, two_tenants: tuple[str, str]) -> None:
    a, b = two_tenants

    def touch(c) -> tuple[int, int]:
        c.execute("UPDATE sessions SET learner_name = 'changed' WHERE id = 'ses_b1'")
        updated = c.changes()
        c.execute("DELETE FROM sessions WHERE id = 'ses_b2'")
        return updated, c.changes()

    assert pg_store.tenant_db(a).write_sync(touch) == (0, 0)
    names = pg_store.tenant_db(b).read_sync(lambda c: [r[0] for r in c.execute("SELECT learner_name FROM sessions")])
    assert names == ["", ""]


def test_the_setting_does_not_outlive_its_transaction(pg_store: PgStore, two_tenants: tuple[str, str]) -> None:
    pg_store.tenant_db(two_tenants[0]).read_sync(lambda c: None)
    with pg_store.pool.connection() as raw:  # the pool's connections are shared: nothing may linger
        assert raw.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        assert raw.execute("SELECT current_setting('app.tenant_id', true)").fetchone()[0] in ("", None)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE sessions DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE sessions NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON sessions",
        "SET row_security = off; SELECT * FROM sessions",
        "SET ROLE {owner}",
        "ALTER ROLE {app} BYPASSRLS",
    ],
)
def test_the_app_role_cannot_disable_or_bypass_rls(
    pg_schema: PgSchema, two_tenants: tuple[str, str], statement: str
) -> None:
    with _raw_app(pg_schema) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (two_tenants[0],))
        text = statement.format(owner=pg_schema.owner, app=pg_schema.app_role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(text.encode())


def test_the_app_role_is_not_owner_superuser_or_bypassrls(pg_schema: PgSchema, admin_conn: psycopg.Connection) -> None:
    role = admin_conn.execute(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (pg_schema.app_role,)
    ).fetchone()
    assert role == (False, False)
    tables = admin_conn.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
        (pg_schema.schema,),
    ).fetchall()
    assert {owner for _, owner, _, _ in tables} == {pg_schema.owner}
    secured = {name for name, _, rls, forced in tables if rls and forced}
    assert secured == set(tenant_catalog().tables)
    member = admin_conn.execute(
        "SELECT pg_has_role(%s, %s, 'MEMBER')", (pg_schema.app_role, pg_schema.owner)
    ).fetchone()
    assert member == (False,)


def test_deleting_a_tenant_deletes_its_rows_only(pg_store: PgStore, admin_conn: psycopg.Connection) -> None:
    for tenant_id in ("ten_gone", "ten_kept"):
        add_tenant(pg_store, tenant_id)
        pg_store.tenant_db(tenant_id).write_sync(lambda c, t=tenant_id: _session(c, f"ses_{t}"))
    pg_store.registry.write_sync(lambda c: c.execute("DELETE FROM tenants WHERE id = 'ten_gone'"))
    left = admin_conn.execute(  # as the administrator: past the policies, every tenant's rows
        "SELECT tenant_id, id FROM sessions WHERE tenant_id IN ('ten_gone', 'ten_kept')"
    ).fetchall()
    assert left == [("ten_kept", "ses_ten_kept")]
