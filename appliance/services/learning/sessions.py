"""The session service: a learner's registration on a package, its results, expiry and CMI updates.

A session pins a package version and keeps each SCO's run-time data in `session_activities`. Its
result fields (status, scores, time) are derived from that data by the pure SCORM core whenever it
changes, in the same transaction, and status changes emit events into the outbox.
"""

from __future__ import annotations

import json
import re
from typing import Any

import apsw
import msgspec

from appliance.clock import parse_rfc3339, rfc3339
from appliance.core.scorm.attempt import CmiSummary, summarize
from appliance.core.scorm.datamodel import apply_patch
from appliance.core.scorm.launch import adl_data_access, initial_cmi
from appliance.errors import (
    CmiValidationFailed,
    NotFound,
    PackageNotReady,
    SessionExpired,
    ValidationFailed,
    VersionConflict,
)
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.delivery.events import emit
from appliance.services.learning import analytics_index, cmi5_registrations
from appliance.services.learning.launch_tokens import issue, signing_secret
from appliance.services.learning.session_view import RESULT_EVENTS, STATUSES, result_event, session_json
from appliance.services.library.courses import Course, load_course
from appliance.services.library.origins import parse_content_origin
from appliance.services.library.packages import scorm12_suspend_data_limit
from appliance.services.lrs import scorm_statements
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

# -- reading -----------------------------------------------------------------------------------------


def session_row(conn: apsw.Connection, session_id: str) -> dict[str, Any]:
    """The session's row, or NotFound."""
    row = one(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        raise NotFound(f"no session {session_id!r}", {"session_id": session_id})
    return row


def activity_rows(conn: apsw.Connection, session_id: str) -> dict[str, dict[str, Any]]:
    """Each SCO's stored run-time record, by activity (item) id."""
    found = rows(conn, "SELECT * FROM session_activities WHERE session_id = ?", (session_id,))
    return {r["activity_id"]: r for r in found}


def launch_url(inst: Instance, base_url: str, tenant_id: str, session: dict[str, Any]) -> str:
    """A fresh signed player URL for the session."""
    expires = inst.clock.now() + inst.config.launch_token_ttl_seconds
    token = issue(signing_secret(inst), tenant_id, session["id"], expires)
    if inst.config.content_origin is not None:  # the player is served there only (appliance.faces.api.hosts)
        base = parse_content_origin(inst.config.content_origin).url_for(tenant_id)
    else:
        base = (inst.config.public_url or base_url).rstrip("/")
    return f"{base}/player/{token}"


def get_session(
    inst: Instance, tenant: Tenant, session_id: str, base_url: str, include_cmi: bool = False
) -> dict[str, Any]:
    """One session (with its CMI when asked), or NotFound."""

    def read(conn: apsw.Connection) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any] | None]:
        row = session_row(conn, session_id)
        acts = activity_rows(conn, session_id) if include_cmi else {}
        return row, acts, cmi5_registrations.progress_json(conn, session_id)

    row, acts, cmi5 = inst.tenant_db(tenant.id).read_sync(read)
    data = _with_cmi5(
        session_json(row, launch_url(inst, base_url, tenant.id, row) if row["status"] != "expired" else None), cmi5
    )
    if include_cmi:
        data["cmi"], data["activities"] = _cmi_view(row, acts)
    return data


def _with_cmi5(data: dict[str, Any], cmi5: dict[str, Any] | None) -> dict[str, Any]:
    """A cmi5 registration's session object adds `cmi5` (appliance.services.learning.cmi5_registrations.progress_json),
    wherever a session is answered: create, resume, read, list, PATCH."""
    if cmi5 is not None:
        data["cmi5"] = cmi5
    return data


def _cmi_view(row: dict[str, Any], acts: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, Any]]:
    """`cmi` is the current (or only) SCO's data; `activities` has every SCO's, by item identifier."""
    every = {
        aid: {"cmi": json.loads(a["cmi"]), "attempt": a["attempt"], "state": a["state"]} for aid, a in acts.items()
    }
    main = row["current_activity"] or (next(iter(acts)) if len(acts) == 1 else None)
    return (every[main]["cmi"] if main in every else {}), every


