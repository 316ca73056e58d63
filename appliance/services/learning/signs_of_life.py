"""A session's sign of life: the columns every learner request moves (server-side time spent, last
activity, a pushed-back expiry, a new version, client sequence numbers) and the tenant's time-to-live.

A module of its own because a plain commit folds these columns into its results `UPDATE` (the hot
path), while a step or a Terminate writes them with `touch`: one definition for both.
"""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from appliance.instance import Instance
from appliance.services.tenancy.tenants import tenant_status

_encode = msgspec.json.encode

# A gap longer than this between two signs of life does not count as time spent (a tab left open).
IDLE_SECONDS = 30 * 60


def touch(
    conn: apsw.Connection,
    session: dict[str, Any],
    ttl: int,
    now: float,
    *,
    launching: bool = False,
    seqs: dict[str, int] | None = None,
) -> None:
    """Record a sign of life: server-side time spent, last activity, a pushed-back expiry, a new version."""
    fields = sign_of_life(session, ttl, now, seqs, launching=launching)
    fields["updated_at"] = now
    assignments = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*fields.values(), session["id"]))


def session_ttl(inst: Instance, tenant_id: str) -> int:
    """The tenant's session time-to-live (its status lookup, cached for a few seconds)."""
    status, ttl = tenant_status(inst, tenant_id)
    return ttl if status is not None else inst.config.default_session_ttl_seconds


# -- public operations -----------------------------------------------------------------------------------
def sign_of_life(
    session: dict[str, Any], ttl: int, now: float, seqs: dict[str, int] | None, *, launching: bool = False
) -> dict[str, Any]:
    """The session columns any request of the learner moves: server-side time spent (not across a
    launch, nor a gap over IDLE_SECONDS), last activity, a pushed-back expiry, a new version, and the
    client sequence numbers when they changed. The session row is the one read in this transaction."""
    last = session["last_activity_at"]
    spent = 0.0 if launching or last is None else min(max(0.0, now - last), IDLE_SECONDS)
    fields: dict[str, Any] = {
        "server_time_seconds": session["server_time_seconds"] + spent,
        "last_activity_at": now,
        "expires_at": now + ttl,
        "version": session["version"] + 1,
    }
    if launching:
        fields["launch_started_at"] = now
    if seqs is not None:
        fields["commit_seqs"] = _encode(seqs).decode()
    return fields
