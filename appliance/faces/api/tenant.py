"""The caller's own tenant."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from appliance.faces.api.deps import PrincipalDep
from appliance.services.tenancy.roles import EVERYONE
from appliance.services.tenancy.tenants import tenant_json


class TenantController(Controller):
    """Who am I: the tenant the credentials belong to."""

    path = "/api/v1/tenant"
    tags = ["tenant"]

    @get("/", summary="The authenticated tenant", opt={"roles": EVERYONE})
    async def show(self, principal: PrincipalDep) -> dict[str, Any]:
        """Return the tenant that the presented key or token belongs to."""
        data = tenant_json(principal.tenant)
        data.pop("jwt", None)
        data["auth"] = {
            "kind": principal.kind,
            "key_id": principal.key_id,
            "subject": principal.subject,
            "role": principal.role,
        }
        return data
