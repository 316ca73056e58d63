"""The xAPI forwarding log: every POST to a target and what came of it (delivered, failed, rejected).

`xapi_forwarding_log` keeps the newest `LOG_KEEP` entries per target, each with the statements' ids and
seq range, the status code, the error and the start of the answer; `list_log` pages it newest first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import encode_cursor, parse_page
from appliance.services.lrs.forwarding_targets import target_row
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

OUTCOMES = ("delivered", "failed", "rejected")
LOG_KEEP = 1000
REFUSING_STATUSES = frozenset({400, 409, 413})  # about the statements, not the target: retrying cannot help


@dataclass(frozen=True)
class Outcome:
    """What one POST to a target came to, as its log entry records it."""

    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def refused(self) -> bool:
        """The target refused the statements themselves (retrying them cannot help)."""
        return self.status_code in REFUSING_STATUSES


def log_json(row: dict[str, Any]) -> dict[str, Any]:
    """One log entry: one POST to the target and what came of it."""
    return {
        "id": row["id"],
        "target_id": row["target_id"],
        "at": rfc3339(row["created_at"]),
        "outcome": row["outcome"],
        "attempt": row["attempt"],
        "first_seq": row["first_seq"],
        "last_seq": row["last_seq"],
        "statement_count": len(json.loads(row["statement_ids"])),
        "statement_ids": json.loads(row["statement_ids"]),
        "status_code": row["status_code"],
        "error": row["error"],
        "duration_ms": row["duration_ms"],
        "response_body": row["response_body"],
    }


def list_log(
    inst: Instance,
    tenant: Tenant,
    target_id: str,
    *,
    outcome: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A target's log, newest first, optionally of one outcome."""
    if outcome is not None and outcome not in OUTCOMES:
        raise ValidationFailed(
            f"outcome must be one of {', '.join(OUTCOMES)}", {"errors": [{"field": "outcome", "message": "unknown"}]}
        )
    page = parse_page(limit, cursor)
    where, params = ["target_id = ?"], [target_id]
    if page.after:
        where.append("n < ?")
        params.append(int(page.after[0]))
    if outcome:
        where.append("outcome = ?")
        params.append(outcome)

    def read(conn: apsw.Connection) -> list[dict[str, Any]]:
        target_row(conn, target_id)
        return rows(
            conn,
            f"SELECT * FROM xapi_forwarding_log WHERE {' AND '.join(where)} ORDER BY n DESC LIMIT ?",
            (*params, page.limit + 1),
        )

    found = inst.tenant_db(tenant.id).read_sync(read)
    kept = found[: page.limit]
    more = len(found) > page.limit and bool(kept)
    return {
        "data": [log_json(r) for r in kept],
        "next_cursor": encode_cursor(float(kept[-1]["n"]), kept[-1]["id"]) if more else None,
    }


def write_entry(
    conn: apsw.Connection,
    target_id: str,
    outcome: str,
    attempt: int,
    batch: Sequence[tuple[int, dict[str, Any]]],
    result: Outcome,
    now: float,
) -> None:
    """Add an entry to the target's log (inside the caller's write), pruning the oldest now and then."""
    last = one(conn, "SELECT max(n) AS n FROM xapi_forwarding_log WHERE target_id = ?", (target_id,))
    n = int(last["n"] or 0) + 1 if last else 1
    conn.execute(
        "INSERT INTO xapi_forwarding_log (id, target_id, n, outcome, attempt, first_seq, last_seq, statement_ids, "
        "status_code, error, duration_ms, response_body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id("fdl"),
            target_id,
            n,
            outcome,
            attempt,
            batch[0][0],
            batch[-1][0],
            json.dumps([s.get("id") for _, s in batch]),
            result.status_code,
            result.error,
            result.duration_ms,
            result.response_body,
            now,
        ),
    )
    if n > LOG_KEEP and n % 100 == 0:  # prune now and then, not on every entry
        conn.execute("DELETE FROM xapi_forwarding_log WHERE target_id = ? AND n <= ?", (target_id, n - LOG_KEEP))
