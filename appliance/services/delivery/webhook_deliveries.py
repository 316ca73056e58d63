"""Webhook deliveries: one row per event and endpoint, made by the fan-out of the outbox, and the delivery log.

The `webhook-dispatch` sweep turns each new event of a tenant's outbox into one delivery per enabled
endpoint whose filter matches and marks the event dispatched, in one transaction of the tenant (so the
fan-out of one tenant's outbox is serialised whatever the number of workers, and deliveries are made in
event order); the `webhook-recover` sweep queues a job for a pending delivery that has none. The log
(`list_deliveries`, `get_delivery`) shows each delivery with its attempts; `send_test` and
`retry_delivery` add or reopen one on request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import encode_cursor, parse_page
from appliance.services.delivery import jobs
from appliance.services.delivery.events import emit
from appliance.services.delivery.webhook_attempts import DELIVER_JOB, enqueue
from appliance.services.delivery.webhook_signing import event_body
from appliance.services.delivery.webhooks import matches, webhook_row
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.webhooks")

FANOUT_BATCH = 500
DELIVERY_STATUSES = ("pending", "delivered", "failed")


# -- deliveries: the log, tests and retries ----------------------------------------------------------------


def delivery_json(row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A delivery with its attempts, as the delivery log shows it."""
    return {
        "id": row["id"],
        "webhook_id": row["webhook_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempt_count": row["attempts"],
        "max_attempts": row["max_attempts"],
        "next_retry_at": rfc3339(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "delivered_at": rfc3339(row["delivered_at"]),
        "attempts": [
            {
                "attempt": a["n"],
                "at": rfc3339(a["started_at"]),
                "status_code": a["status_code"],
                "duration_ms": a["duration_ms"],
                "error": a["error"],
                "response_body": a["response_body"],
            }
            for a in attempts
        ],
    }


def _attempts_of(conn: apsw.Connection, delivery_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        marks = ", ".join("?" for _ in delivery_ids)
        for a in rows(
            conn, f"SELECT * FROM webhook_attempts WHERE delivery_id IN ({marks}) ORDER BY delivery_id, n", delivery_ids
        ):
            found[a["delivery_id"]].append(a)
    return found


def list_deliveries(
    inst: Instance,
    tenant: Tenant,
    webhook_id: str,
    *,
    status: str | None,
    limit: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """An endpoint's delivery log, newest first, optionally by status."""
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationFailed(
            f"status must be one of {', '.join(DELIVERY_STATUSES)}", {"errors": [{"field": "status"}]}
        )
    page = parse_page(limit, cursor)
    where = ["webhook_id = ?"]
    params: list[Any] = [webhook_id]
    if page.after:
        where.append("(created_at, id) < (?, ?)")
        params.extend(page.after)
    if status:
        where.append("status = ?")
        params.append(status)

    def read(conn: apsw.Connection) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        webhook_row(conn, webhook_id)
        found = rows(
            conn,
            f"SELECT * FROM webhook_deliveries WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, page.limit + 1),
        )
        return found, _attempts_of(conn, [r["id"] for r in found[: page.limit]])

    found, attempts = inst.tenant_db(tenant.id).read_sync(read)
    more = len(found) > page.limit
    kept = found[: page.limit]
    return {
        "data": [delivery_json(r, attempts[r["id"]]) for r in kept],
        "next_cursor": encode_cursor(kept[-1]["created_at"], kept[-1]["id"]) if more and kept else None,
    }


def _delivery_row(conn: apsw.Connection, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM webhook_deliveries WHERE id = ? AND webhook_id = ?", (delivery_id, webhook_id))
    if row is None:
        raise NotFound(f"no delivery {delivery_id!r} of webhook {webhook_id!r}", {"delivery_id": delivery_id})
    return row


def get_delivery(inst: Instance, tenant: Tenant, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """One delivery with its attempts and the event body it sends."""

    def read(conn: apsw.Connection) -> dict[str, Any]:
        row = _delivery_row(conn, webhook_id, delivery_id)
        event = one(conn, "SELECT * FROM events WHERE id = ?", (row["event_id"],))
        data = delivery_json(row, _attempts_of(conn, [delivery_id])[delivery_id])
        data["payload"] = json.loads(event_body(event, tenant.id)) if event else None
        return data

    return inst.tenant_db(tenant.id).read_sync(read)


def _insert_delivery(
    conn: apsw.Connection, webhook_id: str, event: dict[str, Any], now: float, max_attempts: int
) -> str:
    delivery_id = new_id("dlv")
    conn.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_seq, event_id, event_type, subject_id, status, "
        "max_attempts, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (
            delivery_id,
            webhook_id,
            event["seq"],
            event["id"],
            event["type"],
            event["subject_id"],
            max_attempts,
            now,
            now,
            now,
        ),
    )
    return delivery_id


def send_test(inst: Instance, tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    """Queue a `ping` event for this endpoint only (whatever its filter); returns the delivery."""
    now = inst.clock.now()

    def insert(conn: apsw.Connection) -> str:
        hook = webhook_row(conn, webhook_id)
        if not hook["enabled"]:
            raise ValidationFailed("the webhook is disabled: enable it first", {"webhook_id": webhook_id})
        event_id = emit(conn, "ping", {"webhook_id": webhook_id}, now=now)
        # The ping is for this endpoint alone: it is dispatched here, not by the fan-out.
        conn.execute("UPDATE events SET dispatched_at = ? WHERE id = ?", (now, event_id))
        event = one(conn, "SELECT seq, id, type, subject_id FROM events WHERE id = ?", (event_id,))
        assert event is not None
        return _insert_delivery(conn, webhook_id, event, now, inst.config.webhook_max_attempts)

    delivery_id = inst.tenant_db(tenant.id).write_sync(insert)
    enqueue(inst, tenant.id, [(delivery_id, now)])
    return get_delivery(inst, tenant, webhook_id, delivery_id)


def retry_delivery(inst: Instance, tenant: Tenant, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """Deliver again now, once more: a failed delivery (or a delivered one, to resend it)."""
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> None:
        hook = webhook_row(conn, webhook_id)
        row = _delivery_row(conn, webhook_id, delivery_id)
        if not hook["enabled"]:
            raise ValidationFailed("the webhook is disabled: enable it before retrying", {"webhook_id": webhook_id})
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', max_attempts = max(max_attempts, attempts + 1), "
            "next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (now, now, row["id"]),
        )

    inst.tenant_db(tenant.id).write_sync(update)
    enqueue(inst, tenant.id, [(delivery_id, now)])
    return get_delivery(inst, tenant, webhook_id, delivery_id)


# -- fan-out and recovery (periodic sweeps) ----------------------------------------------------------------


def dispatch_events(inst: Instance, tenant_id: str) -> int:
    """Turn a tenant's undispatched events into deliveries and queue them; returns deliveries made."""
    db = inst.tenant_db(tenant_id)
    if db.read_sync(lambda c: one(c, "SELECT 1 AS x FROM events WHERE dispatched_at IS NULL LIMIT 1")) is None:
        return 0
    now = inst.clock.now()
    max_attempts = inst.config.webhook_max_attempts

    def fan_out(conn: apsw.Connection) -> tuple[list[str], bool]:
        events = rows(
            conn,
            "SELECT seq, id, type, subject_id FROM events WHERE dispatched_at IS NULL ORDER BY seq LIMIT ?",
            (FANOUT_BATCH,),
        )
        hooks = [
            (h["id"], json.loads(h["events"])) for h in rows(conn, "SELECT id, events FROM webhooks WHERE enabled = 1")
        ]
        made = [
            _insert_delivery(conn, hook_id, event, now, max_attempts)
            for event in events
            for hook_id, filters in hooks
            if event["type"] != "ping" and matches(filters, event["type"])
        ]
        if events:
            conn.execute(
                "UPDATE events SET dispatched_at = ? WHERE dispatched_at IS NULL AND seq <= ?", (now, events[-1]["seq"])
            )
        return made, len(events) == FANOUT_BATCH

    total = 0
    more = True
    while more:
        made, more = db.write_sync(fan_out)
        enqueue(inst, tenant_id, [(d, now) for d in made])
        total += len(made)
    return total


def _tenant_ids(inst: Instance) -> list[str]:
    found = inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants ORDER BY created_at"))
    return [r["id"] for r in found if inst.has_tenant_db(r["id"])]


def dispatch_all(inst: Instance) -> int:
    """Periodic sweep (`webhook_dispatch_seconds`): fan out every tenant's new events."""
    total = 0
    for tenant_id in _tenant_ids(inst):
        try:
            total += dispatch_events(inst, tenant_id)
        except Exception:
            log.exception("webhook fan-out failed for tenant %s", tenant_id)
    return total


def recover_deliveries(inst: Instance) -> int:
    """Periodic sweep: queue a job for every pending delivery that has none (after a crash); returns how many.

    The deliveries are read before the jobs, so one whose job finished in between is at worst queued
    once more, and that job finds it done.
    """
    now = inst.clock.now()
    pending: dict[str, list[dict[str, Any]]] = {}
    for tenant_id in _tenant_ids(inst):
        try:
            pending[tenant_id] = inst.tenant_db(tenant_id).read_sync(
                lambda c: rows(c, "SELECT id, next_attempt_at FROM webhook_deliveries WHERE status = 'pending'")
            )
        except Exception:
            log.exception("could not read the pending webhook deliveries of tenant %s", tenant_id)
    if not any(pending.values()):
        return 0
    queued = jobs.pending_keys(inst.registry, DELIVER_JOB)
    total = 0
    for tenant_id, found in pending.items():
        missing = [(r["id"], max(now, r["next_attempt_at"] or now)) for r in found if r["id"] not in queued]
        enqueue(inst, tenant_id, missing, unique=True)
        total += len(missing)
    return total
