"""LTI 1.3 routes: the tool's public endpoints, and the admin API for registrations and keys.

Public (a platform and a browser call them; no API key): `/lti/{tenant}/login` (OIDC login initiation,
GET or POST), `/lti/{tenant}/launch` (the id_token form post: a resource link redirects to the player, a
deep linking request shows the package picker), `/lti/{tenant}/deep-link/{pick}` (the teacher's choice,
answered with the auto-submitted signed response) and `/lti/{tenant}/jwks` (the tool's public keys).
None sets or reads a cookie: the login state lives in the tenant's database (appliance.services.lms.lti.launch) and
the player's launch token is in its URL, so a launch inside the platform's iframe works where
third-party cookies are blocked. The pages may be framed by the `frame_ancestors` origins, like the
player.

Admin (`/api/v1/lti/...`): registrations (CRUD), the tool's URLs to paste into a platform, the signing
keys and their rotation, and a resource link's context members (Names and Roles, appliance.services.lms.lti.nrps).
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, patch, post, route
from litestar.params import FromPath, JSONBody

from appliance.errors import ApplianceError, ValidationFailed
from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.faces.api.errors import STATUS_BY_CODE
from appliance.faces.api.middleware import _framing
from appliance.instance import Instance
from appliance.services.lms.lti import claims as c
from appliance.services.lms.lti import deep_linking, keys, launch, nrps, registrations
from appliance.services.lms.lti.deep_linking import Page
from appliance.services.tenancy.roles import ADMINS

MAX_FORM_BYTES = 64 * 1024


def tool_urls(inst: Instance, request: Request[Any, Any, Any], tenant_id: str) -> launch.ToolUrls:
    """The tool's URLs: on `public_url` when it is set, else on the host the request came to."""
    return launch.ToolUrls(inst.config.public_url or str(request.base_url).rstrip("/"), tenant_id)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def html_response(inst: Instance, page: Page) -> Response[str]:
    """A server-rendered LTI page: no script but its own nonce'd one, forms to itself (or the platform)."""
    framing = _framing(inst.config.frame_ancestors)
    script = f"'nonce-{page.script_nonce}'" if page.script_nonce else "'none'"
    action = "'self'" + (f" {_origin(page.form_action)}" if page.form_action else "")
    policy = (
        f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; base-uri 'none'; "
        f"form-action {action}; {framing['Content-Security-Policy']}"
    )
    headers = {**framing, "Content-Security-Policy": policy, "Cache-Control": "no-store"}
    return Response(page.html, media_type=MediaType.HTML, headers=headers)


ERROR_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>The course could not be opened</title>'
    "<style>body{{font:16px system-ui,sans-serif;margin:1.5rem}}code{{color:#555}}</style></head><body>"
    '<h1>The course could not be opened</h1><p id="error">{message}</p><p><code>{code}{reason}</code></p></body></html>'
)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """A browser navigating (the platform's form post, a redirect), rather than a program reading JSON."""
    return "text/html" in request.headers.get("accept", "")


def error_page(inst: Instance, exc: ApplianceError) -> Response[str]:
    """The contract's error as a page a learner in the platform's frame can read (same status and code)."""
    reason = exc.details.get("reason")
    page = ERROR_PAGE.format(
        message=html.escape(exc.message), code=exc.code, reason=f" ({html.escape(str(reason))})" if reason else ""
    )
    response = html_response(inst, Page(page))
    response.status_code = STATUS_BY_CODE.get(exc.code, 500)
    return response


async def _answer(request: Request[Any, Any, Any], inst: Instance, work: Callable[[], Response[Any]]) -> Response[Any]:
    """Run `work` off the event loop; a refusal is a page for a browser, the contract's JSON otherwise."""
    try:
        return await asyncio.to_thread(work)
    except ApplianceError as exc:
        if wants_html(request):
            return error_page(inst, exc)
        raise


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The urlencoded form of a POST (bounded), or {} for a GET."""
    if request.method != "POST":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationFailed("the form is too large", {"max_bytes": MAX_FORM_BYTES})
    form = await request.form()
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


class LtiToolController(Controller):
    """The tool's public LTI endpoints of one tenant (the platform's messages are the credentials)."""

    path = "/lti/{tenant_id:str}"
    tags = ["lti"]

    @route("/login", http_method=["GET", "POST"], summary="OIDC third-party login initiation")
    async def login(
        self, request: Request[Any, Any, Any], inst: InstanceDep, tenant_id: FromPath[str]
    ) -> Response[Any]:
        """Stores a state and nonce server-side and redirects (302) to the platform's authorisation endpoint."""
        params = {**{k: str(v) for k, v in request.query_params.items()}, **await _form(request)}
        urls = tool_urls(inst, request, tenant_id)

        def work() -> Response[Any]:
            location = launch.login(inst, tenant_id, params, urls)
            return Response(b"", status_code=302, headers={"Location": location, "Cache-Control": "no-store"})

        return await _answer(request, inst, work)

    @post("/launch", status_code=302, summary="The platform's id_token (resource link or deep linking request)")
    async def launch_(
        self, request: Request[Any, Any, Any], inst: InstanceDep, tenant_id: FromPath[str]
    ) -> Response[Any]:
        """A resource link: 302 to the player of the learner's (resumed) session. Deep linking: the picker."""
        form = await _form(request)
        urls = tool_urls(inst, request, tenant_id)
        jwks = request.app.state.jwks
        return await _answer(request, inst, lambda: _launch(inst, tenant_id, jwks, form, urls))

    @post("/deep-link/{pick_id:str}", status_code=200, summary="The teacher's package choice (Deep Linking)")
    async def pick(
        self, request: Request[Any, Any, Any], inst: InstanceDep, tenant_id: FromPath[str], pick_id: FromPath[str]
    ) -> Response[Any]:
        """A page that posts the signed LtiDeepLinkingResponse to the platform's deep_link_return_url."""
        form = await _form(request)
        urls = tool_urls(inst, request, tenant_id)

        def answer() -> Response[Any]:
            launch.active_tenant(inst, tenant_id)
            return html_response(inst, deep_linking.respond(inst, tenant_id, pick_id, form.get("package_id", ""), urls))

        return await _answer(request, inst, answer)

    @get("/jwks", sync_to_thread=True, summary="The tool's public keys (JWKS)")
    def jwks(self, inst: InstanceDep, tenant_id: FromPath[str]) -> Response[Any]:
        """The signing key and the keys retired within their grace period."""
        launch.active_tenant(inst, tenant_id)
        return Response(
            keys.jwks(inst, tenant_id), media_type=MediaType.JSON, headers={"Cache-Control": "public, max-age=300"}
        )


def _launch(inst: Instance, tenant_id: str, jwks: Any, form: dict[str, str], urls: launch.ToolUrls) -> Response[Any]:
    tenant = launch.active_tenant(inst, tenant_id)
    reg, claims = launch.verify_id_token(inst, tenant_id, jwks, form.get("id_token", ""), form.get("state", ""))
    if claims[c.MESSAGE_TYPE] == c.DEEP_LINKING_REQUEST:
        pick_id = deep_linking.start(inst, tenant_id, reg, claims)
        return html_response(inst, deep_linking.picker_page(inst, tenant_id, pick_id, urls))
    location = launch.resource_link_launch(inst, tenant, reg, claims, urls.base)
    return Response(b"", status_code=302, headers={"Location": location, "Cache-Control": "no-store"})


class RegistrationIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /lti/registrations."""

    issuer: str
    client_id: str
    deployment_ids: list[str]
    jwks_url: str
    auth_url: str
    token_url: str
    name: str | None = None


class RegistrationPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /lti/registrations/{id}: any of these (issuer and client id are the registration's identity)."""

    deployment_ids: list[str] | None = None
    jwks_url: str | None = None
    auth_url: str | None = None
    token_url: str | None = None
    name: str | None = None


class RotateIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /lti/keys/rotate."""

    grace_seconds: float = keys.DEFAULT_GRACE_SECONDS


class LtiAdminController(Controller):
    """The tenant's LTI platform registrations and tool keys: admins only."""

    path = "/api/v1/lti"
    tags = ["lti"]
    opt = {"roles": ADMINS}

    @get("/tool", sync_to_thread=True, summary="The tool's URLs to paste into a platform")
    def tool(self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep) -> dict[str, Any]:
        """Login, launch (redirect, deep linking) and JWKS URLs of this tenant's tool."""
        return tool_urls(inst, request, principal.tenant.id).json()

    @post("/registrations", status_code=201, sync_to_thread=True, summary="Register a platform")
    def create(self, principal: PrincipalDep, inst: InstanceDep, data: JSONBody[RegistrationIn]) -> dict[str, Any]:
        """201 with the registration."""
        return registrations.create_registration(inst, principal.tenant.id, **msgspec.structs.asdict(data)).json()

    @get("/registrations", sync_to_thread=True, summary="List platform registrations")
    def list_(self, principal: PrincipalDep, inst: InstanceDep) -> dict[str, Any]:
        """Every registration, oldest first."""
        return {"data": [r.json() for r in registrations.list_registrations(inst, principal.tenant.id)]}

    @get("/registrations/{registration_id:str}", sync_to_thread=True, summary="A platform registration")
    def show(self, principal: PrincipalDep, inst: InstanceDep, registration_id: FromPath[str]) -> dict[str, Any]:
        """One registration."""
        return registrations.get_registration(inst, principal.tenant.id, registration_id).json()

    @patch("/registrations/{registration_id:str}", sync_to_thread=True, summary="Change a platform registration")
    def update(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        registration_id: FromPath[str],
        data: JSONBody[RegistrationPatch],
    ) -> dict[str, Any]:
        """Fields left out keep their value."""
        changes = msgspec.structs.asdict(data)
        return registrations.update_registration(inst, principal.tenant.id, registration_id, changes).json()

    @delete("/registrations/{registration_id:str}", status_code=204, sync_to_thread=True, summary="Remove a platform")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, registration_id: FromPath[str]) -> None:
        """Its launches stop; their sessions stay."""
        registrations.delete_registration(inst, principal.tenant.id, registration_id)

    @get(
        "/registrations/{registration_id:str}/links/{link_id:str}/members",
        sync_to_thread=True,
        summary="A resource link's context members (Names and Roles)",
    )
    def members(
        self, principal: PrincipalDep, inst: InstanceDep, registration_id: FromPath[str], link_id: FromPath[str]
    ) -> dict[str, Any]:
        """The platform's membership of the link's context, every page read (docs/lti.md, "Names and Roles")."""
        return nrps.link_members(inst, principal.tenant.id, registration_id, link_id)

    @get("/keys", sync_to_thread=True, summary="The tool's signing keys")
    def keys_(self, principal: PrincipalDep, inst: InstanceDep) -> dict[str, Any]:
        """The active key and the retired ones still published (never a private key)."""
        return {"data": [k.json() for k in keys.published(inst, principal.tenant.id)]}

    @post("/keys/rotate", status_code=201, sync_to_thread=True, summary="Rotate the tool's signing key")
    def rotate(self, principal: PrincipalDep, inst: InstanceDep, data: JSONBody[RotateIn]) -> dict[str, Any]:
        """A new signing key now; the old one stays in the JWKS for `grace_seconds` (default a week)."""
        return keys.rotate(inst, principal.tenant.id, data.grace_seconds).json()
