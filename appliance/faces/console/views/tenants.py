"""Tenants: the list, creation, suspension, plan and quotas (superusers), and a tenant's overview with
its usage and quota gauges (appliance.services.tenancy.tenants, appliance.services.tenancy.usage, appliance.services.tenancy.quotas)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from appliance.faces.console.auth import SessionDep, SuperuserDep, TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of, optional_int
from appliance.services.tenancy import admins, tenants, usage
from appliance.services.tenancy.quotas import PLANS, parse_size


class TenantPages(Controller):
    """`/admin/tenants` and `/admin/t/{tenant_id}`."""

    @get("/tenants", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        session: SessionDep,
        pager: PagerDep,
    ) -> Template:
        """Every tenant, a page at a time, for a superuser; a tenant admin sees their own only."""
        inst = instance(request)
        if session.admin.superuser:
            found = tenants.page_tenants(inst, limit=PAGE_SIZE, cursor=pager.cursor)
        else:
            found = {"data": admins.visible_tenants(inst, session.admin), "next_cursor": None}
        return page(request, "tenants.html", tenants=found["data"], pager=pager.with_result(found), plans=list(PLANS))

    @post("/tenants", status_code=303)
    async def create(self, request: Request[Any, Any, Any], superuser: SuperuserDep) -> Redirect:
        """Create a tenant (tenants.create_tenant) and open its page."""
        form = await form_of(request)
        tenant = await asyncio.to_thread(
            tenants.create_tenant, instance(request), form.get("name", "").strip(), form.get("plan", "free")
        )
        return Redirect(f"/admin/t/{tenant.id}", status_code=303)

    @get("/t/{tenant_id:str}", sync_to_thread=True)
    def overview(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """The tenant's status, plan, quotas and usage gauges."""
        figures = usage.get_usage(instance(request), tenant)
        return page(request, "tenant.html", usage=figures, plans=list(PLANS))

    @post("/t/{tenant_id:str}/status", status_code=303)
    async def status(self, request: Request[Any, Any, Any], tenant: TenantDep, superuser: SuperuserDep) -> Redirect:
        """Suspend or resume (tenants.set_status)."""
        form = await form_of(request)
        await asyncio.to_thread(tenants.set_status, instance(request), tenant.id, form.get("status", ""))
        return Redirect(f"/admin/t/{tenant.id}", status_code=303)

    @post("/t/{tenant_id:str}/plan", status_code=303)
    async def plan(self, request: Request[Any, Any, Any], tenant: TenantDep, superuser: SuperuserDep) -> Redirect:
        """Move to another plan, with that plan's quotas (tenants.set_plan)."""
        form = await form_of(request)
        await asyncio.to_thread(tenants.set_plan, instance(request), tenant.id, form.get("plan", ""))
        return Redirect(f"/admin/t/{tenant.id}", status_code=303)

    @post("/t/{tenant_id:str}/quotas", status_code=303)
    async def quotas(self, request: Request[Any, Any, Any], tenant: TenantDep, superuser: SuperuserDep) -> Redirect:
        """Storage (`10GB`, `unlimited`; blank: unchanged), requests per minute, session lifetime (tenants.set_quotas)."""
        form = await form_of(request)
        raw = form.get("storage", "").strip()
        storage: int | None | type[Ellipsis] = parse_size(raw) if raw else ...  # blank: unchanged
        await asyncio.to_thread(
            tenants.set_quotas,
            instance(request),
            tenant.id,
            storage_bytes=storage,
            requests_per_minute=optional_int(form.get("requests_per_minute"), "requests_per_minute"),
            session_ttl_seconds=optional_int(form.get("session_ttl_seconds"), "session_ttl_seconds"),
        )
        return Redirect(f"/admin/t/{tenant.id}", status_code=303)
