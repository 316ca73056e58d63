"""cmi5 registrations: a session on a cmi5 package version is one registration (cmi5 §8, §9, §10, §11).

The pure rules live in appliance.cmi5 (au_rules: what an AU may send; move_on: what satisfies an AU, a
block, the course). This module is the LMS around them, on the tenant database:

- `register` (inside the session's INSERT) gives the registration its UUID, actor and one LMS-generated
  activity id per AU (§8.1.5: not the publisher's id), and satisfies the NotApplicable AUs (9.6.1.1-3).
- `launch` starts an AU session: abandons the registration's open one (§9.3.6), writes LMS.LaunchData
  (§10) and the `launched` statement, and builds the launch URL with its five parameters (§8.1).
- `fetch` answers the one-time fetch URL with the AU session's auth token once (§8.2).
- `authenticate` / `restrict` are the LRS face's hook (appliance.api.xapi.app): the token is a Basic
  credential for its own registration, AU and actor only, and only between fetch and the session's end.
- `store_statements` is the statements handler's hook: every statement sent with a token goes
  through au_rules.check and au_rules.record in the insert's transaction; then the LMS writes
  `satisfied` for what became satisfied, and the session's results follow (status, completion,
  success, score, and the same session events and analytics as SCORM sessions).
- `waive`, `abandon`: the API's operations.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apsw

from appliance import analytics_index
from appliance.clock import rfc3339
from appliance.cmi5 import au_rules, move_on
from appliance.cmi5 import packaging as cmi5_packaging
from appliance.cmi5 import vocabulary as v
from appliance.cmi5.course_structure import LAUNCH_PARAMETERS, Au, Course
from appliance.db.connection import one, rows
from appliance.errors import NotFound, SessionExpired, ValidationFailed
from appliance.events import emit
from appliance.ids import new_secret, sha256_hex
from appliance.instance import Instance
from appliance.launch_tokens import issue, signing_secret
from appliance.lrs import documents as docs
from appliance.lrs.credentials import AUTHORITY_HOME_PAGE, LrsCredential
from appliance.lrs.scorm_statements import home_page
from appliance.lrs.statements import insert_statements
from appliance.origins import parse_content_origin
from appliance.tenants import Tenant, tenant_status
from appliance.xapi.agents import agent_ifi

logger = logging.getLogger(__name__)

USER_PREFIX = "cmi5."  # Basic username of an AU session's token: cmi5.<tenant id>.<AU session id>
XAPI_VERSION = "1.0.3"
AUTHORITY = {"objectType": "Agent", "name": "cmi5 LMS", "account": {"homePage": AUTHORITY_HOME_PAGE, "name": "cmi5"}}
RESULT_EXT_REASON = "https://w3id.org/xapi/cmi5/result/extensions/reason"  # a waived statement's reason (§9.5.5.1)
RESULT_EVENTS = {"completed": "session.completed", "passed": "session.passed", "failed": "session.failed"}
# §8.2.3: the fetch URL's error codes
FETCH_ALREADY_USED = 1
FETCH_EXPIRED = 2
FETCH_INVALID = 3


class Denied(Exception):
    """A request the AU session's token may not make: `status` is the LRS's answer (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FetchRefused(Exception):
    """The fetch URL's refusal, answered as cmi5's error JSON (§8.2.3)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text

    def body(self) -> dict[str, Any]:
        return {"error-code": str(self.code), "error-text": self.text}


@dataclass
class AuGrant:
    """What an AU session's token authenticated as: its tenant, session, registration, AU and actor."""

    tenant: Tenant
    credential: LrsCredential
    au_session_id: str
    session_id: str
    registration: str
    au_id: str
    activity_id: str
    actor: dict[str, Any]
    ended: str | None
    preferences_read: bool = False
    inst: Instance | None = None  # where the grant holds: restrict records the learner preferences' read there


# -- reading ---------------------------------------------------------------------------------------


def course_of(conn: apsw.Connection, package_id: str, version: int) -> Course | None:
    """The course structure of a ready cmi5 version; None for SCORM (or a version not ready)."""
    row = one(
        conn,
        "SELECT status, standard, course FROM package_versions WHERE package_id = ? AND version = ?",
        (package_id, version),
    )
    if row is None or row["standard"] != cmi5_packaging.STANDARD or row["status"] != "ready" or not row["course"]:
        return None
    return cmi5_packaging.decode(row["course"])


def is_registration(conn: apsw.Connection, session_id: str) -> bool:
    """Whether the session is a cmi5 registration."""
    return one(conn, "SELECT 1 AS x FROM cmi5_registrations WHERE session_id = ?", (session_id,)) is not None


def _course_for_session(conn: apsw.Connection, session: dict[str, Any]) -> Course:
    course = course_of(conn, session["package_id"], session["package_version"])
    if course is None:
        raise NotFound("the session is not a cmi5 registration", {"session_id": session["id"]})
    return course


def _session(conn: apsw.Connection, session_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    if row is None:
        raise NotFound(f"no session {session_id!r}", {"session_id": session_id})
    return row


def _registration(conn: apsw.Connection, session_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM cmi5_registrations WHERE session_id = ?", (session_id,))
    if row is None:
        raise NotFound("the session is not a cmi5 registration", {"session_id": session_id})
    return row


def _aus(conn: apsw.Connection, session_id: str) -> dict[str, dict[str, Any]]:
    found = rows(conn, "SELECT * FROM cmi5_aus WHERE session_id = ? ORDER BY position", (session_id,))
    return {r["au_id"]: r for r in found}


def _progress(aus: dict[str, dict[str, Any]]) -> dict[str, move_on.AuProgress]:
    return {
        au_id: move_on.AuProgress(completed=bool(r["completed"]), passed=bool(r["passed"]), waived=bool(r["waived"]))
        for au_id, r in aus.items()
    }


def _satisfied_nodes(conn: apsw.Connection, session_id: str) -> set[str]:
    return {r["node_id"] for r in rows(conn, "SELECT node_id FROM cmi5_satisfied WHERE session_id = ?", (session_id,))}


def progress_json(
    conn: apsw.Connection, session_id: str, courses: dict[tuple[str, int], Course | None] | None = None
) -> dict[str, Any] | None:
    """The session JSON's `cmi5` member: the registration and each AU's progress (None for SCORM).
    `courses` keeps the course structures read, by (package, version), for a page of sessions."""
    reg = one(conn, "SELECT * FROM cmi5_registrations WHERE session_id = ?", (session_id,))
    if reg is None:
        return None
    session = _session(conn, session_id)
    key = (session["package_id"], session["package_version"])
    courses = {} if courses is None else courses
    if key not in courses:
        courses[key] = course_of(conn, *key)
    course = courses[key]
    satisfied = _satisfied_nodes(conn, session_id)
    aus = []
    for r in _aus(conn, session_id).values():
        aus.append(
            {
                "au_id": r["au_id"],
                "activity_id": r["activity_id"],
                "completion_status": "completed" if r["completed"] else ("incomplete" if r["launches"] else "unknown"),
                "success_status": "passed" if r["passed"] else ("failed" if r["failed"] else "unknown"),
                "score": {
                    "raw": r["score_raw"],
                    "min": r["score_min"],
                    "max": r["score_max"],
                    "scaled": r["score_scaled"],
                },
                "waived": bool(r["waived"]),
                "waive_reason": r["waive_reason"],
                "satisfied": r["au_id"] in satisfied,
                "launches": r["launches"],
                "time_seconds": r["time_seconds"],
            }
        )
    open_session = one(
        conn,
        "SELECT id, au_id, launched_at FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL "
        "ORDER BY launched_at DESC LIMIT 1",
        (session_id,),
    )
    return {
        "registration": reg["registration"],
        "course_id": course.id if course is not None else None,
        "satisfied": course is not None and course.id in satisfied,
        "actor": json.loads(reg["actor"]),
        "aus": aus,
        "blocks": [{"block_id": b.id, "satisfied": b.id in satisfied} for b in (course.blocks() if course else [])],
        "open_au_session": (
            {
                "id": open_session["id"],
                "au_id": open_session["au_id"],
                "launched_at": rfc3339(open_session["launched_at"]),
            }
            if open_session
            else None
        ),
    }


def progress_of(conn: apsw.Connection, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The `cmi5` member of each registration among the sessions, by session id (SCORM ones have none):
    one query finds the registrations of a page of sessions, each course structure is read once."""
    if not session_ids:
        return {}
    marks = ", ".join("?" * len(session_ids))
    found = rows(conn, f"SELECT session_id FROM cmi5_registrations WHERE session_id IN ({marks})", tuple(session_ids))
    courses: dict[tuple[str, int], Course | None] = {}
    progress = {r["session_id"]: progress_json(conn, r["session_id"], courses) for r in found}
    return {session_id: p for session_id, p in progress.items() if p is not None}


# -- registering ---------------------------------------------------------------------------------------


def actor_for(inst: Instance, learner_id: str, learner_name: str | None) -> dict[str, Any]:
    """The launch's actor: the learner as an account on this appliance (as the SCORM-as-xAPI statements)."""
    agent: dict[str, Any] = {"objectType": "Agent", "account": {"homePage": home_page(inst), "name": learner_id}}
    if learner_name:
        agent["name"] = learner_name
    return agent


def _lms_id(inst: Instance, registration: str, kind: str, position: int | None = None) -> str:
    """An LMS-generated activity id for an AU, block or the course of one registration (§8.1.5)."""
    base = f"{home_page(inst)}/cmi5/registrations/{registration}/{kind}"
    return base if position is None else f"{base}/{position}"


def register(inst: Instance, conn: apsw.Connection, course: Course, session: dict[str, Any], now: float) -> None:
    """Make the new session a registration (inside its INSERT's transaction); NotApplicable AUs satisfied."""
    registration = str(uuid.uuid4())
    actor = actor_for(inst, session["learner_id"], session["learner_name"])
    conn.execute(
        "INSERT INTO cmi5_registrations (session_id, registration, actor, created_at) VALUES (?, ?, ?, ?)",
        (session["id"], registration, json.dumps(actor), now),
    )
    for position, au in enumerate(course.aus()):
        conn.execute(
            "INSERT INTO cmi5_aus (session_id, au_id, position, activity_id) VALUES (?, ?, ?, ?)",
            (session["id"], au.id, position, _lms_id(inst, registration, "au", position)),
        )
    _write_satisfied(inst, conn, course, session["id"], str(uuid.uuid4()), now)


# -- launching -----------------------------------------------------------------------------------------


@dataclass
class Launch:
    """One AU launch: the AU session and the URL the learner's browser opens."""

    au_session_id: str
    au_id: str
    activity_id: str
    registration: str
    launch_method: str
    url: str

    def json(self) -> dict[str, Any]:
        return {
            "au_session_id": self.au_session_id,
            "au_id": self.au_id,
            "activity_id": self.activity_id,
            "registration": self.registration,
            "launch_method": self.launch_method,
            "url": self.url,
        }


def _pick_au(course: Course, satisfied: set[str], wanted: str | None) -> Au:
    aus = course.aus()
    if wanted is not None:
        for position, au in enumerate(aus):
            if wanted in (au.id, str(position)):
                return au
        raise ValidationFailed(
            f"the course has no AU {wanted!r}", {"errors": [{"field": "au"}], "aus": [au.id for au in aus]}
        )
    return next((au for au in aus if au.id not in satisfied), aus[0])


def launch(
    inst: Instance,
    tenant: Tenant,
    session_id: str,
    *,
    api_base: str,
    au: str | None = None,
    launch_mode: str = "Normal",
) -> Launch:
    """Start an AU session of the registration: the AU named `au` (its id or position), else the first
    unsatisfied one. Abandons the open AU session, writes LMS.LaunchData and `launched`, in one
    transaction. `api_base` is the API origin the endpoint and fetch URL are on."""
    if launch_mode not in v.LAUNCH_MODES:
        raise ValidationFailed(
            f"launch_mode must be one of {', '.join(v.LAUNCH_MODES)}", {"errors": [{"field": "launch_mode"}]}
        )
    now = inst.clock.now()
    fetch_secret = new_secret(24)

    def write(conn: apsw.Connection) -> Launch:
        session = _session(conn, session_id)
        if session["status"] == "expired" or session["expires_at"] <= now:
            raise SessionExpired(
                "the session has expired", {"session_id": session_id, "expires_at": rfc3339(session["expires_at"])}
            )
        course = _course_for_session(conn, session)
        reg = _registration(conn, session_id)
        for open_row in rows(
            conn, "SELECT * FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL", (session_id,)
        ):
            _abandon(inst, conn, course, session, reg, open_row, now)
        chosen = _pick_au(course, _satisfied_nodes(conn, session_id), au)
        au_row = _aus(conn, session_id)[chosen.id]
        au_session_id = str(uuid.uuid4())
        conn.execute(
            "INSERT INTO cmi5_au_sessions (id, session_id, au_id, launch_mode, fetch_hash, launched_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (au_session_id, session_id, chosen.id, launch_mode, sha256_hex(fetch_secret), now),
        )
        conn.execute(
            "UPDATE cmi5_aus SET launches = launches + 1 WHERE session_id = ? AND au_id = ?", (session_id, chosen.id)
        )
        actor = json.loads(reg["actor"])
        state = _au_state(reg, au_row, chosen, au_session_id, launch_mode)
        return_url = return_url_of(inst, tenant.id, session, api_base)
        _write_launch_data(conn, state, chosen, launch_mode, return_url, now)
        url = _au_url(
            inst,
            tenant.id,
            session,
            chosen,
            api_base,
            actor,
            reg["registration"],
            au_row["activity_id"],
            au_session_id,
            fetch_secret,
        )
        _write_lms_statement(
            conn,
            state,
            v.LAUNCHED,
            now,
            extensions={
                v.EXT_LAUNCH_MODE: launch_mode,
                v.EXT_LAUNCH_URL: _without_launch_parameters(url),
                **({v.EXT_MASTERY_SCORE: chosen.mastery_score} if chosen.mastery_score is not None else {}),
                v.EXT_MOVE_ON: chosen.move_on,
                **({v.EXT_LAUNCH_PARAMETERS: chosen.launch_parameters} if chosen.launch_parameters else {}),
            },
        )
        fields: dict[str, Any] = {"current_activity": chosen.id, "last_activity_at": now, "updated_at": now}
        if session["status"] == "not_started":
            fields["status"] = "incomplete"
            fields["completion_status"] = "incomplete"
        if session["launch_started_at"] is None:
            fields["launch_started_at"] = now
        _update_session(conn, session, fields, now)
        return Launch(au_session_id, chosen.id, au_row["activity_id"], reg["registration"], chosen.launch_method, url)

    return inst.tenant_db(tenant.id).write_sync(write)


def launch_url_of(inst: Instance, tenant_id: str, session: dict[str, Any], api_base: str) -> str:
    """The session's player URL (its `launch_url`)."""
    return f"{_player_base(inst, tenant_id, api_base)}/player/{_token(inst, tenant_id, session)}"


RETURNED = "returned"  # the player URL's query parameter of the AUs' returnURL (appliance.api.cmi5_player)


def return_url_of(inst: Instance, tenant_id: str, session: dict[str, Any], api_base: str) -> str:
    """The AUs' returnURL: the player's overview of the course (appliance.api.cmi5_player.overview), which
    launches nothing by itself, so an AU's Exit ends on the course's progress, not on a new AU session."""
    return f"{launch_url_of(inst, tenant_id, session, api_base)}?{RETURNED}=1"


def _token(inst: Instance, tenant_id: str, session: dict[str, Any]) -> str:
    expires = inst.clock.now() + inst.config.launch_token_ttl_seconds
    return issue(signing_secret(inst), tenant_id, session["id"], expires)


def _player_base(inst: Instance, tenant_id: str, api_base: str) -> str:
    if inst.config.content_origin is not None:
        return parse_content_origin(inst.config.content_origin).url_for(tenant_id)
    return (inst.config.public_url or api_base).rstrip("/")


def api_origin(inst: Instance, request_base: str) -> str:
    """Where the LRS and the fetch URL are: `public_url`, else the origin the request came to."""
    return (inst.config.public_url or request_base).rstrip("/")


def _au_url(
    inst: Instance,
    tenant_id: str,
    session: dict[str, Any],
    au: Au,
    api_base: str,
    actor: dict[str, Any],
    registration: str,
    activity_id: str,
    au_session_id: str,
    fetch_secret: str,
) -> str:
    """The AU's URL with the five launch parameters (§8.1); a relative one served from the package's
    files under the player's content path (same token, same origin as the player)."""
    if au.relative:
        parts = urlsplit(au.url)
        path = quote(parts.path.lstrip("/"), safe="/")
        base = f"{_player_base(inst, tenant_id, api_base)}/player/{_token(inst, tenant_id, session)}/content/{path}"
        query, fragment = parts.query, parts.fragment
    else:
        parts = urlsplit(au.url)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        query, fragment = parts.query, parts.fragment
    params = urlencode(
        {
            "endpoint": f"{api_base}/xapi/",
            "fetch": f"{api_base}/cmi5/fetch/{tenant_id}/{au_session_id}?k={fetch_secret}",
            "actor": json.dumps(actor, separators=(",", ":")),
            "registration": registration,
            "activityId": activity_id,
        },
        quote_via=quote,
    )
    url = f"{base}?{query}&{params}" if query else f"{base}?{params}"
    return f"{url}#{fragment}" if fragment else url


def _without_launch_parameters(url: str) -> str:
    """The launch URL as the `launched` statement's launchurl: the AU's own query kept, the five launch
    parameters (a fetch URL among them, a credential) left out."""
    parts = urlsplit(url)
    kept = [(k, val) for k, val in parse_qsl(parts.query, keep_blank_values=True) if k not in LAUNCH_PARAMETERS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))


def _au_state(
    reg: dict[str, Any], au_row: dict[str, Any], au: Au, au_session_id: str, launch_mode: str, **changes: Any
) -> au_rules.AuSession:
    return au_rules.AuSession(
        registration=reg["registration"],
        session_id=au_session_id,
        activity_id=au_row["activity_id"],
        publisher_id=au.id,
        actor=json.loads(reg["actor"]),
        mastery_score=au.mastery_score,
        launch_mode=launch_mode,
        **changes,
    )


def _write_launch_data(
    conn: apsw.Connection, state: au_rules.AuSession, au: Au, launch_mode: str, return_url: str, now: float
) -> None:
    """LMS.LaunchData (§10.2), in the State API under the AU's activity id, actor and registration."""
    template = state.context_template()
    if (
        au.mastery_score is not None
    ):  # what the AU's passed and failed must carry (9.6.3.2), as CATAPULT's player has it
        template["extensions"][v.EXT_MASTERY_SCORE] = au.mastery_score
    data: dict[str, Any] = {
        "contextTemplate": template,
        "launchMode": launch_mode,
        "launchMethod": au.launch_method,
        "moveOn": au.move_on,
        "returnURL": return_url,
    }
    if au.mastery_score is not None:
        data["masteryScore"] = au.mastery_score
    if au.launch_parameters:
        data["launchParameters"] = au.launch_parameters
    if au.entitlement_key:
        data["entitlementKey"] = {"courseStructure": au.entitlement_key}
    key = docs.DocumentKey(
        docs.STATE, v.LAUNCH_DATA_STATE_ID, state.activity_id, agent_ifi(state.actor), state.registration
    )
    docs.put_document(conn, key, "application/json", json.dumps(data).encode(), now, docs.Preconditions())


def _write_lms_statement(
    conn: apsw.Connection,
    state: au_rules.AuSession,
    verb: str,
    now: float,
    *,
    object_id: str | None = None,
    object_type: str | None = None,
    extensions: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    move_on: bool = False,
) -> str:
    """A statement the LMS writes (launched, satisfied, abandoned, waived): cmi5 defined, in the AU
    session's context (its session id, registration, the publisher grouping)."""
    context = state.context_template()
    context = {
        "registration": state.registration,
        "contextActivities": {
            **context["contextActivities"],
            "category": [{"id": v.CATEGORY_CMI5}, *([{"id": v.CATEGORY_MOVE_ON}] if move_on else [])],
        },
        "extensions": {**context["extensions"], **(extensions or {})},
    }
    obj: dict[str, Any] = {"objectType": "Activity", "id": object_id or state.activity_id}
    if object_type:
        obj["definition"] = {"type": object_type}
    statement: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "actor": state.actor,
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[1]}},
        "object": obj,
        "context": context,
        "timestamp": rfc3339(now),
    }
    if result:
        statement["result"] = result
    insert_statements(conn, [statement], stored=now, authority=AUTHORITY, credential_id=None, version=XAPI_VERSION)
    return str(statement["id"])


