"""Processing a received version (the `package.process` job), and validating an upload without keeping it.

The job extracts, parses and validates a version into a scratch folder, publishes it into the file
store as packages/<id>/<version>/ and marks it `ready` or `failed`. Failure at any step removes the files that step made, and a version never stays
`processing` once its job has given up.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import apsw
import msgspec

from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.ids import new_secret
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.delivery.events import emit
from appliance.services.library.archive import sync_dir
from appliance.services.library.package_analysis import Analysis, PackageRejected, analyse
from appliance.services.library.package_files import (
    delete_version_files,
    find_received_upload,
    is_local,
    upload_path,
    upload_store_path,
    version_folder,
)
from appliance.services.library.package_records import json_text, launch_tree, tenant_storage_limit, version_row
from appliance.services.library.upload import StagedUpload
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.quotas import check_free_space, check_storage
from appliance.services.tenancy.tenants import Tenant
from appliance.services.tenancy.usage import stored_bytes
from appliance.storage.files.base import FileMissing
from appliance.storage.files.fetch import fetch_to
from appliance.storage.files.publish import publish_folder
from appliance.storage.sqlite.connection import rows
from appliance.storage.sqlite.database import Database

PROCESS_JOB = "package.process"


def process_version(inst: Instance, job: jobs.Job) -> None:
    """The `package.process` job: extract, parse and validate one version, then mark it ready or failed.

    The ZIP is read from a local file: on the data directory where the upload put it, from an object
    store fetched into tmp/ first (checked against the SHA-256 recorded at upload). The checked files
    are then published into the store as the version's folder, all or none, before the version is
    marked ready: a ready version always has all its files.
    """
    tenant_id, package_id, version = job.payload["tenant_id"], job.payload["package_id"], int(job.payload["version"])
    if not inst.has_tenant_db(tenant_id):
        return  # the tenant was deleted
    upload = upload_of(job.payload)
    db = inst.tenant_db(tenant_id)
    row = db.read_sync(lambda c: version_row(c, package_id, version))
    if row is None or row["status"] != "processing":
        # Deleted, or finished by an earlier attempt that died before removing its ZIP.
        inst.files.delete(tenant_id, upload)
        return
    folder = version_folder(package_id, version)
    work_dir = inst.data.tmp / f"extract-{package_id}-{version}-{new_secret(6)}"
    inst.files.delete_folder(tenant_id, folder)  # a crash after the publish of an earlier attempt
    try:
        zip_path, fetched = _zip_on_disk(inst, tenant_id, upload, row)
    except FileMissing:
        _mark_failed(
            inst, tenant_id, package_id, version, "INTERNAL_ERROR", "the uploaded file is missing", {}, upload=upload
        )
        return
    room = _quota_room(inst, tenant_id, db, package_id, version)
    try:
        analysis = analyse(zip_path, work_dir, inst.config, quota_bytes=room.remaining if room else None)
    except PackageRejected as exc:
        details = room.refusal(exc.details) if room and exc.code == "QUOTA_EXCEEDED" else exc.details
        _mark_failed(inst, tenant_id, package_id, version, exc.code, exc.message, details, upload=upload)
        return
    finally:
        if fetched:
            zip_path.unlink(missing_ok=True)
    try:
        publish_folder(inst.files, tenant_id, folder, work_dir, synced=True)
        if is_local(inst):
            _sync_version_dirs(inst, tenant_id, package_id)
        _mark_ready(inst, tenant_id, package_id, version, analysis)
    except PackageRejected as exc:
        delete_version_files(inst, tenant_id, package_id, version)
        _mark_failed(inst, tenant_id, package_id, version, exc.code, exc.message, exc.details, upload=upload)
        return
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        inst.files.delete_folder(tenant_id, folder)
        raise
    inst.files.delete(tenant_id, upload)


def upload_of(payload: dict[str, Any]) -> str:
    """The store path of a job's upload: named by its payload when the upload streamed into an object
    store, else where the data directory keeps it (`package_files`)."""
    named = payload.get("upload")
    if isinstance(named, str) and named.startswith("uploads/"):
        return named
    return upload_store_path(payload["package_id"], int(payload["version"]))


def _zip_on_disk(inst: Instance, tenant_id: str, upload: str, row: dict[str, Any]) -> tuple[Path, bool]:
    """A local file of the upload, and whether it is a fetched copy (the caller's to delete);
    FileMissing when the store has no such upload."""
    if is_local(inst):
        zip_path = upload_path(inst, tenant_id, row["package_id"], row["version"])
        if not zip_path.is_file():
            raise FileMissing("the uploaded file is missing")
        return zip_path, False
    size = inst.files.stat(tenant_id, upload).size
    check_free_space(inst.data.tmp, inst.config.min_free_disk_bytes, size)  # retried later, as any job error
    dest = inst.data.tmp / f"fetch-{new_secret(8)}.zip"
    fetch_to(inst.files, tenant_id, upload, dest, expected_sha256=row["upload_sha256"])
    return dest, True


class QuotaRoom(msgspec.Struct, frozen=True):
    """Where a tenant stands against its quota while one upload is extracted."""

    used_bytes: int  # stored, not counting the ZIP being extracted (it is deleted once extracted)
    limit_bytes: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit_bytes - self.used_bytes)

    def refusal(self, details: dict[str, Any]) -> dict[str, Any]:
        """The contract's QUOTA_EXCEEDED details for an extraction stopped at the quota."""
        requested = details.get("requested_bytes", 0)
        return {"used_bytes": self.used_bytes, "limit_bytes": self.limit_bytes, "requested_bytes": requested}


def _quota_room(
    inst: Instance, tenant_id: str, db: Database, package_id: str | None = None, version: int | None = None
) -> QuotaRoom | None:
    """The tenant's room for extracted files (None: no quota). The version's own ZIP is not counted:
    `_mark_ready` frees it in the same transaction that counts the extracted files."""
    limit = tenant_storage_limit(inst, tenant_id)
    if limit is None:
        return None

    def read(conn: apsw.Connection) -> int:
        used = sum(stored_bytes(conn))
        row = version_row(conn, package_id, version) if package_id is not None and version is not None else None
        return used - (row["upload_bytes"] if row else 0)

    return QuotaRoom(used_bytes=db.read_sync(read), limit_bytes=limit)


def _sync_version_dirs(inst: Instance, tenant_id: str, package_id: str) -> None:
    """fsync the folders above a version just renamed into place (the package's, which may be new, and
    the ones holding it): with the files the extraction synced, the version is on disk before `ready`."""
    package_dir = inst.data.package_dir(tenant_id, package_id)
    for folder in (package_dir, package_dir.parent, package_dir.parent.parent):
        sync_dir(folder)


def give_up_processing(inst: Instance, job: jobs.Job, error: str) -> None:
    """After the last retry: the version fails rather than staying `processing` forever."""
    payload = job.payload
    if inst.has_tenant_db(payload["tenant_id"]):
        _mark_failed(
            inst,
            payload["tenant_id"],
            payload["package_id"],
            int(payload["version"]),
            "INTERNAL_ERROR",
            "processing failed repeatedly; the appliance log has details",
            {"attempts": job.attempts},
            upload=upload_of(payload),
        )


def _mark_ready(inst: Instance, tenant_id: str, package_id: str, version: int, analysis: Analysis) -> None:
    now = inst.clock.now()
    manifest, report, course = analysis.manifest, analysis.report, analysis.course
    launch = launch_tree(manifest) if manifest is not None else None
    scorm_version = manifest.scorm_version if manifest is not None else None
    title = analysis.title
    tenant_limit = tenant_storage_limit(inst, tenant_id)

    def update(conn: apsw.Connection) -> None:
        row = version_row(conn, package_id, version)
        if row is None or row["status"] != "processing":
            raise PackageRejected("INTERNAL_ERROR", "the version was deleted while processing")
        used = sum(stored_bytes(conn)) - row["upload_bytes"]
        try:
            check_storage(used, tenant_limit, analysis.extracted.total_bytes)
        except Exception as exc:
            raise PackageRejected(
                "QUOTA_EXCEEDED", "the extracted package does not fit the storage quota", getattr(exc, "details", {})
            ) from exc
        conn.execute(
            "UPDATE package_versions SET status = 'ready', error = NULL, scorm_version = ?, title = coalesce(title, ?), "
            "warnings = ?, capabilities = ?, manifest = ?, launch = ?, upload_bytes = 0, size_bytes = ?, file_count = ?, "
            "item_count = ?, sco_count = ?, updated_at = ?, processed_at = ?, standard = ?, course = ? "
            "WHERE package_id = ? AND version = ?",
            (
                scorm_version,
                title,
                json_text(report.warnings),
                json_text(report.capabilities),
                msgspec.json.encode(manifest).decode() if manifest is not None else None,
                json_text(launch) if launch is not None else None,
                analysis.extracted.total_bytes,
                analysis.extracted.file_count,
                report.item_count,
                report.sco_count,
                now,
                now,
                analysis.standard,
                cmi5_packaging.encode(course) if course is not None else None,
                package_id,
                version,
            ),
        )
        conn.execute(
            "UPDATE packages SET active_version = CASE WHEN active_pinned THEN active_version "
            "ELSE max(coalesce(active_version, 0), ?) END, title = coalesce(title, ?), updated_at = ? WHERE id = ?",
            (version, title, now, package_id),
        )
        quota_events.settle(conn, tenant_limit, now)
        event = {"package_id": package_id, "version": version, "scorm_version": scorm_version, "title": title}
        if course is not None:
            event["standard"] = cmi5_packaging.STANDARD
        emit(
            conn,
            "package.ready",
            event,
            now=now,
            subject_id=package_id,
        )

    inst.tenant_db(tenant_id).write_sync(update, durable=True)


def _mark_failed(
    inst: Instance,
    tenant_id: str,
    package_id: str,
    version: int,
    code: str,
    message: str,
    details: dict[str, Any],
    *,
    upload: str | None = None,
) -> None:
    """Mark the version failed (if still processing) and remove its files and its upload.

    A version already `ready` keeps its files: the job's last attempt can be given up after it marked
    the version ready (its worker lost before the job was recorded done)."""
    now = inst.clock.now()
    error = {"code": code, "message": message, "details": details}

    def update(conn: apsw.Connection) -> bool:
        row = version_row(conn, package_id, version)
        if row is None or row["status"] != "processing":
            return row is None or row["status"] != "ready"
        conn.execute(
            "UPDATE package_versions SET status = 'failed', error = ?, upload_bytes = 0, size_bytes = 0, "
            "updated_at = ?, processed_at = ? WHERE package_id = ? AND version = ?",
            (json_text(error), now, now, package_id, version),
        )
        conn.execute("UPDATE packages SET updated_at = ? WHERE id = ?", (now, package_id))
        if code == "QUOTA_EXCEEDED":
            quota_events.refused(conn, details, now)
        emit(
            conn,
            "package.failed",
            {"package_id": package_id, "version": version, "error": error},
            now=now,
            subject_id=package_id,
        )
        return True

    if inst.tenant_db(tenant_id).write_sync(update, durable=True):
        delete_version_files(inst, tenant_id, package_id, version)
    inst.files.delete(tenant_id, upload or upload_store_path(package_id, version))


def recover_processing(inst: Instance) -> int:
    """Periodic sweep: enqueue a job for every `processing` version that has none; returns how many."""
    pending = jobs.pending_keys(inst.registry, PROCESS_JOB)
    tenant_ids = [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]
    now = inst.clock.now()
    count = 0
    for tenant_id in tenant_ids:
        stuck = inst.tenant_db(tenant_id).read_sync(
            lambda c: rows(
                c,
                "SELECT package_id, version, upload_bytes, upload_sha256 FROM package_versions "
                "WHERE status = 'processing'",
            )
        )
        for row in stuck:
            key = f"{tenant_id}/{row['package_id']}/{row['version']}"
            if key in pending:
                continue
            payload = {"tenant_id": tenant_id, "package_id": row["package_id"], "version": row["version"], "key": key}
            if not is_local(inst):  # no payload named its key: found by what the version recorded of it
                found = find_received_upload(inst, tenant_id, row["upload_bytes"], row["upload_sha256"])
                if found is not None:
                    payload["upload"] = found
            inst.registry.write_sync(
                lambda c, p=payload, t=tenant_id: jobs.enqueue(
                    c,
                    PROCESS_JOB,
                    p,
                    now=now,
                    tenant_id=t,
                    max_attempts=inst.config.job_max_attempts,
                    unique=True,  # the upload that made this version may be enqueueing right now
                )
            )
            count += 1
    return count


def validate_staged(inst: Instance, staged: StagedUpload, tenant: Tenant | None = None) -> dict[str, Any]:
    """Run every processing check on an upload, keep nothing, and report (POST /packages/validate).

    The files are extracted to tmp/ for the check: `tenant`'s remaining quota bounds them as it bounds
    a real upload's, so validating cannot write more than the tenant may store either."""
    work_dir = inst.data.tmp / f"validate-{new_secret(8)}"
    room = None
    fetched: Path | None = None
    try:
        room = _quota_room(inst, tenant.id, inst.tenant_db(tenant.id)) if tenant is not None else None
        quota = room.remaining if room else None
        source = staged.path
        if staged.stored is not None:  # received into an object store: brought here for the check
            fetched = inst.data.tmp / f"validate-{new_secret(8)}.zip"
            stored = staged.stored
            fetch_to(stored.store, stored.tenant_id, stored.path, fetched, expected_sha256=staged.sha256)
            source = fetched
        assert source is not None
        analysis = analyse(source, work_dir, inst.config, quota_bytes=quota, durable=False)
    except PackageRejected as exc:
        error = exc.as_error()
        if room is not None and exc.code == "QUOTA_EXCEEDED":
            error["details"] = room.refusal(exc.details)
        return {"valid": False, "error": error, "warnings": [], "scorm_version": None}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        if fetched is not None:
            fetched.unlink(missing_ok=True)
        staged.discard()
    report = analysis.report
    cmi5 = (
        {"standard": cmi5_packaging.STANDARD, "course": cmi5_packaging.course_json(analysis.course)}
        if analysis.course is not None
        else {}
    )
    return {
        "valid": True,
        "error": None,
        "scorm_version": analysis.manifest.scorm_version if analysis.manifest is not None else None,
        **cmi5,
        "title": analysis.title,
        "warnings": msgspec.to_builtins(report.warnings),
        "capabilities": msgspec.to_builtins(report.capabilities),
        "size_bytes": analysis.extracted.total_bytes,
        "file_count": analysis.extracted.file_count,
        "item_count": report.item_count,
        "sco_count": report.sco_count,
        "launch": launch_tree(analysis.manifest) if analysis.manifest is not None else None,
    }
