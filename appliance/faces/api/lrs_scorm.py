"""The tenant's switch for SCORM sessions as xAPI (appliance.services.lrs.scorm_statements): `/api/v1/xapi/scorm`.

Admins only, like the LRS's other management routes: the statements are what every LRS credential and
forwarding target of the tenant receive.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.params import JSONBody

from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.lrs import scorm_statements
from appliance.services.tenancy.roles import ADMINS


class ScormStatementsIn(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /xapi/scorm: on or off for this tenant; null follows the instance's `xapi_scorm_statements`."""

    enabled: bool | None


class LrsScormController(Controller):
    """Whether the tenant's SCORM sessions become statements in its LRS."""

    path = "/api/v1/xapi/scorm"
    tags = ["xapi"]
    opt = {"roles": ADMINS}

    @get("/", sync_to_thread=True, summary="Whether SCORM sessions become xAPI statements")
    def show(self, principal: PrincipalDep, inst: InstanceDep) -> dict[str, Any]:
        """The switch as it applies, the tenant's own choice (null: the instance default) and the queue."""
        return scorm_statements.settings_json(inst, principal.tenant.id)

    @put("/", sync_to_thread=True, summary="Turn SCORM sessions as xAPI statements on or off")
    def update(self, principal: PrincipalDep, inst: InstanceDep, data: JSONBody[ScormStatementsIn]) -> dict[str, Any]:
        """Off: the run-time queues nothing more and what was queued is dropped, not stored."""
        scorm_statements.set_enabled(inst, principal.tenant.id, data.enabled)
        return scorm_statements.settings_json(inst, principal.tenant.id)