# -- satisfaction and results -------------------------------------------------------------------------


def _write_satisfied(
    inst: Instance, conn: apsw.Connection, course: Course, session_id: str, au_session_id: str, now: float
) -> list[str]:
    """`satisfied` for every block and the course newly satisfied (inner blocks first, the course last:
    §9.3.9); the AUs newly satisfied are recorded without a statement. Returns every id newly satisfied."""
    aus = _aus(conn, session_id)
    reg = _registration(conn, session_id)
    done = _satisfied_nodes(conn, session_id)
    now_satisfied = move_on.satisfied(course, _progress(aus))
    order = [n for n in move_on._bottom_up(course) if n in now_satisfied and n not in done]
    positions = {b.id: i for i, b in enumerate(course.blocks())}
    first_au = next(iter(aus.values()))
    for node_id in order:
        if node_id in aus:  # an AU's satisfaction is its own statements': `satisfied` is for blocks and the course
            conn.execute(
                "INSERT OR IGNORE INTO cmi5_satisfied (session_id, node_id, satisfied_at) VALUES (?, ?, ?)",
                (session_id, node_id, now),
            )
            continue
        if node_id == course.id:
            object_id, object_type, publisher = _lms_id(inst, reg["registration"], "course"), v.TYPE_COURSE, node_id
        else:
            object_id = _lms_id(inst, reg["registration"], "block", positions[node_id])
            object_type, publisher = v.TYPE_BLOCK, node_id
        state = au_rules.AuSession(
            registration=reg["registration"],
            session_id=au_session_id,
            activity_id=first_au["activity_id"],
            publisher_id=publisher,
            actor=json.loads(reg["actor"]),
        )
        _write_lms_statement(conn, state, v.SATISFIED, now, object_id=object_id, object_type=object_type)
        conn.execute(
            "INSERT OR IGNORE INTO cmi5_satisfied (session_id, node_id, satisfied_at) VALUES (?, ?, ?)",
            (session_id, node_id, now),
        )
    return order


