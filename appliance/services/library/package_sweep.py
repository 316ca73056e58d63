"""The orphaned-files sweep: package files that nothing refers to any more, left by a process that died.

Every normal path removes its own files (docs/scale-out.md, "Files"), but a process can die between
two steps, and then the store keeps files that no row counts. The tenant's quota is computed from the
version rows (`size_bytes + upload_bytes`), so such files count toward nothing: the tenant stores more
than its usage says. The cases:

- an upload stored in full but its version never recorded (killed between the upload's last byte and
  `create_version`'s commit): on an object store `uploads/incoming-<random>.zip`; on the data
  directory `uploads/<pkg>-<version>.zip`, moved there inside the transaction that then never
  committed;
- an unfinished S3 multipart upload of a writer killed mid-body (its parts are billed, not listed);
- a version's folder whose row is gone (the package deleted while its job published, and the job
  killed before it could remove what it had put) or whose version failed (killed between marking it
  failed and removing its folder).

`sweep_orphan_files` (a periodic sweep of the scheduler, hourly) removes, tenant by tenant, what is
older than `orphan_files_grace_seconds` (a day) and referred to by nothing. "Referred to" is read
after the store was listed, so a file can only be judged by rows at least as new as itself:

- an upload is kept while a queued or running `package.process` job names it (its payload's `upload`,
  or the data directory's `uploads/<pkg>-<version>.zip` of its version), while its own version is
  `processing` (data directory), or, for an `incoming-…` upload no job names yet, while any
  `processing` version recorded an upload of its size (the recovery sweep is about to give that
  version a job with this upload: `find_received_upload`);
- a version's folder is kept while its row is `ready` or `processing` (a processing version's job
  clears its folder before it publishes, and a failed job removes it), or a pending job names it.

The grace period covers what the rows cannot show: an upload between its last byte and its version's
commit (seconds), and an unfinished multipart upload still receiving (dated from its first part, so
the grace must be longer than the longest upload). Several workers may run the sweep at once: each
decision is made from the same rows, and deleting what another worker already deleted frees nothing
and is no error. `Swept` reports what this run removed (on S3 a batch delete confirms a key another
worker deleted a moment before as deleted too, so two workers' reports may both count it; the quota
never reads these counts).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.instance import Instance
from appliance.services.library.package_files import (
    INCOMING,
    PACKAGES,
    UPLOADS,
    delete_version_files,
    upload_store_path,
)
from appliance.services.library.package_processing import PROCESS_JOB, upload_of
from appliance.storage.files.base import FileStat
from appliance.storage.sqlite.connection import rows

__all__ = ["SWEEP_SECONDS", "Swept", "sweep_orphan_files", "sweep_tenant_files"]

log = logging.getLogger("appliance.library.sweep")

SWEEP_SECONDS = 3600.0  # how often the scheduler runs the sweep; the grace period is the setting
_VERSION_UPLOAD = re.compile(rf"^{UPLOADS}/(?P<package>.+)-(?P<version>[0-9]+)\.zip$")
_LIVE_STATUSES = frozenset({"ready", "processing"})


@dataclass
class Swept:
    """What one run removed: files and bytes (uploads and version folders), unfinished uploads aborted,
    and the paths, for the log and the tests."""

    files: int = 0
    bytes: int = 0
    aborted_uploads: int = 0
    removed: list[str] = field(default_factory=list)

    def add(self, other: Swept) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.aborted_uploads += other.aborted_uploads
        self.removed.extend(other.removed)


@dataclass(frozen=True)
class _References:
    """What a tenant's rows and pending jobs refer to, read after its files were listed."""

    statuses: dict[tuple[str, int], str]  # (package, version) -> status
    processing_upload_sizes: frozenset[int]
    job_uploads: frozenset[str]
    job_versions: frozenset[tuple[str, int]]


def sweep_orphan_files(inst: Instance) -> Swept:
    """The periodic sweep: every tenant's orphaned package files older than the grace period."""
    started_before = inst.clock.now() - inst.config.orphan_files_grace_seconds
    tenant_ids = [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]
    total = Swept()
    for tenant_id in tenant_ids:
        try:
            swept = sweep_tenant_files(inst, tenant_id, started_before=started_before)
        except Exception:  # one tenant's failure (the store unreachable, a database busy) spares the rest
            log.exception("orphaned-files sweep of tenant %s failed", tenant_id)
            continue
        if swept.files or swept.aborted_uploads:
            log.info(
                "tenant %s: removed %d orphaned package file(s) (%d bytes), aborted %d unfinished upload(s)",
                tenant_id,
                swept.files,
                swept.bytes,
                swept.aborted_uploads,
            )
        total.add(swept)
    return total


