"""Dispatches: a package handed to another LMS as a small SCORM ZIP that launches it here. The list with
each dispatch's counts (launches, learners, sessions, completed, passed), creation, enabling and
disabling, the ZIP's download (SCORM 1.2 or 2004) and deletion (appliance.services.lms.dispatch, as
`/api/v1/dispatches` does)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from appliance.errors import ValidationFailed
from appliance.faces.api.lti import tool_urls
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of, optional_int
from appliance.services.library import packages
from appliance.services.lms import dispatch

FORMATS = ("1.2", "2004")


def expiry_of(value: str | None) -> str | None:
    """A `datetime-local` field's value (taken as UTC) or an RFC 3339 time as RFC 3339; None when blank."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("expires_at must be a date and time", {"errors": [{"field": "expires_at"}]}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DispatchPages(Controller):
    """`/admin/t/{tenant_id}/dispatches…`."""

    path = "/t/{tenant_id:str}/dispatches"

    @get("/", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
    ) -> Template:
        """The dispatches with their counts, a page at a time, and the form for a new one."""
        inst = instance(request)
        found = dispatch.page_dispatches(inst, tenant.id, limit=PAGE_SIZE, cursor=pager.cursor)
        ready = packages.list_packages(inst, tenant, status="ready", limit=PAGE_SIZE, cursor=None)
        return page(
            request,
            "dispatches.html",
            dispatches=found["data"],
            pager=pager.with_result(found),
            packages=ready["data"],
            more_packages=bool(ready["next_cursor"]),
        )

    @post("/", status_code=303)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Redirect:
        """Create a dispatch of a package (of this tenant: dispatch.create_dispatch looks in its database)."""
        form = await form_of(request)
        made = await asyncio.to_thread(
            dispatch.create_dispatch,
            instance(request),
            tenant.id,
            package_id=(form.get("package_id") or form.get("package_id_typed") or "").strip(),
            name=form.get("name") or None,
            learner_cap=optional_int(form.get("learner_cap"), "learner_cap"),
            expires_at=expiry_of(form.get("expires_at")),
        )
        return Redirect(f"/admin/t/{tenant.id}/dispatches/{made['id']}", status_code=303)

    @get("/{dispatch_id:str}", sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], tenant: TenantDep, dispatch_id: FromPath[str]) -> Template:
        """One dispatch: its settings, its counts and its ZIPs."""
        found = dispatch.get_dispatch(instance(request), tenant.id, dispatch_id)
        return page(request, "dispatch.html", d=found, formats=FORMATS)

    @post("/{dispatch_id:str}/enabled", status_code=303)
    async def enabled(self, request: Request[Any, Any, Any], tenant: TenantDep, dispatch_id: FromPath[str]) -> Redirect:
        """Enable or disable (a disabled dispatch's ZIPs launch nothing)."""
        form = await form_of(request)
        changes = {"enabled": form.get("enabled") == "true"}
        await asyncio.to_thread(dispatch.update_dispatch, instance(request), tenant.id, dispatch_id, changes)
        return Redirect(f"/admin/t/{tenant.id}/dispatches/{dispatch_id}", status_code=303)

    @post("/{dispatch_id:str}/settings", status_code=303)
    async def settings(
        self, request: Request[Any, Any, Any], tenant: TenantDep, dispatch_id: FromPath[str]
    ) -> Redirect:
        """Name, learner cap and expiry (a blank cap or expiry clears it)."""
        form = await form_of(request)
        changes = {
            "name": form.get("name", ""),
            "learner_cap": optional_int(form.get("learner_cap"), "learner_cap"),
            "expires_at": expiry_of(form.get("expires_at")),
        }
        await asyncio.to_thread(dispatch.update_dispatch, instance(request), tenant.id, dispatch_id, changes)
        return Redirect(f"/admin/t/{tenant.id}/dispatches/{dispatch_id}", status_code=303)

    @get("/{dispatch_id:str}/package", sync_to_thread=True)
    def download(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        dispatch_id: FromPath[str],
        format: FromQuery[str] = "1.2",  # noqa: A002 (the query's name, as the API's)
    ) -> Response[bytes]:
        """The dispatch's SCORM ZIP, to import into the other LMS."""
        if format not in FORMATS:
            raise ValidationFailed("format must be 1.2 or 2004", {"errors": [{"field": "format"}]})
        inst = instance(request)
        base = tool_urls(inst, request, tenant.id).base
        name, data = dispatch.package_zip(inst, tenant.id, dispatch_id, format, base)
        return Response(
            data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @post("/{dispatch_id:str}/delete", status_code=303)
    async def delete(self, request: Request[Any, Any, Any], tenant: TenantDep, dispatch_id: FromPath[str]) -> Redirect:
        """Delete the dispatch: its ZIPs stop launching; the sessions stay."""
        await asyncio.to_thread(dispatch.delete_dispatch, instance(request), tenant.id, dispatch_id)
        return Redirect(f"/admin/t/{tenant.id}/dispatches", status_code=303)
