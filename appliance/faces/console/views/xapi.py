"""The xAPI LRS of a tenant: its credentials (HTTP Basic key and secret, the secret shown once;
revocation) and its forwarding targets (external LRSs that receive its statements: create, enable or
disable, delete) with each target's delivery log (appliance.services.lrs.credentials, appliance.services.lrs.forwarding,
the functions `/api/v1/xapi/…` and `scorm-appliance lrs-credentials` call).

The page has two paged lists, so the credentials' cursor is `?lrs_cursor=` and the targets' `?cursor=`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from appliance.faces.api.sessions import base_url
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, Pager, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of, lines_of
from appliance.services.lrs import credentials, forwarding_log, forwarding_targets
from appliance.services.tenancy.tenants import Tenant


class XapiPages(Controller):
    """`/admin/t/{tenant_id}/xapi…`."""

    path = "/t/{tenant_id:str}/xapi"

    @get("/", sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
        lrs_cursor: FromQuery[str | None] = None,
        lrs_back: FromQuery[str | None] = None,
    ) -> Template:
        """Credentials and forwarding targets, each a page at a time."""
        return self._page(request, tenant, pager, Pager.of(lrs_cursor, lrs_back, "lrs_"))

    def _page(
        self,
        request: Request[Any, Any, Any],
        tenant: Tenant,
        targets_pager: Pager,
        lrs_pager: Pager,
        status_code: int = 200,
        **shown: Any,
    ) -> Template:
        inst = instance(request)
        endpoint = credentials.endpoint_url(inst, base_url(request))
        creds = credentials.page_credentials(inst, tenant.id, limit=PAGE_SIZE, cursor=lrs_pager.cursor)
        targets = forwarding_targets.list_targets(inst, tenant, limit=PAGE_SIZE, cursor=targets_pager.cursor)
        return page(
            request,
            "xapi.html",
            status_code=status_code,
            lrs=creds["data"],
            lrs_pager=lrs_pager.with_result(creds),
            targets=targets["data"],
            targets_pager=targets_pager.with_result(targets),
            lrs_endpoint=endpoint,
            scopes=credentials.SCOPES,
            versions=forwarding_targets.VERSIONS,
            **{"created_lrs": None, **shown},
        )

    @post("/credentials", status_code=201)
    async def create_credential(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Issue an LRS credential; the page shows its secret this once."""
        form = await form_of(request)
        cred, secret = await asyncio.to_thread(
            credentials.create_credential,
            instance(request),
            tenant.id,
            form.get("name") or None,
            form.get("scope") or "all",
        )
        first, lrs_first = Pager.of(None, None), Pager.of(None, None, "lrs_")
        made = {"credential": cred, "secret": secret}
        return await asyncio.to_thread(self._page, request, tenant, first, lrs_first, 201, created_lrs=made)

    @post("/credentials/{credential_id:str}/revoke", status_code=303)
    async def revoke_credential(
        self, request: Request[Any, Any, Any], tenant: TenantDep, credential_id: FromPath[str]
    ) -> Redirect:
        """Revoke one of this tenant's credentials (another tenant's is not found)."""
        await asyncio.to_thread(credentials.revoke_credential, instance(request), credential_id, tenant.id)
        return Redirect(f"/admin/t/{tenant.id}/xapi", status_code=303)

    @post("/forwarding", status_code=303)
    async def create_target(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Redirect:
        """Add a forwarding target (forwarding_targets.create_target checks the URL against the outbound policy)."""
        form = await form_of(request)
        target = await asyncio.to_thread(
            forwarding_targets.create_target,
            instance(request),
            tenant,
            endpoint=form.get("endpoint", "").strip(),
            username=form.get("username") or None,
            password=form.get("password") or None,
            version=form.get("version") or "1.0.3",
            verbs=lines_of(form.get("verbs")),
            activity_prefixes=lines_of(form.get("activity_prefixes")),
            name=form.get("name") or None,
            enabled=True,
            forward_existing=form.get("forward_existing") == "true",
        )
        request.app.state.scheduler.wake()
        return Redirect(f"/admin/t/{tenant.id}/xapi/forwarding/{target['id']}", status_code=303)

    @get("/forwarding/{target_id:str}", sync_to_thread=True)
    def target(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        target_id: FromPath[str],
        pager: PagerDep,
        outcome: FromQuery[str | None] = None,
    ) -> Template:
        """A target: its state, backlog and counts, and its delivery log (newest first), a page at a time."""
        inst = instance(request)
        found = forwarding_targets.get_target(inst, tenant, target_id)
        log = forwarding_log.list_log(
            inst, tenant, target_id, outcome=outcome or None, limit=PAGE_SIZE, cursor=pager.cursor
        )
        return page(
            request,
            "forwarding.html",
            target=found,
            log=log["data"],
            pager=pager.with_result(log, outcome=outcome),
            outcome=outcome or "",
            outcomes=forwarding_log.OUTCOMES,
        )

    @post("/forwarding/{target_id:str}/enabled", status_code=303)
    async def enabled(self, request: Request[Any, Any, Any], tenant: TenantDep, target_id: FromPath[str]) -> Redirect:
        """Enable or disable the target (a disabled one keeps its cursor and resumes from it)."""
        form = await form_of(request)
        await asyncio.to_thread(
            forwarding_targets.update_target,
            instance(request),
            tenant,
            target_id,
            enabled=form.get("enabled") == "true",
        )
        request.app.state.scheduler.wake()
        return Redirect(f"/admin/t/{tenant.id}/xapi/forwarding/{target_id}", status_code=303)

    @post("/forwarding/{target_id:str}/delete", status_code=303)
    async def delete(self, request: Request[Any, Any, Any], tenant: TenantDep, target_id: FromPath[str]) -> Redirect:
        """Delete the target and its log."""
        await asyncio.to_thread(forwarding_targets.delete_target, instance(request), tenant, target_id)
        return Redirect(f"/admin/t/{tenant.id}/xapi", status_code=303)
