"""The fetch URL and the AU session's auth token (cmi5 §8.2): the one-time fetch, the token as a Basic
credential of the LRS face (authenticate), and what it may reach (restrict: its registration, AU and
actor only; the learner preferences as §11 says, their read recorded with the AU session).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.core.cmi5 import vocabulary as v
from appliance.core.xapi.agents import agent_ifi
from appliance.ids import new_secret, sha256_hex
from appliance.instance import Instance
from appliance.services.learning.cmi5_registrations.records import au_rows, registration_row
from appliance.services.lrs.credentials import LrsCredential
from appliance.services.tenancy.tenants import Tenant, tenant_status
from appliance.storage.sqlite.connection import one

logger = logging.getLogger(__name__)


USER_PREFIX = "cmi5."  # Basic username of an AU session's token: cmi5.<tenant id>.<AU session id>


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
        reg = registration_row(conn, row["session_id"])
        au_row = au_rows(conn, row["session_id"])[row["au_id"]]
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
    from appliance.services.tenancy.tenants import get_tenant

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
