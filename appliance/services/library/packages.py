"""The package service: upload, versions, processing (as a durable job), reads, updates and deletion.

Life of a version: the upload is streamed to tmp/, checked to be a ZIP (or, declared as XML, a bare
cmi5.xml), moved to the tenant's uploads/ folder and recorded as `processing` together with its job; the job extracts, parses and validates it
into packages/<id>/<version>/ and marks it `ready` or `failed`. Failure at any step removes the files
that step made, and a version never stays `processing` once its job has given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import apsw
import msgspec

from appliance.clock import rfc3339
from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.core.scorm.model import Item, Manifest
from appliance.errors import InvalidPackage, NotFound, PayloadTooLarge, QuotaExceeded, ValidationFailed
from appliance.ids import new_id, new_secret
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.delivery import jobs
from appliance.services.delivery.events import emit
from appliance.services.library.archive import ArchiveError, inspect_archive, sync_dir
from appliance.services.library.package_analysis import (
    Analysis,
    PackageRejected,
    analyse,
    archive_limits,
    declares_xml,
    is_bare_course_structure,
)
from appliance.services.library.upload import StagedUpload, receive_upload
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.quotas import check_free_space, check_storage
from appliance.services.tenancy.tenants import Tenant, check_suspend_data_limit
from appliance.services.tenancy.usage import stored_bytes
from appliance.storage.sqlite.connection import one, rows
from appliance.storage.sqlite.database import Database

PROCESS_JOB = "package.process"
STATUSES = ("processing", "ready", "failed")


# -- upload ----------------------------------------------------------------------------------------


def precheck_upload(inst: Instance, tenant: Tenant, declared_bytes: int | None) -> int:
    """Refuse before reading a byte: over the size limit, or a declared size that breaks the quota.

    Returns the tenant's stored bytes, against which the body is then checked as it streams.
    """
    limit = inst.config.max_upload_bytes
    if declared_bytes is not None and declared_bytes > limit:
        raise PayloadTooLarge(
            "upload exceeds the maximum size", {"limit_bytes": limit, "declared_bytes": declared_bytes}
        )
    check_free_space(inst.data.tmp, inst.config.min_free_disk_bytes, declared_bytes or 0)
    used = sum(inst.tenant_db(tenant.id).read_sync(stored_bytes))
    if declared_bytes is not None:
        check_storage(used, tenant.storage_limit_bytes, declared_bytes)
    return used


async def receive(
    inst: Instance, tenant: Tenant, body: AsyncIterator[bytes], content_type: str, declared: int | None
) -> StagedUpload:
    """Stream an upload to tmp/ and make sure it is a ZIP at all, or a declared XML document (a bare
    cmi5.xml), else 422 INVALID_PACKAGE.

    A body without a declared length is stopped with QUOTA_EXCEEDED as soon as it outgrows the quota,
    rather than after it has all been stored, and with INSUFFICIENT_STORAGE before a batch written to
    tmp/ would take the disk's free space under `min_free_disk_bytes`.
    """
    limit = tenant.storage_limit_bytes
    try:
        used = await asyncio.to_thread(precheck_upload, inst, tenant, declared)  # a DB read: off the event loop

        def check_size(size: int) -> None:
            if limit is not None and used + size > limit:
                check_storage(used, limit, size)

        def check_write(batch: int) -> None:
            check_free_space(inst.data.tmp, inst.config.min_free_disk_bytes, batch)

        staged = await receive_upload(
            body,
            content_type,
            inst.data.tmp,
            inst.config.max_upload_bytes,
            check_size=check_size,
            check_write=check_write,
        )
    except QuotaExceeded as exc:
        await asyncio.to_thread(quota_events.note_refusal, inst, tenant.id, exc.details)
        raise
    try:
        await asyncio.to_thread(check_readable_zip, inst, staged, content_type)
    except BaseException:
        staged.discard()
        raise
    return staged


# Archive failures that mean "no ZIP could be read at all": refused at once. A readable but hostile or
# damaged ZIP is accepted here and fails in processing, where the package reports why.
_UNREADABLE = frozenset({"not_a_zip", "invalid_name_encoding"})


def check_readable_zip(inst: Instance, staged: StagedUpload, content_type: str = "") -> None:
    """422 INVALID_PACKAGE unless the upload's central directory can be read (bounded by the limits).

    An upload declared as XML (`declares_xml`: a raw application/xml or text/xml body, or a *.xml
    file) that is not a ZIP passes when it is an XML document: a bare cmi5.xml, checked by processing.
    An undeclared XML document is still no package (a ZIP is what the route takes by default).
    """
    try:
        inspect_archive(staged.path, archive_limits(inst.config))
    except ArchiveError as exc:
        if exc.details.get("reason") not in _UNREADABLE:
            return
        declared = declares_xml(content_type, staged.filename)
        if declared and is_bare_course_structure(staged.path):
            return
        message = "the upload is not a readable ZIP file"
        if declared:
            message = "the upload is declared as XML but is neither an XML document nor a ZIP file"
        raise InvalidPackage(message, {**exc.details, "received_bytes": staged.size}) from exc


def create_version(
    inst: Instance, tenant: Tenant, staged: StagedUpload, package_id: str | None = None
) -> dict[str, Any]:
    """Record a received upload as a new package (or a new version of one) and queue its processing.

    The quota check and the insert share one transaction, so concurrent uploads cannot both squeeze
    under the limit. On any error the staged file is deleted.
    """
    now = inst.clock.now()
    db = inst.tenant_db(tenant.id)
    new_package = package_id is None
    pkg_id = package_id or new_id("pkg")
    title = (staged.fields.get("title") or "").strip() or None
    uploads = inst.data.uploads_dir(tenant.id)
    uploads.mkdir(parents=True, exist_ok=True)

    def insert(conn: apsw.Connection) -> int:
        check_storage(sum(stored_bytes(conn)), tenant.storage_limit_bytes, staged.size)
        if new_package:
            version = 1
            conn.execute(
                "INSERT INTO packages (id, title, latest_version, created_at, updated_at) VALUES (?, ?, 1, ?, ?)",
                (pkg_id, title, now, now),
            )
        else:
            row = one(conn, "SELECT latest_version FROM packages WHERE id = ?", (pkg_id,))
            if row is None:
                raise NotFound(f"no package {pkg_id!r}", {"package_id": pkg_id})
            version = row["latest_version"] + 1
            conn.execute(
                "UPDATE packages SET latest_version = ?, title = coalesce(?, title), updated_at = ? WHERE id = ?",
                (version, title, now, pkg_id),
            )
        conn.execute(
            "INSERT INTO package_versions (package_id, version, status, title, upload_bytes, upload_sha256, "
            "original_filename, created_at, updated_at) VALUES (?, ?, 'processing', ?, ?, ?, ?, ?, ?)",
            (pkg_id, version, title, staged.size, staged.sha256, staged.filename, now, now),
        )
        os.replace(staged.path, upload_path(inst, tenant.id, pkg_id, version))
        sync_dir(uploads)  # the ZIP's new name is on disk before the version that needs it commits
        quota_events.settle(conn, tenant.storage_limit_bytes, now, clear_refusal=True)
        return version

    try:
        version = db.write_sync(insert, durable=True)
    except QuotaExceeded as exc:
        staged.discard()
        quota_events.note_refusal(inst, tenant.id, exc.details)
        raise
    except BaseException:
        staged.discard()
        raise
    # The job is enqueued after the version commits; if the process dies in between, the recovery
    # sweep finds the version `processing` with no job and enqueues one.
    inst.registry.write_sync(
        lambda c: jobs.enqueue(
            c,
            PROCESS_JOB,
            {
                "tenant_id": tenant.id,
                "package_id": pkg_id,
                "version": version,
                "key": f"{tenant.id}/{pkg_id}/{version}",
            },
            now=now,
            tenant_id=tenant.id,
            max_attempts=inst.config.job_max_attempts,
            unique=True,
        )
    )
    return get_package(inst, tenant, pkg_id)


def upload_path(inst: Instance, tenant_id: str, package_id: str, version: int) -> Path:
    """Where a received ZIP (or bare cmi5.xml: the job tells them apart by content) waits for its job."""
    return inst.data.uploads_dir(tenant_id) / f"{package_id}-{version}.zip"


# -- processing (job handler) ----------------------------------------------------------------------


def process_version(inst: Instance, job: jobs.Job) -> None:
    """The `package.process` job: extract, parse and validate one version, then mark it ready or failed."""
    tenant_id, package_id, version = job.payload["tenant_id"], job.payload["package_id"], int(job.payload["version"])
    if not inst.has_tenant_db(tenant_id):
        return  # the tenant was deleted
    db = inst.tenant_db(tenant_id)
    row = db.read_sync(lambda c: _version_row(c, package_id, version))
    zip_path = upload_path(inst, tenant_id, package_id, version)
    if row is None or row["status"] != "processing":
        # Deleted, or finished by an earlier attempt that died before removing its ZIP.
        with contextlib.suppress(FileNotFoundError):
            zip_path.unlink()
        return
    final_dir = inst.data.version_dir(tenant_id, package_id, version)
    work_dir = inst.data.tmp / f"extract-{package_id}-{version}-{new_secret(6)}"
    shutil.rmtree(final_dir, ignore_errors=True)  # a crash after the move of an earlier attempt
    if not zip_path.exists():
        _mark_failed(inst, tenant_id, package_id, version, "INTERNAL_ERROR", "the uploaded file is missing", {})
        return
    room = _quota_room(inst, tenant_id, db, package_id, version)
    try:
        analysis = analyse(zip_path, work_dir, inst.config, quota_bytes=room.remaining if room else None)
    except PackageRejected as exc:
        details = room.refusal(exc.details) if room and exc.code == "QUOTA_EXCEEDED" else exc.details
        _mark_failed(inst, tenant_id, package_id, version, exc.code, exc.message, details)
        return
    try:
        final_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work_dir, final_dir)
        _sync_version_dirs(inst, tenant_id, package_id)
        _mark_ready(inst, tenant_id, package_id, version, analysis)
    except PackageRejected as exc:
        shutil.rmtree(final_dir, ignore_errors=True)
        _mark_failed(inst, tenant_id, package_id, version, exc.code, exc.message, exc.details)
        return
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        shutil.rmtree(final_dir, ignore_errors=True)
        raise
    with contextlib.suppress(FileNotFoundError):
        zip_path.unlink()


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
    limit = _tenant_storage_limit(inst, tenant_id)
    if limit is None:
        return None

    def read(conn: apsw.Connection) -> int:
        used = sum(stored_bytes(conn))
        row = _version_row(conn, package_id, version) if package_id is not None and version is not None else None
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
        )


def _mark_ready(inst: Instance, tenant_id: str, package_id: str, version: int, analysis: Analysis) -> None:
    now = inst.clock.now()
    manifest, report, course = analysis.manifest, analysis.report, analysis.course
    launch = launch_tree(manifest) if manifest is not None else None
    scorm_version = manifest.scorm_version if manifest is not None else None
    title = analysis.title
    tenant_limit = _tenant_storage_limit(inst, tenant_id)

    def update(conn: apsw.Connection) -> None:
        row = _version_row(conn, package_id, version)
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
                _json(report.warnings),
                _json(report.capabilities),
                msgspec.json.encode(manifest).decode() if manifest is not None else None,
                _json(launch) if launch is not None else None,
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
    inst: Instance, tenant_id: str, package_id: str, version: int, code: str, message: str, details: dict[str, Any]
) -> None:
    now = inst.clock.now()
    error = {"code": code, "message": message, "details": details}

    def update(conn: apsw.Connection) -> None:
        row = _version_row(conn, package_id, version)
        if row is None or row["status"] != "processing":
            return
        conn.execute(
            "UPDATE package_versions SET status = 'failed', error = ?, upload_bytes = 0, size_bytes = 0, "
            "updated_at = ?, processed_at = ? WHERE package_id = ? AND version = ?",
            (_json(error), now, now, package_id, version),
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

    inst.tenant_db(tenant_id).write_sync(update, durable=True)
    version_dir = inst.data.version_dir(tenant_id, package_id, version)
    shutil.rmtree(version_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        version_dir.parent.rmdir()  # only when empty: no other version of the package has files
    with contextlib.suppress(FileNotFoundError):
        upload_path(inst, tenant_id, package_id, version).unlink()


def _tenant_storage_limit(inst: Instance, tenant_id: str) -> int | None:
    row = inst.registry.read_sync(
        lambda c: one(c, "SELECT storage_limit_bytes FROM tenants WHERE id = ?", (tenant_id,))
    )
    return row["storage_limit_bytes"] if row else None


def recover_processing(inst: Instance) -> int:
    """Periodic sweep: enqueue a job for every `processing` version that has none; returns how many."""
    pending = jobs.pending_keys(inst.registry, PROCESS_JOB)
    tenant_ids = [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]
    now = inst.clock.now()
    count = 0
    for tenant_id in tenant_ids:
        stuck = inst.tenant_db(tenant_id).read_sync(
            lambda c: rows(c, "SELECT package_id, version FROM package_versions WHERE status = 'processing'")
        )
        for row in stuck:
            key = f"{tenant_id}/{row['package_id']}/{row['version']}"
            if key in pending:
                continue
            payload = {"tenant_id": tenant_id, "package_id": row["package_id"], "version": row["version"], "key": key}
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


# -- validation without storing --------------------------------------------------------------------


def validate_staged(inst: Instance, staged: StagedUpload, tenant: Tenant | None = None) -> dict[str, Any]:
    """Run every processing check on an upload, keep nothing, and report (POST /packages/validate).

    The files are extracted to tmp/ for the check: `tenant`'s remaining quota bounds them as it bounds
    a real upload's, so validating cannot write more than the tenant may store either."""
    work_dir = inst.data.tmp / f"validate-{new_secret(8)}"
    room = None
    try:
        room = _quota_room(inst, tenant.id, inst.tenant_db(tenant.id)) if tenant is not None else None
        quota = room.remaining if room else None
        analysis = analyse(staged.path, work_dir, inst.config, quota_bytes=quota, durable=False)
    except PackageRejected as exc:
        error = exc.as_error()
        if room is not None and exc.code == "QUOTA_EXCEEDED":
            error["details"] = room.refusal(exc.details)
        return {"valid": False, "error": error, "warnings": [], "scorm_version": None}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
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


