"""Online backup and restore of a data directory, and moving one tenant between appliances.

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

A restore goes only into an empty data directory and checks every file's checksum as it copies; on a
mismatch it removes what it copied. A tenant import copies the tenant's folder into place first and
then adds its registry rows in one transaction, so a running server sees the tenant all at once.

All four refuse when the package files are in an object store (`files = "s3://…"`, `require_local_files`):
the bucket is backed up by the store itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

from appliance import __version__
from appliance.clock import rfc3339
from appliance.errors import ApplianceError
from appliance.ids import new_secret
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import BUSY_TIMEOUT_MS, one, rows
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations

FORMAT = "scorm-appliance-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TENANT_JSON = "tenant.json"
SETTINGS = "settings.toml"
CHUNK = 1024 * 1024
SNAPSHOT_ATTEMPTS = 20  # fresh snapshots of one tenant before giving up on a very busy tenant
BUSY_WAIT_SECONDS = 60.0
KNOWN_MIGRATIONS = {
    registry_migrations.name: {name for name, _ in registry_migrations.steps},
    tenant_migrations.name: {name for name, _ in tenant_migrations.steps},
}
PROCESS_JOB = "package.process"  # appliance.services.library.packages.PROCESS_JOB (not imported: it pulls in the app)


class BackupError(ApplianceError):
    """A backup, restore, export or import that cannot be done; nothing half-done is left behind."""

    code = "BACKUP_ERROR"


# -- files and hashes ------------------------------------------------------------------------------


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy_hashed(src: Path, dest: Path) -> tuple[int, str]:
    """Copy src to dest (a new file) and return (size, SHA-256) of what was written."""
    digest = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dest.open("xb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    with contextlib.suppress(OSError):
        shutil.copystat(src, dest)
    return size, digest.hexdigest()


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
            size, digest = _copy_hashed(src, dest)
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


# -- SQLite ----------------------------------------------------------------------------------------


def open_db(path: Path, *, readonly: bool = True) -> apsw.Connection:
    """Open an existing database file (never create one) with the appliance's busy timeout."""
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    if not readonly:
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


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


def _quick_check(path: Path) -> str:
    conn = open_db(path)
    try:
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
    finally:
        conn.close()
    return "ok" if result == ["ok"] else "; ".join(str(r) for r in result[:5])


def _applied_migrations(path: Path) -> set[tuple[str, str]]:
    conn = open_db(path)
    try:
        return {(str(s), str(n)) for s, n in conn.execute("SELECT migration_set, name FROM _migrations")}
    finally:
        conn.close()


# -- taking a backup -------------------------------------------------------------------------------


def _prepare_dest(dest: Path, data_dir: Path) -> None:
    dest = dest.absolute()
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError("the backup destination must be outside the data directory", {"dest": str(dest)})
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory", {"dest": str(dest)})
    dest.mkdir(parents=True, exist_ok=True)


def require_local_files(data_dir: Path, files: str | None = None) -> None:
    """Refuse (BackupError) when the package files are not in the data directory.

    A backup copies a data directory's files; with `files = "s3://…"` the package files and uploads
    are objects in a bucket, which the bucket's own versioning or replication protects (docs/backup.md,
    "Files in an object store"). A backup of the databases alone would restore versions without files,
    so none is taken. `files` is the setting when the caller has it, else it is read as `load_config`
    reads it (the data directory's settings file, then the environment).
    """
    if files is None:
        from appliance.config import load_config  # the settings of that data directory, not the caller's

        files = load_config({"data_dir": str(data_dir)}).files
    if files != "local":
        raise BackupError(
            "the package files are in an object store (the `files` setting is not 'local'): backup, restore "
            "and tenant export/import copy a data directory's files only; protect the bucket with its own "
            "versioning or replication (docs/backup.md)",
            {"files": files.split("?", 1)[0]},
        )


def _require_data_dir(data_dir: Path) -> DataDir:
    require_local_files(data_dir)
    data = DataDir(data_dir)
    if not data.registry_db.is_file():
        raise BackupError(f"{data_dir} holds no appliance data (no registry.db)", {"data_dir": str(data_dir)})
    return data


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
    check = _quick_check(dest_db)
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


