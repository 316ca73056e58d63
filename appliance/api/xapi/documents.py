"""The document resources: State, Activity Profile and Agent Profile (not yet served)."""

from __future__ import annotations

from appliance.api.xapi.app import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance


async def handle_state(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet."""
    raise XapiError(501, "the State resource is not available yet")


async def handle_activity_profile(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet."""
    raise XapiError(501, "the Activity Profile resource is not available yet")


async def handle_agent_profile(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet."""
    raise XapiError(501, "the Agent Profile resource is not available yet")
