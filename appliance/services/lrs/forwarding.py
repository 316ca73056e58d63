"""Forwarding a tenant's xAPI statements to external LRSs: targets, a cursor each, ordered delivery, a log.

A target is an LRS endpoint (`https://lrs.example.org/xapi/`) with HTTP Basic credentials, an xAPI
version to speak, and filters (verb IRIs, activity id prefixes). Each target keeps a cursor: the last
`seq` of `xapi_statements` it is done with. Statements arrive in `seq` order (one writer per tenant
database, so no lower `seq` commits after a higher one), so "everything after the cursor, in `seq`
order" is both what is left to send and the order to send it in.

Life of a statement: the `xapi-forward` sweep (every second) finds enabled targets whose cursor is
behind the newest statement and queues one `xapi.forward` job per target. The job takes a lease on
the target, reads the statements after the cursor in batches (`xapi_forward_batch_size`), drops those
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
from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import encode_cursor, keyset_clause, page_result, parse_page
from appliance.services.delivery import jobs, outbound
from appliance.services.delivery.webhooks import backoff_delay
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.lrs.forwarding")

FORWARD_JOB = "xapi.forward"
SWEEP_SECONDS = 1.0
VERSIONS = ("1.0.3", "2.0.0")
REFUSING_STATUSES = frozenset({400, 409, 413})  # about the statements, not the target: retrying cannot help
MAX_REFUSED_IN_A_ROW = 10  # more refused with none accepted after them: the target, not the statements
RETRY_BASE_SECONDS = 2.0
BATCHES_PER_RUN = 20  # then the job yields its slot (of `job_concurrency`) and queues its continuation
RUN_SECONDS = 10.0  # likewise after this long: a slow target must not hold a slot package processing needs
LOG_KEEP = 1000
MAX_URL_CHARS = 2048
MAX_FILTERS = 100
MAX_FILTER_CHARS = 2048
MAX_NAME_CHARS = 200
RESPONSE_BODY_BYTES = outbound.EXCERPT_BYTES
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
USER_AGENT = f"scorm-appliance-lrs-forwarding/{__version__}"


# -- pure helpers ------------------------------------------------------------------------------------------


def retry_delay(attempt: int, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the retry that follows failed attempt number `attempt` (1-based).

    2 s doubling (2, 4, 8, 16 s, …) up to `cap` (`xapi_forward_max_retry_seconds`, 5 minutes by
    default), times a jitter of 0.8-1.2: a target that comes back is reached within minutes, and one
    that stays down costs one request every few minutes.
    """
    return backoff_delay(attempt, RETRY_BASE_SECONDS, 2.0, cap, rng)


@dataclass(frozen=True)
class Filters:
    """Which statements a target takes: a verb in `verbs` (when any) and an object activity id starting
    with one of `activity_prefixes` (when any). Voiding statements always pass, so a target can void what
    it received."""

    verbs: tuple[str, ...] = ()
    activity_prefixes: tuple[str, ...] = ()

    def admits(self, statement: dict[str, Any]) -> bool:
        """Whether `statement` is forwarded to the target."""
        verb = (statement.get("verb") or {}).get("id")
        if verb == VOIDED:
            return True
        if self.verbs and verb not in self.verbs:
            return False
        if self.activity_prefixes:
            obj = statement.get("object") or {}
            if obj.get("objectType", "Activity") != "Activity":
                return False
            activity = str(obj.get("id", ""))
            return any(activity.startswith(p) for p in self.activity_prefixes)
        return True


def _check_list(values: Sequence[str] | None, field: str) -> list[str]:
    found = list(dict.fromkeys(v.strip() for v in (values or []) if isinstance(v, str) and v.strip()))
    if len(found) > MAX_FILTERS or any(len(v) > MAX_FILTER_CHARS for v in found):
        raise ValidationFailed(
            f"{field}: at most {MAX_FILTERS} entries of {MAX_FILTER_CHARS} characters",
            {"errors": [{"field": f"filters.{field}", "message": "too many or too long"}]},
        )
    if field == "verbs":
        bad = [v for v in found if ":" not in v]
        if bad:
            raise ValidationFailed(
                "filters.verbs must list verb IRIs",
                {"errors": [{"field": "filters.verbs", "message": f"not an IRI: {bad[0]!r}"}]},
            )
    return found


