"""`scorm-appliance tenants set-suspend-data-limit` on a temporary data dir, and what it changes."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest
from click.testing import CliRunner

from appliance.config import Config
from appliance.core.scorm.datamodel import apply_patch
from appliance.instance import Instance
from appliance.services.tenancy.tenants import tenant_suspend_data_limit
from tests.conftest import backend_config
from tests.faces.cli.test_tenants import run


def test_tenants_start_at_64000_and_the_command_sets_the_limit(runner: CliRunner, tmp_path: Path) -> None:
    created = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--json"))
    assert created["scorm12_suspend_data_limit"] == 64000
    assert "1.2 suspend_data limit: 64000 characters" in run(runner, tmp_path, "tenants", "show", "Acme")

    out = run(runner, tmp_path, "tenants", "set-suspend-data-limit", "Acme", "4096")
    assert out.strip() == f"{created['id']}: SCORM 1.2 suspend_data holds up to 4096 characters."
    shown = json.loads(run(runner, tmp_path, "tenants", "show", created["id"], "--json"))
    assert shown["scorm12_suspend_data_limit"] == 4096
    assert shown["updated_at"] >= created["updated_at"]

    changed = json.loads(run(runner, tmp_path, "tenants", "set-suspend-data-limit", created["id"], "20000", "--json"))
    assert changed["scorm12_suspend_data_limit"] == 20000
    listed = json.loads(run(runner, tmp_path, "tenants", "list", "--json"))
    assert [t["scorm12_suspend_data_limit"] for t in listed] == [20000]


def test_the_setting_is_what_the_runtime_checks_with(runner: CliRunner, tmp_path: Path) -> None:
    tenant = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--json"))
    run(runner, tmp_path, "tenants", "set-suspend-data-limit", "Acme", "5000")
    inst = Instance(backend_config(tmp_path))
    try:
        limit = tenant_suspend_data_limit(inst, tenant["id"])
    finally:
        inst.close()
    assert limit == 5000
    assert apply_patch("1.2", {}, {"cmi.suspend_data": "x" * 5000}, suspend_data_limit=limit)[1] == []
    errors = apply_patch("1.2", {}, {"cmi.suspend_data": "x" * 5001}, suspend_data_limit=limit)[1]
    assert [e.scorm_error_code for e in errors] == [405]


def test_bad_limits_and_unknown_tenants(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, tmp_path, "tenants", "create", "Acme")
    for bad in ("4095", "64001", "strict", "-1"):
        out = run(runner, tmp_path, "tenants", "set-suspend-data-limit", "Acme", bad, code=2)
        assert "CHARACTERS" in out
    run(runner, tmp_path, "tenants", "set-suspend-data-limit", "Acme", code=2)  # missing CHARACTERS
    out = run(runner, tmp_path, "tenants", "set-suspend-data-limit", "nope", "4096", "--json", code=1)
    assert json.loads(out.strip().splitlines()[-1])["code"] == "NOT_FOUND"
    shown = json.loads(run(runner, tmp_path, "tenants", "show", "Acme", "--json"))
    assert shown["scorm12_suspend_data_limit"] == 64000


@pytest.mark.sqlite_only(reason="upgrades SQLite files of an older release")
def test_a_data_dir_from_before_the_setting_upgrades_to_the_default(runner: CliRunner, tmp_path: Path) -> None:
    """The named migrations add the columns once: existing tenants get 64000, packages follow them."""
    tenant = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--json"))
    inst = Instance(Config(data_dir=tmp_path))
    registry, tenant_db = inst.data.registry_db, inst.data.tenant_db(tenant["id"])
    inst.close()
    for path, column, table, migration in (
        (registry, "scorm12_suspend_data_limit", "tenants", "m004_tenant_suspend_data_limit"),
        (tenant_db, "scorm12_suspend_data_limit", "packages", "m009_package_suspend_data_limit"),
    ):
        conn = apsw.Connection(str(path))
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DELETE FROM _migrations WHERE name = ?", (migration,))
        conn.close()
    assert json.loads(run(runner, tmp_path, "tenants", "show", "Acme", "--json"))["scorm12_suspend_data_limit"] == 64000
    inst = Instance(Config(data_dir=tmp_path))
    try:
        inst.tenant_db(tenant["id"])  # opening the tenant's file applies its migrations
    finally:
        inst.close()
    conn = apsw.Connection(str(tenant_db))
    columns = [row[1] for row in conn.execute("PRAGMA table_info(packages)")]
    applied = [row[0] for row in conn.execute("SELECT name FROM _migrations WHERE name LIKE 'm009%'")]
    conn.close()
    assert "scorm12_suspend_data_limit" in columns
    assert applied == ["m009_package_suspend_data_limit"]
