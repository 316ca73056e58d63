"""JWT settings of a tenant: how browser users' JWTs are verified (issuer, audience, the JWKS, the
claims naming the tenant and the role). The same `tenants.set_jwt` as `scorm-appliance tenants
set-jwt`; docs/authentication.md.

A JWKS URL is fetched through the outbound guard when a token is checked (appliance.services.tenancy.jwtauth). A JWKS
*file* is a path on the server, which only a superuser may name: a tenant admin choosing a server path
would be reading the server's files through the console. A tenant admin saving the form without a URL
keeps the file a superuser set.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from appliance.errors import Forbidden, ValidationFailed
from appliance.faces.console.auth import SessionDep, TenantDep, instance
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of
from appliance.instance import Instance
from appliance.services.delivery import outbound
from appliance.services.tenancy import tenants
from appliance.services.tenancy.roles import DEFAULT_JWT_ROLE, ROLES
from appliance.services.tenancy.tenants import JwtConfig, Tenant


def check_jwks_url(inst: Instance, url: str) -> None:
    """Refuse at once a JWKS URL the outbound guard would refuse at every token (a clear error now,
    rather than every JWT failing later), as LTI registrations' URLs are checked when stored."""
    try:
        outbound.check_url(url, outbound.policy_for(inst.config.outbound_allow))
    except outbound.OutboundRefused as exc:
        raise ValidationFailed(
            f"jwks_url: {exc.message}", {"errors": [{"field": "jwks_url", "message": exc.message}]}
        ) from exc


def config_of(form: dict[str, str], tenant: Tenant, superuser: bool) -> JwtConfig:
    """The JwtConfig a submitted form describes (tenants.set_jwt checks the rest)."""
    missing = [f for f in ("issuer", "audience") if not form.get(f, "").strip()]
    if missing:
        raise ValidationFailed(
            f"{' and '.join(missing)} required", {"errors": [{"field": f, "message": "required"} for f in missing]}
        )
    url = form.get("jwks_url", "").strip() or None
    file = form.get("jwks_file", "").strip() or None
    if file and not superuser:
        raise Forbidden("only a superuser may name a JWKS file on the server; give a JWKS URL")
    if not superuser and url is None and tenant.jwt is not None:
        file = tenant.jwt.jwks_file  # kept as the superuser set it
    return JwtConfig(
        issuer=form["issuer"].strip(),
        audience=form["audience"].strip(),
        jwks_file=None if url else file,
        jwks_url=url,
        claim=form.get("claim", "").strip() or "org_id",
        claim_value=form.get("claim_value", "").strip() or None,
        role_claim=form.get("role_claim", "").strip() or "role",
        role_prefix=form.get("role_prefix", "").strip(),
        default_role=form.get("default_role", "").strip() or DEFAULT_JWT_ROLE,
    )


class JwtPages(Controller):
    """`/admin/t/{tenant_id}/jwt…`."""

    path = "/t/{tenant_id:str}/jwt"

    @get("/", sync_to_thread=False)
    def show(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """The tenant's JWT settings (or none) and the form that sets them."""
        return page(request, "jwt.html", jwt=tenant.jwt, roles=ROLES, default_role=DEFAULT_JWT_ROLE)

    @post("/", status_code=303)
    async def save(self, request: Request[Any, Any, Any], tenant: TenantDep, session: SessionDep) -> Redirect:
        """Accept JWTs verified against these settings (replacing any before)."""
        form = await form_of(request)
        config = config_of(form, tenant, session.admin.superuser)
        if config.jwks_url:
            check_jwks_url(instance(request), config.jwks_url)
        await asyncio.to_thread(tenants.set_jwt, instance(request), tenant.id, config)
        return Redirect(f"/admin/t/{tenant.id}/jwt", status_code=303)

    @post("/remove", status_code=303)
    async def remove(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Redirect:
        """Stop accepting JWTs for this tenant."""
        await asyncio.to_thread(tenants.set_jwt, instance(request), tenant.id, None)
        return Redirect(f"/admin/t/{tenant.id}/jwt", status_code=303)
