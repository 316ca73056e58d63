"""Doctor: each kind of problem in a data directory is reported, with what to do about it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.operations import doctor as doctor_module
from appliance.services.operations.doctor import Finding, report_text, run_doctor
from tests.conftest import TenantKey, make_tenant_key
from tests.faces.api.test_packages import make_client, package_12, upload_raw, upload_ready

HOUR = 3600.0


@pytest.fixture(autouse=True)
def any_disk_is_big_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine running the tests may have little free space; that is not what these tests check."""
    monkeypatch.setattr(doctor_module, "MIN_FREE_BYTES", 0)
    monkeypatch.setattr(doctor_module, "LOW_FREE_BYTES", 0)


@pytest.fixture
def acme(config: Config) -> TenantKey:
    return make_tenant_key(config, "Acme")


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def problems(findings: list[Finding], check: str | None = None) -> list[Finding]:
    return [f for f in findings if f.severity != "ok" and (check is None or f.check == check)]


def errors(findings: list[Finding], check: str) -> list[Finding]:
    return [f for f in findings if f.severity == "error" and f.check == check]


def test_a_healthy_data_dir_passes(config: Config, acme: TenantKey, api: TestClient) -> None:
    upload_ready(api, acme, package_12())
    findings = run_doctor(config)
    assert problems(findings) == []
    checks = {f.check for f in findings}
    assert {"data_dir", "permissions", "disk", "database", "jobs", "packages"} <= checks
    assert "All checks passed." in report_text(findings, config.data_dir)


def test_a_missing_data_dir_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "nowhere")
    [finding] = run_doctor(config)
    assert (finding.check, finding.severity) == ("data_dir", "error")
    assert "does not exist" in finding.message
    assert finding.action
    assert not config.data_dir.exists()


def test_a_corrupted_database_is_reported(config: Config, acme: TenantKey) -> None:
    tenant_db = config.data_dir / "tenants" / acme.tenant_id / "tenant.db"
    data = bytearray(tenant_db.read_bytes())
    assert len(data) > 8 * 4096
    for page in range(2, 8):  # scribble over the b-tree pages, keep the header
        data[page * 4096 : page * 4096 + 4096] = os.urandom(4096)
    tenant_db.write_bytes(bytes(data))

    findings = run_doctor(config)

    [bad] = errors(findings, "database")
    assert acme.tenant_id in bad.message
    assert bad.path == str(tenant_db)
    assert bad.action and "backup" in bad.action
    # the registry is fine and still checked
    assert any(f.check == "database" and f.severity == "ok" and "registry.db" in f.message for f in findings)


def test_a_registry_that_is_not_a_database_is_reported(config: Config, acme: TenantKey) -> None:
    registry = config.data_dir / "registry.db"
    for side in ("registry.db-wal", "registry.db-shm"):
        (config.data_dir / side).unlink(missing_ok=True)
    registry.write_bytes(b"this is not a database" * 500)
    findings = run_doctor(config)
    assert [f.path for f in errors(findings, "database")] == [str(registry)]


def test_a_missing_package_folder_is_reported(config: Config, acme: TenantKey, api: TestClient) -> None:
    package = upload_ready(api, acme, package_12())
    folder = config.data_dir / "tenants" / acme.tenant_id / "packages" / package["id"] / "1"
    shutil.rmtree(folder)

    findings = run_doctor(config)

    [missing] = errors(findings, "packages")
    assert package["id"] in missing.message
    assert "missing" in missing.message
    assert missing.path == str(folder)
    assert missing.action and f"/api/v1/packages/{package['id']}/versions" in missing.action


def test_an_incomplete_package_folder_is_reported(config: Config, acme: TenantKey, api: TestClient) -> None:
    package = upload_ready(api, acme, package_12())
    folder = config.data_dir / "tenants" / acme.tenant_id / "packages" / package["id"] / "1"
    (folder / "index.html").unlink()
    [incomplete] = errors(run_doctor(config), "packages")
    assert "1 of its 2 files" in incomplete.message


