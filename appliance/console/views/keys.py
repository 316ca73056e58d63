"""API keys and xAPI LRS credentials: the tenant's keys and credentials, a new one (its secret shown
this once), and revocation (appliance.apikeys, appliance.lrs.credentials).

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
from appliance.api.sessions import base_url
from appliance.console.auth import TenantDep, instance
from appliance.console.render import page
from appliance.console.views.forms import form_of
from appliance.errors import NotFound
from appliance.lrs import credentials
from appliance.roles import DEFAULT_KEY_ROLE, ROLES
from appliance.tenants import Tenant


class KeyPages(Controller):
    """`/admin/t/{tenant_id}/keys…`."""

    path = "/t/{tenant_id:str}/keys"

    @get("/", sync_to_thread=True)
    def list_(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """The tenant's keys (never their secrets) and the form for a new one."""
        return self._page(request, tenant)

    def _page(self, request: Request[Any, Any, Any], tenant: Tenant, status_code: int = 200, **shown: Any) -> Template:
        """The page, with a secret just made (`created`, `created_lrs`) shown this once."""
        inst = instance(request)
        return page(
            request,
            "keys.html",
            status_code=status_code,
            keys=apikeys.list_keys(inst, tenant.id),
            lrs=credentials.list_credentials(inst, tenant.id),
            lrs_endpoint=credentials.endpoint_url(inst, base_url(request)),
            scopes=credentials.SCOPES,
            roles=ROLES,
            default_role=DEFAULT_KEY_ROLE,
            **{"created": None, "created_lrs": None, **shown},
        )

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Create a key; the page shows its secret this once."""
        form = await form_of(request)
        inst = instance(request)
        key, secret = await asyncio.to_thread(
            apikeys.create_key, inst, tenant.id, form.get("name") or None, form.get("role") or DEFAULT_KEY_ROLE
        )
        return await asyncio.to_thread(self._page, request, tenant, 201, created={"key": key, "secret": secret})

    @post("/lrs", status_code=201)
    async def create_lrs(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Issue an xAPI LRS credential (HTTP Basic key and secret); the page shows the secret this once."""
        form = await form_of(request)
        cred, secret = await asyncio.to_thread(
            credentials.create_credential,
            instance(request),
            tenant.id,
            form.get("name") or None,
            form.get("scope") or "all",
        )
        return await asyncio.to_thread(
            self._page, request, tenant, 201, created_lrs={"credential": cred, "secret": secret}
        )

    @post("/lrs/{credential_id:str}/revoke", status_code=303)
    async def revoke_lrs(
        self, request: Request[Any, Any, Any], tenant: TenantDep, credential_id: FromPath[str]
    ) -> Redirect:
        """Revoke one of this tenant's LRS credentials (another tenant's is not found)."""
        await asyncio.to_thread(credentials.revoke_credential, instance(request), credential_id, tenant.id)
        return Redirect(f"/admin/t/{tenant.id}/keys", status_code=303)

    @post("/{key_id:str}/revoke", status_code=303)
    async def revoke(self, request: Request[Any, Any, Any], tenant: TenantDep, key_id: FromPath[str]) -> Redirect:
        """Revoke one of this tenant's keys."""
        inst = instance(request)
        owned = await asyncio.to_thread(apikeys.list_keys, inst, tenant.id)
        if not any(k.id == key_id for k in owned):
            raise NotFound(f"no key {key_id!r}")
        await asyncio.to_thread(apikeys.revoke_key, inst, key_id)
        return Redirect(f"/admin/t/{tenant.id}/keys", status_code=303)
