"""`Instance` on the `database = "postgresql://…"` setting: the registry and tenants in the configured
schema (nothing in SQLite files), "the tenant has its database" asked of the registry, a schema that is
not installed refused by name, and readiness following the server as it stops and starts answering."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from psycopg import sql as pgsql

from appliance.config import Config
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.tenancy.tenants import create_tenant, delete_tenant
from appliance.storage.postgres.adapter import SchemaMismatch
from tests.storage.postgres.backend import Backend


@pytest.fixture(scope="module")
def pg() -> Iterator[Backend]:
    found = Backend()
    yield found
    found.close()


@pytest.fixture
def config(pg: Backend, tmp_path: Path) -> Iterator[Config]:
    yield Config(data_dir=tmp_path / "data").with_overrides({"database": pg.url, "database_schema": pg.schema.schema})
    pg.reset()


def test_the_databases_are_the_schema_and_tenants_its_rows(config: Config) -> None:
    inst = Instance(config)
    try:
        assert inst.backend == "postgresql"
        tenant = create_tenant(inst, "Acme", "free")
        assert inst.has_tenant_db(tenant.id)
        assert not inst.has_tenant_db("ten_never_made")
        inst.tenant_db(tenant.id).write_sync(
            lambda c: c.execute(
                "INSERT INTO sessions (id, package_id, package_version, learner_id, created_at, updated_at, expires_at) "
                "VALUES ('ses_1', 'pkg_1', 1, 'learner', 0, 0, 1)"
            )
        )
        other = Instance(config)  # another worker on the same settings sees the same rows
        try:
            assert other.has_tenant_db(tenant.id)
            assert other.tenant_db(tenant.id).read_sync(lambda c: c.execute("SELECT id FROM sessions").fetchall()) == [
                ("ses_1",)
            ]
        finally:
            other.close()
        assert not config.data_dir.joinpath("registry.db").exists()
        assert not inst.data.tenant_db(tenant.id).exists()
        delete_tenant(inst, tenant.id)
        assert not inst.has_tenant_db(tenant.id)
        assert inst.tenant_db(tenant.id).read_sync(lambda c: c.execute("SELECT count(*) FROM sessions").fetchone()) == (
            0,
        )
    finally:
        inst.close()


def test_a_schema_not_installed_is_refused_by_name(config: Config) -> None:
    with pytest.raises(SchemaMismatch, match="'t_not_installed' is not installed"):
        Instance(config.with_overrides({"database_schema": "t_not_installed"}))


def test_the_database_settings_are_checked(tmp_path: Path) -> None:
    base = Config(data_dir=tmp_path)
    assert base.database == "sqlite"
    assert base.with_overrides({"database": " SQLite "}).database == "sqlite"
    url = "postgresql://app:s3cret@db.internal/appliance"
    assert base.with_overrides({"database": url}).database == url
    with pytest.raises(ValueError, match="database must be 'sqlite' or a postgresql:// URL") as raised:
        base.with_overrides({"database": "postgress://app:s3cret@db.internal/appliance"})
    assert "s3cret" not in str(raised.value)
    for bad in ("Appliance", "a-b", "x; DROP", "1abc", ""):
        with pytest.raises(ValueError, match="database_schema"):
            base.with_overrides({"database_schema": bad})


def _ready(client: TestClient) -> tuple[int, dict]:
    response = client.get("/api/v1/ready")
    return response.status_code, response.json()


def test_readiness_follows_the_server(config: Config, pg: Backend) -> None:
    role = pgsql.Identifier(pg.schema.app_role)
    with TestClient(create_app(config, start_scheduler=False), raise_server_exceptions=False) as client:
        status, body = _ready(client)
        assert (status, body["checks"]) == (200, {"database": {"backend": "postgresql", "status": "ok"}})
        # The application role may no longer log in and its connections are ended: the server is gone for it.
        pg.admin.execute(pgsql.SQL("ALTER ROLE {} NOLOGIN").format(role))
        try:
            pg.admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (pg.schema.app_role,)
            )
            status, body = _ready(client)
            assert status == 503
            assert body["code"] == "NOT_READY"
            database = body["details"]["checks"]["database"]
            assert (database["backend"], database["status"]) == ("postgresql", "unavailable")
            assert pg.schema.app_role not in str(body)  # the detail is logged, not shown to anyone asking
        finally:
            pg.admin.execute(pgsql.SQL("ALTER ROLE {} LOGIN").format(role))
        deadline = time.monotonic() + 10
        while (status := _ready(client)[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # the pool replaces the broken connection in the background
        assert status == 200
