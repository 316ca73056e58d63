"""Online backups of a data directory and tenant exports (restore and import: appliance.services.operations.restore).

A backup (or a tenant export) is a plain directory:

    <dest>/manifest.json                               what it holds: every file with its size and SHA-256
    <dest>/registry.db                                 full backups: tenants, API key hashes, jobs
    <dest>/settings.toml                               full backups, when the data dir has one
    <dest>/tenant.json                                 tenant exports: the tenant's registry row and keys
    <dest>/tenants/<id>/tenant.db                      each tenant's database
    <dest>/tenants/<id>/packages/<pkg>/<version>/…     the files of every `ready` version
    <dest>/tenants/<id>/uploads/<pkg>-<version>.zip    the ZIP of every version still `processing`

Databases are copied with SQLite's online backup API (apsw `Connection.backup`), which reads a
consistent snapshot while the server keeps writing; each copy is switched out of WAL mode so it is one
self-contained file. The registry is copied first, then each tenant's database; package files are
copied for what that tenant's snapshot says exists. When the tenant changed under the copy (a package
deleted, or a version that finished processing and dropped its ZIP before the ZIP was copied), the
tenant's snapshot is taken again and only what is missing is copied, so a backup never holds a
version without its files. Versions still processing are processed again after a restore, from their
ZIP. `manifest.json` is written last: a directory without it is not a backup.

All of them refuse when the rows are on PostgreSQL or the package files in an object store
(`require_embedded`): those are backed up by PostgreSQL's own tools and the bucket's own protection.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from appliance import __version__
from appliance.clock import rfc3339
from appliance.services.operations.backup_format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SETTINGS,
    TENANT_JSON,
    BackupError,
    backup_summary,
    copy_hashed,
    empty_dir,
    open_db,
    quick_check,
    require_data_dir,
    sha256_file,
)
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import one, rows

SNAPSHOT_ATTEMPTS = 20  # fresh snapshots of one tenant before giving up on a very busy tenant
BUSY_WAIT_SECONDS = 60.0


@dataclass
class _Collector:
    """The backup directory being filled, and the manifest's file list."""

    root: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add_file(self, src: Path, rel: str) -> bool:
        """Copy one file in; False (and nothing kept) when the source vanished."""
        dest = self.root / rel
        try:
            size, digest = copy_hashed(src, dest)
        except FileNotFoundError:
            if dest.exists() and rel not in self.files:
                dest.unlink()
            return False
        self.files[rel] = {"size": size, "sha256": digest}
        return True

    def add_tree(self, src: Path, rel: str) -> bool:
        """Copy a directory's regular files in; False when the directory is missing or files vanished."""
        if not src.is_dir():
            return False
        complete = True
        for dirpath, _dirnames, filenames in os.walk(src):
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink():
                    continue
                sub = path.relative_to(src).as_posix()
                if not self.add_file(path, f"{rel}/{sub}"):
                    complete = False
        return complete

    def record(self, rel: str) -> None:
        """List a file already written into the backup (a finished database copy)."""
        size, digest = sha256_file(self.root / rel)
        self.files[rel] = {"size": size, "sha256": digest}

    def drop(self, prefix: str) -> None:
        """Forget and delete every file at or under `prefix`."""
        for rel in [r for r in self.files if r == prefix or r.startswith(prefix + "/")]:
            del self.files[rel]
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()
        target = self.root / prefix
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        _prune_empty_dirs(target.parent, self.root)


