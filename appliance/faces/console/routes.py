"""The console's router: `/admin` with its pages, its static modules, its headers and its errors.

Headers on every console response: a strict CSP (scripts and styles from `/admin/static` only, no
inline script, `connect-src 'self'`, `form-action 'self'`, `frame-ancestors 'none'`), X-Frame-Options
DENY, nosniff, no referrer beyond the origin, and `Cache-Control: no-store` (pages show secrets once
and per-tenant data). Errors: a page that needs a session sends the browser to the login page; any
other appliance error is an error page with the contract's status; a script's request (it asks for
JSON) gets the contract's JSON error instead.
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import Provide
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from appliance.errors import ApplianceError, RateLimited, Unauthorized
from appliance.faces.api.deps import client_address
from appliance.faces.api.errors import STATUS_BY_CODE, error_response
from appliance.faces.api.middleware import response_headers_middleware
from appliance.faces.console import auth
from appliance.faces.console.auth import SessionDep
from appliance.faces.console.paging import provide_pager
from appliance.faces.console.render import page
from appliance.faces.console.views.analytics import AnalyticsPages
from appliance.faces.console.views.dispatches import DispatchPages
from appliance.faces.console.views.jwt import JwtPages
from appliance.faces.console.views.keys import KeyPages
from appliance.faces.console.views.lti import LtiPages
from appliance.faces.console.views.packages import PackagePages
from appliance.faces.console.views.server import ServerPages
from appliance.faces.console.views.sessions import SessionPages
from appliance.faces.console.views.tenants import TenantPages
from appliance.faces.console.views.webhooks import WebhookPages
from appliance.faces.console.views.xapi import XapiPages
from appliance.services.tenancy import admins
from appliance.services.tenancy.admins import LoginRefused
from appliance.services.tenancy.rate_limiters import auth_failure_limiter
from appliance.services.tenancy.ratelimit import AuthFailureLimiter

CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
CONSOLE_HEADERS = {
    "Content-Security-Policy": CONSOLE_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ADDRESS_FAILURES_PER_MINUTE = auth.ADDRESS_FAILURES_PER_MINUTE
ADDRESS_BLOCK_SECONDS = auth.ADDRESS_BLOCK_SECONDS


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return "application/json" in request.headers.get("accept", "") or bool(request.headers.get(auth.CSRF_HEADER))


def handle_console_error(request: Request[Any, Any, Any], exc: ApplianceError) -> Response[Any]:
    """Login redirect, error page, or (for scripts) the contract's JSON error."""
    if _wants_json(request):
        return error_response(exc.code, exc.message, exc.details)
    if isinstance(exc, Unauthorized):
        return Redirect("/admin/login", status_code=303)
    status = STATUS_BY_CODE.get(exc.code, 500)
    return page(request, "error.html", status_code=status, error=exc, status=status)  # type: ignore[return-value]


def login_limiter(request: Request[Any, Any, Any]) -> AuthFailureLimiter:
    """Failed console logins per address: in memory, or in Redis shared by the workers with `redis_url`
    (appliance.services.tenancy.rate_limiters); per account is in the registry (appliance.services.tenancy.admins)."""
    state = request.app.state
    limiter: AuthFailureLimiter | None = getattr(state, "console_login_failures", None)
    if limiter is None:
        config = auth.instance(request).config
        limiter = auth_failure_limiter(config, "console", ADDRESS_FAILURES_PER_MINUTE, ADDRESS_BLOCK_SECONDS)
        state.console_login_failures = limiter
    return limiter


class LoginPages(Controller):
    """Sign in and out, and the console's front door."""

    @get("/", sync_to_thread=False)
    def index(self, session: SessionDep) -> Redirect:
        """Superusers start at the tenant list; a tenant admin at their tenant."""
        if session.admin.tenant_id:
            return Redirect(f"/admin/t/{session.admin.tenant_id}")
        return Redirect("/admin/tenants")

    @get("/login", sync_to_thread=False)
    def login_form(self, request: Request[Any, Any, Any]) -> Template:
        """The login form, with a fresh double-submit token (its cookie is set alongside)."""
        token = auth.new_login_token()
        response = page(request, "login.html", login_csrf=token, message=None)
        response.cookies.append(auth.login_cookie(request, token))
        return response

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Check the login token, the address's block and the password; set the session cookie."""
        inst = auth.instance(request)
        form = await request.form()
        limiter, address, now = login_limiter(request), client_address(request), inst.clock.now()
        cookie_token = request.cookies.get(auth.LOGIN_COOKIE, "")
        sent = form.get(auth.CSRF_FIELD)
        if not cookie_token or not isinstance(sent, str) or not hmac.compare_digest(sent, cookie_token):
            return self._refused(request, 403, "The login form expired; please try again.")
        wait = limiter.retry_after(address, now)
        if wait is not None:
            raise RateLimited("too many failed logins from this address; try again later", {"retry_after": wait})
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            _, token = await asyncio.to_thread(admins.login, inst, username, password, address)
        except LoginRefused:
            limiter.failed(address, now)
            return self._refused(request, 401, "Wrong username or password, or the account is locked.")
        response = Redirect("/admin", status_code=303)
        response.cookies.append(auth.session_cookie(request, token))
        return response

    def _refused(self, request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
        token = auth.new_login_token()
        response = page(request, "login.html", status_code=status, login_csrf=token, message=message)
        response.cookies.append(auth.login_cookie(request, token))
        return response  # type: ignore[return-value]

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any], session: SessionDep) -> Response[Any]:
        """End the session (server side) and drop the cookie."""
        await asyncio.to_thread(admins.logout, auth.instance(request), session)
        response = Redirect("/admin/login", status_code=303)
        response.cookies.append(auth.session_cookie(request, ""))
        return response


def console_router() -> Router:
    """Everything under `/admin` (registered by appliance.faces.app; a content host 404s it: appliance.faces.api.hosts)."""
    static = create_static_files_router(
        path="/static",
        directories=[Path(__file__).parent / "static"],
        include_in_schema=False,
        send_as_attachment=False,
    )
    return Router(
        path="/admin",
        route_handlers=[
            LoginPages,
            TenantPages,
            PackagePages,
            SessionPages,
            AnalyticsPages,
            WebhookPages,
            KeyPages,
            XapiPages,
            LtiPages,
            DispatchPages,
            JwtPages,
            ServerPages,
            static,
        ],
        dependencies={
            "session": Provide(auth.provide_session),
            "tenant": Provide(auth.provide_tenant),
            "superuser": Provide(auth.provide_superuser),
            "pager": Provide(provide_pager, sync_to_thread=False),
        },
        exception_handlers={ApplianceError: handle_console_error},
        middleware=[response_headers_middleware(CONSOLE_HEADERS)],
        include_in_schema=False,
    )