def sweep_tenant_files(inst: Instance, tenant_id: str, *, started_before: float) -> Swept:
    """Remove one tenant's files dated before `started_before` that nothing refers to (module docstring)."""
    if not inst.has_tenant_db(tenant_id):
        return Swept()  # deleted meanwhile: the tenant's delete removes its files
    uploads = [f for f in inst.files.list(tenant_id, UPLOADS) if f.mtime < started_before]
    folders = _version_folders(inst.files.list(tenant_id, PACKAGES))
    refs = _references(inst, tenant_id)  # read after listing: rows at least as new as every file seen
    swept = Swept()
    for item in uploads:
        if _upload_is_orphan(item, refs):
            gone = inst.files.delete(tenant_id, item.path)
            if gone.files:
                swept.add(Swept(gone.files, gone.bytes, removed=[item.path]))
    for (package_id, version), newest in sorted(folders.items()):
        if newest >= started_before or refs.statuses.get((package_id, version)) in _LIVE_STATUSES:
            continue
        if (package_id, version) in refs.job_versions:
            continue
        gone = delete_version_files(inst, tenant_id, package_id, version)
        if gone.files:
            swept.add(Swept(gone.files, gone.bytes, removed=[f"{PACKAGES}/{package_id}/{version}"]))
    swept.aborted_uploads = inst.files.abort_unfinished(tenant_id, UPLOADS, started_before=started_before)
    swept.aborted_uploads += inst.files.abort_unfinished(tenant_id, PACKAGES, started_before=started_before)
    return swept


def _version_folders(files: Iterable[FileStat]) -> dict[tuple[str, int], float]:
    """(package, version) -> the newest modification time among its files, for `packages/<pkg>/<n>/…`."""
    newest: dict[tuple[str, int], float] = {}
    for item in files:
        parts = item.path.split("/")
        if len(parts) < 4 or not parts[2].isdigit():
            continue  # not a version's file: nothing the appliance writes, so nothing it removes
        key = (parts[1], int(parts[2]))
        newest[key] = max(newest.get(key, item.mtime), item.mtime)
    return newest


def _upload_is_orphan(item: FileStat, refs: _References) -> bool:
    if item.path in refs.job_uploads:
        return False
    if item.path.startswith(INCOMING):
        return item.size not in refs.processing_upload_sizes
    named = _VERSION_UPLOAD.fullmatch(item.path)
    if named is None:
        return False  # not an upload's name: nothing the appliance writes, so nothing it removes
    return refs.statuses.get((named["package"], int(named["version"]))) != "processing"


def _references(inst: Instance, tenant_id: str) -> _References:
    versions = inst.tenant_db(tenant_id).read_sync(
        lambda c: rows(c, "SELECT package_id, version, status, upload_bytes FROM package_versions")
    )
    payloads = _pending_payloads(inst, tenant_id)
    job_uploads = {upload_of(p) for p in payloads}
    job_uploads |= {upload_store_path(p["package_id"], int(p["version"])) for p in payloads}
    return _References(
        statuses={(r["package_id"], int(r["version"])): r["status"] for r in versions},
        processing_upload_sizes=frozenset(int(r["upload_bytes"]) for r in versions if r["status"] == "processing"),
        job_uploads=frozenset(job_uploads),
        job_versions=frozenset((p["package_id"], int(p["version"])) for p in payloads),
    )


def _pending_payloads(inst: Instance, tenant_id: str) -> list[dict[str, Any]]:
    """The payloads of the tenant's queued or running processing jobs."""
    found = inst.registry.read_sync(
        lambda c: rows(
            c,
            "SELECT payload FROM jobs WHERE kind = ? AND tenant_id = ? AND status IN ('queued', 'running')",
            (PROCESS_JOB, tenant_id),
        )
    )
    payloads = [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in found]
    return [p for p in payloads if isinstance(p, dict) and "package_id" in p and "version" in p]
