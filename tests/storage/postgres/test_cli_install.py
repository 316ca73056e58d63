"""`scorm-appliance database install` against the real server: roles and schema made with the
administrator's URL, then the appliance runs on them as the application role."""

from __future__ import annotations

import json
import secrets
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
from tests.storage.postgres.conftest import ADMIN

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test?connect_timeout=3"


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    found = {"schema": f"t_cli_{suffix}", "owner": f"t_cli_owner_{suffix}", "app": f"t_cli_app_{suffix}"}
    yield found
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (found["app"],))
        admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(found["schema"])))
        for role in (found["app"], found["owner"]):
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))


def test_install_then_run_as_the_application_role(names: dict[str, str], tmp_path: Path) -> None:
    url = f"postgresql://{names['app']}@127.0.0.1:5432/test"
    env = {"SCORM_APPLIANCE_DATABASE": url, "SCORM_APPLIANCE_DATABASE_SCHEMA": names["schema"]}
    args = ["database", "install", "--data-dir", str(tmp_path), "--admin-url", ADMIN_URL, "--owner", names["owner"]]
    result = CliRunner().invoke(cli, [*args, "--create-roles", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "schema": names["schema"],
        "owner": names["owner"],
        "app_role": names["app"],
        "roles_created": True,
    }
    inst = Instance(Config(data_dir=tmp_path, database=url, database_schema=names["schema"]))
    try:
        tenant = create_tenant(inst, "Acme", "free")
        assert inst.has_tenant_db(tenant.id)
    finally:
        inst.close()
    # The schema is there: a second installation is refused, not merged into it.
    again = CliRunner().invoke(cli, [*args, "--json"], env=env, catch_exceptions=False)
    assert again.exit_code == 1
    error = json.loads(again.output.strip().splitlines()[-1])
    assert error["code"] == "DATABASE_ERROR" and "already exists" in error["error"]


def test_install_needs_a_postgresql_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["database", "install", "--data-dir", str(tmp_path), "--admin-url", ADMIN_URL],
        env={"SCORM_APPLIANCE_DATABASE": "sqlite"},
    )
    assert result.exit_code == 2
    assert "the database setting is 'sqlite'" in result.output