# -- reads -----------------------------------------------------------------------------------------


def launch_tree(manifest: Manifest) -> dict[str, Any]:
    """The contract's `launch` object: the default organization's item tree."""
    org = next((o for o in manifest.organizations if o.identifier == manifest.default_organization), None)
    org = org or (manifest.organizations[0] if manifest.organizations else None)
    if org is None:
        return {"organization": None, "items": []}
    return {"organization": org.identifier, "title": org.title, "items": [_item_json(i) for i in org.items]}


def _item_json(item: Item) -> dict[str, Any]:
    return {
        "identifier": item.identifier,
        "title": item.title,
        "launchable": item.href is not None,
        "href": item.href,
        "scorm_type": item.scorm_type,
        "visible": item.isvisible,
        "children": [_item_json(c) for c in item.children],
    }


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _version_row(conn: apsw.Connection, package_id: str, version: int) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM package_versions WHERE package_id = ? AND version = ?", (package_id, version))


def version_json(row: dict[str, Any]) -> dict[str, Any]:
    """One version as the API shows it; a cmi5 version adds `standard` and its `course` structure."""
    return {
        "package_id": row["package_id"],
        "version": row["version"],
        "status": row["status"],
        "error": json.loads(row["error"]) if row["error"] else None,
        "scorm_version": row["scorm_version"],
        **_cmi5_json(row),
        "title": row["title"],
        "warnings": json.loads(row["warnings"]),
        "capabilities": json.loads(row["capabilities"]),
        "size_bytes": row["size_bytes"] + row["upload_bytes"],
        "upload_sha256": row["upload_sha256"],
        "file_count": row["file_count"],
        "item_count": row["item_count"],
        "sco_count": row["sco_count"],
        "launch": json.loads(row["launch"]) if row["launch"] else None,
        "created_at": rfc3339(row["created_at"]),
        "processed_at": rfc3339(row["processed_at"]),
    }


