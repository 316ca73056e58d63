"""Package routes: upload (streamed), versions, validate, list, read, update, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from appliance.errors import ValidationFailed
from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.library import packages


class PackagePatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /packages/{id}: any of title, active_version (null unpins), migrate_sessions and
    scorm12_suspend_data_limit (4096..64000 characters; null follows the tenant's setting)."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    active_version: int | None | msgspec.UnsetType = msgspec.UNSET
    migrate_sessions: Literal["none", "incomplete", "all"] = "none"
    scorm12_suspend_data_limit: int | None | msgspec.UnsetType = msgspec.UNSET


def _declared_length(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValidationFailed("invalid Content-Length", {"errors": [{"field": "content-length"}]}) from exc


async def _receive(
    request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep
) -> packages.StagedUpload:
    return await packages.receive(
        inst, principal.tenant, request.stream(), request.headers.get("content-type", ""), _declared_length(request)
    )


class PackageController(Controller):
    """SCORM and cmi5 packages of the authenticated tenant."""

    path = "/api/v1/packages"
    tags = ["packages"]

    @post("/", status_code=202, request_max_body_size=None, summary="Upload a package (ZIP, or a bare cmi5.xml)")
    async def upload(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep
    ) -> dict[str, Any]:
        """Stream a ZIP (multipart field `file`, or a raw application/zip body); processing runs as a job.

        A bare cmi5.xml (AUs hosted elsewhere) is taken as a raw application/xml or text/xml body, or as
        a multipart file named *.xml."""
        staged = await _receive(request, principal, inst)
        result = await asyncio.to_thread(packages.create_version, inst, principal.tenant, staged)
        request.app.state.scheduler.wake()
        return result

    @post("/validate", status_code=200, request_max_body_size=None, summary="Check a package without storing it")
    async def validate(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep
    ) -> dict[str, Any]:
        """Run every processing check on an uploaded ZIP (or bare cmi5.xml) and report; nothing is kept."""
        staged = await _receive(request, principal, inst)
        return await asyncio.to_thread(packages.validate_staged, inst, staged, principal.tenant)

    @post("/{package_id:str}/versions", status_code=202, request_max_body_size=None, summary="Upload a new version")
    async def upload_version(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str]
    ) -> dict[str, Any]:
        """A new version under the same package id."""
        await asyncio.to_thread(packages.get_package, inst, principal.tenant, package_id)
        staged = await _receive(request, principal, inst)
        result = await asyncio.to_thread(packages.create_version, inst, principal.tenant, staged, package_id)
        request.app.state.scheduler.wake()
        return result

    @get("/", sync_to_thread=True, summary="List packages")
    def list_(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        status: FromQuery[str | None] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Packages, oldest first; `?status=processing|ready|failed`."""
        return packages.list_packages(inst, principal.tenant, status=status, limit=limit, cursor=cursor)

    @get("/{package_id:str}", sync_to_thread=True, summary="A package with its latest version")
    def show(self, principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str]) -> dict[str, Any]:
        """One package."""
        return packages.get_package(inst, principal.tenant, package_id)

    @get("/{package_id:str}/versions", sync_to_thread=True, summary="A package's versions")
    def versions(self, principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str]) -> dict[str, Any]:
        """Every version, oldest first."""
        return packages.list_versions(inst, principal.tenant, package_id)

    @get("/{package_id:str}/versions/{version:int}", sync_to_thread=True, summary="One version")
    def version(
        self, principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str], version: FromPath[int]
    ) -> dict[str, Any]:
        """One version of a package."""
        return packages.get_version(inst, principal.tenant, package_id, version)

    @patch(
        "/{package_id:str}",
        sync_to_thread=True,
        summary="Rename, set the active version, or set the SCORM 1.2 suspend_data limit",
    )
    def update(
        self, principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str], data: JSONBody[PackagePatch]
    ) -> dict[str, Any]:
        """Change the title, pin `active_version` (null follows the newest ready version), or set
        `scorm12_suspend_data_limit` (null follows the tenant's)."""
        return packages.update_package(
            inst,
            principal.tenant,
            package_id,
            title=None if data.title is msgspec.UNSET else data.title,
            active_version=None if data.active_version is msgspec.UNSET else data.active_version,
            set_active=data.active_version is not msgspec.UNSET,
            migrate_sessions=data.migrate_sessions,
            suspend_data_limit=(
                ... if data.scorm12_suspend_data_limit is msgspec.UNSET else data.scorm12_suspend_data_limit
            ),
        )

    @delete("/{package_id:str}", status_code=204, sync_to_thread=True, summary="Delete a package and its files")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, package_id: FromPath[str]) -> None:
        """Delete every version's files and metadata."""
        packages.delete_package(inst, principal.tenant, package_id)
