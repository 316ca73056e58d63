"""Forwarding a tenant's xAPI statements to external LRSs: the `xapi.forward` job and the sweep that queues it.

The targets and their settings are appliance.services.lrs.forwarding_targets; the log of every attempt is
appliance.services.lrs.forwarding_log. Each target keeps a cursor: the last `seq` of `xapi_statements` it is
done with. Statements arrive in `seq` order (one writer per tenant database, so no lower `seq` commits
after a higher one), so "everything after the cursor, in `seq` order" is both what is left to send and
the order to send it in.

Life of a statement: the `xapi-forward` sweep (every second) finds enabled targets whose cursor is
behind the newest statement and queues one `xapi.forward` job per target. The job takes a lease on
the target (its row claimed with SKIP LOCKED on PostgreSQL, every write of the run fenced by the lease,
so one worker at a time forwards a target: `forward`), reads the statements after the cursor in batches (`xapi_forward_batch_size`), drops those
the filters leave out, POSTs the rest to the target's `/statements` through the outbound guard
(appliance.services.delivery.outbound: the SSRF policy and `outbound_allow`), and advances the cursor only when the
target accepted them. A failure (no connection, a timeout, 401, 5xx, …) leaves the cursor where it
was and schedules the next attempt with exponential backoff (`retry_delay`, capped at
`xapi_forward_max_retry_seconds`), for as long as it takes: forwarding never gives up, and the
statements wait in the tenant's own LRS meanwhile.

A statement the target refuses for what it is (400 Bad Request, 409 Conflict, 413 too large) would
block the target forever if it were retried, so such a batch is sent again one statement at a time;
a refused statement is recorded in the log as `rejected` and passed over once the target has shown
that it is the statement, not the target (`_Run._one_by_one`: it took a later statement, or took
statements before and refuses fewer than MAX_REFUSED_IN_A_ROW). A target that refuses everything (a
wrong version or endpoint) is failing, not given bad statements, and nothing is passed over.
Statements are sent with their ids, so a batch sent twice (an answer lost to a timeout) is stored
once by a conformant LRS.

The log (`xapi_forwarding_log`) records every attempt: delivered, failed (with the next retry) or
rejected, with the statements' ids, the status code and the start of the answer. It keeps the newest
`LOG_KEEP` entries per target.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from appliance import __version__
from appliance.instance import Instance
from appliance.services.delivery import claims, jobs, outbound
from appliance.services.delivery.backoff import backoff_delay
from appliance.services.lrs.forwarding_log import Outcome, write_entry
from appliance.services.lrs.forwarding_targets import (
    FORWARD_JOB,
    Filters,
    enqueue,
    filters_of,
    newest_seq,
    outbound_policy,
)
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.lrs.forwarding")

SWEEP_SECONDS = 1.0
MAX_REFUSED_IN_A_ROW = 10  # more refused with none accepted after them: the target, not the statements
RETRY_BASE_SECONDS = 2.0
BATCHES_PER_RUN = 20  # then the job yields its slot (of `job_concurrency`) and queues its continuation
RUN_SECONDS = 10.0  # likewise after this long: a slow target must not hold a slot package processing needs
RESPONSE_BODY_BYTES = outbound.EXCERPT_BYTES
USER_AGENT = f"scorm-appliance-lrs-forwarding/{__version__}"


# -- pure helpers ------------------------------------------------------------------------------------------


def retry_delay(attempt: int, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the retry that follows failed attempt number `attempt` (1-based).

    2 s doubling (2, 4, 8, 16 s, …) up to `cap` (`xapi_forward_max_retry_seconds`, 5 minutes by
    default), times a jitter of 0.8-1.2: a target that comes back is reached within minutes, and one
    that stays down costs one request every few minutes.
    """
    return backoff_delay(attempt, RETRY_BASE_SECONDS, 2.0, cap, rng)