def _prune_empty_dirs(start: Path, stop: Path) -> None:
    current = start
    while current != stop and current.is_relative_to(stop):
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def online_copy(src: Path, dest: Path) -> None:
    """Copy a live database with SQLite's online backup API into a new single file (no WAL)."""
    if not src.is_file():
        raise FileNotFoundError(src)
    for leftover in (dest, dest.with_name(dest.name + "-wal"), dest.with_name(dest.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = open_db(src)
    target = apsw.Connection(str(dest))
    try:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            try:
                with target.backup("main", source, "main") as step:
                    while not step.done:
                        step.step(-1)  # all pages in one step: one read snapshot of the source
                break
            except (apsw.BusyError, apsw.LockedError):
                if time.monotonic() > deadline:
                    raise BackupError(
                        f"{src} stayed locked for {BUSY_WAIT_SECONDS:.0f} s", {"path": str(src)}
                    ) from None
                time.sleep(0.05)
        target.pragma("journal_mode", "delete")
    finally:
        target.close()
        source.close()


def _prepare_dest(dest: Path, data_dir: Path) -> None:
    dest = dest.absolute()
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError("the backup destination must be outside the data directory", {"dest": str(dest)})
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory", {"dest": str(dest)})
    dest.mkdir(parents=True, exist_ok=True)


def _live_package(live: apsw.Connection, package_id: str) -> bool:
    return one(live, "SELECT 1 AS x FROM packages WHERE id = ?", (package_id,)) is not None


def _snapshot_tenant(data: DataDir, tenant_id: str, out: _Collector) -> dict[str, Any]:
    """Copy one tenant's database (online) and the package files its snapshot refers to.

    Retakes the snapshot when the tenant changed under the copy; see the module docstring.
    """
    rel = f"tenants/{tenant_id}"
    src_db = data.tenant_db(tenant_id)
    dest_db = out.root / rel / "tenant.db"
    copied_dirs: set[tuple[str, int]] = set()
    copied_zips: set[tuple[str, int]] = set()
    if not src_db.is_file():
        raise FileNotFoundError(src_db)
    live = open_db(src_db)
    try:
        for _attempt in range(SNAPSHOT_ATTEMPTS):
            online_copy(src_db, dest_db)
            snap = open_db(dest_db)
            try:
                versions = rows(snap, "SELECT package_id, version, status FROM package_versions")
                counts = one(
                    snap,
                    "SELECT (SELECT count(*) FROM packages) AS packages, (SELECT count(*) FROM sessions) AS sessions",
                )
            finally:
                snap.close()
            ready = {(v["package_id"], v["version"]) for v in versions if v["status"] == "ready"}
            processing = {(v["package_id"], v["version"]) for v in versions if v["status"] == "processing"}
            stale = False
            for pkg, ver in sorted(ready - copied_dirs):
                vrel = f"{rel}/packages/{pkg}/{ver}"
                complete = out.add_tree(data.version_dir(tenant_id, pkg, ver), vrel)
                if _live_package(live, pkg) and complete:
                    copied_dirs.add((pkg, ver))
                elif _live_package(live, pkg):
                    out.warnings.append(
                        f"tenant {tenant_id}: package {pkg} version {ver} is ready but its files are missing "
                        "from the data directory (run `scorm-appliance doctor`)"
                    )
                    copied_dirs.add((pkg, ver))
                else:  # deleted while we copied: take a new snapshot without it
                    out.drop(vrel)
                    stale = True
            for pkg, ver in sorted(processing - copied_zips):
                zrel = f"{rel}/uploads/{pkg}-{ver}.zip"
                if out.add_file(data.uploads_dir(tenant_id) / f"{pkg}-{ver}.zip", zrel):
                    copied_zips.add((pkg, ver))
                else:  # processed (or deleted) since the snapshot: a new snapshot shows its outcome
                    stale = True
            if not stale:
                break
        else:
            raise BackupError(
                f"tenant {tenant_id} kept changing during {SNAPSHOT_ATTEMPTS} snapshots; try again",
                {"tenant_id": tenant_id},
            )
    finally:
        live.close()
    for pkg, ver in copied_dirs - ready:
        out.drop(f"{rel}/packages/{pkg}/{ver}")
    for pkg, ver in copied_zips - processing:
        out.drop(f"{rel}/uploads/{pkg}-{ver}.zip")
    check = quick_check(dest_db)
    if check != "ok":
        raise BackupError(f"the copy of tenant {tenant_id}'s database fails its check: {check}")
    out.record(f"{rel}/tenant.db")
    return {
        "id": tenant_id,
        "packages": counts["packages"] if counts else 0,
        "ready_versions": len(ready),
        "processing_versions": len(processing),
        "sessions": counts["sessions"] if counts else 0,
    }


def _write_manifest(out: _Collector, kind: str, data_dir: Path, extra: dict[str, Any]) -> dict[str, Any]:
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created_at": rfc3339(time.time()),
        "appliance_version": __version__,
        "source_data_dir": str(data_dir.absolute()),
        **extra,
        "warnings": out.warnings,
        "files": dict(sorted(out.files.items())),
    }
    tmp = out.root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    os.replace(tmp, out.root / MANIFEST)
    return manifest


def backup(data_dir: Path, dest: Path) -> dict[str, Any]:
    """Take a full online backup of `data_dir` into `dest` (new or empty); returns a summary."""
    data = require_data_dir(data_dir)
    _prepare_dest(dest, data_dir)
    out = _Collector(dest)
    try:
        online_copy(data.registry_db, dest / "registry.db")
        snap = open_db(dest / "registry.db", readonly=False)
        try:
            tenant_rows = rows(snap, "SELECT id, name FROM tenants ORDER BY created_at, id")
            tenants = []
            for tenant in tenant_rows:
                try:
                    info = _snapshot_tenant(data, tenant["id"], out)
                except FileNotFoundError:
                    info = None
                if not _tenant_exists(data, tenant["id"]):
                    # deleted while the backup ran: leave it out, as if deleted before
                    out.drop(f"tenants/{tenant['id']}")
                    with snap:
                        snap.execute("DELETE FROM jobs WHERE tenant_id = ?", (tenant["id"],))
                        snap.execute("DELETE FROM api_keys WHERE tenant_id = ?", (tenant["id"],))
                        snap.execute("DELETE FROM tenants WHERE id = ?", (tenant["id"],))
                    continue
                if info is None:
                    out.warnings.append(
                        f"tenant {tenant['id']} has no database file; it is backed up without one "
                        "(run `scorm-appliance doctor`)"
                    )
                    info = {"id": tenant["id"], "packages": 0, "ready_versions": 0, "processing_versions": 0}
                tenants.append({**info, "name": tenant["name"]})
            snap.pragma("journal_mode", "delete")
        finally:
            snap.close()
        check = quick_check(dest / "registry.db")
        if check != "ok":
            raise BackupError(f"the copy of the registry fails its check: {check}")
        out.record("registry.db")
        settings = data_dir / SETTINGS
        if settings.is_file():
            out.add_file(settings, SETTINGS)
        manifest = _write_manifest(out, "full", data_dir, {"tenants": tenants})
    except BaseException:
        empty_dir(dest)
        raise
    return backup_summary(dest, manifest)


def _tenant_exists(data: DataDir, tenant_id: str) -> bool:
    live = open_db(data.registry_db)
    try:
        return one(live, "SELECT 1 AS x FROM tenants WHERE id = ?", (tenant_id,)) is not None
    finally:
        live.close()


def export_tenant(data_dir: Path, tenant_ref: str, dest: Path) -> dict[str, Any]:
    """Export one tenant (by id or name) online into `dest` (new or empty), for `import_tenant`."""
    data = require_data_dir(data_dir)
    live = open_db(data.registry_db)
    try:
        with live:
            tenant = one(live, "SELECT * FROM tenants WHERE id = ? OR name = ?", (tenant_ref, tenant_ref))
            keys = rows(live, "SELECT * FROM api_keys WHERE tenant_id = ?", (tenant["id"],)) if tenant else []
    finally:
        live.close()
    if tenant is None:
        raise BackupError(f"no tenant {tenant_ref!r}", {"tenant": tenant_ref})
    _prepare_dest(dest, data_dir)
    out = _Collector(dest)
    try:
        try:
            info = _snapshot_tenant(data, tenant["id"], out)
        except FileNotFoundError:
            info = None
        if info is None or not _tenant_exists(data, tenant["id"]):
            raise BackupError(f"tenant {tenant['id']} was deleted during the export")
        (dest / TENANT_JSON).write_text(
            json.dumps({"tenant": tenant, "api_keys": keys}, indent=2) + "\n",
            "utf-8",
        )
        out.record(TENANT_JSON)
        manifest = _write_manifest(out, "tenant", data_dir, {"tenants": [{**info, "name": tenant["name"]}]})
    except BaseException:
        empty_dir(dest)
        raise
    return backup_summary(dest, manifest)
