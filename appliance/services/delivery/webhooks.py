"""Webhooks: endpoints, fan-out of the events outbox into deliveries, and signed delivery with retries.

Life of an event: a service writes it to the tenant's `events` outbox in the transaction of its change
(appliance.services.delivery.events). The `webhook-dispatch` sweep turns each new event into one delivery row per
enabled endpoint whose filter matches, marks the event dispatched, and queues a `webhook.deliver` job
per delivery. The job POSTs the event, signed per Standard Webhooks, and records the attempt; a failed
attempt is retried with exponential backoff and jitter for about a day (`retry_delay`), after which the
delivery is `failed`. An endpoint that has not accepted anything for `webhook_disable_after_seconds`
is disabled, with the reason recorded.

Delivery rows live in the tenant database and are the truth; jobs only say when to look at them. A
restart loses nothing: jobs are durable, and the `webhook-recover` sweep queues a job for any pending
delivery that lacks one. A subject's (a session's, a package's) deliveries to one endpoint go out in
event order: a delivery waits while an earlier one of the same subject is still pending.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import apsw

from appliance import __version__
from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import encode_cursor, parse_page
from appliance.services.delivery import jobs, outbound
from appliance.services.delivery.events import EVENT_TYPES, emit
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.webhooks")

DELIVER_JOB = "webhook.deliver"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
RETRY_BASE_SECONDS = 30.0
RETRY_FACTOR = 3.0
RETRY_MAX_SECONDS = 8 * 3600.0
FANOUT_BATCH = 500
RESPONSE_BODY_CHARS = outbound.EXCERPT_BYTES  # bytes of an answer the delivery log keeps
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 500
DELIVERY_STATUSES = ("pending", "delivered", "failed")
USER_AGENT = f"scorm-appliance-webhooks/{__version__}"


# -- pure helpers ------------------------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before the retry that follows failed attempt number `attempt` (1-based).

    30 s x 3^(attempt-1), capped at 8 h, times a jitter of 0.8-1.2: 30 s, 1.5 min, 4.5 min, 13.5 min,
    40 min, 2 h, 6 h, 8 h, 8 h. With the default 10 attempts the last one comes about 25 hours after the
    first.
    """
    return backoff_delay(attempt, RETRY_BASE_SECONDS, RETRY_FACTOR, RETRY_MAX_SECONDS, rng)


def backoff_delay(attempt: int, base: float, factor: float, cap: float, rng: random.Random | None = None) -> float:
    """`base` × `factor`^(attempt - 1) seconds, at most `cap`, times a jitter of 0.8-1.2, so receivers that
    failed together are not retried together (webhook deliveries here, LRS forwarding in appliance.services.lrs)."""
    delay = min(cap, base * factor ** min(attempt - 1, 60))
    return delay * (0.8 + 0.4 * (rng or random).random())


def matches(filters: list[str], event_type: str) -> bool:
    """Whether an endpoint's event filter takes `event_type` (`*` = all, `session.*` = a family)."""
    for f in filters:
        if f in ("*", event_type):
            return True
        if f.endswith(".*") and event_type.startswith(f[:-1]):
            return True
    return False


def check_filters(events: list[str]) -> list[str]:
    """Validate an event filter list; returns it without duplicates, in order."""
    families = {t.split(".", 1)[0] for t in EVENT_TYPES}
    bad = [e for e in events if not (e == "*" or e in EVENT_TYPES or (e.endswith(".*") and e[:-2] in families))]
    if not events or bad:
        raise ValidationFailed(
            "events must list event types (or `*`, or a family such as `session.*`)",
            {
                "errors": [{"field": "events", "message": f"unknown event type {e!r}"} for e in bad]
                or [{"field": "events", "message": "must not be empty"}],
                "event_types": sorted(EVENT_TYPES),
            },
        )
    return list(dict.fromkeys(events))


def check_url(url: str, policy: outbound.Policy | None = None) -> str:
    """An absolute http(s) URL that `policy` could admit: a literal internal address or a bad port is refused.

    This is the check when the URL is stored; each delivery attempt checks again after resolving the
    host (appliance.services.delivery.outbound), since DNS may answer differently by then.
    """
    text = url.strip()
    try:
        if len(text) > MAX_URL_CHARS:
            raise outbound.OutboundRefused(f"the URL is limited to {MAX_URL_CHARS} characters")
        outbound.check_url(text, policy or outbound.Policy())
    except outbound.OutboundRefused as exc:
        raise ValidationFailed(f"url: {exc.message}", {"errors": [{"field": "url", "message": exc.message}]}) from exc
    return text


