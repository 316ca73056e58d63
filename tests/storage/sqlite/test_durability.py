"""Power-loss durability (issue 20, item 6): the `durability` setting reaches SQLite's synchronous
pragma, durable writes commit with FULL, and a package version's files and folders are fsynced before
the version is marked ready."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config, load_config
from appliance.instance import Instance
from appliance.services.library import package_processing
from appliance.services.library.archive import extract_archive
from appliance.services.tenancy import quota_events
from appliance.storage.sqlite.connection import one
from tests.conftest import TenantKey, make_tenant_key
from tests.faces.api.test_packages import API, build_zip, drain, manifest_12, upload_raw

NORMAL, FULL = 1, 2  # what PRAGMA synchronous answers


def synchronous(conn: Any) -> int:
    return int(one(conn, "PRAGMA synchronous")["synchronous"])


def levels(inst: Instance, tenant_id: str) -> dict[str, int]:
    """The level of each connection kind: registry and tenant, readers and the writer."""
    tenant = inst.tenant_db(tenant_id)
    return {
        "registry_read": inst.registry.read_sync(synchronous),
        "registry_write": inst.registry.write_sync(synchronous),
        "tenant_read": tenant.read_sync(synchronous),
        "tenant_write": tenant.write_sync(synchronous),
    }


@pytest.mark.parametrize(("durability", "tenant_level"), [("normal", NORMAL), ("full", FULL)])
def test_the_setting_reaches_the_pragma_of_every_connection(tmp_path: Path, durability: str, tenant_level: int) -> None:
    config = load_config({"data_dir": str(tmp_path / "data")}, {"SCORM_APPLIANCE_DURABILITY": durability})
    who = make_tenant_key(config, "Acme")
    inst = Instance(config)
    try:
        found = levels(inst, who.tenant_id)
    finally:
        inst.close()
    # The registry holds tenants, keys and jobs: FULL whatever the setting.
    assert found == {
        "registry_read": FULL,
        "registry_write": FULL,
        "tenant_read": tenant_level,
        "tenant_write": tenant_level,
    }


def test_an_unknown_durability_is_a_bad_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability must be one of normal, full"):
        load_config({"data_dir": str(tmp_path)}, {"SCORM_APPLIANCE_DURABILITY": "sometimes"})


def test_a_durable_write_commits_with_full_and_the_file_keeps_its_level(config: Config) -> None:
    who = make_tenant_key(config, "Acme")
    inst = Instance(config)
    try:
        db = inst.tenant_db(who.tenant_id)
        assert db.write_sync(synchronous, durable=True) == FULL
        assert db.write_sync(synchronous) == NORMAL
        with pytest.raises(RuntimeError):
            db.write_sync(lambda c: (_ for _ in ()).throw(RuntimeError("rolled back")), durable=True)
        assert db.write_sync(synchronous) == NORMAL  # restored after a rollback too
    finally:
        inst.close()


# -- package files ---------------------------------------------------------------------------------------


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every descriptor passed to os.fsync, in order (Linux's /proc names them)."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


FILES = {
    "imsmanifest.xml": manifest_12("Synced"),
    "index.html": b"<html>hello</html>",
    "css/site.css": b"body {}",
    "media/img/a.png": b"\x89PNG" * 100,
    "media/img/b.png": b"\x89PNG" * 200,
}


def test_extraction_fsyncs_every_file_and_folder(tmp_path: Path, fsynced: list[str]) -> None:
    source = tmp_path / "a.zip"
    source.write_bytes(build_zip(FILES))
    dest = tmp_path / "out"
    extract_archive(source, dest, strip_prefix="")
    root = str(dest.resolve())
    expected_files = {f"{root}/{name}" for name in FILES}
    expected_dirs = {root, f"{root}/css", f"{root}/media", f"{root}/media/img"}
    assert set(fsynced) == expected_files | expected_dirs
    # Files first, then folders from the deepest up: a folder is synced after what it names.
    assert set(fsynced[: len(FILES)]) == expected_files
    assert fsynced.index(f"{root}/media/img") < fsynced.index(f"{root}/media") < fsynced.index(root)


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    from tests.faces.api.test_packages import make_client

    with make_client(config) as client:
        yield client


def test_a_version_is_on_disk_before_it_is_marked_ready(
    api: TestClient, acme: TenantKey, config: Config, fsynced: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at_ready: dict[str, Any] = {}
    mark_ready, settle = package_processing._mark_ready, quota_events.settle

    def snapshot(*args: Any, **kwargs: Any) -> None:
        at_ready["fsynced"] = list(fsynced)
        mark_ready(*args, **kwargs)

    def settle_seeing_level(conn: Any, *args: Any, **kwargs: Any) -> Any:
        at_ready.setdefault("levels", []).append(synchronous(conn))
        return settle(conn, *args, **kwargs)

    monkeypatch.setattr(package_processing, "_mark_ready", snapshot)
    monkeypatch.setattr(quota_events, "settle", settle_seeing_level)
    created = upload_raw(api, acme, build_zip(FILES))
    assert created.status_code == 202, created.text
    # The upload's ZIP was renamed into uploads/ and that folder synced before the version committed.
    uploads = str((config.data_dir / "tenants" / acme.tenant_id / "uploads").resolve())
    assert uploads in fsynced
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "ready", package
    synced = at_ready["fsynced"]
    extracted = [p for p in synced if "/tmp/extract-" in p]
    work_root = min(extracted, key=len)  # the extraction folder itself
    assert {p[len(work_root) + 1 :] for p in extracted if p != work_root} == set(FILES) | {"css", "media", "media/img"}
    package_dir = (config.data_dir / "tenants" / acme.tenant_id / "packages" / created.json()["id"]).resolve()
    for folder in (package_dir, package_dir.parent, package_dir.parent.parent):
        assert str(folder) in synced, folder  # the rename into place is on disk too
    assert (package_dir / "1" / "media" / "img" / "b.png").is_file()
    # Both durable commits (the upload's version row and the version marked ready) ran at FULL.
    assert at_ready["levels"] == [FULL, FULL]


def test_the_registry_commits_jobs_with_full(config: Config) -> None:
    """Jobs live in the registry: a job marked done survives power loss with the version it made ready."""
    inst = Instance(config)
    try:
        assert inst.registry.write_sync(synchronous) == FULL
    finally:
        inst.close()


def test_validation_does_not_sync_files_it_throws_away(api: TestClient, acme: TenantKey, fsynced: list[str]) -> None:
    response = api.post(
        f"{API}/validate", content=build_zip(FILES), headers={**acme.headers, "Content-Type": "application/zip"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert [p for p in fsynced if "/validate-" in p] == []
