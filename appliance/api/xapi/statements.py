"""`/xapi/statements`: PUT, POST and GET of statements (owned by the statements work; not yet served)."""

from __future__ import annotations

from appliance.api.xapi.app import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance


async def handle(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Not served yet: 501 until the statement store lands."""
    raise XapiError(501, "the statements resource is not available yet")
