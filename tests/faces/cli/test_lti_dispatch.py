"""`scorm-appliance lti …` and `scorm-appliance dispatches …` on a temporary data dir: what the CLI
writes is what the server then serves."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.config import Config
from appliance.faces.app import create_app
from tests.conftest import TenantKey, backend_config
from tests.faces.api.test_packages import package_12, upload_ready
from tests.faces.cli.test_tenants import run

PLATFORM = [
    "--issuer",
    "https://moodle.example.org",
    "--client-id",
    "abc",
    "--deployment-id",
    "3",
    "--jwks-url",
    "https://moodle.example.org/mod/lti/certs.php",
    "--auth-url",
    "https://moodle.example.org/mod/lti/auth.php",
    "--token-url",
    "https://moodle.example.org/mod/lti/token.php",
]


def test_lti_registrations_and_key_rotation(runner: CliRunner, tmp_path: Path) -> None:
    tenant = json.loads(run(runner, tmp_path, "tenants", "create", "Acme", "--json"))
    reg = json.loads(run(runner, tmp_path, "lti", "add", "--tenant", "Acme", *PLATFORM, "--json"))
    assert reg["deployment_ids"] == ["3"]
    assert "already registered" in run(runner, tmp_path, "lti", "add", "--tenant", "Acme", *PLATFORM, code=1)
    internal = [*PLATFORM[:-1], "http://10.1.2.3/token"]
    assert "outbound_allow" in run(runner, tmp_path, "lti", "add", "--tenant", "Acme", *internal, code=1)
    changed = json.loads(
        run(
            runner,
            tmp_path,
            "lti",
            "update",
            "--tenant",
            "Acme",
            reg["id"],
            "--deployment-id",
            "3",
            "--deployment-id",
            "7",
            "--json",
        )
    )
    assert changed["deployment_ids"] == ["3", "7"]
    assert "moodle.example.org" in run(runner, tmp_path, "lti", "list", "--tenant", "Acme")
    urls = json.loads(
        run(runner, tmp_path, "lti", "tool", "--tenant", "Acme", "--base-url", "https://c.example", "--json")
    )
    assert urls["jwks_url"] == f"https://c.example/lti/{tenant['id']}/jwks"
    assert "public_url" in run(runner, tmp_path, "lti", "tool", "--tenant", "Acme", code=2)

    first = json.loads(run(runner, tmp_path, "lti", "keys", "--tenant", "Acme", "--json"))
    rotated = json.loads(run(runner, tmp_path, "lti", "rotate-key", "--tenant", "Acme", "--grace", "3600", "--json"))
    keys = json.loads(run(runner, tmp_path, "lti", "keys", "--tenant", "Acme", "--json"))
    assert [k["kid"] for k in keys] == [rotated["kid"], first[0]["kid"]]
    with TestClient(create_app(backend_config(tmp_path), start_scheduler=False)) as client:
        published = client.get(f"/lti/{tenant['id']}/jwks").json()["keys"]
        assert [k["kid"] for k in published] == [rotated["kid"], first[0]["kid"]]
    run(runner, tmp_path, "lti", "remove", "--tenant", "Acme", reg["id"])
    assert run(runner, tmp_path, "lti", "list", "--tenant", "Acme").strip() == "(none)"


def test_dispatches(runner: CliRunner, tmp_path: Path, acme: TenantKey, config: Config) -> None:
    with TestClient(create_app(config, start_scheduler=False)) as client:
        package = upload_ready(client, acme, package_12())
    data_dir = Path(config.data_dir)
    created = json.loads(
        run(
            runner,
            data_dir,
            "dispatches",
            "create",
            "--tenant",
            acme.tenant_id,
            "--package",
            package["id"],
            "--learner-cap",
            "10",
            "--json",
        )
    )
    assert created["learner_cap"] == 10 and created["enabled"] is True
    assert "disabled" in run(runner, data_dir, "dispatches", "disable", "--tenant", acme.tenant_id, created["id"])
    assert "enabled" in run(runner, data_dir, "dispatches", "enable", "--tenant", acme.tenant_id, created["id"])
    assert created["id"] in run(runner, data_dir, "dispatches", "list", "--tenant", acme.tenant_id)
    out = tmp_path / "course.zip"
    written = json.loads(
        run(
            runner,
            data_dir,
            "dispatches",
            "download",
            "--tenant",
            acme.tenant_id,
            created["id"],
            "--format",
            "2004",
            "--base-url",
            "https://c.example",
            "-o",
            str(out),
            "--json",
        )
    )
    assert written["path"] == str(out)
    with zipfile.ZipFile(out) as archive:
        assert "2004 4th Edition" in archive.read("imsmanifest.xml").decode()
        assert '"base": "https://c.example"' in archive.read("index.html").decode()