def check_endpoint(url: str, policy: outbound.Policy) -> str:
    """The LRS endpoint as stored: an absolute http(s) URL the policy could admit, ending in `/`.

    No query or fragment: the resource (`statements`) is appended to the path. Each attempt checks the
    resolved addresses again (appliance.services.delivery.outbound), since DNS may answer differently by then.
    """
    text = url.strip()
    try:
        if len(text) > MAX_URL_CHARS:
            raise outbound.OutboundRefused(f"the URL is limited to {MAX_URL_CHARS} characters")
        target = outbound.check_url(text, policy)
        if target.url.query or target.url.fragment:
            raise outbound.OutboundRefused("the endpoint takes no query or fragment")
    except outbound.OutboundRefused as exc:
        raise ValidationFailed(
            f"endpoint: {exc.message}", {"errors": [{"field": "endpoint", "message": exc.message}]}
        ) from exc
    return text if text.endswith("/") else text + "/"


def check_version(version: str) -> str:
    """One of VERSIONS (what the target is sent in `X-Experience-API-Version`)."""
    if version not in VERSIONS:
        raise ValidationFailed(
            f"version must be one of {', '.join(VERSIONS)}",
            {"errors": [{"field": "version", "message": f"unknown version {version!r}"}]},
        )
    return version


def _check_name(name: str | None) -> str:
    text = (name or "").strip()
    if len(text) > MAX_NAME_CHARS:
        raise ValidationFailed(
            f"name is limited to {MAX_NAME_CHARS} characters", {"errors": [{"field": "name", "message": "too long"}]}
        )
    return text


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


def _policy(inst: Instance) -> outbound.Policy:
    return outbound.policy_for(inst.config.outbound_allow)


# -- targets -----------------------------------------------------------------------------------------------


def _filters(row: dict[str, Any]) -> Filters:
    return Filters(tuple(json.loads(row["verbs"])), tuple(json.loads(row["activity_prefixes"])))


def _status(row: dict[str, Any]) -> str:
    if not row["enabled"]:
        return "disabled"
    return "retrying" if row["attempts"] else "active"


