"""Registering and launching (cmi5 §8, §10): a session made a registration (its UUID, actor and LMS-generated
AU activity ids; NotApplicable AUs satisfied), and an AU session started: LMS.LaunchData, `launched`, and
the launch URL with its five parameters. The AUs' returnURL is the course's overview.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apsw

from appliance.clock import rfc3339
from appliance.core.cmi5 import au_rules
from appliance.core.cmi5 import vocabulary as v
from appliance.core.cmi5.course_structure import LAUNCH_PARAMETERS, Au, Course
from appliance.core.xapi.agents import agent_ifi
from appliance.errors import SessionExpired, ValidationFailed
from appliance.ids import new_secret, sha256_hex
from appliance.instance import Instance
from appliance.services.learning.cmi5_registrations.abandonment import abandon_au_session
from appliance.services.learning.cmi5_registrations.records import (
    au_rows,
    au_state,
    course_for_session,
    lms_id,
    pick_au,
    registration_row,
    satisfied_nodes,
    session_row,
)
from appliance.services.learning.cmi5_registrations.results import update_session, write_lms_statement, write_satisfied
from appliance.services.learning.launch_tokens import issue, signing_secret
from appliance.services.library.origins import parse_content_origin
from appliance.services.lrs import documents as docs
from appliance.services.lrs.scorm_statements import home_page
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import rows


def actor_for(inst: Instance, learner_id: str, learner_name: str | None) -> dict[str, Any]:
    """The launch's actor: the learner as an account on this appliance (as the SCORM-as-xAPI statements)."""
    agent: dict[str, Any] = {"objectType": "Agent", "account": {"homePage": home_page(inst), "name": learner_id}}
    if learner_name:
        agent["name"] = learner_name
    return agent


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
            (session["id"], au.id, position, lms_id(inst, registration, "au", position)),
        )
    write_satisfied(inst, conn, course, session["id"], str(uuid.uuid4()), now)


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
        session = session_row(conn, session_id)
        if session["status"] == "expired" or session["expires_at"] <= now:
            raise SessionExpired(
                "the session has expired", {"session_id": session_id, "expires_at": rfc3339(session["expires_at"])}
            )
        course = course_for_session(conn, session)
        reg = registration_row(conn, session_id)
        for open_row in rows(
            conn, "SELECT * FROM cmi5_au_sessions WHERE session_id = ? AND ended IS NULL", (session_id,)
        ):
            abandon_au_session(inst, conn, course, session, reg, open_row, now)
        chosen = pick_au(course, satisfied_nodes(conn, session_id), au)
        au_row = au_rows(conn, session_id)[chosen.id]
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
        state = au_state(reg, au_row, chosen, au_session_id, launch_mode)
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
        write_lms_statement(
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
        update_session(conn, session, fields, now)
        return Launch(au_session_id, chosen.id, au_row["activity_id"], reg["registration"], chosen.launch_method, url)

    return inst.tenant_db(tenant.id).write_sync(write)


def launch_url_of(inst: Instance, tenant_id: str, session: dict[str, Any], api_base: str) -> str:
    """The session's player URL (its `launch_url`)."""
    return f"{_player_base(inst, tenant_id, api_base)}/player/{_token(inst, tenant_id, session)}"


RETURNED = "returned"  # the player URL's query parameter of the AUs' returnURL (appliance.faces.api.cmi5_player)


def return_url_of(inst: Instance, tenant_id: str, session: dict[str, Any], api_base: str) -> str:
    """The AUs' returnURL: the player's overview of the course (appliance.faces.api.cmi5_player.overview), which
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