def outgoing(statement: dict[str, Any], version: str) -> dict[str, Any]:
    """A stored statement as the target is sent it: without `stored` (the target sets its own), and
    without a `version` of the other major version than the one spoken to the target (which it would
    refuse); id, timestamp, authority and everything else as stored here."""
    sent = {k: v for k, v in statement.items() if k != "stored"}
    stated = sent.get("version")
    if isinstance(stated, str) and stated.split(".", 1)[0] != version.split(".", 1)[0]:
        del sent["version"]
    return sent


def _attachment_hashes(statements: Sequence[dict[str, Any]]) -> list[str]:
    """The hashes of attachments whose content travels with the statement (those without a fileUrl)."""
    found: list[str] = []
    for statement in statements:
        for attachment in statement.get("attachments") or []:
            if isinstance(attachment, dict) and not attachment.get("fileUrl") and attachment.get("sha2"):
                found.append(str(attachment["sha2"]))
    return list(dict.fromkeys(found))


def encode_body(statements: list[dict[str, Any]], parts: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """The request body and its content type: the statements as JSON, or `multipart/mixed` with the
    attachment parts (sha2, content type, content) after them, as the specification's clients send."""
    document = json.dumps(statements, separators=(",", ":"), ensure_ascii=False).encode()
    if not parts:
        return document, "application/json"
    boundary = "xapi-forward-" + secrets.token_hex(16)
    chunks = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), document, b"\r\n"]
    for sha2, content_type, content in parts:
        head = (
            f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n"
            f"X-Experience-API-Hash: {sha2}\r\n\r\n"
        )
        chunks += [head.encode(), content, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/mixed; boundary="{boundary}"'


# -- delivery (job handler and sweep) ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What one run of the job needs of a target, read when it took the lease."""

    id: str
    url: str
    authorization: str | None
    version: str
    filters: Filters
    cursor_seq: int
    attempts: int
    proven: bool
    lease: float  # the `lease_until` the claim wrote: its fencing token (appliance.services.delivery.claims)


def _authorization(username: str | None, password: str | None) -> str | None:
    if not username and not password:
        return None
    return "Basic " + base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode("ascii")


def _lease_seconds(inst: Instance) -> float:
    """A target's lease: `job_lease_seconds`, at least one request's timeout and a margin; renewed before
    each request once a third of it has passed, and by every move of the cursor."""
    return claims.lease_seconds(inst.config, inst.config.xapi_forward_timeout_seconds)


def _read_after(conn: apsw.Connection, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    from appliance.services.lrs import (
        statement_queries,  # imported late: the LRS's reading is not forwarding's start-up
    )

    return statement_queries.read_after(conn, after_seq, limit)


def _attachment_parts(conn: apsw.Connection, hashes: list[str]) -> list[tuple[str, str, bytes]]:
    if not hashes:
        return []
    marks = ", ".join("?" for _ in hashes)
    found = {
        r["sha2"]: r
        for r in rows(conn, f"SELECT sha2, content_type, content FROM xapi_attachments WHERE sha2 IN ({marks})", hashes)
    }
    return [(h, found[h]["content_type"], bytes(found[h]["content"])) for h in hashes if h in found]


def _post(inst: Instance, target: _Target, body: bytes, content_type: str) -> Outcome:
    """One POST of statements through the outbound guard; errors as generic texts (appliance.services.delivery.outbound)."""
    headers = {
        "content-type": content_type,
        "x-experience-api-version": target.version,
        "user-agent": USER_AGENT,
    }
    if target.authorization:
        headers["authorization"] = target.authorization
    started = time.perf_counter()  # a duration, not a time of day: the injected clock is not needed
    try:
        reply = outbound.send(
            "POST",
            target.url + "statements",
            policy=outbound_policy(inst),
            timeout=inst.config.xapi_forward_timeout_seconds,
            max_body=RESPONSE_BODY_BYTES,
            headers=headers,
            content=body,
        )
    except outbound.OutboundError as exc:
        log.info("forwarding to %s (%s) failed: %s", target.id, target.url, exc.reason)
        return Outcome(int((time.perf_counter() - started) * 1000), None, exc.message, None)
    except Exception:  # a bug, not the target: a failed attempt all the same, and a trace for the operator
        log.exception("forwarding to %s (%s) failed unexpectedly", target.id, target.url)
        return Outcome(int((time.perf_counter() - started) * 1000), None, "the request failed", None)
    elapsed = int((time.perf_counter() - started) * 1000)
    error = None if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
    return Outcome(elapsed, reply.status_code, error, reply.excerpt())


class _Gone(Exception):
    """The target was deleted, disabled or its lease taken over meanwhile: stop without a trace."""


def _advance(
    inst: Instance,
    conn: apsw.Connection,
    target: _Target,
    held: float,
    from_seq: int,
    to_seq: int,
    *,
    forwarded: int,
    rejected: int,
    filtered: int,
) -> float:
    """Move the cursor from `from_seq` to `to_seq` (only if it still is at `from_seq` and the lease `held` is
    still this run's) and renew the lease; returns the new lease (_Gone: the target is not this run's)."""
    now = inst.clock.now()
    lease = now + _lease_seconds(inst)
    conn.execute(
        "UPDATE xapi_forwarding_targets SET cursor_seq = ?, forwarded_count = forwarded_count + ?, "
        "rejected_count = rejected_count + ?, filtered_count = filtered_count + ?, attempts = 0, "
        "next_attempt_at = NULL, failing_since = NULL, last_error = NULL, lease_until = ?, "
        "proven = CASE WHEN ? > 0 THEN 1 ELSE proven END, "
        "last_forwarded_at = CASE WHEN ? > 0 THEN ? ELSE last_forwarded_at END "
        "WHERE id = ? AND cursor_seq = ? AND enabled = 1 AND lease_until = ?",
        (
            to_seq,
            forwarded,
            rejected,
            filtered,
            lease,
            forwarded,
            forwarded,
            now,
            target.id,
            from_seq,
            held,
        ),
    )
    if conn.changes() != 1:
        raise _Gone
    return lease


Read = list[tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class _Refusal:
    """A statement the target refused on its own, not yet passed over."""

    seq: int
    statement: dict[str, Any]
    outcome: Outcome


class _Run:
    """One run of the `xapi.forward` job on one target: batches until caught up, a failure, or the budget."""

    def __init__(self, inst: Instance, tenant_id: str, target: _Target) -> None:
        self.inst = inst
        self.tenant_id = tenant_id
        self.db = inst.tenant_db(tenant_id)
        self.target = target
        self.cursor = target.cursor_seq
        self.read: Read = []
        self.lease: float | None = target.lease  # None once given back (a failed attempt releases it)
        self.renewed_at = inst.clock.now()

    def keep_lease(self) -> None:
        """Renew the lease before a request once a third of it has passed (a run of slow requests
        outlasts one lease); _Gone if it is no longer this run's (another worker took the target over)."""
        now, seconds = self.inst.clock.now(), _lease_seconds(self.inst)
        if self.lease is None or now - self.renewed_at < seconds / 3:
            return
        held, lease = self.lease, now + seconds

        def renew(conn: apsw.Connection) -> int:
            conn.execute(
                "UPDATE xapi_forwarding_targets SET lease_until = ? WHERE id = ? AND lease_until = ?",
                (lease, self.target.id, held),
            )
            return int(conn.changes())

        if claims.write_rows(self.db, renew) != 1:
            raise _Gone
        self.lease, self.renewed_at = lease, now

    def release(self) -> None:
        """Give the lease back at the end of the run (if it is still this run's)."""
        if self.lease is None:
            return
        held, self.lease = self.lease, None
        claims.write_rows(
            self.db,
            lambda c: c.execute(
                "UPDATE xapi_forwarding_targets SET lease_until = NULL WHERE id = ? AND lease_until = ?",
                (self.target.id, held),
            ),
        )

    def step(self) -> bool | None:
        """Send one batch; True when there may be more, False when caught up, None after a failure."""
        batch_size = max(1, self.inst.config.xapi_forward_batch_size)
        self.read = self.db.read_sync(lambda c: _read_after(c, self.cursor, batch_size))
        if not self.read:
            return False
        more = len(self.read) == batch_size
        chosen = [(seq, s) for seq, s in self.read if self.target.filters.admits(s)]
        if not chosen:
            self._commit(self.read[-1][0])
            return more
        outcome = self._send(chosen)
        if outcome.ok:
            self._commit(self.read[-1][0], delivered=(chosen, outcome))
            return more
        if outcome.refused:
            return self._one_by_one(chosen)
        self._failed(chosen, outcome)
        return None

    def _one_by_one(self, chosen: Read) -> bool | None:
        """A batch the target refused, sent again one statement at a time.

        Each statement the target accepts moves the cursor past it and past the refused ones before it,
        which are logged as `rejected` and passed over: the target took the statements after them, so
        it is them, not the target. Refused statements with none accepted after them are passed over
        only if the target has accepted statements before (`proven`) and they are fewer than
        `MAX_REFUSED_IN_A_ROW`; otherwise the target is more likely misconfigured (a wrong version or
        endpoint refuses everything) than sent bad statements, and the pass is a failed attempt,
        retried with backoff, so nothing is passed over by mistake.
        """
        refused: list[_Refusal] = []
        for seq, statement in chosen:
            outcome = self._send([(seq, statement)])
            if outcome.ok:
                self._commit(seq, refused=refused, delivered=([(seq, statement)], outcome))
                refused = []
            elif outcome.refused:
                refused.append(_Refusal(seq, statement, outcome))
            else:
                self._failed([(seq, statement)], outcome)
                return None
        if refused and (not self.target.proven or len(refused) >= MAX_REFUSED_IN_A_ROW):
            last = refused[-1].outcome
            why = "has accepted none since it was set up" if not self.target.proven else "accepted none of them"
            error = (
                f"the target refused {len(refused)} statement(s) one by one ({last.error}) and {why}: "
                "check its endpoint, version and credentials"
            )
            self._failed([(r.seq, r.statement) for r in refused], dataclasses.replace(last, error=error))
            return None
        if refused or self.read[-1][0] > self.cursor:
            self._commit(self.read[-1][0], refused=refused)
        return True

    def _send(self, batch: Read) -> Outcome:
        self.keep_lease()
        statements = [outgoing(s, self.target.version) for _, s in batch]
        hashes = _attachment_hashes(statements)
        parts = self.db.read_sync(lambda c: _attachment_parts(c, hashes)) if hashes else []
        body, content_type = encode_body(statements, parts)
        return _post(self.inst, self.target, body, content_type)

    def _commit(
        self,
        to_seq: int,
        *,
        refused: Sequence[_Refusal] = (),
        delivered: tuple[Read, Outcome] | None = None,
    ) -> None:
        """Move the cursor to `to_seq`: the refused statements passed over, the delivered ones logged, the
        rest of the statements read up to there counted as left out by the filters."""
        from_seq, attempt = self.cursor, self.target.attempts + 1
        forwarded = len(delivered[0]) if delivered else 0
        passed = sum(1 for seq, _ in self.read if from_seq < seq <= to_seq)
        filtered = passed - forwarded - len(refused)

        held = self.lease
        if held is None:
            raise _Gone

        def write(conn: apsw.Connection) -> float:
            lease = _advance(
                self.inst,
                conn,
                self.target,
                held,
                from_seq,
                to_seq,
                forwarded=forwarded,
                rejected=len(refused),
                filtered=filtered,
            )
            now = self.inst.clock.now()
            for r in refused:
                write_entry(conn, self.target.id, "rejected", attempt, [(r.seq, r.statement)], r.outcome, now)
            last = delivered[1] if delivered else (refused[-1].outcome if refused else None)
            if last is not None and last.status_code is not None:
                conn.execute(
                    "UPDATE xapi_forwarding_targets SET last_status_code = ? WHERE id = ?",
                    (last.status_code, self.target.id),
                )
            if delivered:
                write_entry(conn, self.target.id, "delivered", attempt, delivered[0], delivered[1], now)
            return lease

        self.lease = self.db.write_sync(write)
        self.renewed_at = self.inst.clock.now()
        for r in refused:
            log.info(
                "forwarding target %s rejected statement %s: %s", self.target.id, r.statement.get("id"), r.outcome.error
            )
        self.cursor = to_seq
        self.target = dataclasses.replace(
            self.target, cursor_seq=to_seq, attempts=0, proven=self.target.proven or forwarded > 0
        )

    def _failed(self, batch: Read, outcome: Outcome) -> None:
        """Record a failed attempt, schedule the next one with backoff, and queue the job that makes it."""
        now = self.inst.clock.now()
        attempt = self.target.attempts + 1
        retry_at = now + retry_delay(attempt, self.inst.config.xapi_forward_max_retry_seconds)
        held, self.lease = self.lease, None  # released by this write, or not this run's any more

        def write(conn: apsw.Connection) -> bool:
            conn.execute(
                "UPDATE xapi_forwarding_targets SET attempts = ?, next_attempt_at = ?, "
                "failing_since = coalesce(failing_since, ?), last_status_code = ?, last_error = ?, "
                "lease_until = NULL WHERE id = ? AND cursor_seq = ? AND lease_until = ?",
                (attempt, retry_at, now, outcome.status_code, outcome.error, self.target.id, self.cursor, held),
            )
            if conn.changes() != 1:
                return False
            write_entry(conn, self.target.id, "failed", attempt, batch, outcome, now)
            return True

        if self.db.write_sync(write):
            enqueue(self.inst, self.tenant_id, self.target.id, retry_at, unique=False)


def forward(inst: Instance, job: jobs.Job) -> None:
    """The `xapi.forward` job: send a target's statements after its cursor, batch by batch, in order.

    The target is claimed first (appliance.services.delivery.claims): on PostgreSQL its row is locked with SKIP
    LOCKED and leased, so one worker at a time forwards a target, and every write of the run (the cursor,
    a failure, the lease's renewal and release) is fenced by that lease. A worker lost mid-run leaves the
    lease to run out; the sweep then queues the target again and another worker goes on from the cursor.
    """
    tenant_id, target_id = job.payload["tenant_id"], job.payload["target_id"]
    if not inst.has_tenant_db(tenant_id):
        return
    db = inst.tenant_db(tenant_id)
    now = inst.clock.now()
    lease = now + _lease_seconds(inst)
    locking = claims.skip_locked(db)

    def claim(conn: apsw.Connection) -> _Target | float | None:
        # A row another transaction holds right now is passed over (None): another worker is claiming it.
        row = one(conn, f"SELECT * FROM xapi_forwarding_targets WHERE id = ?{locking}", (target_id,))
        if row is None or not row["enabled"]:
            return None
        if row["lease_until"] is not None and row["lease_until"] > now:
            return None  # another job is at work on it; it queues what follows (or the sweep, if it is lost)
        if row["next_attempt_at"] is not None and row["next_attempt_at"] > now + 0.5:
            return float(row["next_attempt_at"])  # a retry that is not due yet
        conn.execute("UPDATE xapi_forwarding_targets SET lease_until = ? WHERE id = ?", (lease, target_id))
        return _Target(
            row["id"],
            row["endpoint"],
            _authorization(row["username"], row["password"]),
            row["version"],
            filters_of(row),
            row["cursor_seq"],
            row["attempts"],
            bool(row["proven"]),
            lease,
        )

    claimed = claims.write_rows(db, claim)
    if claimed is None:
        return
    if isinstance(claimed, float):
        if not _other_job_queued(inst, tenant_id, target_id, job.id):
            enqueue(inst, tenant_id, target_id, claimed, unique=False)
        return
    run = _Run(inst, tenant_id, claimed)
    more: bool | None = True
    started = time.monotonic()  # a budget of real time, whatever the injected clock says
    try:
        for _ in range(BATCHES_PER_RUN):
            more = run.step()
            if not more or time.monotonic() - started > RUN_SECONDS:
                break
    except _Gone:
        return
    finally:
        run.release()
    if more:  # the budget ran out with statements left: continue in a fresh job, after the others queued
        enqueue(inst, tenant_id, target_id, inst.clock.now(), unique=False)


def _other_job_queued(inst: Instance, tenant_id: str, target_id: str, job_id: str) -> bool:
    found = inst.registry.read_sync(
        lambda c: one(
            c,
            "SELECT 1 AS x FROM jobs WHERE kind = ? AND status = 'queued' AND id != ? "
            "AND json_extract(payload, '$.key') = ? LIMIT 1",
            (FORWARD_JOB, job_id, f"{tenant_id}/{target_id}"),
        )
    )
    return found is not None


def _tenant_ids(inst: Instance) -> list[str]:
    found = inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants ORDER BY created_at"))
    return [r["id"] for r in found if inst.has_tenant_db(r["id"])]


def due_targets(inst: Instance, tenant_id: str) -> list[tuple[str, float]]:
    """A tenant's enabled targets that are behind the newest statement, with when each may go next."""
    now = inst.clock.now()

    def read(conn: apsw.Connection) -> list[tuple[str, float]]:
        targets = rows(
            conn,
            "SELECT id, cursor_seq, next_attempt_at, lease_until FROM xapi_forwarding_targets WHERE enabled = 1",
        )
        if not targets:
            return []
        newest = newest_seq(conn)
        return [
            (t["id"], max(now, t["next_attempt_at"] or now))
            for t in targets
            if t["cursor_seq"] < newest and not (t["lease_until"] is not None and t["lease_until"] > now)
        ]

    return inst.tenant_db(tenant_id).read_sync(read)


def sweep(inst: Instance) -> int:
    """Periodic sweep (every second): queue a job for each target with statements to send and no job.

    It is also the recovery: after a crash, a target whose job was lost is found here again.
    """
    due: list[tuple[str, str, float]] = []
    for tenant_id in _tenant_ids(inst):
        try:
            due.extend((tenant_id, target_id, when) for target_id, when in due_targets(inst, tenant_id))
        except Exception:
            log.exception("could not read the forwarding targets of tenant %s", tenant_id)
    if not due:
        return 0
    queued = jobs.pending_keys(inst.registry, FORWARD_JOB)
    added = 0
    for tenant_id, target_id, when in due:
        if f"{tenant_id}/{target_id}" not in queued:
            enqueue(inst, tenant_id, target_id, when, unique=True)
            added += 1
    return added


JOB_KEEP_SECONDS = 3600.0


def purge_jobs(inst: Instance) -> int:
    """Hourly: drop finished `xapi.forward` jobs older than an hour; returns how many.

    A busy tenant's target gets a job about every second, and the delivery log (not the job rows) is the
    record of what was sent, so these are not kept the week other finished jobs are.
    """
    before = inst.clock.now() - JOB_KEEP_SECONDS

    def purge(conn: apsw.Connection) -> int:
        conn.execute("DELETE FROM jobs WHERE kind = ? AND status = 'done' AND updated_at < ?", (FORWARD_JOB, before))
        return int(conn.changes())

    return inst.registry.write_sync(purge)