def _results(course: Course, aus: dict[str, dict[str, Any]], satisfied: set[str], launched: bool) -> dict[str, Any]:
    """The session's SCORM-shaped result fields from its AUs (one model for integrators)."""
    if not launched and course.id not in satisfied:
        return {"status": "not_started", "completion_status": "unknown", "success_status": "unknown"}
    course_done = course.id in satisfied
    all_completed = all(r["completed"] or r["waived"] for r in aus.values())
    completion = "completed" if course_done or all_completed else "incomplete"
    judged = [r for r in aus.values() if r["passed"] or r["failed"]]
    if any(r["failed"] and not r["passed"] for r in judged):
        success = "failed"
    elif (
        judged
        and all(r["passed"] for r in judged)
        and (course_done or all(r["passed"] or r["waived"] for r in aus.values()))
    ):
        success = "passed"
    else:
        success = "unknown"
    status = success if success in ("passed", "failed") else completion
    scored = [r for r in aus.values() if r["score_scaled"] is not None]
    single = scored[0] if len(aus) == 1 and scored else None
    return {
        "status": status,
        "completion_status": completion,
        "success_status": success,
        "score_raw": single["score_raw"] if single else None,
        "score_min": single["score_min"] if single else None,
        "score_max": single["score_max"] if single else None,
        "score_scaled": sum(r["score_scaled"] for r in scored) / len(scored) if scored else None,
        "total_time_seconds": sum(r["time_seconds"] for r in aus.values()),
    }


