"""LTI 1.3: the tool's URLs to paste into a platform, its signing keys (rotation), and the platform
registrations (register, change, remove), a page at a time (appliance.services.lms.lti.registrations and
appliance.services.lms.lti.keys, as `/api/v1/lti/…` does). Every URL a registration names is checked against the
outbound policy by the service when stored."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from appliance.faces.api.lti import tool_urls
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of, lines_of
from appliance.services.lms.lti import keys, registrations

FIELDS = ("name", "jwks_url", "auth_url", "token_url")


class LtiPages(Controller):
    """`/admin/t/{tenant_id}/lti…`."""

    path = "/t/{tenant_id:str}/lti"

    @get("/", sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
    ) -> Template:
        """The tool's URLs and keys, the registrations a page at a time, the form for a new one."""
        inst = instance(request)
        found = registrations.page_registrations(inst, tenant.id, limit=PAGE_SIZE, cursor=pager.cursor)
        return page(
            request,
            "lti.html",
            tool=tool_urls(inst, request, tenant.id),
            tool_keys=[k.json() for k in keys.published(inst, tenant.id)],
            registrations=[r.json() for r in found["data"]],
            pager=pager.with_result(found),
        )

    @post("/registrations", status_code=303)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Redirect:
        """Register a platform (issuer, client id, deployment ids and its three URLs)."""
        form = await form_of(request)
        made = await asyncio.to_thread(
            registrations.create_registration,
            instance(request),
            tenant.id,
            issuer=form.get("issuer", "").strip(),
            client_id=form.get("client_id", "").strip(),
            deployment_ids=lines_of(form.get("deployment_ids")),
            jwks_url=form.get("jwks_url", "").strip(),
            auth_url=form.get("auth_url", "").strip(),
            token_url=form.get("token_url", "").strip(),
            name=form.get("name") or None,
        )
        return Redirect(f"/admin/t/{tenant.id}/lti/registrations/{made.id}", status_code=303)

    @get("/registrations/{registration_id:str}", sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], tenant: TenantDep, registration_id: FromPath[str]) -> Template:
        """One registration, with the form that changes it."""
        found = registrations.get_registration(instance(request), tenant.id, registration_id)
        return page(request, "lti_registration.html", reg=found.json())

    @post("/registrations/{registration_id:str}", status_code=303)
    async def update(
        self, request: Request[Any, Any, Any], tenant: TenantDep, registration_id: FromPath[str]
    ) -> Redirect:
        """Change the name, URLs or deployment ids (issuer and client id are the registration's identity)."""
        form = await form_of(request)
        changes: dict[str, Any] = {f: form[f].strip() for f in FIELDS if form.get(f, "").strip()}
        if form.get("deployment_ids", "").strip():
            changes["deployment_ids"] = lines_of(form["deployment_ids"])
        await asyncio.to_thread(
            registrations.update_registration, instance(request), tenant.id, registration_id, changes
        )
        return Redirect(f"/admin/t/{tenant.id}/lti/registrations/{registration_id}", status_code=303)

    @post("/registrations/{registration_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], tenant: TenantDep, registration_id: FromPath[str]
    ) -> Redirect:
        """Remove the platform: its launches stop; their sessions stay."""
        await asyncio.to_thread(registrations.delete_registration, instance(request), tenant.id, registration_id)
        return Redirect(f"/admin/t/{tenant.id}/lti", status_code=303)

    @post("/keys/rotate", status_code=303)
    async def rotate(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Redirect:
        """A new signing key now; the old one stays published for a week (keys.DEFAULT_GRACE_SECONDS)."""
        await asyncio.to_thread(keys.rotate, instance(request), tenant.id)
        return Redirect(f"/admin/t/{tenant.id}/lti#keys", status_code=303)
