"""GET /usage: the tenant's stored bytes and API requests against its limits."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.tenancy.usage import get_usage, period_start


class UsageController(Controller):
    """Usage of the authenticated tenant."""

    path = "/api/v1/usage"
    tags = ["usage"]

    @get("/", sync_to_thread=True, summary="Storage and API requests against the tenant's limits")
    def show(self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep) -> dict[str, Any]:
        """Stored package and session bytes, API requests in the current period (this one included), limits."""
        data = get_usage(inst, principal.tenant)
        counter = getattr(request.app.state, "usage_counter", None)
        if counter is not None:
            # Requests counted since the last batched write are not in the database yet.
            data["api_requests"]["count"] += counter.pending(principal.tenant.id, period_start(inst.clock.now()))
        return data
