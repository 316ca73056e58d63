"""cmi5 routes: the AUs' one-time fetch URL, and the registration's waive and abandon operations.

The fetch URL (cmi5 §8.2) is on the API origin, beside the LRS, and is called by AUs from wherever they
are served (the content origin, or their own host): it answers CORS from any origin, as the LRS does;
the URL itself is the credential (a random key, stored hashed) and answers once. The session routes
(`/api/v1/sessions/{id}/cmi5/...`) take the API's authentication like every session route.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post, route
from litestar.params import FromPath, FromQuery, JSONBody

from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.learning import cmi5_registrations

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Cache-Control": "no-store",
}


class WaiveIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /sessions/{id}/cmi5/waive: the AU (its id or position) and cmi5's reason (§9.3.8)."""

    au: str
    reason: str


class Cmi5FetchController(Controller):
    """`/cmi5/fetch/{tenant}/{au session}?k=`: the AU session's auth token, once."""

    path = "/cmi5/fetch/{tenant_id:str}/{au_session_id:str}"
    tags = ["cmi5"]

    @post("/", status_code=200, sync_to_thread=True, summary="cmi5 fetch URL: the AU session's auth token, once")
    def fetch(
        self, inst: InstanceDep, tenant_id: FromPath[str], au_session_id: FromPath[str], k: FromQuery[str] = ""
    ) -> Response[dict[str, Any]]:
        """`{"auth-token": …}` the first time; cmi5's error JSON (`error-code` 1: already fetched, 2: the
        AU session ended, 3: not a fetch URL), still with 200, otherwise (§8.2.3, CATAPULT 8.2.2.0-3)."""
        try:
            return Response(cmi5_registrations.fetch(inst, tenant_id, au_session_id, k), headers=CORS)
        except cmi5_registrations.FetchRefused as refused:
            return Response(refused.body(), status_code=200, headers=CORS)  # §8.2.3: an error object, 200

    @route("/", http_method="OPTIONS", status_code=204, summary="CORS preflight of the fetch URL")
    async def preflight(self) -> Response[None]:
        """AUs call the fetch URL from their own origin."""
        return Response(None, status_code=204, headers={**CORS, "Access-Control-Max-Age": "600"})


class Cmi5SessionController(Controller):
    """Operations on a cmi5 session's registration: decisions of the LMS's administrators (admin and
    member roles, the default for writes), never of a learner, whose token names no other session."""

    path = "/api/v1/sessions/{session_id:str}/cmi5"
    tags = ["sessions"]

    @post("/waive", status_code=200, sync_to_thread=True, summary="Waive a cmi5 AU")
    def waive(
        self, principal: PrincipalDep, inst: InstanceDep, session_id: FromPath[str], data: JSONBody[WaiveIn]
    ) -> dict[str, Any]:
        """The AU satisfied whatever its moveOn: `waived` and `satisfied` statements written."""
        return cmi5_registrations.waive(inst, principal.tenant, session_id, data.au, data.reason)

    @post(
        "/abandon",
        status_code=200,
        sync_to_thread=True,
        summary="Abandon the open AU session",
    )
    def abandon(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        session_id: FromPath[str],
        au_session_id: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """`abandoned` for each AU session launched and not terminated (or the one `au_session_id`, the
        cmi5 session id); their tokens stop working."""
        return cmi5_registrations.abandon(inst, principal.tenant, session_id, au_session_id)


class Cmi5AuSessionController(Controller):
    """An AU session by its cmi5 session id (the `sessionid` context extension the AU sees)."""

    path = "/api/v1/cmi5/au-sessions/{au_session_id:str}"
    tags = ["sessions"]

    @post(
        "/abandon",
        status_code=200,
        sync_to_thread=True,
        summary="Abandon an AU session",
    )
    def abandon(self, principal: PrincipalDep, inst: InstanceDep, au_session_id: FromPath[str]) -> dict[str, Any]:
        """`abandoned` for the AU session if it is open (`abandoned: []` when it had already ended)."""
        return cmi5_registrations.abandon(inst, principal.tenant, None, au_session_id)


def api_base(request: Request[Any, Any, Any]) -> str:
    """The origin the request came to (the LRS's and fetch URL's when `public_url` is unset)."""
    return str(request.base_url).rstrip("/")
