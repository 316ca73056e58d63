"""Webhook delivery attempts: the `webhook.deliver` job, which claims one delivery, POSTs it and records it.

An attempt is one POST of the event, signed (appliance.services.delivery.webhook_signing), through the outbound
guard; its result is kept in `webhook_attempts` with the delivery's status. A failed attempt is retried
with exponential backoff and jitter (`retry_delay`) until `webhook_max_attempts`; an endpoint that keeps
failing is disabled. A subject's deliveries to one endpoint go out in event order: a delivery waits while
an earlier one of the same subject is pending, and finishing one wakes the next.

Several workers may hold jobs for one delivery; the delivery's row decides which one sends it: it is
claimed (SKIP LOCKED on PostgreSQL) and leased, and the attempt is recorded only while that lease is
the claim's (appliance.services.delivery.claims, docs/scale-out.md "The webhook outbox and xAPI forwarding
across workers"). A worker lost mid-attempt leaves the lease to run out; the next job takes it over,
so a receiver may get that event twice (at least once, with the same `webhook-id`).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.instance import Instance
from appliance.services.delivery import claims, jobs, outbound
from appliance.services.delivery.backoff import backoff_delay
from appliance.services.delivery.webhook_signing import event_body, signed_headers
from appliance.services.delivery.webhooks import fail_pending, outbound_policy
from appliance.storage.sqlite.connection import one

log = logging.getLogger("appliance.webhooks")

DELIVER_JOB = "webhook.deliver"
RETRY_BASE_SECONDS = 30.0
RETRY_FACTOR = 3.0
RETRY_MAX_SECONDS = 8 * 3600.0
RESPONSE_BODY_CHARS = outbound.EXCERPT_BYTES  # bytes of an answer the delivery log keeps


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before the retry that follows failed attempt number `attempt` (1-based).

    30 s x 3^(attempt-1), capped at 8 h, times a jitter of 0.8-1.2: 30 s, 1.5 min, 4.5 min, 13.5 min,
    40 min, 2 h, 6 h, 8 h, 8 h. With the default 10 attempts the last one comes about 25 hours after the
    first.
    """
    return backoff_delay(attempt, RETRY_BASE_SECONDS, RETRY_FACTOR, RETRY_MAX_SECONDS, rng)


def enqueue(inst: Instance, tenant_id: str, due: list[tuple[str, float]], *, unique: bool = False) -> None:
    """Queue a `webhook.deliver` job per (delivery, when) in one registry transaction. `unique` (the
    recovery sweep, which every worker runs) adds none for a delivery that has a queued or running job;
    a running job queues its own follow-up with it off, since it counts itself."""
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
                unique=unique,
            )

    inst.registry.write_sync(add)


# -- delivery (job handler) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Send:
    url: str
    secret: str
    event_id: str
    body: bytes
    attempt: int
    lease: float  # the `lease_until` this claim wrote: its fencing token (appliance.services.delivery.claims)


def deliver(inst: Instance, job: jobs.Job) -> None:
    """The `webhook.deliver` job: one attempt of one delivery, unless it must wait for an earlier one.

    The delivery is claimed first (appliance.services.delivery.claims): on PostgreSQL its row is locked with
    SKIP LOCKED and leased, so of several workers' jobs for one delivery exactly one sends it; the attempt
    is then recorded only if the lease is still this job's.
    """
    tenant_id, delivery_id = job.payload["tenant_id"], job.payload["delivery_id"]
    if not inst.has_tenant_db(tenant_id):
        return
    db = inst.tenant_db(tenant_id)
    now = inst.clock.now()
    lease = now + claims.lease_seconds(inst.config, inst.config.webhook_timeout_seconds)
    locking = claims.skip_locked(db)

    def claim(conn: apsw.Connection) -> _Send | float | None:
        # A row another transaction holds right now is passed over (None): that is another worker's claim,
        # or a write that ends the delivery or queues its next job itself.
        row = one(conn, f"SELECT * FROM webhook_deliveries WHERE id = ?{locking}", (delivery_id,))
        if row is None or row["status"] != "pending":
            return None
        if row["lease_until"] is not None and row["lease_until"] > now:
            # Another worker is attempting it. Look again when its lease runs out: if that worker was
            # lost, this is when the delivery is taken over.
            return float(row["lease_until"])
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
            _fail_one(conn, delivery_id, "the webhook is disabled", now)
            return None
        conn.execute("UPDATE webhook_deliveries SET lease_until = ? WHERE id = ?", (lease, delivery_id))
        body = event_body(event, tenant_id)
        return _Send(hook["url"], hook["secret"], event["id"], body, row["attempts"] + 1, lease)

    claimed = claims.write_rows(db, claim)
    if claimed is None:
        return
    if isinstance(claimed, float):
        if not _other_job_queued(inst, delivery_id, job.id):
            enqueue(inst, tenant_id, [(delivery_id, claimed)])
        return
    outcome = _post(inst, claimed)
    follow_up = db.write_sync(lambda c: _record(inst, c, delivery_id, claimed, outcome, claims.for_update(db)))
    enqueue(inst, tenant_id, follow_up)


def _fail_one(conn: apsw.Connection, delivery_id: str, reason: str, now: float) -> None:
    """End one pending delivery as failed (its row is the claim's: the endpoint's others are each their
    job's, so a claim never waits on another's rows)."""
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = ?, next_attempt_at = NULL, updated_at = ? "
        "WHERE id = ? AND status = 'pending'",
        (reason, now, delivery_id),
    )


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
            policy=outbound_policy(inst),
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
    inst: Instance, conn: apsw.Connection, delivery_id: str, send: _Send, result: _Outcome, locking: str = ""
) -> list[tuple[str, float]]:
    """Store an attempt's result and decide what happens next; returns (delivery, when) jobs to queue.

    Fenced by the claim: the row is locked (`locking`) and its lease compared with the one this attempt
    wrote. If another worker took the delivery over meanwhile (this one outlived its lease), nothing is
    recorded: the delivery is the other's, whose attempt counts.
    """
    now = inst.clock.now()
    row = one(conn, f"SELECT * FROM webhook_deliveries WHERE id = ?{locking}", (delivery_id,))
    if row is None:
        return []  # the endpoint was deleted meanwhile
    if row["lease_until"] != send.lease:
        log.warning(
            "webhook delivery %s: attempt %d not recorded, its lease ran out and another worker holds it",
            delivery_id,
            send.attempt,
        )
        return []
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
        fail_pending(conn, webhook_id, "the webhook was disabled after failing repeatedly", now)
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
