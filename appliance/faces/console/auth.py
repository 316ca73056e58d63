"""Who is asking: the console's session cookie, its CSRF check, the login page, and the tenant scope.

Every console handler that needs a signed-in admin declares the `session` dependency
(`provide_session`), and every one that acts on a tenant declares `tenant` (`provide_tenant`), so the
three checks live here once:

- **The session** comes from the cookie (`appliance.services.tenancy.admins.session_for`: idle and absolute expiry).
- **CSRF**: a request that is not GET/HEAD must carry the session's synchronizer token, in the
  `X-CSRF-Token` header (scripts: the upload, the polling actions) or the form field `csrf_token`
  (every form). SameSite=Strict already keeps other sites' requests from carrying the cookie; the token
  is what also stops a page on this origin that is not the console (course content, when no separate
  content origin is set: docs/security.md) from acting with it.
- **The tenant scope**: `appliance.services.tenancy.admins.scoped_tenant`; another tenant is 404.

The cookie is HttpOnly, SameSite=Strict, Path=/admin, and Secure (with the `__Host-`-like strictness
the browser enforces for Secure cookies) whenever the console is served over TLS: the request came in
as https (uvicorn sets the scheme from a trusted proxy's headers) or `public_url` is https. It has no
Max-Age: it is a browser-session cookie, and the server ends it sooner by its expiries.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath

from appliance.errors import Forbidden, Unauthorized
from appliance.instance import Instance
from appliance.services.tenancy import admins
from appliance.services.tenancy.admins import Admin, ConsoleSession
from appliance.services.tenancy.tenants import Tenant

COOKIE = "sa_console"
LOGIN_COOKIE = "sa_console_login"  # the login form's CSRF token (double-submit: there is no session yet)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
ADDRESS_FAILURES_PER_MINUTE = 10  # failed console logins per address per minute before it is blocked
ADDRESS_BLOCK_SECONDS = 15 * 60


def instance(request: Request[Any, Any, Any]) -> Instance:
    """The appliance instance of the running app."""
    inst: Instance = request.app.state.instance
    return inst


def secure(request: Request[Any, Any, Any]) -> bool:
    """Whether the console is served over TLS (the cookie then gets Secure)."""
    public_url = instance(request).config.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def session_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    """The session cookie carrying `token` (empty with max_age 0: the cookie's removal)."""
    return Cookie(
        key=COOKIE,
        value=token,
        path="/admin",
        httponly=True,
        secure=secure(request),
        samesite="strict",
        max_age=None if token else 0,
    )


def login_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    """The login form's CSRF cookie, for ten minutes."""
    return Cookie(
        key=LOGIN_COOKIE,
        value=token,
        path="/admin/login",
        httponly=True,
        secure=secure(request),
        samesite="strict",
        max_age=600,
    )


def new_login_token() -> str:
    """A fresh token for the login form and its cookie."""
    return secrets.token_urlsafe(24)


async def presented_csrf(request: Request[Any, Any, Any]) -> str | None:
    """The CSRF token a request carries: the header, else the form's field (never the raw upload body)."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def provide_session(request: Request[Any, Any, Any]) -> ConsoleSession:
    """The signed-in admin's session; for a state-changing method, only with its CSRF token."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise Unauthorized("not signed in")
    session = await asyncio.to_thread(admins.session_for, instance(request), token)
    if request.method not in SAFE_METHODS and not admins.csrf_ok(session, await presented_csrf(request)):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again", {"reason": "csrf"})
    request.scope.setdefault("state", {})["console_session"] = session
    return session


async def provide_tenant(request: Request[Any, Any, Any], session: SessionDep, tenant_id: FromPath[str]) -> Tenant:
    """The tenant of the path (`/admin/t/{tenant_id}/…`), if the admin may see it (else 404)."""
    tenant = await asyncio.to_thread(admins.scoped_tenant, instance(request), session.admin, tenant_id)
    request.scope.setdefault("state", {})["console_tenant"] = tenant
    return tenant


async def provide_superuser(session: SessionDep) -> Admin:
    """The admin, when a superuser (server-wide pages and actions); a tenant admin gets 403."""
    admins.require_superuser(session.admin)
    return session.admin


SessionDep = NamedDependency[ConsoleSession]  # `session`: provide_session
TenantDep = NamedDependency[Tenant]  # `tenant`: provide_tenant
SuperuserDep = NamedDependency[Admin]  # `superuser`: provide_superuser