def target_json(row: dict[str, Any], pending: int | None = None) -> dict[str, Any]:
    """A target as the API and CLI show it: never its password."""
    return {
        "id": row["id"],
        "name": row["name"],
        "endpoint": row["endpoint"],
        "username": row["username"],
        "has_password": bool(row["password"]),
        "version": row["version"],
        "filters": {"verbs": json.loads(row["verbs"]), "activity_prefixes": json.loads(row["activity_prefixes"])},
        "enabled": bool(row["enabled"]),
        "status": _status(row),
        "cursor_seq": row["cursor_seq"],
        "pending_statements": pending,
        "forwarded_count": row["forwarded_count"],
        "rejected_count": row["rejected_count"],
        "filtered_count": row["filtered_count"],
        "failed_attempts": row["attempts"],
        "next_retry_at": rfc3339(row["next_attempt_at"]) if row["attempts"] and row["enabled"] else None,
        "failing_since": rfc3339(row["failing_since"]),
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "last_forwarded_at": rfc3339(row["last_forwarded_at"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def _target_row(conn: apsw.Connection, target_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM xapi_forwarding_targets WHERE id = ?", (target_id,))
    if row is None:
        raise NotFound(f"no forwarding target {target_id!r}", {"target_id": target_id})
    return row


def _newest_seq(conn: apsw.Connection) -> int:
    found = one(conn, "SELECT max(seq) AS seq FROM xapi_statements")
    return int(found["seq"] or 0) if found else 0


def _pending(conn: apsw.Connection, cursor_seq: int) -> int:
    found = one(conn, "SELECT count(*) AS n FROM xapi_statements WHERE seq > ?", (cursor_seq,))
    return int(found["n"]) if found else 0


def _json_of(conn: apsw.Connection, row: dict[str, Any]) -> dict[str, Any]:
    return target_json(row, _pending(conn, row["cursor_seq"]))


def create_target(
    inst: Instance,
    tenant: Tenant,
    *,
    endpoint: str,
    username: str | None = None,
    password: str | None = None,
    version: str = "1.0.3",
    verbs: Sequence[str] | None = None,
    activity_prefixes: Sequence[str] | None = None,
    name: str | None = None,
    enabled: bool = True,
    forward_existing: bool = False,
) -> dict[str, Any]:
    """Create a target. It forwards statements stored from now on, or the tenant's whole history with
    `forward_existing` (its cursor then starts at 0)."""
    url, text = check_endpoint(endpoint, _policy(inst)), _check_name(name)
    check_version(version)
    verb_list, prefix_list = _check_list(verbs, "verbs"), _check_list(activity_prefixes, "activity_prefixes")
    now, target_id = inst.clock.now(), new_id("fwd")

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        start = 0 if forward_existing else _newest_seq(conn)
        conn.execute(
            "INSERT INTO xapi_forwarding_targets (id, name, endpoint, username, password, version, verbs, "
            "activity_prefixes, enabled, cursor_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                target_id,
                text,
                url,
                username or None,
                password or None,
                version,
                json.dumps(verb_list),
                json.dumps(prefix_list),
                int(enabled),
                start,
                now,
                now,
            ),
        )
        return _json_of(conn, _target_row(conn, target_id))

    made = inst.tenant_db(tenant.id).write_sync(insert)
    if made["enabled"] and made["pending_statements"]:
        wake(inst, tenant.id, target_id)
    return made


def list_targets(inst: Instance, tenant: Tenant, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of targets, oldest first (the API's keyset paging, appliance.pagination)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)

    def read(conn: apsw.Connection) -> dict[str, Any]:
        found = rows(
            conn,
            f"SELECT * FROM xapi_forwarding_targets WHERE {where} ORDER BY created_at, id LIMIT ?",
            (*params, page.limit + 1),
        )
        return page_result(found, page, lambda r: _json_of(conn, r))

    return inst.tenant_db(tenant.id).read_sync(read)


def get_target(inst: Instance, tenant: Tenant, target_id: str) -> dict[str, Any]:
    """One target with its backlog (`pending_statements`), or NotFound."""
    return inst.tenant_db(tenant.id).read_sync(lambda c: _json_of(c, _target_row(c, target_id)))


def update_target(
    inst: Instance,
    tenant: Tenant,
    target_id: str,
    *,
    endpoint: str | None = None,
    username: str | None = None,
    password: str | None = None,
    version: str | None = None,
    verbs: Sequence[str] | None = None,
    activity_prefixes: Sequence[str] | None = None,
    name: str | None = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    """Change a target; arguments left None keep their value (an empty string clears the credentials).

    A change of endpoint, credentials or enabling makes the next attempt due now: what made it fail
    may be what was just fixed. The cursor never moves here.
    """
    changes: dict[str, Any] = {}
    if endpoint is not None:
        changes["endpoint"] = check_endpoint(endpoint, _policy(inst))
    if username is not None:
        changes["username"] = username or None
    if password is not None:
        changes["password"] = password or None
    if version is not None:
        changes["version"] = check_version(version)
    if verbs is not None:
        changes["verbs"] = json.dumps(_check_list(verbs, "verbs"))
    if activity_prefixes is not None:
        changes["activity_prefixes"] = json.dumps(_check_list(activity_prefixes, "activity_prefixes"))
    if name is not None:
        changes["name"] = _check_name(name)
    if enabled is not None:
        changes["enabled"] = int(enabled)
    if changes.keys() & {"endpoint", "username", "password", "version"}:
        changes["proven"] = 0  # refusals by what may be another LRS no longer show the statements are bad
    if changes.keys() & {"endpoint", "username", "password", "version", "enabled"}:
        changes["next_attempt_at"] = None
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        _target_row(conn, target_id)
        if changes:
            assignments = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE xapi_forwarding_targets SET {assignments}, updated_at = ? WHERE id = ?",
                (*changes.values(), now, target_id),
            )
        return _json_of(conn, _target_row(conn, target_id))

    changed = inst.tenant_db(tenant.id).write_sync(update)
    if changed["enabled"] and changed["pending_statements"] and "next_attempt_at" in changes:
        # What made it fail may be what was just fixed: try now, not at the retry already queued (that
        # job finds the lease or nothing to do, so two jobs never send at once).
        _enqueue(inst, tenant.id, target_id, inst.clock.now(), unique=False)
    return changed


def delete_target(inst: Instance, tenant: Tenant, target_id: str) -> None:
    """Delete a target and its log; a job at work on it finds it gone and stops."""

    def delete(conn: apsw.Connection) -> None:
        _target_row(conn, target_id)
        conn.execute("DELETE FROM xapi_forwarding_targets WHERE id = ?", (target_id,))

    inst.tenant_db(tenant.id).write_sync(delete)


# -- the delivery log --------------------------------------------------------------------------------------


OUTCOMES = ("delivered", "failed", "rejected")


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
        _target_row(conn, target_id)
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


@dataclass(frozen=True)
class _Outcome:
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


def _authorization(username: str | None, password: str | None) -> str | None:
    if not username and not password:
        return None
    return "Basic " + base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode("ascii")


def _lease_seconds(inst: Instance) -> float:
    return inst.config.xapi_forward_timeout_seconds * 2 + 60.0


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


def _post(inst: Instance, target: _Target, body: bytes, content_type: str) -> _Outcome:
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
            policy=_policy(inst),
            timeout=inst.config.xapi_forward_timeout_seconds,
            max_body=RESPONSE_BODY_BYTES,
            headers=headers,
            content=body,
        )
    except outbound.OutboundError as exc:
        log.info("forwarding to %s (%s) failed: %s", target.id, target.url, exc.reason)
        return _Outcome(int((time.perf_counter() - started) * 1000), None, exc.message, None)
    except Exception:  # a bug, not the target: a failed attempt all the same, and a trace for the operator
        log.exception("forwarding to %s (%s) failed unexpectedly", target.id, target.url)
        return _Outcome(int((time.perf_counter() - started) * 1000), None, "the request failed", None)
    elapsed = int((time.perf_counter() - started) * 1000)
    error = None if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}"
    return _Outcome(elapsed, reply.status_code, error, reply.excerpt())


def _log(
    conn: apsw.Connection,
    target_id: str,
    outcome: str,
    attempt: int,
    batch: Sequence[tuple[int, dict[str, Any]]],
    result: _Outcome,
    now: float,
) -> None:
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


class _Gone(Exception):
    """The target was deleted, disabled or its lease taken over meanwhile: stop without a trace."""


def _advance(
    inst: Instance,
    conn: apsw.Connection,
    target: _Target,
    from_seq: int,
    to_seq: int,
    *,
    forwarded: int,
    rejected: int,
    filtered: int,
) -> None:
    """Move the cursor from `from_seq` to `to_seq` (only if it still is at `from_seq`) and renew the lease."""
    now = inst.clock.now()
    conn.execute(
        "UPDATE xapi_forwarding_targets SET cursor_seq = ?, forwarded_count = forwarded_count + ?, "
        "rejected_count = rejected_count + ?, filtered_count = filtered_count + ?, attempts = 0, "
        "next_attempt_at = NULL, failing_since = NULL, last_error = NULL, lease_until = ?, "
        "proven = CASE WHEN ? > 0 THEN 1 ELSE proven END, "
        "last_forwarded_at = CASE WHEN ? > 0 THEN ? ELSE last_forwarded_at END "
        "WHERE id = ? AND cursor_seq = ? AND enabled = 1",
        (
            to_seq,
            forwarded,
            rejected,
            filtered,
            now + _lease_seconds(inst),
            forwarded,
            forwarded,
            now,
            target.id,
            from_seq,
        ),
    )
    if conn.changes() != 1:
        raise _Gone


Read = list[tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class _Refusal:
    """A statement the target refused on its own, not yet passed over."""

    seq: int
    statement: dict[str, Any]
    outcome: _Outcome


class _Run:
    """One run of the `xapi.forward` job on one target: batches until caught up, a failure, or the budget."""

    def __init__(self, inst: Instance, tenant_id: str, target: _Target) -> None:
        self.inst = inst
        self.tenant_id = tenant_id
        self.db = inst.tenant_db(tenant_id)
        self.target = target
        self.cursor = target.cursor_seq
        self.read: Read = []

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

    def _send(self, batch: Read) -> _Outcome:
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
        delivered: tuple[Read, _Outcome] | None = None,
    ) -> None:
        """Move the cursor to `to_seq`: the refused statements passed over, the delivered ones logged, the
        rest of the statements read up to there counted as left out by the filters."""
        from_seq, attempt = self.cursor, self.target.attempts + 1
        forwarded = len(delivered[0]) if delivered else 0
        passed = sum(1 for seq, _ in self.read if from_seq < seq <= to_seq)
        filtered = passed - forwarded - len(refused)

        def write(conn: apsw.Connection) -> None:
            _advance(
                self.inst,
                conn,
                self.target,
                from_seq,
                to_seq,
                forwarded=forwarded,
                rejected=len(refused),
                filtered=filtered,
            )
            now = self.inst.clock.now()
            for r in refused:
                _log(conn, self.target.id, "rejected", attempt, [(r.seq, r.statement)], r.outcome, now)
            last = delivered[1] if delivered else (refused[-1].outcome if refused else None)
            if last is not None and last.status_code is not None:
                conn.execute(
                    "UPDATE xapi_forwarding_targets SET last_status_code = ? WHERE id = ?",
                    (last.status_code, self.target.id),
                )
            if delivered:
                _log(conn, self.target.id, "delivered", attempt, delivered[0], delivered[1], now)

        self.db.write_sync(write)
        for r in refused:
            log.info(
                "forwarding target %s rejected statement %s: %s", self.target.id, r.statement.get("id"), r.outcome.error
            )
        self.cursor = to_seq
        self.target = dataclasses.replace(
            self.target, cursor_seq=to_seq, attempts=0, proven=self.target.proven or forwarded > 0
        )

    def _failed(self, batch: Read, outcome: _Outcome) -> None:
        """Record a failed attempt, schedule the next one with backoff, and queue the job that makes it."""
        now = self.inst.clock.now()
        attempt = self.target.attempts + 1
        retry_at = now + retry_delay(attempt, self.inst.config.xapi_forward_max_retry_seconds)

        def write(conn: apsw.Connection) -> bool:
            conn.execute(
                "UPDATE xapi_forwarding_targets SET attempts = ?, next_attempt_at = ?, "
                "failing_since = coalesce(failing_since, ?), last_status_code = ?, last_error = ?, "
                "lease_until = NULL WHERE id = ? AND cursor_seq = ?",
                (attempt, retry_at, now, outcome.status_code, outcome.error, self.target.id, self.cursor),
            )
            if conn.changes() != 1:
                return False
            _log(conn, self.target.id, "failed", attempt, batch, outcome, now)
            return True

        if self.db.write_sync(write):
            _enqueue(self.inst, self.tenant_id, self.target.id, retry_at, unique=False)


def _enqueue(inst: Instance, tenant_id: str, target_id: str, run_at: float, *, unique: bool) -> None:
    """Queue the target's job. `unique` (the sweep) adds none while one is queued or running; a running
    job queues its own continuation or retry with `unique` off, since it counts itself."""
    now = inst.clock.now()
    inst.registry.write_sync(
        lambda c: jobs.enqueue(
            c,
            FORWARD_JOB,
            {"tenant_id": tenant_id, "target_id": target_id, "key": f"{tenant_id}/{target_id}"},
            now=now,
            tenant_id=tenant_id,
            run_at=run_at,
            max_attempts=3,
            unique=unique,
        )
    )


def forward(inst: Instance, job: jobs.Job) -> None:
    """The `xapi.forward` job: send a target's statements after its cursor, batch by batch, in order."""
    tenant_id, target_id = job.payload["tenant_id"], job.payload["target_id"]
    if not inst.has_tenant_db(tenant_id):
        return
    db = inst.tenant_db(tenant_id)
    now = inst.clock.now()

    def claim(conn: apsw.Connection) -> _Target | float | None:
        row = one(conn, "SELECT * FROM xapi_forwarding_targets WHERE id = ?", (target_id,))
        if row is None or not row["enabled"]:
            return None
        if row["lease_until"] is not None and row["lease_until"] > now:
            return None  # another job is at work on it; it queues what follows
        if row["next_attempt_at"] is not None and row["next_attempt_at"] > now + 0.5:
            return float(row["next_attempt_at"])  # a retry that is not due yet
        conn.execute(
            "UPDATE xapi_forwarding_targets SET lease_until = ? WHERE id = ?", (now + _lease_seconds(inst), target_id)
        )
        return _Target(
            row["id"],
            row["endpoint"],
            _authorization(row["username"], row["password"]),
            row["version"],
            _filters(row),
            row["cursor_seq"],
            row["attempts"],
            bool(row["proven"]),
        )

    claimed = db.write_sync(claim)
    if claimed is None:
        return
    if isinstance(claimed, float):
        if not _other_job_queued(inst, tenant_id, target_id, job.id):
            _enqueue(inst, tenant_id, target_id, claimed, unique=False)
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
        db.write_sync(
            lambda c: c.execute("UPDATE xapi_forwarding_targets SET lease_until = NULL WHERE id = ?", (target_id,))
        )
    if more:  # the budget ran out with statements left: continue in a fresh job, after the others queued
        _enqueue(inst, tenant_id, target_id, inst.clock.now(), unique=False)


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
        newest = _newest_seq(conn)
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
            _enqueue(inst, tenant_id, target_id, when, unique=True)
            added += 1
    return added


def wake(inst: Instance, tenant_id: str, target_id: str) -> None:
    """Queue the target's job now (after it was created, enabled or changed), unless one is queued."""
    _enqueue(inst, tenant_id, target_id, inst.clock.now(), unique=True)


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