MAX_SEARCH = 200
_LIKE_SPECIAL = re.compile(r"[\\%_]")  # LIKE's wildcards and its escape, matched literally in a search


def list_sessions(
    inst: Instance,
    tenant: Tenant,
    base_url: str,
    *,
    filters: dict[str, str | None],
    limit: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """A page of sessions, oldest first, filtered by package, learner and status.

    `learner_id` is an exact id; `learner` is a search: the sessions whose learner id or name contains
    it, ignoring the case of ASCII letters (a prefix is one such part), for people who know a name or
    the start of an id. Both may be given.
    """
    status = filters.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", {"errors": [{"field": "status"}]})
    page = parse_page(limit, cursor)
    clause, params = keyset_clause(page)
    where, args = [clause], list(params)
    for column, key in (("package_id", "package_id"), ("learner_id", "learner_id"), ("status", "status")):
        if filters.get(key):
            where.append(f"{column} = ?")
            args.append(filters[key])
    search = (filters.get("learner") or "").strip()
    if len(search) > MAX_SEARCH:
        raise ValidationFailed(f"learner search is at most {MAX_SEARCH} characters", {"errors": [{"field": "learner"}]})
    if search:
        pattern = "%" + _LIKE_SPECIAL.sub(r"\\\g<0>", search) + "%"
        where.append("(learner_id LIKE ? ESCAPE '\\' OR learner_name LIKE ? ESCAPE '\\')")
        args.extend((pattern, pattern))
    sql = f"SELECT * FROM sessions WHERE {' AND '.join(where)} ORDER BY created_at, id LIMIT ?"

    def read(conn: apsw.Connection) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        found = rows(conn, sql, (*args, page.limit + 1))
        return found, cmi5_registrations.progress_of(conn, [r["id"] for r in found[: page.limit]])

    found, cmi5 = inst.tenant_db(tenant.id).read_sync(read)
    return page_result(found, page, lambda r: _with_cmi5(session_json(r, None), cmi5.get(r["id"])))


# -- creating ----------------------------------------------------------------------------------------


def create_session(
    inst: Instance,
    tenant: Tenant,
    base_url: str,
    *,
    package_id: str,
    learner_id: str,
    learner_name: str | None,
    package_version: int | None,
    resume: bool,
) -> tuple[dict[str, Any], bool]:
    """Create a session (or, with `resume`, return the learner's incomplete one); returns (session, created)."""
    if not learner_id.strip():
        raise ValidationFailed("learner.id must not be empty", {"errors": [{"field": "learner.id"}]})
    now = inst.clock.now()
    db = inst.tenant_db(tenant.id)
    pkg = db.read_sync(lambda c: one(c, "SELECT * FROM packages WHERE id = ?", (package_id,)))
    if pkg is None:
        raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
    version = package_version or pkg["active_version"]
    if version is None:
        raise PackageNotReady("the package has no ready version yet", {"package_id": package_id})
    cmi5_course = db.read_sync(lambda c: cmi5_registrations.course_of(c, package_id, version))
    if cmi5_course is None:
        load_course(inst, tenant.id, package_id, version)  # PackageNotReady for a processing/failed version
    session_id = new_id("ses")

    def insert(conn: apsw.Connection) -> tuple[dict[str, Any], bool]:
        if resume:
            existing = one(
                conn,
                "SELECT * FROM sessions WHERE package_id = ? AND learner_id = ? AND status IN ('not_started', 'incomplete') "
                "AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
                (package_id, learner_id, now),
            )
            if existing is not None:
                return existing, False
        conn.execute(
            "INSERT INTO sessions (id, package_id, package_version, learner_id, learner_name, created_at, updated_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                package_id,
                version,
                learner_id,
                learner_name or "",
                now,
                now,
                now + tenant.session_ttl_seconds,
            ),
        )
        emit(
            conn,
            "session.created",
            {"session_id": session_id, "package_id": package_id, "package_version": version, "learner_id": learner_id},
            now=now,
            subject_id=session_id,
        )
        if cmi5_course is not None:  # a session on a cmi5 version is a cmi5 registration
            cmi5_registrations.register(inst, conn, cmi5_course, session_row(conn, session_id), now)
        return session_row(conn, session_id), True

    row, created = db.write_sync(insert)
    cmi5 = db.read_sync(lambda c: cmi5_registrations.progress_json(c, row["id"]))
    return _with_cmi5(session_json(row, launch_url(inst, base_url, tenant.id, row)), cmi5), created