def _cmi5_json(row: dict[str, Any]) -> dict[str, Any]:
    """`standard` and `course` for a cmi5 version; nothing for SCORM, whose JSON stays as it was."""
    if row.get("standard") != cmi5_packaging.STANDARD:
        return {}
    course = cmi5_packaging.decode(row["course"]) if row.get("course") else None
    return {
        "standard": cmi5_packaging.STANDARD,
        "course": cmi5_packaging.course_json(course) if course is not None else None,
    }


def _package_json(pkg: dict[str, Any], latest: dict[str, Any]) -> dict[str, Any]:
    v = version_json(latest)
    return {
        "id": pkg["id"],
        "title": pkg["title"] or v["title"],
        "status": v["status"],
        "error": v["error"],
        "latest_version": pkg["latest_version"],
        "active_version": pkg["active_version"],
        "active_version_pinned": bool(pkg["active_pinned"]),
        "scorm_version": v["scorm_version"],
        **({"standard": v["standard"]} if "standard" in v else {}),
        "scorm12_suspend_data_limit": pkg["scorm12_suspend_data_limit"],
        "warnings": v["warnings"],
        "capabilities": v["capabilities"],
        "size_bytes": v["size_bytes"],
        "file_count": v["file_count"],
        "item_count": v["item_count"],
        "sco_count": v["sco_count"],
        "launch": v["launch"],
        **({"course": v["course"]} if "course" in v else {}),
        "created_at": rfc3339(pkg["created_at"]),
        "updated_at": rfc3339(max(pkg["updated_at"], latest["updated_at"])),
    }


