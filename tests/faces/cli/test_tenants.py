"""The admin CLI's tenant, key, quota and usage commands on a temporary data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.faces.cli import cli
from appliance.instance import Instance
from tests.conftest import backend_config


def run(runner: CliRunner, data_dir: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, [*args, "--data-dir", str(data_dir)], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def tenant_has_db(data_dir: Path, tenant_id: str) -> bool:
    """Whether the tenant has its database (its SQLite file, or its registry row on PostgreSQL)."""
    inst = Instance(backend_config(data_dir))
    try:
        return inst.has_tenant_db(tenant_id)
    finally:
        inst.close()


def test_tenant_lifecycle(runner: CliRunner, tmp_path: Path) -> None:
    created = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--plan", "professional", "--json"))
    assert created["id"].startswith("ten_")
    assert created["status"] == "active"
    assert created["plan"] == "professional"
    assert created["storage_limit_bytes"] == 50 * 1000**3
    assert created["rate_limit_per_minute"] == 1000
    assert tenant_has_db(tmp_path, created["id"])

    listed = json.loads(run(runner, tmp_path, "tenants", "list", "--json"))
    assert [t["name"] for t in listed] == ["Acme"]
    assert "Acme" in run(runner, tmp_path, "tenants", "list")

    shown = json.loads(run(runner, tmp_path, "tenants", "show", "Acme", "--json"))
    assert shown["id"] == created["id"]

    assert json.loads(run(runner, tmp_path, "tenants", "suspend", created["id"], "--json"))["status"] == "suspended"
    assert json.loads(run(runner, tmp_path, "tenants", "resume", created["id"], "--json"))["status"] == "active"

    run(runner, tmp_path, "tenants", "delete", "Acme")
    assert json.loads(run(runner, tmp_path, "tenants", "list", "--json")) == []
    assert not (tmp_path / "tenants" / created["id"]).exists()
    assert not tenant_has_db(tmp_path, created["id"])


def test_plans_set_default_quotas(runner: CliRunner, tmp_path: Path) -> None:
    free = json.loads(run(runner, tmp_path, "tenants", "create", "A", "--json"))
    assert (free["storage_limit_bytes"], free["rate_limit_per_minute"]) == (1000**3, 100)
    ent = json.loads(run(runner, tmp_path, "tenants", "create", "B", "--plan", "enterprise", "--json"))
    assert ent["storage_limit_bytes"] is None


def test_errors_and_exit_codes(runner: CliRunner, tmp_path: Path) -> None:
    out = run(runner, tmp_path, "tenants", "show", "nope", code=1)
    assert "no tenant 'nope'" in out
    run(runner, tmp_path, "tenants", "create", code=2)  # missing NAME: usage error
    run(runner, tmp_path, "tenants", "create", "X", "--plan", "gold", code=2)
    run(runner, tmp_path, "tenants", "create", "Acme")
    out = run(runner, tmp_path, "tenants", "create", "Acme", "--json", code=1)
    assert json.loads(out.strip().splitlines()[-1])["code"] == "VALIDATION_ERROR"


def test_keys(runner: CliRunner, tmp_path: Path, backend: str) -> None:
    tenant = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--json"))
    created = json.loads(run(runner, tmp_path, "keys", "create", "--tenant", "Acme", "--name", "lms", "--json"))
    assert created["id"].startswith("key_")
    assert created["key"].startswith("sak_")
    assert created["tenant_id"] == tenant["id"]
    listed = json.loads(run(runner, tmp_path, "keys", "list", "--tenant", tenant["id"], "--json"))
    assert [k["id"] for k in listed] == [created["id"]]
    assert all("key" not in k for k in listed)  # the secret is shown once only
    if backend == "sqlite":  # only a hash is stored: the secret appears nowhere in the registry file
        registry = b"".join(p.read_bytes() for p in tmp_path.glob("registry.db*"))
        assert registry
        assert created["key"].encode() not in registry
    else:  # on PostgreSQL: in no column of the registry's key rows
        inst = Instance(backend_config(tmp_path))
        try:
            rows = inst.registry.read_sync(lambda c: c.execute("SELECT * FROM api_keys").fetchall())
        finally:
            inst.close()
        assert rows
        assert created["key"] not in repr(rows)
    revoked = json.loads(run(runner, tmp_path, "keys", "revoke", created["id"], "--json"))
    assert revoked["status"] == "revoked"
    run(runner, tmp_path, "keys", "revoke", "key_nope", code=1)
    run(runner, tmp_path, "keys", "create", "--tenant", "nope", code=1)
    run(runner, tmp_path, "keys", "create", code=2)


def test_quotas_and_usage(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, tmp_path, "tenants", "create", "Acme")
    out = json.loads(
        run(runner, tmp_path, "quotas", "set", "--tenant", "Acme", "--storage", "5GB", "--rate", "250/min", "--json")
    )
    assert out["storage_bytes"] == 5 * 1000**3
    assert out["requests_per_minute"] == 250
    shown = json.loads(run(runner, tmp_path, "quotas", "show", "--tenant", "Acme", "--json"))
    assert shown == out
    run(runner, tmp_path, "quotas", "set", "--tenant", "Acme", "--storage", "lots", code=1)
    run(runner, tmp_path, "quotas", "set", "--tenant", "Acme", code=2)
    run(runner, tmp_path, "quotas", "set", "--tenant", "Acme", "--storage", "unlimited")
    assert json.loads(run(runner, tmp_path, "quotas", "show", "--tenant", "Acme", "--json"))["storage_bytes"] is None
    usage = json.loads(run(runner, tmp_path, "usage", "--tenant", "Acme", "--json"))
    assert usage["storage_bytes"] == 0
    assert usage["limits"] == {"storage_bytes": None, "requests_per_minute": 250}
    assert set(usage["api_requests"]) == {"period_start", "count"}


@pytest.mark.sqlite_only(reason="checks that registry.db is made in the data directory the environment names")
def test_data_dir_from_environment(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["tenants", "create", "EnvCo", "--json"], env={"SCORM_APPLIANCE_DATA_DIR": str(tmp_path / "env")}
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env" / "registry.db").exists()
