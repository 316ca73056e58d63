"""Packages: the list, the upload (a script streams the ZIP with progress; appliance.services.library.packages.receive,
the same streaming path as `POST /api/v1/packages`), a package's versions with its validation and
capability reports, the active version, a preview launch, and deletion."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from appliance.faces.api.packages import _declared_length
from appliance.faces.api.sessions import base_url
from appliance.faces.console.auth import SessionDep, TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of, optional_int
from appliance.services.learning import sessions
from appliance.services.library import packages


class PackagePages(Controller):
    """`/admin/t/{tenant_id}/packages…`."""

    path = "/t/{tenant_id:str}/packages"

    @get("/", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
    ) -> Template:
        """The tenant's packages, a page at a time, and the upload form."""
        found = packages.list_packages(instance(request), tenant, status=None, limit=PAGE_SIZE, cursor=pager.cursor)
        return page(request, "packages.html", packages=found["data"], pager=pager.with_result(found))

    @post("/upload", status_code=202, request_max_body_size=None)
    async def upload(self, request: Request[Any, Any, Any], tenant: TenantDep) -> dict[str, Any]:
        """Stream the ZIP body (the page's script sends it raw, with its CSRF header), queue processing."""
        inst = instance(request)
        staged = await packages.receive(
            inst, tenant, request.stream(), request.headers.get("content-type", ""), _declared_length(request)
        )
        result = await asyncio.to_thread(packages.create_version, inst, tenant, staged)
        request.app.state.scheduler.wake()
        return result

    @post("/{package_id:str}/upload", status_code=202, request_max_body_size=None)
    async def upload_version(
        self, request: Request[Any, Any, Any], tenant: TenantDep, package_id: FromPath[str]
    ) -> dict[str, Any]:
        """A new version of the package, streamed like the first (the same service path)."""
        inst = instance(request)
        await asyncio.to_thread(packages.get_package, inst, tenant, package_id)
        staged = await packages.receive(
            inst, tenant, request.stream(), request.headers.get("content-type", ""), _declared_length(request)
        )
        result = await asyncio.to_thread(packages.create_version, inst, tenant, staged, package_id)
        request.app.state.scheduler.wake()
        return result

    @get("/{package_id:str}", sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], tenant: TenantDep, package_id: FromPath[str]) -> Template:
        """A package: status (polled live while processing), versions, warnings, capabilities."""
        inst = instance(request)
        pkg = packages.get_package(inst, tenant, package_id)
        versions = packages.list_versions(inst, tenant, package_id)["data"]
        return page(request, "package.html", package=pkg, versions=versions)

    @get("/{package_id:str}/status", sync_to_thread=True)
    def status(self, request: Request[Any, Any, Any], tenant: TenantDep, package_id: FromPath[str]) -> dict[str, Any]:
        """The package as the API shows it, for the page's polling."""
        return packages.get_package(instance(request), tenant, package_id)

    @post("/{package_id:str}/active", status_code=303)
    async def set_active(
        self, request: Request[Any, Any, Any], tenant: TenantDep, package_id: FromPath[str]
    ) -> Redirect:
        """Make a ready version the active one (packages.update_package)."""
        form = await form_of(request)
        version = optional_int(form.get("version"), "version")
        await asyncio.to_thread(
            packages.update_package,
            instance(request),
            tenant,
            package_id,
            title=None,
            active_version=version,
            set_active=True,
            migrate_sessions=form.get("migrate_sessions", "none") or "none",
        )
        return Redirect(f"/admin/t/{tenant.id}/packages/{package_id}", status_code=303)

    @post("/{package_id:str}/preview", status_code=303)
    async def preview(
        self, request: Request[Any, Any, Any], tenant: TenantDep, session: SessionDep, package_id: FromPath[str]
    ) -> Redirect:
        """Launch the active version as the learner `console-preview:<admin>` (a real session)."""
        created, _ = await asyncio.to_thread(
            sessions.create_session,
            instance(request),
            tenant,
            base_url(request),
            package_id=package_id,
            learner_id=f"console-preview:{session.admin.username}",
            learner_name=f"Preview by {session.admin.username}",
            package_version=None,
            resume=False,
        )
        return Redirect(created["launch_url"], status_code=303)

    @post("/{package_id:str}/delete", status_code=303)
    async def delete(self, request: Request[Any, Any, Any], tenant: TenantDep, package_id: FromPath[str]) -> Redirect:
        """Delete the package and its files (packages.delete_package)."""
        await asyncio.to_thread(packages.delete_package, instance(request), tenant, package_id)
        return Redirect(f"/admin/t/{tenant.id}/packages", status_code=303)
