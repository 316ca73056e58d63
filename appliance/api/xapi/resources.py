"""The Activities and Agents resources (full Activity definitions, Person objects; not yet served)."""

from __future__ import annotations

from appliance.api.xapi.app import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance


async def handle_activities(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet."""
    raise XapiError(501, "the Activities resource is not available yet")


async def handle_agents(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet."""
    raise XapiError(501, "the Agents resource is not available yet")