def _refresh(conn: apsw.Connection, course: Course, session_id: str, now: float, spent: float = 0.0) -> None:
    """The session's results from its AUs; `spent` seconds of the AU's own activity added to its server time."""
    session = _session(conn, session_id)
    aus = _aus(conn, session_id)
    launched = any(r["launches"] for r in aus.values())
    fields = _results(course, aus, _satisfied_nodes(conn, session_id), launched)
    fields = {k: val for k, val in fields.items() if session.get(k) != val}
    fields["last_activity_at"] = now
    if spent:
        fields["server_time_seconds"] = session["server_time_seconds"] + spent
    _update_session(conn, session, fields, now)


IDLE_SECONDS = 30 * 60  # a gap this long is not counted as time spent (as appliance.runtime's SCORM sessions)


def _time_spent(session: dict[str, Any], now: float) -> float:
    """The server time an AU's statement adds (the session's `server_time_seconds`, as for SCORM): the time
    since the last sign of life (the AU's launch or its previous statement), a gap over IDLE_SECONDS not
    counted. A launch is a sign of life, never time spent: nothing runs between one AU session and the next."""
    last = session["last_activity_at"]
    return 0.0 if last is None else min(max(0.0, now - last), IDLE_SECONDS)


def _update_session(conn: apsw.Connection, session: dict[str, Any], fields: dict[str, Any], now: float) -> None:
    """Set the session's columns, bump its version; the same events and analytics as a SCORM session."""
    fields = {**fields, "updated_at": now}
    assignments = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(
        f"UPDATE sessions SET {assignments}, version = version + 1 WHERE id = ?", (*fields.values(), session["id"])
    )
    updated = _session(conn, session["id"])
    analytics_index.index_session(conn, updated, now, None, interactions=False)
    if updated["status"] != session["status"] and updated["status"] in RESULT_EVENTS:
        from appliance.sessions import session_json  # late: appliance.sessions imports this module

        data = session_json(updated)
        data.pop("launch_url", None)
        emit(
            conn,
            RESULT_EVENTS[updated["status"]],
            {"session_id": session["id"], "session": data},
            now=now,
            subject_id=session["id"],
        )


