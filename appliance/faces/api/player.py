"""The player and its runtime endpoints, authorised by a launch token in the path (no API key).

`/player/{token}` is the page; `/player/{token}/launch`, `/commit`, `/navigate` and `/state` are what its
JavaScript calls; `/player/{token}/content/...` serves the session's package files, so relative URLs
inside content stay under the same token. Responses may be framed by the origins of the
`frame_ancestors` setting (the same origin by default); the page has a Content-Security-Policy
(appliance.faces.api.middleware.PLAYER_PAGE_POLICY), the content none but `frame-ancestors`. With the
`content_origin` setting these routes answer on the content host(s) only (appliance.faces.api.hosts), and the
page's relative URLs (`/static`, its runtime calls, the content frame) stay there with it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from appliance.core.cmi5.packaging import Cmi5LaunchUnavailable
from appliance.faces.api import cmi5_player, commit_endpoint, player_content
from appliance.faces.api.deps import InstanceDep, learner_rate_limit
from appliance.faces.api.middleware import learner_headers, player_page_headers
from appliance.instance import Instance
from appliance.services.learning import runtime
from appliance.services.learning.launch_tokens import open_launch
from appliance.services.learning.player_requests import NavigateIn

_encode = msgspec.json.encode

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/player.css">
</head>
<body>
<div id="player" data-token="{token}">
  <nav id="toolbar" hidden>
    <button id="nav-previous" type="button" hidden>&larr; Previous</button>
    <button id="nav-continue" type="button" hidden>Next &rarr;</button>
    <span id="nav-title"></span>
    <button id="nav-suspendAll" type="button" hidden>Save and exit</button>
    <button id="nav-exitAll" type="button" hidden>Exit</button>
  </nav>
  <div id="body"><aside id="toc" hidden></aside><main id="stage"></main></div>
  <p id="message" role="status"></p>
  <p id="saving" role="status" aria-live="polite" data-state=""></p>
</div>
<script type="application/json" id="bootstrap">{bootstrap}</script>
<script type="module" src="/static/runtime/player.js"></script>
</body>
</html>
"""


def _session_of(inst: Instance, token: str) -> tuple[str, str]:
    """(tenant id, session id) for a valid token of an active tenant."""
    tenant_id, session_id, _ = open_launch(inst, token)
    return tenant_id, session_id


def _json(inst: Instance, data: Any) -> Response[Any]:
    """The answer encoded here, in the route's thread (launch and navigate are `sync_to_thread`): a
    5,000-activity course's answer is 2 MB, and Litestar would otherwise encode it on the event loop while
    every other tenant's request waits (bench/README.md, "Sequencing")."""
    headers = {**learner_headers(inst.config.frame_ancestors), "Cache-Control": "no-store"}
    return Response(_encode(data), media_type=MediaType.JSON, headers=headers)


class PlayerController(Controller):
    """Learner-facing routes (the launch token is the credential)."""

    path = "/player/{token:str}"
    tags = ["player"]
    include_in_schema = True
    guards = [learner_rate_limit]  # a per-session limit; learner traffic never counts against the tenant's

    @get("/", sync_to_thread=True, summary="The player page")
    def page(
        self,
        request: Request[Any, Any, Any],
        inst: InstanceDep,
        token: FromPath[str],
        au: FromQuery[str | None] = None,
        returned: FromQuery[str | None] = None,
    ) -> Response[str]:
        """HTML that installs the SCORM API and loads the content in a same-origin frame; for a cmi5
        session, the launch of an AU (`au`, else the first unsatisfied one: appliance.faces.api.cmi5_player),
        or, at the AUs' returnURL (`returned`), the course's overview, which launches nothing."""
        tenant_id, session_id = _session_of(inst, token)
        try:
            boot = runtime.bootstrap(inst, tenant_id, session_id)
        except Cmi5LaunchUnavailable:
            if returned is not None and au is None:
                return cmi5_player.overview(inst, tenant_id, session_id, request.url.path)
            return cmi5_player.page(request, inst, tenant_id, session_id, au)
        boot["token"] = token
        html = PAGE.format(
            title=_escape(boot["title"] or "Course"),
            token=_escape(token),
            bootstrap=json.dumps(boot).replace("</", "<\\/"),
        )
        headers = {**player_page_headers(inst.config.frame_ancestors), "Cache-Control": "no-store"}
        return Response(html, media_type="text/html", headers=headers)

    @post("/launch", status_code=200, sync_to_thread=True, summary="Start or resume the course")
    def launch(self, inst: InstanceDep, token: FromPath[str]) -> Response[Any]:
        """The activity to deliver with its initial CMI, and which controls to show."""
        tenant_id, session_id = _session_of(inst, token)
        return _json(inst, runtime.launch(inst, tenant_id, session_id))

    @post("/commit", status_code=200, summary="Store CMI changes (and Terminate)")
    async def commit(self, request: Request[Any, Any, Any], inst: InstanceDep, token: FromPath[str]) -> Response[Any]:
        """Accepts application/json or the text/plain body of a `sendBeacon`.

        Served by `appliance.faces.api.commit_endpoint` in front of the framework (the hot path); this route
        documents it and answers the same way through the same function if a request reaches it.
        """
        return _json(inst, await commit_endpoint.handle(inst, token, await request.body(), None))

    @post("/navigate", status_code=200, sync_to_thread=True, summary="A navigation request from the player")
    def navigate(self, inst: InstanceDep, token: FromPath[str], data: JSONBody[NavigateIn]) -> Response[Any]:
        """continue, previous, choice (with target), exitAll, suspendAll, ..."""
        tenant_id, session_id = _session_of(inst, token)
        return _json(inst, runtime.navigate(inst, tenant_id, session_id, data))

    @get("/state", sync_to_thread=True, summary="One SCO's stored data and the session version")
    def state(self, inst: InstanceDep, token: FromPath[str], activity: FromQuery[str]) -> Response[Any]:
        """Used by the player to recover from a 409."""
        tenant_id, session_id = _session_of(inst, token)
        return _json(inst, runtime.activity_state(inst, tenant_id, session_id, activity))

    @get(
        "/content/{path:path}",
        summary="The session's package files",
        include_in_schema=False,
        opt={"learner_rate_limit": False},  # one page of content may load hundreds of files
    )
    async def content(
        self, request: Request[Any, Any, Any], inst: InstanceDep, token: FromPath[str], path: FromPath[str]
    ) -> Response[Any]:
        """Files of the session's package version only, from the file store, with ETag and Range support."""
        tenant_id, session_id = await asyncio.to_thread(_session_of, inst, token)
        return await player_content.respond(request, inst, tenant_id, session_id, path)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
