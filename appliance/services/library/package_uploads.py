"""Receiving a package upload: the size and quota checks, the body streamed in, the version recorded.

The upload is streamed to tmp/, checked to be a ZIP (or, declared as XML, a bare cmi5.xml), moved to
the tenant's uploads/ folder and recorded as a `processing` version together with its job
(`package_processing` runs it). With an object store (`files = "s3://…"`) the body streams into the
store instead, as it arrives, and stays at the key it was received at (`package_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import apsw

from appliance.errors import InvalidPackage, NotFound, PayloadTooLarge, QuotaExceeded
from appliance.ids import new_id, new_secret
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.library.archive import ArchiveError, inspect_archive, sync_dir
from appliance.services.library.package_analysis import archive_limits, declares_xml, is_bare_course_structure
from appliance.services.library.package_files import INCOMING, is_local, upload_path
from appliance.services.library.package_processing import PROCESS_JOB
from appliance.services.library.package_records import get_package
from appliance.services.library.upload import StagedUpload, StoredUpload, receive_upload
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.quotas import check_free_space, check_storage
from appliance.services.tenancy.tenants import Tenant
from appliance.services.tenancy.usage import stored_bytes
from appliance.storage.files.fetch import open_stored
from appliance.storage.files.receive import receive_into_store
from appliance.storage.sqlite.connection import one


def precheck_upload(inst: Instance, tenant: Tenant, declared_bytes: int | None) -> int:
    """Refuse before reading a byte: over the size limit, or a declared size that breaks the quota.

    Returns the tenant's stored bytes, against which the body is then checked as it streams.
    """
    limit = inst.config.max_upload_bytes
    if declared_bytes is not None and declared_bytes > limit:
        raise PayloadTooLarge(
            "upload exceeds the maximum size", {"limit_bytes": limit, "declared_bytes": declared_bytes}
        )
    if is_local(inst):  # into an object store the body never touches this disk
        check_free_space(inst.data.tmp, inst.config.min_free_disk_bytes, declared_bytes or 0)
    used = sum(inst.tenant_db(tenant.id).read_sync(stored_bytes))
    if declared_bytes is not None:
        check_storage(used, tenant.storage_limit_bytes, declared_bytes)
    return used


async def receive(
    inst: Instance, tenant: Tenant, body: AsyncIterator[bytes], content_type: str, declared: int | None
) -> StagedUpload:
    """Stream an upload to tmp/ (or, with an object store, into the store as it arrives: an S3
    multipart upload) and make sure it is a ZIP at all, or a declared XML document (a bare cmi5.xml),
    else 422 INVALID_PACKAGE.

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

        if is_local(inst):
            staged = await receive_upload(
                body,
                content_type,
                inst.data.tmp,
                inst.config.max_upload_bytes,
                check_size=check_size,
                check_write=check_write,
            )
        else:
            staged = await _receive_into_store(inst, tenant, body, content_type, check_size)
    except QuotaExceeded as exc:
        await asyncio.to_thread(quota_events.note_refusal, inst, tenant.id, exc.details)
        raise
    try:
        await asyncio.to_thread(check_readable_zip, inst, staged, content_type)
    except BaseException:
        staged.discard()
        raise
    return staged


async def _receive_into_store(
    inst: Instance, tenant: Tenant, body: AsyncIterator[bytes], content_type: str, check_size: Callable[[int], None]
) -> StagedUpload:
    """The body streamed to a key of its own in the object store (its version is not known yet: the
    processing job's payload names the key), with the same parser, limits and errors as tmp/'s."""
    path = f"{INCOMING}{new_secret(12)}.zip"
    received = await receive_into_store(
        body, content_type, inst.files, tenant.id, path, inst.config.max_upload_bytes, check_size=check_size
    )
    return StagedUpload(
        path=None,
        size=received.stored.size,
        sha256=received.stored.sha256,
        filename=received.filename,
        fields=received.fields,
        stored=StoredUpload(inst.files, tenant.id, path),
    )


# Archive failures that mean "no ZIP could be read at all": refused at once. A readable but hostile or
# damaged ZIP is accepted here and fails in processing, where the package reports why.
_UNREADABLE = frozenset({"not_a_zip", "invalid_name_encoding"})


def check_readable_zip(inst: Instance, staged: StagedUpload, content_type: str = "") -> None:
    """422 INVALID_PACKAGE unless the upload's central directory can be read (bounded by the limits).

    An upload declared as XML (`declares_xml`: a raw application/xml or text/xml body, or a *.xml
    file) that is not a ZIP passes when it is an XML document: a bare cmi5.xml, checked by processing.
    An undeclared XML document is still no package (a ZIP is what the route takes by default).
    An upload already in an object store is read there, in place: only its central directory (at its
    end) is fetched, by ranged reads.
    """
    with _opened(staged) as source:
        try:
            inspect_archive(source, archive_limits(inst.config))
        except ArchiveError as exc:
            if exc.details.get("reason") not in _UNREADABLE:
                return
            declared = declares_xml(content_type, staged.filename)
            if declared and is_bare_course_structure(source):
                return
            message = "the upload is not a readable ZIP file"
            if declared:
                message = "the upload is declared as XML but is neither an XML document nor a ZIP file"
            raise InvalidPackage(message, {**exc.details, "received_bytes": staged.size}) from exc


def _opened(staged: StagedUpload) -> contextlib.AbstractContextManager[Path | IO[bytes]]:
    """The staged file's path, or the stored upload opened for seekable reading."""
    if staged.stored is None:
        assert staged.path is not None
        return contextlib.nullcontext(staged.path)
    stored = staged.stored
    return open_stored(stored.store, stored.tenant_id, stored.path, size=staged.size)


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
    if staged.stored is None:
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
        if staged.stored is None:  # in an object store it stays where it was received (the job's payload)
            assert staged.path is not None
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
    payload: dict[str, Any] = {
        "tenant_id": tenant.id,
        "package_id": pkg_id,
        "version": version,
        "key": f"{tenant.id}/{pkg_id}/{version}",
    }
    if staged.stored is not None:
        payload["upload"] = staged.stored.path
    inst.registry.write_sync(
        lambda c: jobs.enqueue(
            c,
            PROCESS_JOB,
            payload,
            now=now,
            tenant_id=tenant.id,
            max_attempts=inst.config.job_max_attempts,
            unique=True,
        )
    )
    return get_package(inst, tenant, pkg_id)
