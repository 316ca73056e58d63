"""Backup, restore, tenant export and import on real data directories, with the app open beside them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.operations import backup as backup_module
from appliance.services.operations.backup import backup, export_tenant
from appliance.services.operations.backup_format import BackupError, verify_backup
from appliance.services.operations.restore import import_tenant, restore
from appliance.services.tenancy.tenants import delete_tenant
from tests.conftest import TenantKey, make_tenant_key
from tests.faces.api.test_packages import drain, make_client, manifest_12, package_12, upload_raw, upload_ready
from tests.faces.api.test_sessions import Player, create

API = "/api/v1/packages"


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), database side files excluded."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def package_files(data_dir: Path) -> dict[str, bytes]:
    return {k: v for k, v in files_of(data_dir).items() if "/packages/" in k or "/uploads/" in k}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def journal_mode(path: Path) -> str:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchall()[0][0])
    finally:
        conn.close()


def session_with_commit(api: TestClient, who: TenantKey, package_id: str, location: str) -> str:
    session = create(api, who, package_id).json()
    player = Player(api, session)
    player.launch()
    response = player.commit({"cmi.core.lesson_location": location, "cmi.suspend_data": f"data-{location}"})
    assert response.status_code == 200, response.text
    return str(session["id"])


def read_session(api: TestClient, who: TenantKey, session_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/sessions/{session_id}?include=cmi", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def hook_copies(monkeypatch: pytest.MonkeyPatch, after_first_tenant_copy: Callable[[], None]) -> None:
    """Run `after_first_tenant_copy` right after the first online copy of a tenant database."""
    real = backup_module.online_copy
    done = []

    def copy(src: Path, dest: Path) -> None:
        real(src, dest)
        if src.name == "tenant.db" and not done:
            done.append(True)
            after_first_tenant_copy()

    monkeypatch.setattr(backup_module, "online_copy", copy)


# -- full backup and restore -----------------------------------------------------------------------


def test_online_backup_and_restore_round_trip(api: TestClient, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    globex = make_tenant_key(config, "Globex")
    ready = upload_ready(api, acme, package_12("Ready course"))
    v2 = api.post(
        f"{API}/{ready['id']}/versions",
        content=package_12("Ready course v2", b"<html>two</html>"),
        headers={**acme.headers, "Content-Type": "application/zip"},
    )
    assert v2.status_code == 202, v2.text
    drain(api)
    session_id = session_with_commit(api, acme, ready["id"], "page-7")
    waiting = upload_raw(api, globex, package_12("Still processing"))  # no drain: stays processing
    assert waiting.status_code == 202
    (config.data_dir / "settings.toml").write_text('log_level = "info"\n')

    dest = tmp_path / "backup"
    summary = backup(config.data_dir, dest)  # the app still holds its databases open (WAL)

    assert summary["kind"] == "full"
    assert {t["name"] for t in summary["tenants"]} == {"Acme", "Globex"}
    acme_info = next(t for t in summary["tenants"] if t["name"] == "Acme")
    assert (acme_info["packages"], acme_info["ready_versions"], acme_info["sessions"]) == (1, 2, 1)
    assert summary["databases"] == 3
    manifest = json.loads((dest / "manifest.json").read_text())
    backed_up = files_of(dest)
    assert set(backed_up) == set(manifest["files"]) | {"manifest.json"}
    for rel, meta in manifest["files"].items():
        assert meta == {"size": len(backed_up[rel]), "sha256": sha(backed_up[rel])}, rel
    # databases are single self-contained files, not WAL databases
    assert not list(dest.rglob("*-wal")) and not list(dest.rglob("*-shm"))
    assert journal_mode(dest / "registry.db") == "delete"
    # every ready version's files, and the ZIP of the processing one, byte for byte
    assert {k: v for k, v in backed_up.items() if "/packages/" in k or "/uploads/" in k} == package_files(
        config.data_dir
    )
    assert any(k.endswith(f"{waiting.json()['id']}-1.zip") for k in backed_up)
    assert verify_backup(dest)["files"] == len(manifest["files"])

    target = tmp_path / "restored"
    restored = restore(dest, target)
    assert restored["path"] == str(target)
    assert package_files(target) == package_files(config.data_dir)
    assert (target / "settings.toml").read_text() == 'log_level = "info"\n'
    assert (target / "tmp").is_dir()

    with make_client(Config(data_dir=target)) as again:
        package = again.get(f"{API}/{ready['id']}", headers=acme.headers).json()
        assert (package["status"], package["latest_version"], package["active_version"]) == ("ready", 2, 2)
        cmi = read_session(again, acme, session_id)["cmi"]
        assert cmi["cmi.core.lesson_location"] == "page-7"
        assert cmi["cmi.suspend_data"] == "data-page-7"
        drain(again)  # the processing version is processed again from its backed-up ZIP
        assert again.get(f"{API}/{waiting.json()['id']}", headers=globex.headers).json()["status"] == "ready"


def test_backup_refuses_bad_destinations(config: Config, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no registry.db"):
        backup(tmp_path / "nothing-here", tmp_path / "b0")
    make_tenant_key(config, "Acme")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file.txt").write_text("x")
    with pytest.raises(BackupError, match="not an empty directory"):
        backup(config.data_dir, busy)
    with pytest.raises(BackupError, match="outside the data directory"):
        backup(config.data_dir, config.data_dir / "backups" / "b1")
    assert not (config.data_dir / "backups").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert backup(config.data_dir, empty)["tenants"][0]["name"] == "Acme"


def test_restore_checks_the_target_and_every_checksum(api: TestClient, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    upload_ready(api, acme, package_12())
    dest = tmp_path / "backup"
    backup(config.data_dir, dest)

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "registry.db").write_bytes(b"")
    with pytest.raises(BackupError, match="not empty"):
        restore(dest, occupied)

    # a package file changed after the backup (same size, other bytes): refused, nothing left behind
    victim = next(p for p in dest.rglob("index.html"))
    original = victim.read_bytes()
    victim.write_bytes(bytes(reversed(original)))
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(BackupError, match="checksum"):
        restore(dest, target)
    assert list(target.iterdir()) == []
    with pytest.raises(BackupError, match="do not match their checksums"):
        verify_backup(dest)
    victim.write_bytes(original)

    victim.unlink()
    with pytest.raises(BackupError, match="missing"):
        restore(dest, target)
    assert list(target.iterdir()) == []

    (dest / "manifest.json").unlink()
    with pytest.raises(BackupError, match="not a complete backup"):
        restore(dest, target)


def test_a_backup_from_a_newer_appliance_is_refused(config: Config, tmp_path: Path) -> None:
    make_tenant_key(config, "Acme")
    dest = tmp_path / "backup"
    backup(config.data_dir, dest)
    conn = apsw.Connection(str(dest / "registry.db"))
    conn.execute("INSERT INTO _migrations VALUES ('registry', 'm999_from_the_future', 0)")
    conn.pragma("journal_mode", "delete")
    conn.close()
    with pytest.raises(BackupError, match="newer appliance") as raised:
        restore(dest, tmp_path / "target")
    assert raised.value.details["unknown_migrations"] == ["registry/m999_from_the_future"]
    assert not (tmp_path / "target").exists()


def test_a_version_finishing_during_the_copy_is_backed_up_ready(
    api: TestClient, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = make_tenant_key(config, "Acme")
    created = upload_raw(api, acme, package_12("Racing"))
    package_id = created.json()["id"]
    # The snapshot says `processing`; before its ZIP is copied the job finishes and deletes the ZIP.
    hook_copies(monkeypatch, lambda: drain(api))

    dest = tmp_path / "backup"
    summary = backup(config.data_dir, dest)

    manifest = json.loads((dest / "manifest.json").read_text())
    assert not [rel for rel in manifest["files"] if "/uploads/" in rel]
    assert [rel for rel in manifest["files"] if rel.endswith(f"{package_id}/1/index.html")]
    assert summary["tenants"][0]["ready_versions"] == 1
    target = tmp_path / "restored"
    restore(dest, target)
    with make_client(Config(data_dir=target)) as again:
        assert again.get(f"{API}/{package_id}", headers=acme.headers).json()["status"] == "ready"


def test_a_package_deleted_during_the_copy_is_left_out(
    api: TestClient, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = make_tenant_key(config, "Acme")
    doomed = upload_ready(api, acme, package_12("Doomed"))
    kept = upload_ready(api, acme, package_12("Kept"))
    hook_copies(monkeypatch, lambda: api.delete(f"{API}/{doomed['id']}", headers=acme.headers))

    dest = tmp_path / "backup"
    summary = backup(config.data_dir, dest)

    manifest = json.loads((dest / "manifest.json").read_text())
    assert not [rel for rel in manifest["files"] if doomed["id"] in rel]
    assert [rel for rel in manifest["files"] if kept["id"] in rel]
    assert summary["tenants"][0]["packages"] == 1
    restore(dest, tmp_path / "restored")
    with make_client(Config(data_dir=tmp_path / "restored")) as again:
        assert again.get(f"{API}/{doomed['id']}", headers=acme.headers).status_code == 404
        assert again.get(f"{API}/{kept['id']}", headers=acme.headers).json()["status"] == "ready"


def test_a_tenant_deleted_during_the_backup_is_left_out(
    api: TestClient, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tenant_key(config, "Acme")
    globex = make_tenant_key(config, "Globex")
    inst: Instance = api.app.state.instance
    hook_copies(monkeypatch, lambda: delete_tenant(inst, globex.tenant_id))

    summary = backup(config.data_dir, tmp_path / "backup")

    assert [t["name"] for t in summary["tenants"]] == ["Acme"]
    assert not (tmp_path / "backup" / "tenants" / globex.tenant_id).exists()
    conn = apsw.Connection(str(tmp_path / "backup" / "registry.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM tenants")]
        keys = conn.execute("SELECT count(*) FROM api_keys WHERE tenant_id = ?", (globex.tenant_id,)).fetchall()
    finally:
        conn.close()
    assert names == ["Acme"]
    assert keys == [(0,)]


# -- tenant export and import ----------------------------------------------------------------------


def test_export_and_import_a_tenant_between_appliances(api: TestClient, config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    make_tenant_key(config, "Globex")
    package = upload_ready(api, acme, package_12("Exported"))
    session_id = session_with_commit(api, acme, package["id"], "p3")
    waiting = upload_raw(api, acme, package_12("Queued")).json()  # still processing at export

    dest = tmp_path / "export"
    summary = export_tenant(config.data_dir, "Acme", dest)
    assert summary["kind"] == "tenant"
    assert [t["name"] for t in summary["tenants"]] == ["Acme"]
    assert not (dest / "registry.db").exists()  # nothing of the other tenants
    assert not [p for p in dest.rglob("*") if "Globex" in p.name]

    other = Config(data_dir=tmp_path / "other")
    make_tenant_key(other, "Acme")  # the name is taken on the other appliance
    inst = Instance(other)
    try:
        with pytest.raises(BackupError, match="--name"):
            import_tenant(inst, dest)
        assert not (other.data_dir / "tenants" / acme.tenant_id).exists()
        imported = import_tenant(inst, dest, name="Acme (moved)")
        assert imported["tenant"] == {"id": acme.tenant_id, "name": "Acme (moved)"}
        assert (imported["api_keys"], imported["requeued_versions"]) == (1, 1)
        with pytest.raises(BackupError, match="exists already"):
            import_tenant(inst, dest, name="Acme again")
    finally:
        inst.close()
    assert not [p for p in (other.data_dir / "tenants").iterdir() if p.name.startswith(".")]

    with make_client(other) as there:
        me = there.get("/api/v1/tenant", headers=acme.headers)  # the same API key works there
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "Acme (moved)"
        assert there.get(f"{API}/{package['id']}", headers=acme.headers).json()["status"] == "ready"
        assert read_session(there, acme, session_id)["cmi"]["cmi.core.lesson_location"] == "p3"
        drain(there)  # the import queued the processing version's job
        assert there.get(f"{API}/{waiting['id']}", headers=acme.headers).json()["status"] == "ready"


def test_import_and_restore_refuse_the_wrong_kind(config: Config, tmp_path: Path) -> None:
    make_tenant_key(config, "Acme")
    backup(config.data_dir, tmp_path / "full")
    export_tenant(config.data_dir, "Acme", tmp_path / "one")
    with pytest.raises(BackupError, match="tenants import"):
        restore(tmp_path / "one", tmp_path / "target")
    inst = Instance(Config(data_dir=tmp_path / "other"))
    try:
        with pytest.raises(BackupError, match="scorm-appliance restore"):
            import_tenant(inst, tmp_path / "full")
    finally:
        inst.close()
    with pytest.raises(BackupError, match="no tenant"):
        export_tenant(config.data_dir, "Nobody", tmp_path / "nobody")


def test_a_damaged_export_is_not_imported(config: Config, tmp_path: Path) -> None:
    acme = make_tenant_key(config, "Acme")
    with make_client(config) as api:
        upload_ready(api, acme, package_12())
    dest = tmp_path / "export"
    export_tenant(config.data_dir, acme.tenant_id, dest)
    victim = next(dest.rglob("imsmanifest.xml"))
    victim.write_bytes(manifest_12("Tampered")[: victim.stat().st_size].ljust(victim.stat().st_size, b" "))
    inst = Instance(Config(data_dir=tmp_path / "other"))
    try:
        with pytest.raises(BackupError, match="checksum"):
            import_tenant(inst, dest)
        assert [p.name for p in (tmp_path / "other" / "tenants").iterdir()] == []
        assert inst.registry.read_sync(lambda c: c.execute("SELECT count(*) FROM tenants").fetchall()) == [(0,)]
    finally:
        inst.close()


def test_an_appliance_on_postgresql_is_not_backed_up_from_its_data_directory(
    api: TestClient, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `database` on PostgreSQL the data directory holds no rows: backup, restore and tenant export
    refuse with BACKUP_ERROR saying so (PostgreSQL's own tools back it up), not a missing-file error."""
    taken = backup(config.data_dir, tmp_path / "bk")  # an embedded backup, to try restoring below
    monkeypatch.setenv("SCORM_APPLIANCE_DATABASE", "postgresql://appliance@db.invalid/appliance")
    for attempt in (
        lambda: backup(config.data_dir, tmp_path / "bk2"),
        lambda: export_tenant(config.data_dir, "Acme", tmp_path / "ex"),
        lambda: restore(Path(taken["path"]), tmp_path / "new-data"),
    ):
        with pytest.raises(BackupError) as refused:
            attempt()
        assert "PostgreSQL" in refused.value.message and refused.value.details == {"database": "postgresql"}
    assert not (tmp_path / "bk2").exists() and not (tmp_path / "new-data" / "registry.db").exists()
