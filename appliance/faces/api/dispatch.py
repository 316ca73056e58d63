"""Dispatch routes: the admin API (`/api/v1/dispatches`) and the relay a dispatch ZIP frames (`/dispatch/...`).

The relay page `/dispatch/{token}/play` is what the dispatch SCO, running in another LMS, frames: it
starts or resumes the remote learner's session and frames the ordinary player on it; its script sends
the session's result to the SCO by `postMessage`, to the origin that said `hello` from its parent
window only (appliance.services.lms.dispatch). A refused launch (disabled, expired, full) is a page that says why,
and tells the SCO, which shows it in the LMS. The relay reads results from `/dispatch/{token}/result`,
authorised by the player's launch token. No cookie anywhere.

The relay reads the player's end from the player's window (`scormPlayer.ended`), so it is served where
the player is: with a `content_origin`, on the tenant's content host (appliance.faces.api.hosts lets
`/dispatch/...` through there), and the ZIP points at that origin. Served on the API's origin instead,
the relay could not read the player, and the player and its content frame would refuse to be framed
by it (`frame-ancestors` names every ancestor, and the API's origin is not the content's `'self'`).
On the API's host in that mode the relay answers a refusal that says the ZIP must be downloaded again.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from appliance.errors import ApplianceError, NotFound, ValidationFailed
from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.faces.api.lti import tool_urls
from appliance.faces.api.middleware import _framing
from appliance.instance import Instance
from appliance.services.learning.launch_tokens import open_launch
from appliance.services.library.origins import host_name, parse_content_origin
from appliance.services.lms import dispatch
from appliance.services.lms.lti.launch import active_tenant
from appliance.services.tenancy.roles import WRITERS

RELAY = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>html,body{margin:0;height:100%}iframe{border:0;width:100%;height:100%;display:block}</style></head>
<body><iframe id="player" title="__TITLE__" src="__PLAYER__" allow="fullscreen"></iframe>
<script nonce="__NONCE__">
(function () {
  var RESULT = __RESULT__, parentOrigin = null, last = null;
  function playerEnded() {
    try { var p = document.getElementById("player").contentWindow.scormPlayer; return Boolean(p && p.ended); }
    catch (e) { return false; }  // never on another origin: the relay is served where the player is
  }
  function poll() {
    if (!parentOrigin) return;
    // Read before the fetch: the player ends after its Terminate is stored, so what this fetch
    // returns is then the final result (read after, a fetch begun earlier could answer stale data).
    var over = playerEnded();
    fetch(RESULT, { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        var key = JSON.stringify(d) + over;
        if (key === last) return;
        last = key;
        window.parent.postMessage({ type: over ? "ended" : "result", result: d }, parentOrigin);
      })
      .catch(function () {});
  }
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data || event.data.type !== "hello") return;
    parentOrigin = event.origin;
    last = null;
    poll();
  });
  setInterval(poll, 1000);
})();
</script></body></html>
"""

REFUSED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Not available</title>
<style>body{font:16px system-ui,sans-serif;margin:1.5rem}</style></head>
<body><p id="refused">__MESSAGE__</p>
<script nonce="__NONCE__">window.parent.postMessage({ type: "refused", message: __JSON__ }, "*");</script>
</body></html>
"""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(inst: Instance, body: str, nonce: str, frame_src: str | None, status: int = 200) -> Response[str]:
    framing = _framing(inst.config.frame_ancestors)
    frames = frame_src or "'none'"
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; "
        f"frame-src {frames}; base-uri 'none'; form-action 'none'; {framing['Content-Security-Policy']}"
    )
    headers = {**framing, "Content-Security-Policy": policy, "Cache-Control": "no-store"}
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=headers)


def _refused(inst: Instance, exc: ApplianceError) -> Response[str]:
    nonce = secrets.token_urlsafe(16)
    body = (
        REFUSED.replace("__NONCE__", nonce)
        .replace("__MESSAGE__", html.escape(exc.message))
        .replace("__JSON__", json.dumps(exc.message).replace("</", "<\\/"))
    )
    status = 404 if isinstance(exc, NotFound) else 403 if exc.code == "FORBIDDEN" else 422
    return _page(inst, body, nonce, None, status)


def _check_relay_host(inst: Instance, request: Request[Any, Any, Any]) -> None:
    """With a content origin, the relay answers on a content host only (see the module docstring): a
    ZIP downloaded before the setting was turned on frames the API's host, and learns it is out of date."""
    if inst.config.content_origin is None:
        return
    if not parse_content_origin(inst.config.content_origin).classify(host_name(request.headers.get("host", "")))[0]:
        raise NotFound(
            "this course package is out of date: its provider must download the dispatch ZIP again",
            {"reason": "content_origin"},
        )


def relay_base(inst: Instance, request: Request[Any, Any, Any], tenant_id: str) -> str:
    """Where a tenant's dispatch ZIPs find the relay: its content origin, else the API's public URL."""
    if inst.config.content_origin is not None:
        return parse_content_origin(inst.config.content_origin).url_for(tenant_id)
    return tool_urls(inst, request, tenant_id).base


