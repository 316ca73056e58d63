"""Restoring a backup into an empty data directory, and importing one exported tenant into a running appliance.

A restore goes only into an empty data directory and checks every file's checksum as it copies; on a
mismatch it removes what it copied. A tenant import copies the tenant's folder into place first and
then adds its registry rows in one transaction, so a running server sees the tenant all at once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import apsw

from appliance.ids import new_secret
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.operations.backup_format import (
    PROCESS_JOB,
    TENANT_JSON,
    BackupError,
    backup_summary,
    check_databases,
    check_present,
    copy_hashed,
    empty_dir,
    manifest_files,
    open_db,
    read_manifest,
    require_embedded,
    sha256_file,
)
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import one, rows


def _copy_verified(src: Path, manifest: dict[str, Any], prefix: str, dest: Path) -> int:
    """Copy the manifest's files under `prefix` from src to dest (prefix stripped), checking each SHA-256."""
    count = 0
    for rel, meta in manifest_files(manifest, prefix):
        sub = rel[len(prefix) + 1 :] if prefix else rel
        size, digest = copy_hashed(src / rel, dest / sub)
        if (size, digest) != (meta["size"], meta["sha256"]):
            raise BackupError(
                f"{rel} does not match its checksum in the manifest: the backup is damaged",
                {"path": rel, "expected": meta["sha256"], "found": digest},
            )
        count += 1
    return count


def _is_empty_tree(path: Path) -> bool:
    return not any(p.is_file() or p.is_symlink() for p in path.rglob("*"))


def restore(src: Path, data_dir: Path) -> dict[str, Any]:
    """Restore a full backup into `data_dir`, which must not exist or hold no files."""
    require_embedded(data_dir)
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
    check_present(src, manifest)
    check_databases(src, manifest)
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
            empty_dir(data_dir)
        raise
    summary = backup_summary(src, manifest)
    return {**summary, "path": str(data_dir.absolute()), "source": str(src.absolute()), "files": count}


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
    require_embedded(Path(inst.config.data_dir), inst.config)
    manifest = read_manifest(src)
    if manifest["kind"] != "tenant":
        raise BackupError(f"{src} is a full backup, not a tenant export: use `scorm-appliance restore`")
    check_present(src, manifest)
    meta = manifest["files"].get(TENANT_JSON)
    if meta is None or sha256_file(src / TENANT_JSON)[1] != meta["sha256"]:
        raise BackupError(f"{TENANT_JSON} in {src} is missing or does not match its checksum")
    info = json.loads((src / TENANT_JSON).read_text("utf-8"))
    tenant, keys = dict(info["tenant"]), [dict(k) for k in info["api_keys"]]
    tenant_id = str(tenant["id"])
    tenant["name"] = (name or tenant["name"]).strip()
    if not tenant["name"]:
        raise BackupError("the tenant name must not be empty")
    check_databases(src, manifest)

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
    summary = backup_summary(src, manifest)
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
