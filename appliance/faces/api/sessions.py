"""Session routes: create (or resume), list, read, PATCH with optimistic locking, launch, delete."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from appliance.errors import Forbidden, NotFound
from appliance.faces.api import cmi5_player
from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.learning import sessions
from appliance.services.tenancy.auth import Principal
from appliance.services.tenancy.roles import READ, SESSION_STARTERS, bound_learner


class LearnerIn(msgspec.Struct, forbid_unknown_fields=True):
    """The learner a session is for."""

    id: str
    name: str | None = None


class SessionIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /sessions."""

    package_id: str
    learner: LearnerIn
    package_version: int | None = None
    resume: bool = True


class SessionPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /sessions/{id}: `version` is required; `activity` names the SCO in multi-SCO packages."""

    version: int
    cmi: dict[str, str] | None = None
    activity: str | None = None
    expires_at: str | None = None


def base_url(request: Request[Any, Any, Any]) -> str:
    """The scheme, host and port the client used, for absolute launch URLs."""
    return str(request.base_url).rstrip("/")


def _for_reader(principal: Principal, session: dict[str, Any]) -> dict[str, Any]:
    """A session as the caller may see it: a `read` caller gets no `launch_url`, which would let it write."""
    if principal.role == READ:
        session["launch_url"] = None
    return session


def _check_learner(principal: Principal, learner_id: str, *, missing: bool = False) -> None:
    """A learner JWT acts for its own `sub` only: another learner's session is Forbidden, or NotFound."""
    bound = bound_learner(principal.role, principal.kind, principal.subject)
    if bound is None or bound == learner_id:
        return
    if missing:  # as for another tenant's session: nothing tells it exists
        raise NotFound("no such session")
    raise Forbidden(
        "a learner may only start sessions for itself (learner.id must be the token's sub)",
        {"role": principal.role, "learner_id": learner_id},
    )


class SessionController(Controller):
    """Learner sessions of the authenticated tenant."""

    path = "/api/v1/sessions"
    tags = ["sessions"]

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a session (or resume the learner's incomplete one)",
        opt={"roles": SESSION_STARTERS},
    )
    def create(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, data: JSONBody[SessionIn]
    ) -> Response[dict[str, Any]]:
        """201 with a new session, or 200 with the learner's incomplete session when `resume` is true."""
        _check_learner(principal, data.learner.id)
        session, created = sessions.create_session(
            inst,
            principal.tenant,
            base_url(request),
            package_id=data.package_id,
            learner_id=data.learner.id,
            learner_name=data.learner.name,
            package_version=data.package_version,
            resume=data.resume,
        )
        return Response(session, status_code=201 if created else 200)

    @get("/", sync_to_thread=True, summary="List sessions")
    def list_(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        package_id: FromQuery[str | None] = None,
        learner_id: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
        cursor: FromQuery[str | None] = None,
        learner: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Sessions, oldest first, filtered by `package_id`, `learner_id` (exact), `status`, and `learner`
        (a search: learner id or name containing it, ASCII case ignored)."""
        filters = {"package_id": package_id, "learner_id": learner_id, "status": status, "learner": learner}
        return sessions.list_sessions(
            inst, principal.tenant, base_url(request), filters=filters, limit=limit, cursor=cursor
        )

    @get("/{session_id:str}", sync_to_thread=True, summary="A session; ?include=cmi adds its CMI data")
    def show(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        session_id: FromPath[str],
        include: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """One session."""
        wants_cmi = "cmi" in (include or "").split(",")
        found = sessions.get_session(inst, principal.tenant, session_id, base_url(request), include_cmi=wants_cmi)
        return _for_reader(principal, found)

    @patch("/{session_id:str}", sync_to_thread=True, summary="Update CMI data or expiry (optimistic locking)")
    def update(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        session_id: FromPath[str],
        data: JSONBody[SessionPatch],
    ) -> dict[str, Any]:
        """All or nothing: 409 VERSION_CONFLICT for a stale version, 422 CMI_VALIDATION_ERROR for bad CMI."""
        return sessions.patch_session(
            inst,
            principal.tenant,
            session_id,
            base_url(request),
            version=data.version,
            cmi=data.cmi,
            activity=data.activity,
            expires_at=data.expires_at,
        )

    @post(
        "/{session_id:str}/launch",
        status_code=200,
        sync_to_thread=True,
        summary="A fresh launch URL",
        opt={"roles": SESSION_STARTERS},
    )
    def launch(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        session_id: FromPath[str],
        au: FromQuery[str | None] = None,
        launch_mode: FromQuery[str] = "Normal",
    ) -> dict[str, Any]:
        """A new signed `launch_url`; 410 SESSION_EXPIRED for an expired session. A cmi5 session also
        launches an AU (`au`, else the first unsatisfied one) and answers its launch in `cmi5`."""
        if bound_learner(principal.role, principal.kind, principal.subject) is not None:
            owner = sessions.get_session(inst, principal.tenant, session_id, base_url(request))["learner"]["id"]
            _check_learner(principal, owner, missing=True)
        answer = sessions.relaunch(inst, principal.tenant, session_id, base_url(request))
        return cmi5_player.api_launch(request, inst, principal.tenant, session_id, answer, au, launch_mode)

    @delete("/{session_id:str}", status_code=204, sync_to_thread=True, summary="Delete a session")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, session_id: FromPath[str]) -> None:
        """Delete the session and its run-time data."""
        sessions.delete_session(inst, principal.tenant, session_id)