class DispatchRelayController(Controller):
    """What a dispatch ZIP in another LMS talks to (the dispatch's signed token is the credential)."""

    path = "/dispatch/{token:str}"
    tags = ["dispatch"]

    @get("/play", sync_to_thread=True, summary="The relay page a dispatch SCO frames")
    def play(
        self,
        request: Request[Any, Any, Any],
        inst: InstanceDep,
        token: FromPath[str],
        learner_id: FromQuery[str] = "",
        learner_name: FromQuery[str] = "",
    ) -> Response[str]:
        """Starts or resumes the remote learner's session and frames the player; a refusal says why."""
        base = tool_urls(inst, request, "").base
        try:
            tenant_id, dispatch_id = dispatch.open_token(inst, token)
            _check_relay_host(inst, request)
            tenant = active_tenant(inst, tenant_id)
            session = dispatch.start(inst, tenant, dispatch_id, learner_id, learner_name, base)
        except ApplianceError as exc:
            return _refused(inst, exc)
        player = str(session["launch_url"])
        launch_token = player.rsplit("/player/", 1)[1]
        result = f"/dispatch/{token}/result?launch={launch_token}"
        nonce = secrets.token_urlsafe(16)
        title = html.escape(session.get("package_id") or "Course")
        body = (
            RELAY.replace("__NONCE__", nonce)
            .replace("__TITLE__", title)
            .replace("__PLAYER__", html.escape(player, quote=True))
            .replace("__RESULT__", json.dumps(result).replace("</", "<\\/"))
        )
        frame_src = "'self'" if _origin(player) == _origin(base) else _origin(player)
        return _page(inst, body, nonce, frame_src)

    @get("/result", sync_to_thread=True, summary="The session's result, for the relay")
    def result(
        self, request: Request[Any, Any, Any], inst: InstanceDep, token: FromPath[str], launch: FromQuery[str]
    ) -> Response[Any]:
        """Status, completion, success, score, total time and location of the launch token's session."""
        tenant_id, dispatch_id = dispatch.open_token(inst, token)
        _check_relay_host(inst, request)
        launch_tenant, session_id, _ = open_launch(inst, launch)
        if launch_tenant != tenant_id:
            raise NotFound("no such session for this dispatch")
        data = dispatch.result(inst, tenant_id, dispatch_id, session_id)
        return Response(data, media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})


class DispatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /dispatches."""

    package_id: str
    name: str | None = None
    learner_cap: int | None = None
    expires_at: str | None = None
    enabled: bool = True


PATCH_FIELDS = {"enabled", "name", "learner_cap", "expires_at"}


class DispatchController(Controller):
    """The tenant's dispatches: create, list, show, enable/disable, delete, download the ZIP."""

    path = "/api/v1/dispatches"
    tags = ["dispatch"]

    @post("/", status_code=201, sync_to_thread=True, summary="Create a dispatch of a package")
    def create(self, principal: PrincipalDep, inst: InstanceDep, data: JSONBody[DispatchIn]) -> dict[str, Any]:
        """201 with the dispatch and its counts."""
        return dispatch.create_dispatch(inst, principal.tenant.id, **msgspec.structs.asdict(data))

    @get("/", sync_to_thread=True, summary="List dispatches")
    def list_(
        self, principal: PrincipalDep, inst: InstanceDep, package_id: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        """Every dispatch (of one package with `?package_id=`), oldest first, with counts."""
        return {"data": dispatch.list_dispatches(inst, principal.tenant.id, package_id)}

    @get("/{dispatch_id:str}", sync_to_thread=True, summary="A dispatch and its counts")
    def show(self, principal: PrincipalDep, inst: InstanceDep, dispatch_id: FromPath[str]) -> dict[str, Any]:
        """Launches, learners, sessions, completed and passed."""
        return dispatch.get_dispatch(inst, principal.tenant.id, dispatch_id)

    @patch("/{dispatch_id:str}", sync_to_thread=True, summary="Enable, disable or change a dispatch")
    def update(
        self, principal: PrincipalDep, inst: InstanceDep, dispatch_id: FromPath[str], data: JSONBody[dict[str, Any]]
    ) -> dict[str, Any]:
        """Any of `enabled`, `name`, `learner_cap`, `expires_at` (null clears a cap or an expiry)."""
        unknown = sorted(set(data) - PATCH_FIELDS)
        if unknown:
            raise ValidationFailed(
                f"unknown field(s): {', '.join(unknown)}",
                {"errors": [{"field": f, "message": "unknown"} for f in unknown]},
            )
        return dispatch.update_dispatch(inst, principal.tenant.id, dispatch_id, data)

    @delete("/{dispatch_id:str}", status_code=204, sync_to_thread=True, summary="Delete a dispatch")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, dispatch_id: FromPath[str]) -> None:
        """Its ZIPs stop launching; the sessions stay."""
        dispatch.delete_dispatch(inst, principal.tenant.id, dispatch_id)

    @get(
        "/{dispatch_id:str}/package",
        sync_to_thread=True,
        summary="Download the dispatch ZIP",
        opt={"roles": WRITERS},  # the ZIP carries the dispatch's token
    )
    def download(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        dispatch_id: FromPath[str],
        format: Annotated[str, QueryParameter(pattern=r"^(1\.2|2004)$")] = "1.2",  # noqa: A002 (the query name)
    ) -> Response[bytes]:
        """A SCORM 1.2 (default) or 2004 ZIP to import into another LMS."""
        base = relay_base(inst, request, principal.tenant.id)
        name, data = dispatch.package_zip(inst, principal.tenant.id, dispatch_id, format, base)
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )
