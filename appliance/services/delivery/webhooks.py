"""Webhook endpoints: where a tenant's events go, which ones, and the endpoint's life (create, change,
rotate its secret, disable, delete).

Life of an event: a service writes it to the tenant's `events` outbox in the transaction of its change
(appliance.services.delivery.events). The `webhook-dispatch` sweep turns each new event into one delivery row per
enabled endpoint whose filter matches (appliance.services.delivery.webhook_deliveries), and a `webhook.deliver`
job makes each attempt (appliance.services.delivery.webhook_attempts): it claims the delivery, POSTs the event
signed per Standard Webhooks (appliance.services.delivery.webhook_signing) and records the attempt; a failed
attempt is retried with exponential backoff and jitter for about a day, after which the delivery is
`failed`. An endpoint that has not accepted anything for `webhook_disable_after_seconds` is disabled, with
the reason recorded.

Delivery rows live in the tenant database and are the truth; jobs only say when to look at them. A
restart loses nothing: jobs are durable, and the `webhook-recover` sweep queues a job for any pending
delivery that lacks one. A subject's (a session's, a package's) deliveries to one endpoint go out in
event order: a delivery waits while an earlier one of the same subject is still pending.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import encode_cursor, parse_page
from appliance.services.delivery import outbound
from appliance.services.delivery.events import EVENT_TYPES
from appliance.services.delivery.webhook_signing import new_secret
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 500


# -- checks ------------------------------------------------------------------------------------------------


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


def outbound_policy(inst: Instance) -> outbound.Policy:
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


def webhook_row(conn: apsw.Connection, webhook_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
    if row is None:
        raise NotFound(f"no webhook {webhook_id!r}", {"webhook_id": webhook_id})
    return row


def create_webhook(
    inst: Instance, tenant: Tenant, *, url: str, events: list[str], description: str | None = None, enabled: bool = True
) -> dict[str, Any]:
    """Create an endpoint; the answer carries its signing `secret`, which is never shown again."""
    url, events, text = check_url(url, outbound_policy(inst)), check_filters(events), _check_description(description)
    now = inst.clock.now()
    webhook_id, secret = new_id("whk"), new_secret()

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        conn.execute(
            "INSERT INTO webhooks (id, url, description, events, secret, enabled, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (webhook_id, url, text, json.dumps(events), secret, int(enabled), now, now),
        )
        return webhook_row(conn, webhook_id)

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
    return webhook_json(inst.tenant_db(tenant.id).read_sync(lambda c: webhook_row(c, webhook_id)))


def rotate_secret(inst: Instance, tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    """A new signing secret for the endpoint, in force from the next attempt (the old one stops at once);
    the answer carries it, as `create_webhook`'s does, and it is never shown again."""
    secret, now = new_secret(), inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        webhook_row(conn, webhook_id)
        conn.execute("UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?", (secret, now, webhook_id))
        return webhook_row(conn, webhook_id)

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
        changes["url"] = check_url(url, outbound_policy(inst))
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
        current = webhook_row(conn, webhook_id)
        if enabled is True and current["enabled"]:
            changes.pop("failing_since", None)  # already enabled: keep the failure record
        if changes:
            assignments = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE webhooks SET {assignments}, updated_at = ? WHERE id = ?", (*changes.values(), now, webhook_id)
            )
        if enabled is False:
            fail_pending(conn, webhook_id, "the webhook was disabled", now)
        return webhook_row(conn, webhook_id)

    return webhook_json(inst.tenant_db(tenant.id).write_sync(update))


def delete_webhook(inst: Instance, tenant: Tenant, webhook_id: str) -> None:
    """Delete an endpoint with its delivery log; its queued jobs find nothing and end."""

    def delete(conn: apsw.Connection) -> None:
        webhook_row(conn, webhook_id)
        conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    inst.tenant_db(tenant.id).write_sync(delete)


def fail_pending(conn: apsw.Connection, webhook_id: str, reason: str, now: float) -> None:
    """End the endpoint's pending deliveries as failed, with `reason` (it was disabled or gave up)."""
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL, updated_at = ? "
        "WHERE webhook_id = ? AND status = 'pending'",
        (reason, now, webhook_id),
    )
