"""A backup's format, shared by making and restoring one: the manifest of every file with its size and
SHA-256, reading and verifying it, the databases' checks, and the refusal of an object store.

The layout is described in appliance.services.operations.backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw

from appliance import __version__
from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import BUSY_TIMEOUT_MS
from appliance.storage.sqlite.registry_schema import registry_migrations
from appliance.storage.sqlite.tenant_schema import tenant_migrations

FORMAT = "scorm-appliance-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TENANT_JSON = "tenant.json"
SETTINGS = "settings.toml"
CHUNK = 1024 * 1024
KNOWN_MIGRATIONS = {
    registry_migrations.name: {name for name, _ in registry_migrations.steps},
    tenant_migrations.name: {name for name, _ in tenant_migrations.steps},
}
PROCESS_JOB = "package.process"  # appliance.services.library.packages.PROCESS_JOB (not imported: it pulls in the app)


class BackupError(ApplianceError):
    """A backup, restore, export or import that cannot be done; nothing half-done is left behind."""

    code = "BACKUP_ERROR"


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def copy_hashed(src: Path, dest: Path) -> tuple[int, str]:
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


def open_db(path: Path, *, readonly: bool = True) -> apsw.Connection:
    """Open an existing database file (never create one) with the appliance's busy timeout."""
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    if not readonly:
        conn.execute("PRAGMA foreign_keys=ON")
    return conn


def quick_check(path: Path) -> str:
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


def require_embedded(data_dir: Path, config: Config | None = None) -> None:
    """Refuse (BackupError) when the data directory does not hold the appliance's data itself.

    A backup copies a data directory's SQLite files and package files. With `database = "postgresql://…"`
    the rows are in PostgreSQL, which its own tools back up (base backups and WAL archiving, `pg_dump`:
    docs/backup.md); with `files = "s3://…"` the package files and uploads are objects in a bucket, which
    the bucket's own versioning or replication protects ("Files in an object store"). A backup of the
    databases alone would restore versions without files, so none is taken. `config` is the caller's
    settings when it has them, else they are read as `load_config` reads them (the data directory's
    settings file, then the environment).
    """
    if config is None:
        from appliance.config import load_config  # the settings of that data directory, not the caller's

        config = load_config({"data_dir": str(data_dir)})
    if config.database != "sqlite":
        raise BackupError(
            "the databases are on PostgreSQL (the `database` setting): backup, restore and tenant "
            "export/import copy a data directory's SQLite files only; back up PostgreSQL with its own "
            "tools (docs/backup.md)",
            {"database": "postgresql"},
        )
    if config.files != "local":
        raise BackupError(
            "the package files are in an object store (the `files` setting is not 'local'): backup, restore "
            "and tenant export/import copy a data directory's files only; protect the bucket with its own "
            "versioning or replication (docs/backup.md)",
            {"files": config.files.split("?", 1)[0]},
        )


def require_data_dir(data_dir: Path) -> DataDir:
    require_embedded(data_dir)
    data = DataDir(data_dir)
    if not data.registry_db.is_file():
        raise BackupError(f"{data_dir} holds no appliance data (no registry.db)", {"data_dir": str(data_dir)})
    return data


def backup_summary(dest: Path, manifest: dict[str, Any]) -> dict[str, Any]:
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


def empty_dir(path: Path) -> None:
    """Remove everything inside `path` (which we created or found empty)."""
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()


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


def manifest_files(manifest: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for rel, meta in manifest["files"].items():
        if not prefix or rel == prefix or rel.startswith(prefix + "/"):
            yield rel, meta


def check_present(src: Path, manifest: dict[str, Any]) -> None:
    problems = []
    for rel, meta in manifest_files(manifest):
        path = src / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel}: {path.stat().st_size} bytes, the manifest says {meta['size']}")
    if problems:
        raise BackupError(
            f"the backup in {src} is damaged: {len(problems)} file(s) missing or changed", {"problems": problems[:20]}
        )


def check_databases(src: Path, manifest: dict[str, Any]) -> None:
    """Every database opens, passes quick_check and has no migration this version does not know."""
    for rel, _meta in manifest_files(manifest):
        if not rel.endswith(".db"):
            continue
        try:
            check = quick_check(src / rel)
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
    check_present(src, manifest)
    bad = []
    for rel, meta in manifest_files(manifest):
        if sha256_file(src / rel)[1] != meta["sha256"]:
            bad.append(rel)
    if bad:
        raise BackupError(f"{len(bad)} file(s) in {src} do not match their checksums", {"files": bad[:20]})
    check_databases(src, manifest)
    return backup_summary(src, manifest)
