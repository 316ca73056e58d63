"""`GET /xapi/about`: the versions the LRS speaks, to anyone (xAPI 1.0.3 §7.7, 2.0 §4.1.7)."""

from __future__ import annotations

from appliance.core.xapi.versions import ABOUT_VERSIONS
from appliance.faces.api.xapi.messages import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance


async def handle(inst: Instance, req: XapiRequest) -> XapiResponse:
    """The About object: `version` and (empty) `extensions`."""
    if not req.reading:
        raise XapiError(405, "the About resource answers GET and HEAD only")
    return XapiResponse(body={"version": list(ABOUT_VERSIONS), "extensions": {}})
