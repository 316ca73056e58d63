"""The Activities and Agents resources: an activity's canonical definition, an agent's Person object.

`GET /xapi/activities?activityId=…` answers the Activity object with the definition merged from every
statement that carried one (appliance.services.lrs.activities), or just its id when none did: the specification
asks for an Activity object either way. `GET /xapi/agents?agent=…` answers the Person object of the
agent (appliance.services.lrs.people).
"""

from __future__ import annotations

from appliance.faces.api.xapi import params
from appliance.faces.api.xapi.messages import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance
from appliance.services.lrs.activities import activity_object
from appliance.services.lrs.people import person_of


def _reading_only(req: XapiRequest, resource: str) -> None:
    if not req.reading:
        raise XapiError(405, f"the {resource} resource answers GET and HEAD only")


async def handle_activities(inst: Instance, req: XapiRequest) -> XapiResponse:
    """The Activity object of `activityId`."""
    _reading_only(req, "Activities")
    params.check_names(req, {"activityId"})
    activity_id = params.iri("activityId", params.required(req, "activityId"))
    body = await inst.tenant_db(req.tenant_id).read(lambda c: activity_object(c, activity_id))
    return XapiResponse(body=body)


async def handle_agents(inst: Instance, req: XapiRequest) -> XapiResponse:
    """The Person object of `agent`."""
    _reading_only(req, "Agents")
    params.check_names(req, {"agent"})
    agent = params.agent(params.required(req, "agent"))
    body = await inst.tenant_db(req.tenant_id).read(lambda c: person_of(c, agent))
    return XapiResponse(body=body)