def _summary(dest: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    files = manifest["files"]
    return {
        "path": str(dest.absolute()),
        "kind": manifest["kind"],
        "created_at": manifest["created_at"],
        "appliance_version": manifest["appliance_version"],
        "tenants": manifest.get("tenants", []),
        "databases": sum(1 for rel in files if rel.endswith(".db")),
        "files": len(files),
        "bytes": sum(f["size"] for f in files.values()),
        "warnings": manifest.get("warnings", []),
    }


def backup(data_dir: Path, dest: Path) -> dict[str, Any]:
    """Take a full online backup of `data_dir` into `dest` (new or empty); returns a summary."""
    data = _require_data_dir(data_dir)
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
        check = _quick_check(dest / "registry.db")
        if check != "ok":
            raise BackupError(f"the copy of the registry fails its check: {check}")
        out.record("registry.db")
        settings = data_dir / SETTINGS
        if settings.is_file():
            out.add_file(settings, SETTINGS)
        manifest = _write_manifest(out, "full", data_dir, {"tenants": tenants})
    except BaseException:
        _empty_dir(dest)
        raise
    return _summary(dest, manifest)


def _tenant_exists(data: DataDir, tenant_id: str) -> bool:
    live = open_db(data.registry_db)
    try:
        return one(live, "SELECT 1 AS x FROM tenants WHERE id = ?", (tenant_id,)) is not None
    finally:
        live.close()


def export_tenant(data_dir: Path, tenant_ref: str, dest: Path) -> dict[str, Any]:
    """Export one tenant (by id or name) online into `dest` (new or empty), for `import_tenant`."""
    data = _require_data_dir(data_dir)
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
        _empty_dir(dest)
        raise
    return _summary(dest, manifest)


def _empty_dir(path: Path) -> None:
    """Remove everything inside `path` (which we created or found empty)."""
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()


# -- reading and checking a backup -----------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    """The backup's manifest, or BackupError when `src` is not a (complete) backup."""
    path = src / MANIFEST
    if not path.is_file():
        raise BackupError(f"{src} is not a complete backup (no {MANIFEST})", {"src": str(src)})
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}", {"src": str(src)}) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a scorm-appliance backup manifest", {"src": str(src)})
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise BackupError(
            f"the backup was made by a newer appliance ({manifest.get('appliance_version')}); upgrade this one first",
            {"format_version": manifest.get("format_version")},
        )
    for rel in manifest.get("files", {}):
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            raise BackupError(f"the manifest lists an unsafe path {rel!r}", {"path": rel})
    return manifest


def _files(manifest: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for rel, meta in manifest["files"].items():
        if not prefix or rel == prefix or rel.startswith(prefix + "/"):
            yield rel, meta


def _check_present(src: Path, manifest: dict[str, Any]) -> None:
    problems = []
    for rel, meta in _files(manifest):
        path = src / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel}: {path.stat().st_size} bytes, the manifest says {meta['size']}")
    if problems:
        raise BackupError(
            f"the backup in {src} is damaged: {len(problems)} file(s) missing or changed", {"problems": problems[:20]}
        )


def _check_databases(src: Path, manifest: dict[str, Any]) -> None:
    """Every database opens, passes quick_check and has no migration this version does not know."""
    for rel, _meta in _files(manifest):
        if not rel.endswith(".db"):
            continue
        try:
            check = _quick_check(src / rel)
            applied = _applied_migrations(src / rel)
        except apsw.Error as exc:
            raise BackupError(f"{rel} in the backup cannot be read: {exc}", {"path": rel}) from exc
        if check != "ok":
            raise BackupError(f"{rel} in the backup fails its integrity check: {check}", {"path": rel})
        unknown = sorted(f"{s}/{n}" for s, n in applied if n not in KNOWN_MIGRATIONS.get(s, set()))
        if unknown:
            raise BackupError(
                f"{rel} was written by a newer appliance ({manifest.get('appliance_version')}, schema "
                f"{', '.join(unknown)}); upgrade this appliance ({__version__}) first",
                {"path": rel, "unknown_migrations": unknown},
            )


def verify_backup(src: Path) -> dict[str, Any]:
    """Check a backup completely (every checksum, every database) without restoring; returns its summary."""
    manifest = read_manifest(src)
    _check_present(src, manifest)
    bad = []
    for rel, meta in _files(manifest):
        if sha256_file(src / rel)[1] != meta["sha256"]:
            bad.append(rel)
    if bad:
        raise BackupError(f"{len(bad)} file(s) in {src} do not match their checksums", {"files": bad[:20]})
    _check_databases(src, manifest)
    return _summary(src, manifest)


def _copy_verified(src: Path, manifest: dict[str, Any], prefix: str, dest: Path) -> int:
    """Copy the manifest's files under `prefix` from src to dest (prefix stripped), checking each SHA-256."""
    count = 0
    for rel, meta in _files(manifest, prefix):
        sub = rel[len(prefix) + 1 :] if prefix else rel
        size, digest = _copy_hashed(src / rel, dest / sub)
        if (size, digest) != (meta["size"], meta["sha256"]):
            raise BackupError(
                f"{rel} does not match its checksum in the manifest: the backup is damaged",
                {"path": rel, "expected": meta["sha256"], "found": digest},
            )
        count += 1
    return count


# -- restore ---------------------------------------------------------------------------------------


def _is_empty_tree(path: Path) -> bool:
    return not any(p.is_file() or p.is_symlink() for p in path.rglob("*"))


