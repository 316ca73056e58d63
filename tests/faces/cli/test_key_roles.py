"""`keys create --role` and `tenants set-jwt`'s role options, on a temporary data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.faces.app import create_app
from tests.conftest import backend_config
from tests.faces.cli.test_tenants import run


def test_keys_get_a_role_admin_by_default(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, tmp_path, "tenants", "create", "Acme")
    plain = json.loads(run(runner, tmp_path, "keys", "create", "--tenant", "Acme", "--json"))
    reader = json.loads(run(runner, tmp_path, "keys", "create", "--tenant", "Acme", "--role", "read", "--json"))
    assert (plain["role"], reader["role"]) == ("admin", "read")
    assert "(role read)" in run(runner, tmp_path, "keys", "create", "--tenant", "Acme", "--role", "read")
    listed = json.loads(run(runner, tmp_path, "keys", "list", "--tenant", "Acme", "--json"))
    assert [k["role"] for k in listed] == ["admin", "read", "read"]
    table = run(runner, tmp_path, "keys", "list", "--tenant", "Acme")
    assert "ROLE" in table.splitlines()[0] and "read" in table
    assert "'owner' is not one of" in run(
        runner, tmp_path, "keys", "create", "--tenant", "Acme", "--role", "owner", code=2
    )
    # The role holds in the server.
    with TestClient(create_app(backend_config(tmp_path), start_scheduler=False)) as client:
        headers = {"Authorization": f"Bearer {reader['key']}"}
        assert client.get("/api/v1/tenant", headers=headers).json()["auth"]["role"] == "read"
        refused = client.post("/api/v1/sessions", json={"package_id": "pkg_x", "learner": {"id": "a"}}, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"


def test_set_jwt_role_options(runner: CliRunner, tmp_path: Path) -> None:
    run(runner, tmp_path, "tenants", "create", "Acme")
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    base = ["tenants", "set-jwt", "Acme", "--issuer", "https://idp", "--audience", "aud", "--jwks-file", str(jwks)]
    shown = json.loads(run(runner, tmp_path, *base, "--json"))
    assert "default_role" not in shown["jwt"]  # the default, learner (see `tenants show`)
    assert "default=learner" in run(runner, tmp_path, "tenants", "show", "Acme")
    changed = json.loads(
        run(
            runner,
            tmp_path,
            *base,
            "--role-claim",
            "org_role",
            "--role-prefix",
            "org:",
            "--default-role",
            "member",
            "--json",
        )
    )
    assert (changed["jwt"]["role_claim"], changed["jwt"]["role_prefix"], changed["jwt"]["default_role"]) == (
        "org_role",
        "org:",
        "member",
    )
    assert "claim=org_role prefix='org:' default=member" in run(runner, tmp_path, "tenants", "show", "Acme")
    run(runner, tmp_path, *base, "--default-role", "root", code=2)


@pytest.mark.sqlite_only(reason="tenant export/import copies SQLite files")
def test_a_tenant_export_keeps_its_keys_roles(runner: CliRunner, tmp_path: Path) -> None:
    """An imported read key must not come back as an admin key (the column's default)."""
    source, target = tmp_path / "source", tmp_path / "target"
    run(runner, source, "tenants", "create", "Acme")
    reader = json.loads(run(runner, source, "keys", "create", "--tenant", "Acme", "--role", "read", "--json"))
    run(runner, source, "tenants", "export", "Acme", str(tmp_path / "export"))
    run(runner, target, "tenants", "import", str(tmp_path / "export"))
    listed = json.loads(run(runner, target, "keys", "list", "--tenant", "Acme", "--json"))
    assert [(k["id"], k["role"]) for k in listed] == [(reader["id"], "read")]