def test_orphaned_folders_and_uploads_are_warnings(config: Config, acme: TenantKey) -> None:
    tenant_dir = config.data_dir / "tenants" / acme.tenant_id
    (tenant_dir / "packages" / "pkg_gone" / "1").mkdir(parents=True)
    (tenant_dir / "uploads").mkdir()
    (tenant_dir / "uploads" / "pkg_gone-1.zip").write_bytes(b"PK")
    (config.data_dir / "tenants" / "ten_unregistered").mkdir()
    (config.data_dir / "tenants" / ".import-abc").mkdir()

    findings = run_doctor(config)

    warned = {f.path for f in findings if f.severity == "warning"}
    assert str(tenant_dir / "packages" / "pkg_gone") in warned
    assert str(tenant_dir / "uploads" / "pkg_gone-1.zip") in warned
    assert str(config.data_dir / "tenants" / "ten_unregistered") in warned
    assert str(config.data_dir / "tenants" / ".import-abc") in warned
    assert not [f for f in findings if f.severity == "error"]
    assert all(f.action and "rm" in f.action for f in findings if f.severity == "warning")


def add_job(config: Config, status: str, *, age: float, error: str | None = None) -> str:
    inst = Instance(config)
    try:
        now = inst.clock.now()

        def insert(conn: object) -> str:
            job_id = jobs.enqueue(
                conn,  # type: ignore[arg-type]
                "package.process",
                {"tenant_id": "ten_x", "package_id": "pkg_x", "version": 1, "key": f"ten_x/pkg_x/{status}"},
                now=now - age,
            )
            conn.execute(  # type: ignore[attr-defined]
                "UPDATE jobs SET status = ?, attempts = 1, locked_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (status, now - age if status == "running" else None, error, now - age, job_id),
            )
            return job_id

        return inst.registry.write_sync(insert)
    finally:
        inst.close()


def test_a_stuck_job_is_reported(config: Config, acme: TenantKey) -> None:
    stuck = add_job(config, "running", age=2 * HOUR)
    fresh = add_job(config, "running", age=5.0)

    findings = run_doctor(config)

    [finding] = errors(findings, "jobs")
    assert stuck in finding.message
    assert "running for 2.0 h" in finding.message
    assert finding.action and "restart" in finding.action
    assert fresh not in " ".join(f.message for f in findings)


def test_failed_and_overdue_jobs_are_warnings(config: Config, acme: TenantKey) -> None:
    failed = add_job(config, "failed", age=HOUR, error="OSError: disk full\ntraceback…")
    overdue = add_job(config, "queued", age=HOUR)
    warned = [f for f in run_doctor(config) if f.check == "jobs" and f.severity == "warning"]
    messages = " ".join(f.message for f in warned)
    assert failed in messages and "OSError: disk full" in messages and "traceback" not in messages
    assert overdue in messages and "Is the server running?" in " ".join(f.action or "" for f in warned)


def test_a_version_processing_without_a_job_is_reported(config: Config, acme: TenantKey, api: TestClient) -> None:
    created = upload_raw(api, acme, package_12()).json()
    # Simulate a crash between the version's commit and its job's: remove the job.
    api.app.state.instance.registry.write_sync(lambda c: c.execute("DELETE FROM jobs"))
    assert errors(run_doctor(config), "packages") == []  # within the grace period: an upload in progress

    findings = run_doctor(config, now=api.app.state.instance.clock.now() + HOUR)

    [stuck] = errors(findings, "packages")
    assert created["id"] in stuck.message and "no job" in stuck.message
    assert stuck.action and "recovery sweep" in stuck.action


def test_a_data_dir_that_is_not_writable_is_reported(config: Config, acme: TenantKey) -> None:
    if os.getuid() == 0:
        pytest.skip("root can write anywhere")
    config.data_dir.chmod(0o500)
    try:
        [finding] = run_doctor(config)
    finally:
        config.data_dir.chmod(0o700)
    assert (finding.check, finding.severity) == ("data_dir", "error")


def test_a_world_writable_folder_is_a_warning(config: Config, acme: TenantKey) -> None:
    tenant_dir = config.data_dir / "tenants" / acme.tenant_id
    tenant_dir.chmod(0o777)
    warned = [f for f in run_doctor(config) if f.check == "permissions" and f.severity == "warning"]
    assert [f.path for f in warned] == [str(tenant_dir)]
    assert warned[0].action and "chmod o-w" in warned[0].action


def test_low_disk_space_is_reported(config: Config, acme: TenantKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor_module, "MIN_FREE_BYTES", 1 << 62)
    [disk] = [f for f in run_doctor(config) if f.check == "disk"]
    assert disk.severity == "error" and "nearly full" in disk.message


def test_json_report_shape(config: Config, acme: TenantKey) -> None:
    add_job(config, "running", age=2 * HOUR)
    report = doctor_module.report_json(run_doctor(config), config.data_dir)
    assert report["ok"] is False
    assert report["errors"] == 1
    assert {"check", "severity", "message", "action", "path"} == set(report["findings"][0])
    json.dumps(report)
