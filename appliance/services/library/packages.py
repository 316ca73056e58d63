"""The package service: upload, versions, processing (as a durable job), reads, updates and deletion.

Split by noun: `package_uploads` (receiving an upload and recording its version), `package_processing`
(the job that extracts and checks it, and validation without storing), `package_records` (the rows
and their JSON); this module holds the updates and deletion and re-exports the rest, so callers keep
one name for the service.
"""

from __future__ import annotations

from typing import Any

import apsw

from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.errors import NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.library.package_files import delete_package_files, upload_path
from appliance.services.library.package_processing import (
    PROCESS_JOB,
    QuotaRoom,
    give_up_processing,
    process_version,
    recover_processing,
    validate_staged,
)
from appliance.services.library.package_records import (
    STATUSES,
    get_package,
    get_version,
    launch_tree,
    list_packages,
    list_versions,
    ready_manifest,
    version_json,
    version_row,
)
from appliance.services.library.package_uploads import (
    check_readable_zip,
    create_version,
    precheck_upload,
    receive,
)
from appliance.services.library.upload import StagedUpload
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.tenants import Tenant, check_suspend_data_limit
from appliance.storage.sqlite.connection import one

__all__ = [
    "PROCESS_JOB",
    "STATUSES",
    "QuotaRoom",
    "StagedUpload",
    "check_readable_zip",
    "create_version",
    "delete_package",
    "get_package",
    "get_version",
    "give_up_processing",
    "launch_tree",
    "list_packages",
    "list_versions",
    "precheck_upload",
    "process_version",
    "ready_manifest",
    "receive",
    "recover_processing",
    "scorm12_suspend_data_limit",
    "update_package",
    "upload_path",
    "validate_staged",
    "version_json",
]


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
            row = version_row(conn, package_id, active_version)
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
    target = version_row(conn, package_id, version)
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
    delete_package_files(inst, tenant.id, package_id)