def restore(src: Path, data_dir: Path) -> dict[str, Any]:
    """Restore a full backup into `data_dir`, which must not exist or hold no files."""
    require_local_files(data_dir)
    manifest = read_manifest(src)
    if manifest["kind"] != "full":
        raise BackupError(
            f"{src} is a {manifest['kind']} export, not a full backup: use `scorm-appliance tenants import`",
            {"kind": manifest["kind"]},
        )
    if data_dir.exists() and (not data_dir.is_dir() or not _is_empty_tree(data_dir)):
        raise BackupError(
            f"{data_dir} is not empty: restore only into a new or empty data directory",
            {"data_dir": str(data_dir)},
        )
    _check_present(src, manifest)
    _check_databases(src, manifest)
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        count = _copy_verified(src, manifest, "", data_dir)
        data = DataDir(data_dir)
        data.tenants.mkdir(exist_ok=True)
        data.tmp.mkdir(exist_ok=True)
    except BaseException:
        if created:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            _empty_dir(data_dir)
        raise
    summary = _summary(src, manifest)
    return {**summary, "path": str(data_dir.absolute()), "source": str(src.absolute()), "files": count}


# -- tenant import ---------------------------------------------------------------------------------


def _columns(conn: apsw.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _insert(conn: apsw.Connection, table: str, row: dict[str, Any]) -> None:
    known = _columns(conn, table)
    cols = [c for c in row if c in known]
    conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        tuple(row[c] for c in cols),
    )


def import_tenant(inst: Instance, src: Path, name: str | None = None) -> dict[str, Any]:
    """Import a tenant export into this appliance (which may be running); optionally under a new name."""
    require_local_files(Path(inst.config.data_dir), inst.config.files)
    manifest = read_manifest(src)
    if manifest["kind"] != "tenant":
        raise BackupError(f"{src} is a full backup, not a tenant export: use `scorm-appliance restore`")
    _check_present(src, manifest)
    meta = manifest["files"].get(TENANT_JSON)
    if meta is None or sha256_file(src / TENANT_JSON)[1] != meta["sha256"]:
        raise BackupError(f"{TENANT_JSON} in {src} is missing or does not match its checksum")
    info = json.loads((src / TENANT_JSON).read_text("utf-8"))
    tenant, keys = dict(info["tenant"]), [dict(k) for k in info["api_keys"]]
    tenant_id = str(tenant["id"])
    tenant["name"] = (name or tenant["name"]).strip()
    if not tenant["name"]:
        raise BackupError("the tenant name must not be empty")
    _check_databases(src, manifest)

    def conflicts(conn: apsw.Connection) -> None:
        if one(conn, "SELECT 1 AS x FROM tenants WHERE id = ?", (tenant_id,)):
            raise BackupError(f"tenant {tenant_id} exists already on this appliance", {"tenant_id": tenant_id})
        taken = [k["id"] for k in keys if one(conn, "SELECT 1 AS x FROM api_keys WHERE id = ?", (k["id"],))]
        if taken:
            raise BackupError(f"API key {taken[0]} exists already on this appliance", {"key_ids": taken})
        if one(conn, "SELECT 1 AS x FROM tenants WHERE name = ?", (tenant["name"],)):
            raise BackupError(
                f"a tenant named {tenant['name']!r} exists already: import with --name NEW_NAME",
                {"name": tenant["name"]},
            )

    inst.registry.read_sync(conflicts)
    target = inst.data.tenant_dir(tenant_id)
    if target.exists():
        raise BackupError(
            f"{target} exists but no tenant {tenant_id} is registered: move that folder away first",
            {"path": str(target)},
        )
    staging = inst.data.tenants / f".import-{new_secret(6)}"
    try:
        count = _copy_verified(src, manifest, f"tenants/{tenant_id}", staging)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        conn = open_db(inst.data.tenant_db(tenant_id))
        try:
            processing = rows(conn, "SELECT package_id, version FROM package_versions WHERE status = 'processing'")
        finally:
            conn.close()
        now = inst.clock.now()

        def insert(conn: apsw.Connection) -> None:
            conflicts(conn)
            _insert(conn, "tenants", {**tenant, "updated_at": now})
            for key in keys:
                _insert(conn, "api_keys", key)
            for row in processing:
                key = f"{tenant_id}/{row['package_id']}/{row['version']}"
                payload = {"tenant_id": tenant_id, "package_id": row["package_id"], "version": row["version"]}
                jobs.enqueue(
                    conn,
                    PROCESS_JOB,
                    {**payload, "key": key},
                    now=now,
                    tenant_id=tenant_id,
                    max_attempts=inst.config.job_max_attempts,
                    unique=True,
                )

        inst.registry.write_sync(insert)
    except BaseException:
        inst.forget_tenant(tenant_id)
        shutil.rmtree(target, ignore_errors=True)
        raise
    warnings = list(manifest.get("warnings", []))
    jwt = json.loads(tenant["jwt_config"]) if tenant.get("jwt_config") else None
    if jwt and jwt.get("jwks_file"):
        warnings.append(
            f"the tenant verifies JWTs against {jwt['jwks_file']} on the old machine: copy that file here "
            "or run `scorm-appliance tenants set-jwt` again"
        )
    summary = _summary(src, manifest)
    return {
        **summary,
        "path": str(target),
        "source": str(src.absolute()),
        "tenant": {"id": tenant_id, "name": tenant["name"]},
        "api_keys": len(keys),
        "requeued_versions": len(processing),
        "files": count,
        "warnings": warnings,
    }