# -- fetch and the token ----------------------------------------------------------------------------


def fetch(inst: Instance, tenant_id: str, au_session_id: str, secret: str) -> dict[str, Any]:
    """The auth token, once (§8.2): a second fetch, or one after the session ended, is FetchRefused."""
    status, _ = tenant_status(inst, tenant_id)
    if status != "active":
        raise FetchRefused(FETCH_INVALID, "no such fetch URL")
    now = inst.clock.now()
    token_secret = new_secret(32)

    def write(conn: apsw.Connection) -> dict[str, Any]:
        row = one(conn, "SELECT * FROM cmi5_au_sessions WHERE id = ?", (au_session_id,))
        if row is None or not hmac.compare_digest(row["fetch_hash"], sha256_hex(secret)):
            raise FetchRefused(FETCH_INVALID, "no such fetch URL")
        if row["fetched_at"] is not None:
            raise FetchRefused(FETCH_ALREADY_USED, "the auth token was already fetched for this AU session")
        if row["ended"] is not None:
            raise FetchRefused(FETCH_EXPIRED, f"the AU session was {row['ended']}")
        conn.execute(
            "UPDATE cmi5_au_sessions SET fetched_at = ?, token_hash = ? WHERE id = ?",
            (now, sha256_hex(token_secret), au_session_id),
        )
        return {
            "auth-token": base64.b64encode(f"{USER_PREFIX}{tenant_id}.{au_session_id}:{token_secret}".encode()).decode()
        }

    return inst.tenant_db(tenant_id).write_sync(write)


