"""API keys: the tenant's keys a page at a time, a new one (its secret shown this once), and revocation
(appliance.services.tenancy.apikeys). The xAPI LRS credentials have their own page (views/xapi.py).

A tenant admin may revoke only their tenant's keys: the key is looked up by its id and then checked to
belong to the tenant the path names (which `provide_tenant` scoped); another tenant's key is 404.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from appliance.errors import NotFound
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, Pager, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of
from appliance.services.tenancy import apikeys
from appliance.services.tenancy.roles import DEFAULT_KEY_ROLE, ROLES
from appliance.services.tenancy.tenants import Tenant


class KeyPages(Controller):
    """`/admin/t/{tenant_id}/keys…`."""

    path = "/t/{tenant_id:str}/keys"

    @get("/", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
    ) -> Template:
        """The tenant's keys (never their secrets), a page at a time, and the form for a new one."""
        return self._page(request, tenant, pager)

    def _page(
        self, request: Request[Any, Any, Any], tenant: Tenant, pager: Pager, status_code: int = 200, **shown: Any
    ) -> Template:
        """The page, with a secret just made (`created`) shown this once."""
        found = apikeys.page_keys(instance(request), tenant.id, limit=PAGE_SIZE, cursor=pager.cursor)
        return page(
            request,
            "keys.html",
            status_code=status_code,
            keys=found["data"],
            pager=pager.with_result(found),
            roles=ROLES,
            default_role=DEFAULT_KEY_ROLE,
            **{"created": None, **shown},
        )

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Create a key; the page shows its secret this once."""
        form = await form_of(request)
        key, secret = await asyncio.to_thread(
            apikeys.create_key,
            instance(request),
            tenant.id,
            form.get("name") or None,
            form.get("role") or DEFAULT_KEY_ROLE,
        )
        first = Pager.of(None, None)
        return await asyncio.to_thread(self._page, request, tenant, first, 201, created={"key": key, "secret": secret})

    @post("/{key_id:str}/revoke", status_code=303)
    async def revoke(self, request: Request[Any, Any, Any], tenant: TenantDep, key_id: FromPath[str]) -> Redirect:
        """Revoke one of this tenant's keys."""
        inst = instance(request)
        key = await asyncio.to_thread(apikeys.get_key, inst, key_id)
        if key.tenant_id != tenant.id:
            raise NotFound(f"no key {key_id!r}")
        await asyncio.to_thread(apikeys.revoke_key, inst, key_id)
        return Redirect(f"/admin/t/{tenant.id}/keys", status_code=303)