# -- results -------------------------------------------------------------------------------------------


def combine(course: Course, summaries: dict[str, CmiSummary], rollup: dict[str, Any] | None) -> dict[str, Any]:
    """Session result fields from each SCO's summary (and the sequencing root's status when known).

    One SCO: its own results. Several: the course is completed when every launchable SCO is, failed when
    any failed, passed when every SCO with a success status passed; scores are the mean scaled score.
    """
    launchable = course.launchable
    if not summaries:
        return {"status": "not_started", "completion_status": "unknown", "success_status": "unknown"}
    if len(launchable) == 1 and launchable[0] in summaries:
        only = summaries[launchable[0]]
        return {
            # launched (it has a summary) but nothing decisive reported yet is still "incomplete"
            "status": "incomplete" if only.status == "not_started" else only.status,
            "completion_status": only.completion_status,
            "success_status": only.success_status,
            "score_raw": only.score_raw,
            "score_min": only.score_min,
            "score_max": only.score_max,
            "score_scaled": only.score_scaled,
            "progress_measure": only.progress_measure,
            "total_time_seconds": only.total_time_seconds,
        }
    done = all(summaries.get(a) is not None and summaries[a].completion_status == "completed" for a in launchable)
    successes = [s.success_status for s in summaries.values() if s.success_status != "unknown"]
    scaled = [s.score_scaled for s in summaries.values() if s.score_scaled is not None]
    completion = "completed" if done else "incomplete"
    success = "failed" if "failed" in successes else ("passed" if successes and done else "unknown")
    if rollup:
        completion = rollup.get("completion_status") or completion
        success = rollup.get("success_status") or success
    status = success if success in ("passed", "failed") else completion
    if status not in STATUSES:
        status = "incomplete"  # launched, nothing decisive reported yet
    return {
        "status": status,
        "completion_status": completion,
        "success_status": success,
        "score_raw": None,
        "score_min": None,
        "score_max": None,
        "score_scaled": sum(scaled) / len(scaled) if scaled else None,
        "progress_measure": None,
        "total_time_seconds": sum(s.total_time_seconds for s in summaries.values()),
    }


def refresh_results(
    conn: apsw.Connection,
    course: Course,
    session: dict[str, Any],
    now: float,
    rollup: dict[str, Any] | None = None,
    changed: tuple[str, dict[str, str]] | None = None,
    *,
    also: dict[str, Any] | None = None,
    interactions_changed: bool = True,
) -> dict[str, Any]:
    """Recompute the session's result fields from its activities; emit events on a status change.

    `changed` is an activity's just-written CMI: for a single-SCO course it is all that is needed, so
    the hot commit path does not re-read and re-parse the stored rows. `also` holds more columns to
    set in the same statement (the commit's sign of life), and `interactions_changed=False` says the
    commit left every interaction as it was, so the analytics rows need no comparison. Returns the
    updated row. `session` is the row as this transaction last read it.
    """
    if changed is not None and len(course.launchable) == 1:
        activity, cmi = changed
        summaries = {activity: summarize(course.scorm_version, cmi)}
        data_bytes = len(msgspec.json.encode(cmi))
    else:
        acts = activity_rows(conn, session["id"])
        summaries = {
            aid: summarize(course.scorm_version, json.loads(a["cmi"])) for aid, a in acts.items() if a["attempt"]
        }
        data_bytes = sum(len(a["cmi"]) for a in acts.values())
    results = {**combine(course, summaries, rollup), "data_bytes": data_bytes + row_data_bytes(session, also)}
    # Only the columns that change: an unchanged indexed column then costs no index write.
    fields = {k: v for k, v in results.items() if session.get(k) != v}
    fields.update(updated_at=now, **(also or {}))
    assignments = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*fields.values(), session["id"]))
    if not conn.changes():
        raise NotFound(f"no session {session['id']!r}", {"session_id": session["id"]})
    # The row as stored is the row read plus these columns (no trigger touches sessions): no re-read.
    updated = {**session, **fields}
    single = changed if len(course.launchable) == 1 else None
    analytics_index.index_session(conn, updated, now, single, interactions=interactions_changed or single is None)
    if updated["status"] != session["status"] and updated["status"] in RESULT_EVENTS:
        emit(conn, RESULT_EVENTS[updated["status"]], result_event(updated), now=now, subject_id=session["id"])
        scorm_statements.on_result(conn, course, session["status"], updated, now)
    return updated


