"""The tenant's storage quota for what xAPI clients send: statements, attachments and documents.

What the LRS holds counts toward the tenant's storage usage (appliance.services.tenancy.usage.stored_bytes, table
xapi_usage), and a write from an LRS credential that would take usage over the quota is refused with
`403 QUOTA_EXCEEDED`, as an upload is (docs/usage.md), and raises the `quota.exceeded` event once per
crossing. Writes of a learner's course in progress are never refused (SCORM sessions as xAPI, a cmi5
AU session's statements): a course must not lose a learner's work.

Usage is read at most every USED_SECONDS per tenant and the bytes accepted since are added to it, so
a stream of batches does not scan the sessions table for each one.
"""

from __future__ import annotations

import time

from appliance.errors import QuotaExceeded
from appliance.instance import Instance
from appliance.services.tenancy import quota_events
from appliance.services.tenancy.quotas import check_storage
from appliance.services.tenancy.tenants import Tenant
from appliance.services.tenancy.usage import stored_bytes

USED_SECONDS = 2.0
_used: dict[str, tuple[float, int]] = {}  # tenant id → (when read, bytes used since then included)


def check_lrs_storage(inst: Instance, tenant: Tenant, incoming_bytes: int) -> None:
    """Raise QuotaExceeded (and note the refusal) when `incoming_bytes` more would cross the tenant's quota."""
    limit = tenant.storage_limit_bytes
    if limit is None:
        return
    now = time.monotonic()
    known = _used.get(tenant.id)
    if known is None or now - known[0] > USED_SECONDS:
        known = (now, sum(inst.tenant_db(tenant.id).read_sync(stored_bytes)))
    try:
        check_storage(known[1], limit, incoming_bytes)
    except QuotaExceeded as exc:
        _used[tenant.id] = known
        quota_events.note_refusal(inst, tenant.id, exc.details)
        raise
    _used[tenant.id] = (known[0], known[1] + incoming_bytes)
