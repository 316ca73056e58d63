"""xAPI forwarding targets: the external LRSs a tenant's statements are forwarded to, and their settings.

A target is an LRS endpoint (`https://lrs.example.org/xapi/`) with HTTP Basic credentials, an xAPI
version to speak, and filters (verb IRIs, activity id prefixes). Each target keeps a cursor: the last
`seq` of `xapi_statements` it is done with (moved only by the forwarding job, appliance.services.lrs.forwarding).
Creating, enabling or fixing a target queues its job (`wake`, `enqueue`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.delivery import jobs, outbound
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

FORWARD_JOB = "xapi.forward"
VERSIONS = ("1.0.3", "2.0.0")
MAX_URL_CHARS = 2048
MAX_FILTERS = 100
MAX_FILTER_CHARS = 2048
MAX_NAME_CHARS = 200
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


# -- checks ------------------------------------------------------------------------------------------------


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


def outbound_policy(inst: Instance) -> outbound.Policy:
    return outbound.policy_for(inst.config.outbound_allow)


# -- targets -----------------------------------------------------------------------------------------------


def filters_of(row: dict[str, Any]) -> Filters:
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


def target_row(conn: apsw.Connection, target_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM xapi_forwarding_targets WHERE id = ?", (target_id,))
    if row is None:
        raise NotFound(f"no forwarding target {target_id!r}", {"target_id": target_id})
    return row


def newest_seq(conn: apsw.Connection) -> int:
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
    url, text = check_endpoint(endpoint, outbound_policy(inst)), _check_name(name)
    check_version(version)
    verb_list, prefix_list = _check_list(verbs, "verbs"), _check_list(activity_prefixes, "activity_prefixes")
    now, target_id = inst.clock.now(), new_id("fwd")

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        start = 0 if forward_existing else newest_seq(conn)
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
        return _json_of(conn, target_row(conn, target_id))

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
    return inst.tenant_db(tenant.id).read_sync(lambda c: _json_of(c, target_row(c, target_id)))


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
        changes["endpoint"] = check_endpoint(endpoint, outbound_policy(inst))
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
        target_row(conn, target_id)
        if changes:
            assignments = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(
                f"UPDATE xapi_forwarding_targets SET {assignments}, updated_at = ? WHERE id = ?",
                (*changes.values(), now, target_id),
            )
        return _json_of(conn, target_row(conn, target_id))

    changed = inst.tenant_db(tenant.id).write_sync(update)
    if changed["enabled"] and changed["pending_statements"] and "next_attempt_at" in changes:
        # What made it fail may be what was just fixed: try now, not at the retry already queued (that
        # job finds the lease or nothing to do, so two jobs never send at once).
        enqueue(inst, tenant.id, target_id, inst.clock.now(), unique=False)
    return changed


def delete_target(inst: Instance, tenant: Tenant, target_id: str) -> None:
    """Delete a target and its log; a job at work on it finds it gone and stops."""

    def delete(conn: apsw.Connection) -> None:
        target_row(conn, target_id)
        conn.execute("DELETE FROM xapi_forwarding_targets WHERE id = ?", (target_id,))

    inst.tenant_db(tenant.id).write_sync(delete)


# -- its job ---------------------------------------------------------------------------------------------


def enqueue(inst: Instance, tenant_id: str, target_id: str, run_at: float, *, unique: bool) -> None:
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


def wake(inst: Instance, tenant_id: str, target_id: str) -> None:
    """Queue the target's job now (after it was created, enabled or changed), unless one is queued."""
    enqueue(inst, tenant_id, target_id, inst.clock.now(), unique=True)
