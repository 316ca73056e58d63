"""A package's rows as the API shows them: one package or version, pages of them, a ready manifest.

The reads of `packages` and `package_versions` and their JSON (the contract's package and version
objects) live here, so the upload, the processing job and the updates all answer with the same shape.
"""

from __future__ import annotations

import json
from typing import Any

import apsw
import msgspec

from appliance.clock import rfc3339
from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.core.scorm.model import Item, Manifest
from appliance.errors import NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

STATUSES = ("processing", "ready", "failed")


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


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def version_row(conn: apsw.Connection, package_id: str, version: int) -> dict[str, Any] | None:
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


def package_json(pkg: dict[str, Any], latest: dict[str, Any]) -> dict[str, Any]:
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
        return pkg, version_row(conn, package_id, pkg["latest_version"]) if pkg else None

    pkg, latest = inst.tenant_db(tenant.id).read_sync(read)
    if pkg is None or latest is None:
        raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
    return package_json(pkg, latest)


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
        return [(p, version_row(conn, p["id"], p["latest_version"]) or {}) for p in found]

    pairs = inst.tenant_db(tenant.id).read_sync(read)
    packed = [{**p, "_latest": v} for p, v in pairs]
    return page_result(packed, page, lambda r: package_json(r, r["_latest"]))


def list_versions(inst: Instance, tenant: Tenant, package_id: str) -> dict[str, Any]:
    """Every version of a package, oldest first."""
    get_package(inst, tenant, package_id)
    found = inst.tenant_db(tenant.id).read_sync(
        lambda c: rows(c, "SELECT * FROM package_versions WHERE package_id = ? ORDER BY version", (package_id,))
    )
    return {"data": [version_json(r) for r in found], "next_cursor": None}


def get_version(inst: Instance, tenant: Tenant, package_id: str, version: int) -> dict[str, Any]:
    """One version, or NotFound."""
    row = inst.tenant_db(tenant.id).read_sync(lambda c: version_row(c, package_id, version))
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
    row = inst.tenant_db(tenant_id).read_sync(lambda c: version_row(c, package_id, version))
    if row is not None and row["status"] == "ready" and row.get("standard") == cmi5_packaging.STANDARD:
        raise cmi5_packaging.launch_unavailable(package_id, version)
    if row is None or row["status"] != "ready" or not row["manifest"]:
        return None
    return msgspec.json.decode(row["manifest"], type=Manifest)


def tenant_storage_limit(inst: Instance, tenant_id: str) -> int | None:
    row = inst.registry.read_sync(
        lambda c: one(c, "SELECT storage_limit_bytes FROM tenants WHERE id = ?", (tenant_id,))
    )
    return row["storage_limit_bytes"] if row else None
