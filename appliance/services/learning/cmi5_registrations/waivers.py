"""Waiving an AU (cmi5 §9.3.8, the API's operation): `waived`, then `satisfied` for what that satisfies."""

from __future__ import annotations

import uuid
from typing import Any

import apsw

from appliance.core.cmi5 import vocabulary as v
from appliance.errors import ValidationFailed
from appliance.instance import Instance
from appliance.services.learning.cmi5_registrations.records import (
    au_rows,
    au_state,
    course_for_session,
    pick_au,
    registration_row,
    session_row,
)
from appliance.services.learning.cmi5_registrations.results import refresh, write_lms_statement, write_satisfied
from appliance.services.tenancy.tenants import Tenant

RESULT_EXT_REASON = "https://w3id.org/xapi/cmi5/result/extensions/reason"  # a waived statement's reason (§9.5.5.1)


def waive(inst: Instance, tenant: Tenant, session_id: str, au: str, reason: str) -> dict[str, Any]:
    """The API's waive (§9.3.8): the AU satisfied whatever its moveOn, `waived` and `satisfied` written."""
    if reason not in v.WAIVE_REASONS:
        raise ValidationFailed(f"reason must be one of {', '.join(v.WAIVE_REASONS)}", {"errors": [{"field": "reason"}]})
    now = inst.clock.now()

    def write(conn: apsw.Connection) -> dict[str, Any]:
        session = session_row(conn, session_id)
        course = course_for_session(conn, session)
        reg = registration_row(conn, session_id)
        chosen = pick_au(course, set(), au)
        au_row = au_rows(conn, session_id)[chosen.id]
        if au_row["waived"]:
            raise ValidationFailed("the AU is already waived", {"errors": [{"field": "au"}], "au": chosen.id})
        au_session_id = str(uuid.uuid4())
        state = au_state(reg, au_row, chosen, au_session_id, "Normal")
        result = {"success": True, "completion": True, "extensions": {RESULT_EXT_REASON: reason}}
        write_lms_statement(conn, state, v.WAIVED, now, result=result, move_on=True)
        conn.execute(
            "UPDATE cmi5_aus SET waived = 1, waive_reason = ? WHERE session_id = ? AND au_id = ?",
            (reason, session_id, chosen.id),
        )
        satisfied = write_satisfied(inst, conn, course, session_id, au_session_id, now)
        refresh(conn, course, session_id, now)
        return {"session_id": session_id, "au_id": chosen.id, "reason": reason, "satisfied": satisfied}

    return inst.tenant_db(tenant.id).write_sync(write)