def authenticate(inst: Instance, authorization: str | None) -> AuGrant | None:
    """The AU session a Basic credential is the token of; None when it is not a cmi5 token (the LRS's
    own credentials then decide). A cmi5 token that does not hold is Denied (401)."""
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        user, _, secret = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not user.startswith(USER_PREFIX):
        return None
    tenant_id, _, au_session_id = user[len(USER_PREFIX) :].partition(".")
    status, _ = tenant_status(inst, tenant_id)
    if status != "active":
        raise Denied(401, "the cmi5 auth token is not valid")

    def read(conn: apsw.Connection) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        row = one(conn, "SELECT * FROM cmi5_au_sessions WHERE id = ?", (au_session_id,))
        if row is None:
            return None
        reg = _registration(conn, row["session_id"])
        au_row = _aus(conn, row["session_id"])[row["au_id"]]
        return row, reg, au_row

    found = inst.tenant_db(tenant_id).read_sync(read)
    if (
        found is None
        or found[0]["token_hash"] is None
        or not hmac.compare_digest(found[0]["token_hash"], sha256_hex(secret))
    ):
        raise Denied(401, "the cmi5 auth token is not valid (not fetched, or not this AU session's)")
    row, reg, au_row = found
    if row["ended"] is None and row["launched_at"] <= inst.clock.now() - inst.config.launch_token_ttl_seconds:
        raise Denied(403, "the AU session is past its TTL (it is abandoned)")
    from appliance.tenants import get_tenant

    tenant = get_tenant(inst, tenant_id)
    credential = LrsCredential(
        id=f"cmi5:{au_session_id}",
        tenant_id=tenant_id,
        name="cmi5 AU session",
        scope="all",
        created_at=row["launched_at"],
        last_used_at=None,
        revoked_at=None,
    )
    return AuGrant(
        tenant=tenant,
        credential=credential,
        au_session_id=au_session_id,
        session_id=row["session_id"],
        registration=reg["registration"],
        au_id=row["au_id"],
        activity_id=au_row["activity_id"],
        actor=json.loads(reg["actor"]),
        ended=row["ended"],
        preferences_read=row["preferences_read_at"] is not None,
        inst=inst,
    )


def restrict(
    grant: AuGrant, method: str, resource: str, params: dict[str, str], content_type: str = "", body: bytes = b""
) -> None:
    """What the token may reach (§8.1.2-8.1.4): its own registration's statements (sent through the AU
    rules), its AU's state in its registration, its actor's agent profile, the activities; nothing of
    other learners. After the session ended only statements are answered (and refused by the rules)."""
    reading = method in ("GET", "HEAD")
    if grant.ended is not None and not (resource == "statements" and not reading):
        # 403, not 401: a 401's Basic challenge would hold the AU's browser at a credentials prompt
        raise Denied(403, f"the AU session was {grant.ended}: its auth token is no longer valid")
    if resource == "statements":
        if not reading:
            return
        if "statementId" in params or "voidedStatementId" in params:
            raise Denied(403, "an AU session's token reads statements of its registration by query only")
        if "more" in params:
            return
        if params.setdefault("registration", grant.registration).lower() != grant.registration:
            raise Denied(403, "an AU session's token reads its own registration's statements only")
        return
    if resource == "activities/state":
        if params.get("activityId") != grant.activity_id:
            raise Denied(403, "an AU session's token reaches its AU's state only (activityId)")
        if (params.get("registration") or "").lower() != grant.registration:
            raise Denied(403, "an AU session's token reaches its own registration's state only")
        _check_agent(grant, params.get("agent"))
        if not reading and params.get("stateId") in (v.LAUNCH_DATA_STATE_ID, None, ""):
            raise Denied(403, "LMS.LaunchData is written by the LMS only")
        return
    if resource in ("agents/profile", "agents"):
        if reading and params.get("profileId") == v.LEARNER_PREFERENCES_PROFILE_ID:
            _note_preferences_read(grant)
        if "agent" in params:  # without one the LRS answers 400 itself (xAPI's rule, CATAPULT 11.0.0.0-1)
            _check_agent(grant, params.get("agent"))
        if params.get("profileId") == v.LEARNER_PREFERENCES_PROFILE_ID and method in ("PUT", "POST"):
            _check_learner_preferences(content_type, body)
        return
    if resource in ("activities/profile", "activities") and reading:
        return
    raise Denied(403, f"an AU session's token may not {method} {resource}")


def _note_preferences_read(grant: AuGrant) -> None:
    """Record that the AU asked for cmi5LearnerPreferences (§11: before `initialized`, 11.0.0.0-3) with its
    AU session, once: a restart between the read and `initialized` must not refuse the AU."""
    if grant.preferences_read or grant.inst is None:
        return
    now = grant.inst.clock.now()
    db = grant.inst.tenant_db(grant.tenant.id)

    def record(conn: apsw.Connection) -> None:
        conn.execute(
            "UPDATE cmi5_au_sessions SET preferences_read_at = ? WHERE id = ? AND preferences_read_at IS NULL",
            (now, grant.au_session_id),
        )

    grant.preferences_read = True
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside the LRS face's event loop (a job, a test)
        db.write_sync(record)
        return
    # On the event loop (the LRS face authorizes there) a blocking write could wait on a lock an async
    # flush holds until the loop runs again; queued instead, it is written before the AU's next write
    # (the initialized it precedes), since the database runs async writes in the order they came.
    task = loop.create_task(db.write(record))
    _RECORDING.add(task)
    task.add_done_callback(_recorded)