# The session row's columns a learner's traffic can make grow (the rest are numbers and fixed ids).
ROW_DATA_COLUMNS = ("learner_id", "learner_name", "commit_seqs", "sequencing_state", "shared_state")


def row_data_bytes(session: dict[str, Any], also: dict[str, Any] | None = None) -> int:
    """The size of the session row's own data (`also` holds columns being set in the same statement).

    Counted in `data_bytes` beside the CMI, so `session_bytes` and the quota see everything a learner's
    requests make the tenant store: sequencing state, shared data, the pages' sequence numbers.
    """
    total = 0
    for name in ROW_DATA_COLUMNS:
        value = also[name] if also is not None and name in also else session.get(name)
        if value:
            total += len(value)
    return total


# -- updating ------------------------------------------------------------------------------------------


def check_version(row: dict[str, Any], version: int) -> None:
    """Optimistic locking: a stale version is a 409 with the current one."""
    if version != row["version"]:
        raise VersionConflict(
            "the session has changed since you read it", {"current_version": row["version"], "your_version": version}
        )


def check_live(row: dict[str, Any], now: float) -> None:
    """Expired sessions keep their data but accept no run-time changes."""
    if row["status"] == "expired" or row["expires_at"] <= now:
        raise SessionExpired(
            "the session has expired", {"session_id": row["id"], "expires_at": rfc3339(row["expires_at"])}
        )


def patch_session(
    inst: Instance,
    tenant: Tenant,
    session_id: str,
    base_url: str,
    *,
    version: int,
    cmi: dict[str, str] | None,
    activity: str | None,
    expires_at: str | None,
) -> dict[str, Any]:
    """Programmatic update: CMI writes validated by the data model, and/or a new expiry; all or nothing."""
    now = inst.clock.now()
    new_expiry = _parse_expiry(expires_at, now) if expires_at is not None else None
    db = inst.tenant_db(tenant.id)
    row = db.read_sync(lambda c: session_row(c, session_id))
    course = load_course(inst, tenant.id, row["package_id"], row["package_version"]) if cmi else None

    def update(conn: apsw.Connection) -> dict[str, Any]:
        current = session_row(conn, session_id)
        check_version(current, version)
        if cmi:
            assert course is not None
            limit = scorm12_suspend_data_limit(conn, current["package_id"], tenant.scorm12_suspend_data_limit)
            _patch_cmi(conn, inst, course, current, cmi, activity, now, suspend_data_limit=limit)
        if new_expiry is not None:
            status = "not_started" if current["status"] == "expired" and current["last_activity_at"] is None else None
            conn.execute("UPDATE sessions SET expires_at = ? WHERE id = ?", (new_expiry, session_id))
            if current["status"] == "expired":
                conn.execute("UPDATE sessions SET status = ? WHERE id = ?", (status or "incomplete", session_id))
        conn.execute("UPDATE sessions SET version = version + 1, updated_at = ? WHERE id = ?", (now, session_id))
        updated = session_row(conn, session_id)
        return refresh_results(conn, course, updated, now) if course else updated

    updated, cmi5 = db.write_sync(lambda c: (update(c), cmi5_registrations.progress_json(c, session_id)))
    return _with_cmi5(session_json(updated, launch_url(inst, base_url, tenant.id, updated)), cmi5)