_LIST_SQL = (
    "SELECT p.*, v.status AS v_status FROM packages p JOIN package_versions v "
    "ON v.package_id = p.id AND v.version = p.latest_version WHERE {where} ORDER BY p.created_at, p.id LIMIT ?"
)


def get_package(inst: Instance, tenant: Tenant, package_id: str) -> dict[str, Any]:
    """One package with its latest version, or NotFound (also for another tenant's id)."""

    def read(conn: apsw.Connection) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        pkg = one(conn, "SELECT * FROM packages WHERE id = ?", (package_id,))
        return pkg, _version_row(conn, package_id, pkg["latest_version"]) if pkg else None

    pkg, latest = inst.tenant_db(tenant.id).read_sync(read)
    if pkg is None or latest is None:
        raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
    return _package_json(pkg, latest)


def list_packages(
    inst: Instance, tenant: Tenant, *, status: str | None, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    """A page of packages, oldest first, optionally by status of their latest version."""
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", {"errors": [{"field": "status"}]})
    page = parse_page(limit, cursor)
    clause, params = keyset_clause(page, table="p")
    where = clause + (" AND v.status = ?" if status else "")
    args = (*params, *((status,) if status else ()), page.limit + 1)

    def read(conn: apsw.Connection) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        found = rows(conn, _LIST_SQL.format(where=where), args)
        return [(p, _version_row(conn, p["id"], p["latest_version"]) or {}) for p in found]

    pairs = inst.tenant_db(tenant.id).read_sync(read)
    packed = [{**p, "_latest": v} for p, v in pairs]
    return page_result(packed, page, lambda r: _package_json(r, r["_latest"]))


def list_versions(inst: Instance, tenant: Tenant, package_id: str) -> dict[str, Any]:
    """Every version of a package, oldest first."""
    get_package(inst, tenant, package_id)
    found = inst.tenant_db(tenant.id).read_sync(
        lambda c: rows(c, "SELECT * FROM package_versions WHERE package_id = ? ORDER BY version", (package_id,))
    )
    return {"data": [version_json(r) for r in found], "next_cursor": None}


def get_version(inst: Instance, tenant: Tenant, package_id: str, version: int) -> dict[str, Any]:
    """One version, or NotFound."""
    row = inst.tenant_db(tenant.id).read_sync(lambda c: _version_row(c, package_id, version))
    if row is None:
        raise NotFound(
            f"no version {version} of package {package_id!r}", {"package_id": package_id, "version": version}
        )
    return version_json(row)


def ready_manifest(inst: Instance, tenant_id: str, package_id: str, version: int) -> Manifest | None:
    """The stored parsed manifest of a ready version (for sessions and the player).

    A ready cmi5 version has none: it raises CMI5_LAUNCH_UNAVAILABLE (422), so creating or launching
    a session on it answers that clearly, until cmi5 registrations exist.
    """
    row = inst.tenant_db(tenant_id).read_sync(lambda c: _version_row(c, package_id, version))
    if row is not None and row["status"] == "ready" and row.get("standard") == cmi5_packaging.STANDARD:
        raise cmi5_packaging.launch_unavailable(package_id, version)
    if row is None or row["status"] != "ready" or not row["manifest"]:
        return None
    return msgspec.json.decode(row["manifest"], type=Manifest)


# -- updates and deletion --------------------------------------------------------------------------


def update_package(
    inst: Instance,
    tenant: Tenant,
    package_id: str,
    *,
    title: str | None,
    active_version: int | None,
    set_active: bool,
    migrate_sessions: str = "none",
    suspend_data_limit: int | None | type[Ellipsis] = ...,
) -> dict[str, Any]:
    """Change the title and/or set the active version (which must be ready).

    `migrate_sessions` moves existing sessions onto the new active version too: "incomplete" ones
    (not started or incomplete) or "all"; their stored data stays, keyed by SCO identifier.
    `suspend_data_limit` sets the package's SCORM 1.2 cmi.suspend_data limit (None: the tenant's);
    left out, it is unchanged.
    """
    now = inst.clock.now()
    if suspend_data_limit is not ... and suspend_data_limit is not None:
        check_suspend_data_limit(suspend_data_limit)

    def update(conn: apsw.Connection) -> None:
        _apply(conn)
        target = one(conn, "SELECT active_version FROM packages WHERE id = ?", (package_id,))
        if set_active and target and target["active_version"] is not None:
            _migrate_sessions(conn, package_id, target["active_version"], migrate_sessions, now)

    def _apply(conn: apsw.Connection) -> None:
        pkg = one(conn, "SELECT * FROM packages WHERE id = ?", (package_id,))
        if pkg is None:
            raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
        if title is not None:
            conn.execute("UPDATE packages SET title = ?, updated_at = ? WHERE id = ?", (title, now, package_id))
        if suspend_data_limit is not ...:
            conn.execute(
                "UPDATE packages SET scorm12_suspend_data_limit = ?, updated_at = ? WHERE id = ?",
                (suspend_data_limit, now, package_id),
            )
        if set_active:
            if active_version is None:  # unpin: follow the newest ready version again
                newest = one(
                    conn,
                    "SELECT max(version) AS v FROM package_versions WHERE package_id = ? AND status = 'ready'",
                    (package_id,),
                )
                conn.execute(
                    "UPDATE packages SET active_version = ?, active_pinned = 0, updated_at = ? WHERE id = ?",
                    (newest["v"] if newest else None, now, package_id),
                )
                return
            row = _version_row(conn, package_id, active_version)
            if row is None or row["status"] != "ready":
                raise ValidationFailed(
                    f"version {active_version} is not a ready version of this package",
                    {"errors": [{"field": "active_version", "message": "not a ready version"}]},
                )
            conn.execute(
                "UPDATE packages SET active_version = ?, active_pinned = 1, updated_at = ? WHERE id = ?",
                (active_version, now, package_id),
            )

    inst.tenant_db(tenant.id).write_sync(update)
    return get_package(inst, tenant, package_id)


def scorm12_suspend_data_limit(conn: apsw.Connection, package_id: str, tenant_limit: int) -> int:
    """The SCORM 1.2 cmi.suspend_data limit of a package's sessions: its own setting, else its tenant's.

    The player receives the data-model table with this limit and the server checks commits with it.
    """
    row = one(conn, "SELECT scorm12_suspend_data_limit AS chars FROM packages WHERE id = ?", (package_id,))
    return int(row["chars"]) if row is not None and row["chars"] is not None else tenant_limit


def _migrate_sessions(conn: apsw.Connection, package_id: str, version: int, scope: str, now: float) -> int:
    """Move a package's sessions onto `version`: none, the unfinished ones, or all of them.

    The sequencing state belongs to the old version's activity tree, so it starts afresh; each SCO's
    run-time data stays (keyed by item identifier), so a suspended SCO still resumes.
    """
    if scope == "none":
        return 0
    target = _version_row(conn, package_id, version)
    if target is not None and target.get("standard") == cmi5_packaging.STANDARD:
        raise cmi5_packaging.launch_unavailable(package_id, version)  # its sessions could not be launched
    condition = "AND status IN ('not_started', 'incomplete')" if scope == "incomplete" else ""
    conn.execute(
        "UPDATE sessions SET package_version = ?, sequencing_state = NULL, current_activity = NULL, "
        "version = version + 1, updated_at = ? "
        f"WHERE package_id = ? AND package_version != ? {condition}",
        (version, now, package_id, version),
    )
    return int(conn.changes())


def delete_package(inst: Instance, tenant: Tenant, package_id: str) -> None:
    """Delete a package's rows and every file of every version (and free their quota)."""
    get_package(inst, tenant, package_id)
    now = inst.clock.now()

    def delete(conn: apsw.Connection) -> None:
        conn.execute("DELETE FROM packages WHERE id = ?", (package_id,))
        quota_events.settle(conn, tenant.storage_limit_bytes, now, clear_refusal=True)

    inst.tenant_db(tenant.id).write_sync(delete, durable=True)  # rows gone for good before the files go
    shutil.rmtree(inst.data.package_dir(tenant.id, package_id), ignore_errors=True)
    for leftover in inst.data.uploads_dir(tenant.id).glob(f"{package_id}-*.zip"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