_RECORDING: set[asyncio.Task[None]] = set()  # the queued writes, referenced until done


def _recorded(task: asyncio.Task[None]) -> None:
    _RECORDING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("cmi5: recording a learner preferences read failed: %s", task.exception())


_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


def _check_learner_preferences(content_type: str, body: bytes) -> None:
    """cmi5LearnerPreferences (§11): a JSON object with languagePreference, a comma-separated list of
    language tags, and audioPreference "on" or "off"; anything else is refused (403)."""
    if content_type != "application/json":
        raise Denied(403, "cmi5LearnerPreferences is an application/json document (cmi5 11.0.0.0-5)")
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or "languagePreference" not in document or "audioPreference" not in document:
        raise Denied(403, "cmi5LearnerPreferences needs languagePreference and audioPreference (cmi5 11.0.0.0-5)")
    languages = document["languagePreference"]
    if not isinstance(languages, str) or not all(_LANGUAGE_TAG.match(tag) for tag in languages.split(",")):
        raise Denied(403, "languagePreference is a comma-separated list of language tags (cmi5 11.1.0.0-1)")
    if document["audioPreference"] not in ("on", "off"):
        raise Denied(403, 'audioPreference is "on" or "off" (cmi5 11.2.0.0-1)')


def _check_agent(grant: AuGrant, raw: str | None) -> None:
    try:
        given = json.loads(raw or "null")
        same = isinstance(given, dict) and agent_ifi(given) == agent_ifi(grant.actor)
    except (ValueError, TypeError, KeyError, AttributeError):
        same = False
    if not same:
        raise Denied(403, "an AU session's token reaches its own actor's documents only (agent)")


# -- statements from the AU ----------------------------------------------------------------------------


def store_statements(
    inst: Instance, conn: apsw.Connection, grant: AuGrant, statements: list[dict[str, Any]], insert: Any, now: float
) -> list[str]:
    """Check (au_rules.check: Rejected → 403) and record each statement, store them with `insert`, then
    write `satisfied` for what became satisfied and update the session's results: one transaction."""
    row = one(conn, "SELECT * FROM cmi5_au_sessions WHERE id = ?", (grant.au_session_id,))
    assert row is not None
    session = _session(conn, grant.session_id)
    course = _course_for_session(conn, session)
    reg = _registration(conn, grant.session_id)
    au_row = _aus(conn, grant.session_id)[grant.au_id]
    au = next(a for a in course.aus() if a.id == grant.au_id)
    state = _au_state(
        reg,
        au_row,
        au,
        grant.au_session_id,
        row["launch_mode"],
        initialized=bool(row["initialized"]),
        ended=row["ended"],
        verbs=frozenset(json.loads(row["verbs"])),
    )
    registration = au_rules.AuRegistration(
        completed=bool(au_row["completed"]), passed=bool(au_row["passed"]), failed=bool(au_row["failed"])
    )
    before = (state, registration)
    scores: dict[str, Any] = {}
    duration = 0.0
    for statement in statements:
        au_rules.check(statement, state, registration)
        if not state.initialized and row["preferences_read_at"] is None:  # the check passed: initialized
            raise au_rules.Rejected(
                "11.0.0.0-3 (d2)", "the AU must ask for cmi5LearnerPreferences (the Agent Profile) before initialized"
            )
        state, registration = au_rules.record(statement, state, registration)
        if au_rules.cmi5_defined(statement):
            verb = statement["verb"]["id"]
            result = statement.get("result") or {}
            if verb in (v.PASSED, v.FAILED) and isinstance(result.get("score"), dict):
                scores = result["score"]
            if verb == v.TERMINATED:
                duration = _seconds(result.get("duration"))
    ids = insert(statements)
    spent = _time_spent(session, now)
    if (state, registration) == before:  # a statement of the AU's own (or one that moved nothing): time only
        conn.execute(
            "UPDATE sessions SET server_time_seconds = server_time_seconds + ?, last_activity_at = ?, "
            "updated_at = ?, version = version + 1 WHERE id = ?",
            (spent, now, now, grant.session_id),
        )
        return ids
    conn.execute(
        "UPDATE cmi5_au_sessions SET initialized = ?, verbs = ?, ended = ?, ended_at = ? WHERE id = ?",
        (
            int(state.initialized),
            json.dumps(sorted(state.verbs)),
            state.ended,
            now if state.ended else None,
            grant.au_session_id,
        ),
    )
    conn.execute(
        "UPDATE cmi5_aus SET completed = ?, passed = ?, failed = ?, time_seconds = time_seconds + ?, "
        "score_scaled = coalesce(?, score_scaled), score_raw = coalesce(?, score_raw), "
        "score_min = coalesce(?, score_min), score_max = coalesce(?, score_max) WHERE session_id = ? AND au_id = ?",
        (
            int(registration.completed),
            int(registration.passed),
            int(registration.failed),
            duration,
            scores.get("scaled"),
            scores.get("raw"),
            scores.get("min"),
            scores.get("max"),
            grant.session_id,
            grant.au_id,
        ),
    )
    _write_satisfied(inst, conn, course, grant.session_id, grant.au_session_id, now)
    _refresh(conn, course, grant.session_id, now, spent)
    return ids


def _seconds(duration: object) -> float:
    """An ISO 8601 duration's seconds (0 when absent or unreadable)."""
    if not isinstance(duration, str):
        return 0.0

    match = re.fullmatch(
        r"P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?", duration
    )
    if match is None:
        return 0.0
    d, h, m, s = (float(x) if x else 0.0 for x in match.groups())
    return d * 86400 + h * 3600 + m * 60 + s


def _iso(seconds: float) -> str:
    return f"PT{round(seconds, 2):g}S"