def _parse_expiry(value: str, now: float) -> float:
    try:
        parsed = parse_rfc3339(value)
    except ValueError as exc:
        raise ValidationFailed("expires_at must be an RFC 3339 time", {"errors": [{"field": "expires_at"}]}) from exc
    if parsed <= now:
        raise ValidationFailed("expires_at must be in the future", {"errors": [{"field": "expires_at"}]})
    return parsed


def _patch_cmi(
    conn: apsw.Connection,
    inst: Instance,
    course: Course,
    session: dict[str, Any],
    cmi: dict[str, str],
    activity: str | None,
    now: float,
    *,
    suspend_data_limit: int,
) -> None:
    """Apply CMI writes to one SCO's data as the SCO itself would; any rejected write changes nothing.

    `suspend_data_limit` is the package's SCORM 1.2 cmi.suspend_data limit (the player's too)."""
    launchable = course.launchable
    target = activity or session["current_activity"] or (launchable[0] if len(launchable) == 1 else None)
    if target is None or target not in course.items:
        raise ValidationFailed(
            "name the SCO to update with `activity` (an item identifier)",
            {"errors": [{"field": "activity", "message": "required for multi-SCO packages"}], "activities": launchable},
        )
    row = one(
        conn, "SELECT * FROM session_activities WHERE session_id = ? AND activity_id = ?", (session["id"], target)
    )
    item = course.item(target)
    if row is None:
        current = initial_cmi(
            course.scorm_version, learner_id=session["learner_id"], learner_name=session["learner_name"], item=item
        )
    else:
        current = json.loads(row["cmi"])
    updated, errors = apply_patch(
        course.scorm_version, current, cmi, data_access=adl_data_access(item), suspend_data_limit=suspend_data_limit
    )
    if errors:
        raise CmiValidationFailed(
            f"{len(errors)} CMI value(s) rejected by the SCORM data model",
            {
                "errors": [
                    {
                        "element": e.element,
                        "value": e.value,
                        "scorm_error_code": e.scorm_error_code,
                        "message": e.message,
                    }
                    for e in errors
                ]
            },
        )
    conn.execute(
        "INSERT INTO session_activities (session_id, activity_id, cmi, attempt, state, updated_at) VALUES (?, ?, ?, 1, 'new', ?) "
        "ON CONFLICT (session_id, activity_id) DO UPDATE SET cmi = excluded.cmi, attempt = max(attempt, 1), updated_at = excluded.updated_at",
        (session["id"], target, json.dumps(updated, separators=(",", ":")), now),
    )


# -- launch, delete, expiry ------------------------------------------------------------------------------


def relaunch(inst: Instance, tenant: Tenant, session_id: str, base_url: str) -> dict[str, Any]:
    """A fresh launch URL; an expired session answers 410."""
    row = inst.tenant_db(tenant.id).read_sync(lambda c: session_row(c, session_id))
    check_live(row, inst.clock.now())
    return {
        "session_id": row["id"],
        "launch_url": launch_url(inst, base_url, tenant.id, row),
        "expires_at": rfc3339(row["expires_at"]),
    }


def delete_session(inst: Instance, tenant: Tenant, session_id: str) -> None:
    """Delete a session and its run-time data."""

    def delete(conn: apsw.Connection) -> None:
        session_row(conn, session_id)
        conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    inst.tenant_db(tenant.id).write_sync(delete)


def expire_sessions(inst: Instance) -> int:
    """Periodic sweep: mark sessions past their expiry `expired` (data kept) and emit session.expired."""
    now = inst.clock.now()
    total = 0
    for tenant_id in [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]:

        def sweep(conn: apsw.Connection) -> int:
            due = rows(
                conn,
                "SELECT * FROM sessions WHERE status != 'expired' AND expires_at <= ? AND status IN ('not_started', 'incomplete')",
                (now,),
            )
            for row in due:
                conn.execute(
                    "UPDATE sessions SET status = 'expired', version = version + 1, updated_at = ? WHERE id = ?",
                    (now, row["id"]),
                )
                data = result_event({**row, "status": "expired"}, cmi5_registrations.progress_json(conn, row["id"]))
                emit(conn, "session.expired", data, now=now, subject_id=row["id"])
            return len(due)

        total += inst.tenant_db(tenant_id).write_sync(sweep)
    return total
