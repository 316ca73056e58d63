"""A tenant's usage against its limits: stored bytes and API requests in the current period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import apsw

from appliance.clock import rfc3339
from appliance.instance import Instance
from appliance.storage.sqlite.connection import one

if TYPE_CHECKING:  # a type only: the tenant service imports what imports this module
    from appliance.services.tenancy.tenants import Tenant

PERIOD_SECONDS = 30 * 86_400  # usage periods are fixed 30-day windows counted from the epoch


def period_start(now: float) -> float:
    """The start of the usage period containing `now`."""
    return now - (now % PERIOD_SECONDS)


def stored_bytes(conn: apsw.Connection) -> tuple[int, int]:
    """(package bytes, session data bytes) held in one tenant database.

    Package bytes count what is kept on disk for every version (the received ZIP while processing,
    the extracted files once ready), so the quota covers everything a tenant makes us store. Session
    bytes are each session's `data_bytes` (its SCOs' CMI and its row's own data, kept up to date by
    every write of run-time data, `sessions.refresh_results`), the learners' global objectives and
    shared data, which outlive any one session, and what the tenant's xAPI LRS holds (statements,
    attachments and documents, counted as they are written: table xapi_usage).
    """
    row = one(conn, "SELECT coalesce(sum(size_bytes + upload_bytes), 0) AS n FROM package_versions")
    package_bytes = int(row["n"]) if row else 0
    found = one(
        conn,
        "SELECT (SELECT coalesce(sum(data_bytes), 0) FROM sessions) "
        "+ (SELECT coalesce(sum(length(data)), 0) FROM learner_state) "
        "+ (SELECT coalesce(sum(statement_bytes + document_bytes), 0) FROM xapi_usage) AS n",
    )
    session_bytes = int(found["n"]) if found else 0
    return package_bytes, session_bytes


def get_usage(inst: Instance, tenant: Tenant) -> dict[str, Any]:
    """The contract's usage object for one tenant."""
    now = inst.clock.now()
    start = period_start(now)

    def read(conn: apsw.Connection) -> tuple[int, int, int]:
        package_bytes, session_bytes = stored_bytes(conn)
        row = one(conn, "SELECT api_requests FROM usage_periods WHERE period_start = ?", (start,))
        return package_bytes, session_bytes, int(row["api_requests"]) if row else 0

    package_bytes, session_bytes, requests = inst.tenant_db(tenant.id).read_sync(read)
    return {
        "tenant_id": tenant.id,
        "storage_bytes": package_bytes + session_bytes,
        "package_bytes": package_bytes,
        "session_bytes": session_bytes,
        "api_requests": {"period_start": rfc3339(start), "count": requests},
        "limits": {
            "storage_bytes": tenant.storage_limit_bytes,
            "requests_per_minute": tenant.rate_limit_per_minute,
        },
    }
