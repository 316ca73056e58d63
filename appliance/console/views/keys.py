"""API keys: the tenant's keys, a new one (its secret shown this once), and revocation (appliance.apikeys).

A tenant admin may revoke only their tenant's keys: the key is looked up among `list_keys` of the
tenant the path names (which `provide_tenant` scoped), never by its id alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from appliance import apikeys
from appliance.console.auth import TenantDep, instance
from appliance.console.render import page
from appliance.console.views.forms import form_of
from appliance.errors import NotFound
from appliance.roles import DEFAULT_KEY_ROLE, ROLES


class KeyPages(Controller):
    """`/admin/t/{tenant_id}/keys…`."""

    path = "/t/{tenant_id:str}/keys"

    @get("/", sync_to_thread=True)
    def list_(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """The tenant's keys (never their secrets) and the form for a new one."""
        found = apikeys.list_keys(instance(request), tenant.id)
        return page(request, "keys.html", keys=found, roles=ROLES, default_role=DEFAULT_KEY_ROLE, created=None)

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Create a key; the page shows its secret this once."""
        form = await form_of(request)
        inst = instance(request)
        key, secret = await asyncio.to_thread(
            apikeys.create_key, inst, tenant.id, form.get("name") or None, form.get("role") or DEFAULT_KEY_ROLE
        )
        found = await asyncio.to_thread(apikeys.list_keys, inst, tenant.id)
        return page(
            request,
            "keys.html",
            status_code=201,
            keys=found,
            roles=ROLES,
            default_role=DEFAULT_KEY_ROLE,
            created={"key": key, "secret": secret},
        )

    @post("/{key_id:str}/revoke", status_code=303)
    async def revoke(self, request: Request[Any, Any, Any], tenant: TenantDep, key_id: FromPath[str]) -> Redirect:
        """Revoke one of this tenant's keys."""
        inst = instance(request)
        owned = await asyncio.to_thread(apikeys.list_keys, inst, tenant.id)
        if not any(k.id == key_id for k in owned):
            raise NotFound(f"no key {key_id!r}")
        await asyncio.to_thread(apikeys.revoke_key, inst, key_id)
        return Redirect(f"/admin/t/{tenant.id}/keys", status_code=303)
