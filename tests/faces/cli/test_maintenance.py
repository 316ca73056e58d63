"""`backup`, `restore`, `doctor`, `tenants export` and `tenants import` through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.config import Config
from appliance.faces.cli import cli
from appliance.services.operations import doctor as doctor_module
from tests.conftest import make_tenant_key
from tests.faces.api.test_packages import make_client, package_12, upload_ready

# Backups, restores, the doctor and tenant export/import copy and check SQLite files.
pytestmark = pytest.mark.sqlite_only(reason="backup, restore, doctor and tenant export/import work on SQLite files")


@pytest.fixture(autouse=True)
def any_disk_is_big_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_module, "MIN_FREE_BYTES", 0)
    monkeypatch.setattr(doctor_module, "LOW_FREE_BYTES", 0)


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_backup_check_and_restore(runner: CliRunner, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    with make_client(config) as api:
        package = upload_ready(api, acme, package_12())
    data, dest, target = str(config.data_dir), tmp_path / "backup", tmp_path / "restored"

    out = run(runner, "backup", str(dest), "--data-dir", data)
    assert f"Backed up 1 tenant(s) to {dest}" in out
    assert "Acme" in out and "1 package(s)" in out
    assert f"scorm-appliance restore {dest} --check" in out

    checked = json.loads(run(runner, "restore", str(dest), "--check", "--json"))
    assert checked["valid"] is True and checked["kind"] == "full"

    restored = json.loads(run(runner, "restore", str(dest), "--data-dir", str(target), "--json"))
    assert restored["path"] == str(target)
    assert restored["tenants"][0]["name"] == "Acme"
    assert (target / "tenants" / acme.tenant_id / "packages" / package["id"] / "1" / "index.html").is_file()

    # restoring again over the restored data is refused (exit 1, the error in the contract shape)
    again = runner.invoke(cli, ["restore", str(dest), "--data-dir", str(target), "--json"])
    assert again.exit_code == 1
    assert json.loads(again.output.strip().splitlines()[-1])["code"] == "BACKUP_ERROR"
    # into a dir that is not empty, as text
    assert "not empty" in run(runner, "restore", str(dest), "--data-dir", str(target), code=1)
    # a backup into a non-empty destination
    assert "not an empty directory" in run(runner, "backup", str(dest), "--data-dir", data, code=1)


def test_backup_honours_the_environment_data_dir(
    runner: CliRunner, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant_key(config, "Acme")
    monkeypatch.setenv("SCORM_APPLIANCE_DATA_DIR", str(config.data_dir))
    out = json.loads(run(runner, "backup", str(tmp_path / "b"), "--json"))
    assert out["tenants"][0]["name"] == "Acme"


def test_doctor_exit_codes(runner: CliRunner, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    with make_client(config) as api:
        package = upload_ready(api, acme, package_12())
    data = str(config.data_dir)
    assert "All checks passed." in run(runner, "doctor", "--data-dir", data)

    orphan = config.data_dir / "tenants" / acme.tenant_id / "packages" / "pkg_orphan"
    orphan.mkdir()
    out = run(runner, "doctor", "--data-dir", data)  # warnings alone: exit 0
    assert "WARNING" in out and f"rm -rf {orphan}" in out
    run(runner, "doctor", "--strict", "--data-dir", data, code=1)

    shutil.rmtree(config.data_dir / "tenants" / acme.tenant_id / "packages" / package["id"])
    report = json.loads(run(runner, "doctor", "--json", "--data-dir", data, code=1))
    assert report["ok"] is False and report["errors"] == 1
    [error] = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["check"] == "packages" and package["id"] in error["message"]

    out = run(runner, "doctor", "--data-dir", str(tmp_path / "missing"), code=1)
    assert "does not exist" in out
    assert not (tmp_path / "missing").exists()


def test_tenant_export_and_import(runner: CliRunner, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    with make_client(config) as api:
        upload_ready(api, acme, package_12())
    dest = tmp_path / "acme-export"
    other = tmp_path / "other"

    out = run(runner, "tenants", "export", "Acme", str(dest), "--data-dir", str(config.data_dir))
    assert f"Exported tenant Acme to {dest}" in out
    assert f"scorm-appliance tenants import {dest}" in out

    imported = json.loads(run(runner, "tenants", "import", str(dest), "--data-dir", str(other), "--json"))
    assert imported["tenant"] == {"id": acme.tenant_id, "name": "Acme"}
    listed = json.loads(run(runner, "tenants", "list", "--data-dir", str(other), "--json"))
    assert [(t["id"], t["name"]) for t in listed] == [(acme.tenant_id, "Acme")]
    keys = json.loads(run(runner, "keys", "list", "--tenant", "Acme", "--data-dir", str(other), "--json"))
    assert [k["id"] for k in keys] == [acme.key_id]

    out = run(runner, "tenants", "import", str(dest), "--data-dir", str(other), code=1)
    assert "exists already" in out
    out = run(runner, "tenants", "export", "Nobody", str(tmp_path / "x"), "--data-dir", str(config.data_dir), code=1)
    assert "no tenant 'Nobody'" in out