def _check_description(text: str | None) -> str:
    value = (text or "").strip()
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise ValidationFailed(
            f"description is limited to {MAX_DESCRIPTION_CHARS} characters", {"errors": [{"field": "description"}]}
        )
    return value


def _policy(inst: Instance) -> outbound.Policy:
    """The outbound policy of the configured allow-list (`outbound_allow`)."""
    return outbound.policy_for(inst.config.outbound_allow)


# -- endpoints ---------------------------------------------------------------------------------------------


def webhook_json(row: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the API shows it (never with its secret)."""
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "events": json.loads(row["events"]),
        "enabled": bool(row["enabled"]),
        "disabled_reason": row["disabled_reason"],
        "failing_since": rfc3339(row["failing_since"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def _webhook_row(conn: apsw.Connection, webhook_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}", {"webhook_id": webhook_id})
    return row


def create_webhook(
    inst: Instance, tenant: Tenant, *, url: str, events: list[str], description: str | None = None, enabled: bool = True
) -> dict[str, Any]:
    """Create an endpoint; the answer carries its signing `secret`, which is never shown again."""
    url, events, text = check_url(url, _policy(inst)), check_filters(events), _check_description(description)
    now = inst.clock.now()
    webhook_id, secret = new_id("whk"), new_secret()

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        conn.execute(
            "INSERT INTO webhooks (id, url, description, events, secret, enabled, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (webhook_id, url, text, json.dumps(events), secret, int(enabled), now, now),
        )
        return _webhook_row(conn, webhook_id)

    row = inst.tenant_db(tenant.id).write_sync(insert)
    return {**webhook_json(row), "secret": secret}


def list_webhooks(inst: Instance, tenant: Tenant, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of endpoints, oldest first."""
    page = parse_page(limit, cursor)
    where, params = ("(created_at, id) > (?, ?)", page.after) if page.after else ("1", ())
    found = inst.tenant_db(tenant.id).read_sync(
        lambda c: rows(
            c, f"SELECT * FROM webhooks WHERE {where} ORDER BY created_at, id LIMIT ?", (*params, page.limit + 1)
        )
    )
    more = len(found) > page.limit
    kept = found[: page.limit]
    return {
        "data": [webhook_json(r) for r in kept],
        "next_cursor": encode_cursor(kept[-1]["created_at"], kept[-1]["id"]) if more and kept else None,
    }


def get_webhook(inst: Instance, tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    """One endpoint, or NotFound."""
    return webhook_json(inst.tenant_db(tenant.id).read_sync(lambda c: _webhook_row(c, webhook_id)))


def rotate_secret(inst: Instance, tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    """A new signing secret for the endpoint, in force from the next attempt (the old one stops at once);
    the answer carries it, as `create_webhook`'s does, and it is never shown again."""
    secret, now = new_secret(), inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        _webhook_row(conn, webhook_id)
        conn.execute("UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?", (secret, now, webhook_id))
        return _webhook_row(conn, webhook_id)

    return {**webhook_json(inst.tenant_db(tenant.id).write_sync(update)), "secret": secret}


def update_webhook(
    inst: Instance,
    tenant: Tenant,
    webhook_id: str,
    *,
    url: str | None = None,
    events: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    """Change an endpoint; arguments left None keep their value. Enabling clears the disabled reason."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = check_url(url, _policy(inst))
    if events is not None:
        changes["events"] = json.dumps(check_filters(events))
    if description is not None:
        changes["description"] = _check_description(description)
    if enabled is not None:
        changes["enabled"] = int(enabled)
        if enabled:
            changes.update(disabled_reason=None, failing_since=None)
        else:
            changes["disabled_reason"] = "disabled by request"
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        current = _webhook_row(conn, webhook_id)
        if enabled is True and current["enabled"]:
            changes.pop("failing_since", None)  # already enabled: keep the failure record
        if changes:
            assignments = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE webhooks SET {assignments}, updated_at = ? WHERE id = ?", (*changes.values(), now, webhook_id)
            )
        if enabled is False:
            _fail_pending(conn, webhook_id, "the webhook was disabled", now)
        return _webhook_row(conn, webhook_id)

    return webhook_json(inst.tenant_db(tenant.id).write_sync(update))


def delete_webhook(inst: Instance, tenant: Tenant, webhook_id: str) -> None:
    """Delete an endpoint with its delivery log; its queued jobs find nothing and end."""

    def delete(conn: apsw.Connection) -> None:
        _webhook_row(conn, webhook_id)
        conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    inst.tenant_db(tenant.id).write_sync(delete)


def _fail_pending(conn: apsw.Connection, webhook_id: str, reason: str, now: float) -> None:
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL, updated_at = ? "
        "WHERE webhook_id = ? AND status = 'pending'",
        (reason, now, webhook_id),
    )


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
        _webhook_row(conn, webhook_id)
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
        data["payload"] = json.loads(_body(event, tenant.id)) if event else None
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
        hook = _webhook_row(conn, webhook_id)
        if not hook["enabled"]:
            raise ValidationFailed("the webhook is disabled: enable it first", {"webhook_id": webhook_id})
        event_id = emit(conn, "ping", {"webhook_id": webhook_id}, now=now)
        # The ping is for this endpoint alone: it is dispatched here, not by the fan-out.
        conn.execute("UPDATE events SET dispatched_at = ? WHERE id = ?", (now, event_id))
        event = one(conn, "SELECT seq, id, type, subject_id FROM events WHERE id = ?", (event_id,))
        assert event is not None
        return _insert_delivery(conn, webhook_id, event, now, inst.config.webhook_max_attempts)

    delivery_id = inst.tenant_db(tenant.id).write_sync(insert)
    _enqueue(inst, tenant.id, [(delivery_id, now)])
    return get_delivery(inst, tenant, webhook_id, delivery_id)


def retry_delivery(inst: Instance, tenant: Tenant, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """Deliver again now, once more: a failed delivery (or a delivered one, to resend it)."""
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> None:
        hook = _webhook_row(conn, webhook_id)
        row = _delivery_row(conn, webhook_id, delivery_id)
        if not hook["enabled"]:
            raise ValidationFailed("the webhook is disabled: enable it before retrying", {"webhook_id": webhook_id})
        conn.execute(
            "UPDATE webhook_deliveries SET status = 'pending', max_attempts = max(max_attempts, attempts + 1), "
            "next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (now, now, row["id"]),
        )

    inst.tenant_db(tenant.id).write_sync(update)
    _enqueue(inst, tenant.id, [(delivery_id, now)])
    return get_delivery(inst, tenant, webhook_id, delivery_id)


# -- fan-out and recovery (periodic sweeps) ----------------------------------------------------------------


def _enqueue(inst: Instance, tenant_id: str, due: list[tuple[str, float]]) -> None:
    if not due:
        return
    now = inst.clock.now()

    def add(conn: apsw.Connection) -> None:
        for delivery_id, run_at in due:
            jobs.enqueue(
                conn,
                DELIVER_JOB,
                {"tenant_id": tenant_id, "delivery_id": delivery_id, "key": delivery_id},
                now=now,
                tenant_id=tenant_id,
                run_at=run_at,
            )

    inst.registry.write_sync(add)


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
        _enqueue(inst, tenant_id, [(d, now) for d in made])
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
        _enqueue(inst, tenant_id, missing)
        total += len(missing)
    return total


# -- delivery (job handler) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Send:
    url: str
    secret: str
    event_id: str
    body: bytes
    attempt: int


def _body(event: dict[str, Any], tenant_id: str) -> bytes:
    """The JSON body of an event: the same bytes on every attempt."""
    payload = {
        "id": event["id"],
        "type": event["type"],
        "created_at": rfc3339(event["created_at"]),
        "tenant_id": tenant_id,
        "data": json.loads(event["data"]),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def deliver(inst: Instance, job: jobs.Job) -> None:
    """The `webhook.deliver` job: one attempt of one delivery, unless it must wait for an earlier one."""
    tenant_id, delivery_id = job.payload["tenant_id"], job.payload["delivery_id"]
    if not inst.has_tenant_db(tenant_id):
        return
    db = inst.tenant_db(tenant_id)
    now = inst.clock.now()
    lease = now + inst.config.webhook_timeout_seconds + 60.0

    def claim(conn: apsw.Connection) -> _Send | float | None:
        row = one(conn, "SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        if row is None or row["status"] != "pending":
            return None
        if row["lease_until"] is not None and row["lease_until"] > now:
            return None  # another job is attempting it right now
        if row["subject_id"] is not None:
            earlier = one(
                conn,
                "SELECT next_attempt_at FROM webhook_deliveries WHERE webhook_id = ? AND subject_id = ? "
                "AND status = 'pending' AND event_seq < ? ORDER BY event_seq LIMIT 1",
                (row["webhook_id"], row["subject_id"], row["event_seq"]),
            )
            if earlier is not None:
                # Wait for it: its completion wakes this one; until then, look again when it is due.
                later = max(now, earlier["next_attempt_at"] or now, row["next_attempt_at"] or now) + 1.0
                conn.execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?",
                    (later, now, delivery_id),
                )
                return later
        if row["next_attempt_at"] is not None and row["next_attempt_at"] > now + 0.5:
            return float(row["next_attempt_at"])  # this job came early (a stale or recovered one)
        hook = one(conn, "SELECT * FROM webhooks WHERE id = ?", (row["webhook_id"],))
        event = one(conn, "SELECT * FROM events WHERE id = ?", (row["event_id"],))
        if hook is None or event is None:
            return None
        if not hook["enabled"]:
            _fail_pending(conn, hook["id"], "the webhook is disabled", now)
            return None
        conn.execute("UPDATE webhook_deliveries SET lease_until = ? WHERE id = ?", (lease, delivery_id))
        return _Send(hook["url"], hook["secret"], event["id"], _body(event, tenant_id), row["attempts"] + 1)

    claimed = db.write_sync(claim)
    if claimed is None:
        return
    if isinstance(claimed, float):
        if not _other_job_queued(inst, delivery_id, job.id):
            _enqueue(inst, tenant_id, [(delivery_id, claimed)])
        return
    outcome = _post(inst, claimed)
    follow_up = db.write_sync(lambda c: _record(inst, c, delivery_id, claimed, outcome))
    _enqueue(inst, tenant_id, follow_up)


def _other_job_queued(inst: Instance, delivery_id: str, job_id: str) -> bool:
    """Whether a job other than `job_id` is already queued for the delivery (so none is added)."""
    found = inst.registry.read_sync(
        lambda c: one(
            c,
            "SELECT 1 AS x FROM jobs WHERE kind = ? AND status = 'queued' AND id != ? "
            "AND json_extract(payload, '$.key') = ? LIMIT 1",
            (DELIVER_JOB, job_id, delivery_id),
        )
    )
    return found is not None


@dataclass(frozen=True)
class _Outcome:
    started_at: float
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(inst: Instance, send: _Send) -> _Outcome:
    """One attempt, through the outbound guard (resolved, checked and pinned again on every attempt).

    The log keeps the status and the first `RESPONSE_BODY_CHARS` bytes of the answer, sanitised;
    refused targets and failed connections get the guard's generic text, so the log reveals nothing
    about the appliance's network. The specific reason goes to the server's log for the operator.
    """
    started = inst.clock.now()
    headers = signed_headers(send.secret, send.event_id, int(started), send.body)
    clock_start = time.perf_counter()  # a duration, not a time of day: the injected clock is not needed
    try:
        reply = outbound.send(
            "POST",
            send.url,
            policy=_policy(inst),
            timeout=inst.config.webhook_timeout_seconds,
            max_body=RESPONSE_BODY_CHARS,
            headers=headers,
            content=send.body,
        )
    except outbound.OutboundError as exc:
        log.info("webhook delivery of %s to %s failed: %s", send.event_id, send.url, exc.reason)
        return _Outcome(started, int((time.perf_counter() - clock_start) * 1000), None, exc.message, None)
    except Exception:  # a bug, not the receiver: a failed attempt all the same, and a trace for the operator
        log.exception("webhook delivery of %s to %s failed unexpectedly", send.event_id, send.url)
        return _Outcome(started, int((time.perf_counter() - clock_start) * 1000), None, "the delivery failed", None)
    elapsed = int((time.perf_counter() - clock_start) * 1000)
    error = None if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
    return _Outcome(started, elapsed, reply.status_code, error, reply.excerpt())


def _record(
    inst: Instance, conn: apsw.Connection, delivery_id: str, send: _Send, result: _Outcome
) -> list[tuple[str, float]]:
    """Store an attempt's result and decide what happens next; returns (delivery, when) jobs to queue."""
    now = inst.clock.now()
    row = one(conn, "SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
    if row is None:
        return []  # the endpoint was deleted meanwhile
    conn.execute(
        "INSERT OR REPLACE INTO webhook_attempts (delivery_id, n, started_at, duration_ms, status_code, error, "
        "response_body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            delivery_id,
            send.attempt,
            result.started_at,
            result.duration_ms,
            result.status_code,
            result.error,
            result.response_body,
        ),
    )
    attempts = row["attempts"] + 1
    common = (attempts, now, result.status_code, result.error, now)
    set_common = (
        "attempts = ?, last_attempt_at = ?, last_status_code = ?, last_error = ?, lease_until = NULL, updated_at = ?"
    )
    follow_up: list[tuple[str, float]] = []
    gave_up_since: float | None = None
    if result.ok:
        conn.execute(
            f"UPDATE webhook_deliveries SET {set_common}, status = 'delivered', next_attempt_at = NULL, "
            "delivered_at = ? WHERE id = ?",
            (*common, now, delivery_id),
        )
        conn.execute("UPDATE webhooks SET failing_since = NULL WHERE id = ?", (row["webhook_id"],))
    elif row["status"] == "pending" and attempts < row["max_attempts"]:
        retry_at = now + retry_delay(attempts)
        conn.execute(
            f"UPDATE webhook_deliveries SET {set_common}, next_attempt_at = ? WHERE id = ?",
            (*common, retry_at, delivery_id),
        )
        follow_up.append((delivery_id, retry_at))
    else:
        conn.execute(
            f"UPDATE webhook_deliveries SET {set_common}, status = 'failed', next_attempt_at = NULL WHERE id = ?",
            (*common, delivery_id),
        )
        if row["status"] == "pending":  # it used its last attempt (rather than being failed meanwhile)
            first = one(conn, "SELECT min(started_at) AS t FROM webhook_attempts WHERE delivery_id = ?", (delivery_id,))
            gave_up_since = first["t"] if first else None
    if not result.ok:
        _note_failure(inst, conn, row["webhook_id"], result, now, gave_up_since)
    done = one(conn, "SELECT status FROM webhook_deliveries WHERE id = ?", (delivery_id,))
    if done is not None and done["status"] != "pending" and row["subject_id"] is not None:
        follow_up.extend(_wake_next(conn, row, now))
    return follow_up


def _note_failure(
    inst: Instance, conn: apsw.Connection, webhook_id: str, result: _Outcome, now: float, gave_up_since: float | None
) -> None:
    """Track how long the endpoint has failed, and disable it when it keeps failing, saying why.

    It keeps failing when every attempt has failed for `webhook_disable_after_seconds`, or when a
    delivery used all its attempts (`gave_up_since`: its first one) and nothing succeeded meanwhile.
    """
    conn.execute("UPDATE webhooks SET failing_since = coalesce(failing_since, ?) WHERE id = ?", (now, webhook_id))
    hook = one(conn, "SELECT enabled, failing_since FROM webhooks WHERE id = ?", (webhook_id,))
    if hook is None or not hook["enabled"]:
        return
    too_long = now - hook["failing_since"] >= inst.config.webhook_disable_after_seconds
    if too_long or (gave_up_since is not None and hook["failing_since"] <= gave_up_since):
        hours = (now - hook["failing_since"]) / 3600
        reason = (
            f"disabled automatically: every delivery attempt failed for {hours:.0f} hours "
            f"(since {rfc3339(hook['failing_since'])}); last error: {result.error}"
        )
        conn.execute(
            "UPDATE webhooks SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
            (reason, now, webhook_id),
        )
        _fail_pending(conn, webhook_id, "the webhook was disabled after failing repeatedly", now)
        log.warning("webhook %s disabled: %s", webhook_id, reason)


def _wake_next(conn: apsw.Connection, row: dict[str, Any], now: float) -> list[tuple[str, float]]:
    """The next pending delivery of the same subject may go now that this one is finished."""
    nxt = one(
        conn,
        "SELECT id, next_attempt_at FROM webhook_deliveries WHERE webhook_id = ? AND subject_id = ? "
        "AND status = 'pending' AND event_seq > ? ORDER BY event_seq LIMIT 1",
        (row["webhook_id"], row["subject_id"], row["event_seq"]),
    )
    if nxt is None:
        return []
    when = min(nxt["next_attempt_at"] or now, now)
    conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ?", (when, now, nxt["id"])
    )
    return [(nxt["id"], when)]