# -- abandon and waive ------------------------------------------------------------------------------------


def _abandon(
    inst: Instance,
    conn: apsw.Connection,
    course: Course,
    session: dict[str, Any],
    reg: dict[str, Any],
    row: dict[str, Any],
    now: float,
) -> None:
    """`abandoned` (§9.3.6) for an AU session launched and never terminated, with its duration (launch
    to now). The AU reported no time (no `terminated`), so the AU's `time_seconds` (the session's
    `total_time`, what the content reported, as for SCORM) is left as it was; the session's
    `server_time_seconds` already holds the time up to the AU's last statement."""
    au = next(a for a in course.aus() if a.id == row["au_id"])
    au_row = _aus(conn, session["id"])[row["au_id"]]
    state = _au_state(reg, au_row, au, row["id"], row["launch_mode"])
    elapsed = max(0.0, now - row["launched_at"])
    _write_lms_statement(conn, state, v.ABANDONED, now, result={"duration": _iso(elapsed)})
    conn.execute("UPDATE cmi5_au_sessions SET ended = 'abandoned', ended_at = ? WHERE id = ?", (now, row["id"]))


def abandon(inst: Instance, tenant: Tenant, session_id: str | None, au_session_id: str | None = None) -> dict[str, Any]:
    """The API's abandon: the open AU sessions of the registration (or the one AU session named, by
    its cmi5 session id) are abandoned; returns their ids."""
    now = inst.clock.now()

    def write(conn: apsw.Connection) -> dict[str, Any]:
        nonlocal session_id
        if au_session_id is not None:
            named = one(conn, "SELECT session_id FROM cmi5_au_sessions WHERE id = ?", (au_session_id,))
            if named is None or (session_id is not None and named["session_id"] != session_id):
                raise NotFound(f"no AU session {au_session_id!r}", {"au_session_id": au_session_id})
            session_id = str(named["session_id"])
        assert session_id is not None
        session = _session(conn, session_id)
        course = _course_for_session(conn, session)
        reg = _registration(conn, session_id)
        found = rows(conn, "SELECT * FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL", (session_id,))
        if au_session_id is not None:
            found = [r for r in found if r["id"] == au_session_id]
        for row in found:
            _abandon(inst, conn, course, session, reg, row, now)
        if found:
            _refresh(conn, course, session_id, now)
        return {"session_id": session_id, "abandoned": [r["id"] for r in found]}

    return inst.tenant_db(tenant.id).write_sync(write)


_STALE = (
    "SELECT a.* FROM cmi5_au_sessions a JOIN sessions s ON s.id = a.session_id "
    "WHERE a.ended IS NULL AND (a.launched_at <= ? OR s.expires_at <= ?)"
)


def abandon_stale(inst: Instance) -> int:
    """Periodic sweep (§9.3.6): `abandoned` for AU sessions launched and not ended within the AU session
    TTL (`launch_token_ttl_seconds`: the AU's launch URL stops working then) or whose session expired."""
    now = inst.clock.now()
    cutoff = now - inst.config.launch_token_ttl_seconds
    total = 0
    for tenant_id in [r["id"] for r in inst.registry.read_sync(lambda c: rows(c, "SELECT id FROM tenants"))]:

        def sweep(conn: apsw.Connection) -> int:
            stale = rows(conn, _STALE, (cutoff, now))
            for row in stale:
                session = _session(conn, row["session_id"])
                course = _course_for_session(conn, session)
                _abandon(inst, conn, course, session, _registration(conn, session["id"]), row, now)
                _refresh(conn, course, session["id"], now)
            return len(stale)

        db = inst.tenant_db(tenant_id)
        if db.read_sync(lambda c: one(c, _STALE.replace("a.*", "1 AS x") + " LIMIT 1", (cutoff, now))) is not None:
            total += db.write_sync(sweep)  # a write transaction only for a tenant with something to abandon
    return total


def waive(inst: Instance, tenant: Tenant, session_id: str, au: str, reason: str) -> dict[str, Any]:
    """The API's waive (§9.3.8): the AU satisfied whatever its moveOn, `waived` and `satisfied` written."""
    reasons = ("Tested Out", "Equivalent AU", "Equivalent Outside Activity", "Administrative")
    if reason not in reasons:
        raise ValidationFailed(f"reason must be one of {', '.join(reasons)}", {"errors": [{"field": "reason"}]})
    now = inst.clock.now()

    def write(conn: apsw.Connection) -> dict[str, Any]:
        session = _session(conn, session_id)
        course = _course_for_session(conn, session)
        reg = _registration(conn, session_id)
        chosen = _pick_au(course, set(), au)
        au_row = _aus(conn, session_id)[chosen.id]
        if au_row["waived"]:
            raise ValidationFailed("the AU is already waived", {"errors": [{"field": "au"}], "au": chosen.id})
        au_session_id = str(uuid.uuid4())
        state = _au_state(reg, au_row, chosen, au_session_id, "Normal")
        result = {"success": True, "completion": True, "extensions": {RESULT_EXT_REASON: reason}}
        _write_lms_statement(conn, state, v.WAIVED, now, result=result, move_on=True)
        conn.execute(
            "UPDATE cmi5_aus SET waived = 1, waive_reason = ? WHERE session_id = ? AND au_id = ?",
            (reason, session_id, chosen.id),
        )
        satisfied = _write_satisfied(inst, conn, course, session_id, au_session_id, now)
        _refresh(conn, course, session_id, now)
        return {"session_id": session_id, "au_id": chosen.id, "reason": reason, "satisfied": satisfied}

    return inst.tenant_db(tenant.id).write_sync(write)
