"""The document resources: State (`/xapi/activities/state`), Activity Profile (`/xapi/activities/profile`)
and Agent Profile (`/xapi/agents/profile`), over appliance.services.lrs.documents.

GET with the document's id answers the document as stored (its content type, `ETag`, `Last-Modified`);
without it, the ids of the documents (updated after `since` when given). PUT replaces, POST merges JSON
objects, DELETE removes one document (or, for State, every document of the activity and agent).

Concurrency as the specification asks: `If-Match`/`If-None-Match` are honoured on every write (412
when not met). A profile PUT with neither over an existing document is a 409, and in 1.0.3 (as that
version's conformance suite requires) a profile PUT with neither header is refused (400) even when
there is no document yet. State writes need neither header, in both versions (Communication §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from appliance.core.xapi.agents import agent_ifi as agent_ifi_of
from appliance.faces.api.xapi import params
from appliance.faces.api.xapi.messages import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance
from appliance.services.lrs import documents as docs
from appliance.services.lrs.documents import Document, DocumentError, DocumentKey, Preconditions
from appliance.services.lrs.quota import check_lrs_storage


@dataclass(frozen=True)
class Resource:
    """What distinguishes the three document resources."""

    kind: str
    id_param: str  # stateId or profileId
    uses_activity: bool
    uses_agent: bool
    uses_registration: bool

    @property
    def names(self) -> set[str]:
        names = {self.id_param}
        if self.uses_activity:
            names.add("activityId")
        if self.uses_agent:
            names.add("agent")
        if self.uses_registration:
            names.add("registration")
        return names


STATE = Resource(docs.STATE, "stateId", True, True, True)
ACTIVITY_PROFILE = Resource(docs.ACTIVITY_PROFILE, "profileId", True, False, False)
AGENT_PROFILE = Resource(docs.AGENT_PROFILE, "profileId", False, True, False)


@dataclass(frozen=True)
class Target:
    """A request's parsed parameters: the document's key (document_id '' when absent), registration
    None when absent (every registration, for the multiple-document forms)."""

    key: DocumentKey
    registration: str | None
    since: float | None


def _target(resource: Resource, req: XapiRequest) -> Target:
    allowed = resource.names | ({"since"} if req.reading else set())
    params.check_names(req, allowed)
    activity_id = params.iri("activityId", params.required(req, "activityId")) if resource.uses_activity else ""
    agent_ifi = ""
    if resource.uses_agent:
        agent_ifi = agent_ifi_of(params.agent(params.required(req, "agent")))
    registration = params.uuid("registration", req.params.get("registration")) if resource.uses_registration else ""
    document_id = req.params.get(resource.id_param, "")
    if not document_id and (req.method in ("PUT", "POST") or (resource is not STATE and req.method == "DELETE")):
        raise XapiError(400, f"the {resource.id_param!r} parameter is required")
    since = params.timestamp("since", req.params.get("since"))
    key = DocumentKey(resource.kind, document_id, activity_id, agent_ifi, registration)
    return Target(key, registration if "registration" in req.params else None, since)


def _preconditions(req: XapiRequest) -> Preconditions:
    return Preconditions(req.headers.get("if-match"), req.headers.get("if-none-match"))


def _strictness(resource: Resource, version: str) -> str:
    """How a PUT without If-Match/If-None-Match is judged (appliance.services.lrs.documents.put_document).

    xAPI 1.0.3 exempts State (Communication §3.1 names only the profile resources: "state conflicts
    are unlikely"), and content speaking 1.0.x, such as Articulate Storyline's and cmi5 AUs, PUTs its
    state again and again without either header. xAPI 2.0 (IEEE 9274.1.1, Communication §4.1.4) lists
    the State Resource with the profiles, so a 2.0 PUT over an existing state needs a header (409).
    1.0.3 profile PUTs need one even for a new document, as that version's conformance suite requires.
    """
    if version.startswith("2."):
        return "existing"
    return "none" if resource is STATE else "always"


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _document_answer(doc: Document) -> XapiResponse:
    return XapiResponse(
        body=doc.content,
        content_type=doc.content_type,
        headers={"ETag": f'"{doc.etag}"', "Last-Modified": _http_date(doc.updated)},
    )


async def _get(inst: Instance, resource: Resource, target: Target, req: XapiRequest) -> XapiResponse:
    db = inst.tenant_db(req.tenant_id)
    key = target.key
    if key.document_id:
        doc = await db.read(lambda c: docs.get_document(c, key))
        if doc is None:
            raise XapiError(404, f"no document with {resource.id_param} {key.document_id!r}")
        return _document_answer(doc)
    ids, latest = await db.read(
        lambda c: docs.list_ids(
            c,
            key.kind,
            activity_id=key.activity_id,
            agent_ifi=key.agent_ifi,
            registration=target.registration,
            since=target.since,
        )
    )
    headers = {"Last-Modified": _http_date(latest)} if latest is not None else {}
    return XapiResponse(body=ids, headers=headers)


async def _write(inst: Instance, resource: Resource, target: Target, req: XapiRequest) -> XapiResponse:
    db = inst.tenant_db(req.tenant_id)
    key, pre, now = target.key, _preconditions(req), inst.clock.now()
    content_type = req.headers.get("content-type")

    def run(conn: Any) -> object:
        if req.method == "PUT":
            return docs.put_document(
                conn, key, content_type, req.body, now, pre, require_precondition=_strictness(resource, req.version)
            )
        if req.method == "POST":
            return docs.post_document(conn, key, content_type, req.body, now, pre)
        if key.document_id:
            return docs.delete_document(conn, key, pre)
        return docs.delete_documents(
            conn, key.kind, activity_id=key.activity_id, agent_ifi=key.agent_ifi, registration=target.registration
        )

    if req.method in ("PUT", "POST") and req.cmi5 is None:
        assert req.tenant is not None
        check_lrs_storage(inst, req.tenant, len(req.body))
    try:
        await db.write(run)
    except DocumentError as exc:
        raise XapiError(exc.status, exc.message) from None
    return XapiResponse(status=204, content_type=None)


async def _handle(inst: Instance, resource: Resource, req: XapiRequest) -> XapiResponse:
    if req.method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise XapiError(405, f"the document resources do not answer {req.method}")
    target = _target(resource, req)
    if req.reading:
        return await _get(inst, resource, target, req)
    return await _write(inst, resource, target, req)


async def handle_state(inst: Instance, req: XapiRequest) -> XapiResponse:
    """`/xapi/activities/state`: activityId, agent, registration (optional), stateId (or since)."""
    return await _handle(inst, STATE, req)


async def handle_activity_profile(inst: Instance, req: XapiRequest) -> XapiResponse:
    """`/xapi/activities/profile`: activityId, profileId (or since)."""
    return await _handle(inst, ACTIVITY_PROFILE, req)


async def handle_agent_profile(inst: Instance, req: XapiRequest) -> XapiResponse:
    """`/xapi/agents/profile`: agent, profileId (or since)."""
    return await _handle(inst, AGENT_PROFILE, req)
