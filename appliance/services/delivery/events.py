"""Domain events: what happened in a tenant, recorded in its database's outbox.

`emit` must be called inside the write transaction of the change it describes, so an event is stored
exactly when its change commits. Webhook delivery fans events out from the outbox.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from appliance.ids import new_id

EVENT_TYPES = {
    "package.ready": "A package version finished processing and can be launched.",
    "package.failed": "A package version failed processing; `data.error` says why.",
    "session.created": "A session was created for a learner.",
    "session.completed": "A session's content reported completion.",
    "session.passed": "A session's content reported a pass.",
    "session.failed": "A session's content reported a fail.",
    "session.expired": "A session passed its expiry without activity.",
    "quota.warning": "The tenant's storage crossed 80 % of its quota.",
    "quota.exceeded": "An upload was refused for the storage quota, or storage is over a lowered quota.",
    "ping": "A test event sent on request.",
}


def emit(
    conn: apsw.Connection, event_type: str, data: dict[str, Any], *, now: float, subject_id: str | None = None
) -> str:
    """Record an event in the tenant's outbox inside the caller's transaction; returns the event id."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event_id = new_id("evt")
    conn.execute(
        "INSERT INTO events (id, type, subject_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
        (event_id, event_type, subject_id, json.dumps(data, separators=(",", ":")), now),
    )
    return event_id
