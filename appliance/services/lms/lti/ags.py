"""Assignment and Grade Services 2.0: a line item per resource link, and scores posted on every change.

Nothing on the learner's commit path calls out: the `lti-ags` sweep compares each launched session's
result (status, completion, success, score) with what was last posted for its link, and queues one
`lti.ags.score` job per link whose result changed (unique per link, so a burst of commits makes one
post, which reads the newest result when it runs). Completion, pass or fail, and every score change are
posted; a session still in progress without a score is not. The job:

1. gets an access token from the platform's token endpoint: `client_credentials` with a JWT client
   assertion signed by the tenant's tool key (1EdTech Security Framework §4.1), for the AGS scopes the
   launch granted;
2. finds the link's line item: the `lineitem` of the launch's AGS claim, else the one of the
   `lineitems` container whose `resourceLinkId` is the link's, else creates it (score maximum 100);
3. POSTs the score to `{lineitem}/scores` (`application/vnd.ims.lis.v1.score+json`).

A failure is retried with the job queue's backoff (appliance.services.delivery.jobs); every request goes through the
outbound guard (appliance.services.delivery.outbound).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import apsw

from appliance.instance import Instance
from appliance.services.delivery import jobs, outbound
from appliance.services.delivery.jobs import Job, PermanentJobError
from appliance.services.lms.lti import claims as c
from appliance.services.lms.lti.keys import sign
from appliance.services.lms.lti.registrations import Registration, get_registration, policy
from appliance.storage.sqlite.connection import one, rows

log = logging.getLogger("appliance.lti.ags")

SCORE_JOB = "lti.ags.score"
SWEEP_SECONDS = 2.0
TIMEOUT_SECONDS = 10.0
MAX_BODY = 256 * 1024
MAX_ATTEMPTS = 10
SCORE_MAXIMUM = 100.0
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
DONE = ("completed", "passed", "failed")


def result_of(session: dict[str, Any]) -> dict[str, Any] | None:
    """What AGS says of a session's result (without the timestamp); None when there is nothing to post."""
    status = session["status"]
    given = _score_given(session)
    if status not in DONE and given is None:
        return None
    result: dict[str, Any] = {
        "activityProgress": "Completed"
        if status in DONE or session["completion_status"] == "completed"
        else "InProgress",
        "gradingProgress": "FullyGraded" if status in DONE else "Pending",
    }
    if given is not None:
        result["scoreGiven"] = given
        result["scoreMaximum"] = SCORE_MAXIMUM
    return result


def _score_given(session: dict[str, Any]) -> float | None:
    """The score out of 100: the scaled score, else raw within min..max (0..100 when absent)."""
    scaled, raw = session["score_scaled"], session["score_raw"]
    if scaled is not None:
        return round(max(0.0, min(1.0, float(scaled))) * SCORE_MAXIMUM, 4)
    if raw is None:
        return None
    low = session["score_min"] if session["score_min"] is not None else 0.0
    high = session["score_max"] if session["score_max"] is not None else 100.0
    if high <= low:
        return None
    return round(max(0.0, min(1.0, (float(raw) - low) / (high - low))) * SCORE_MAXIMUM, 4)


# -- the sweep --------------------------------------------------------------------------------------------

_CANDIDATES = (
    "SELECT l.id, l.posted, s.version, s.status, s.completion_status, s.score_scaled, s.score_raw, s.score_min, s.score_max "
    "FROM lti_launches l JOIN sessions s ON s.id = l.session_id "
    "WHERE (l.lineitem_url IS NOT NULL OR l.lineitems_url IS NOT NULL) "
    "AND (l.posted IS NULL OR json_extract(l.posted, '$.version') IS NOT s.version)"
)


def _tenant_ids(inst: Instance) -> list[str]:
    found = inst.registry.read_sync(lambda conn: rows(conn, "SELECT id FROM tenants ORDER BY created_at"))
    return [r["id"] for r in found if inst.has_tenant_db(r["id"])]


def sweep(inst: Instance) -> int:
    """Queue a score job for every link whose session's result differs from what was posted; how many."""
    queued = 0
    for tenant_id in _tenant_ids(inst):
        try:
            queued += sweep_tenant(inst, tenant_id)
        except Exception:
            log.exception("the AGS sweep failed for tenant %s", tenant_id)
    return queued


def sweep_tenant(inst: Instance, tenant_id: str) -> int:
    """One tenant's part of the sweep."""
    db = inst.tenant_db(tenant_id)
    versions = db.read_sync(lambda conn: rows(conn, _CANDIDATES))
    due, seen = [], []
    for row in versions:
        posted = json.loads(row["posted"]) if row["posted"] else {}
        if result_of(row) is not None and result_of(row) != posted.get("result"):
            due.append(row["id"])
        else:
            seen.append((json.dumps({**posted, "version": row["version"]}), row["id"]))
    if seen:  # nothing new to post for these versions: do not look at them again until the next change
        db.write_sync(lambda conn: conn.executemany("UPDATE lti_launches SET posted = ? WHERE id = ?", seen))
    if not due:
        return 0
    now = inst.clock.now()

    def queue(conn: apsw.Connection) -> None:
        for launch_id in due:
            jobs.enqueue(
                conn,
                SCORE_JOB,
                {"key": f"{tenant_id}:{launch_id}", "launch_id": launch_id},
                now=now,
                tenant_id=tenant_id,
                max_attempts=MAX_ATTEMPTS,
                unique=True,
            )

    inst.registry.write_sync(queue)
    return len(due)


# -- the job ----------------------------------------------------------------------------------------------


class AgsError(Exception):
    """A platform answer the post could not use (retried by the job queue)."""


def post_score(inst: Instance, job: Job) -> None:
    """The `lti.ags.score` job: post the link's current result to the platform (see the module docstring)."""
    tenant_id, launch_id = str(job.tenant_id), str(job.payload["launch_id"])
    db = inst.tenant_db(tenant_id)
    found = db.read_sync(
        lambda conn: one(
            conn,
            "SELECT l.*, s.status, s.completion_status, s.score_scaled, s.score_raw, s.score_min, s.score_max, "
            "s.version AS session_version FROM lti_launches l JOIN sessions s ON s.id = l.session_id WHERE l.id = ?",
            (launch_id,),
        )
    )
    if found is None:
        raise PermanentJobError("the launch or its session no longer exists")
    result = result_of(found)
    posted = json.loads(found["posted"]) if found["posted"] else {}
    if result is None or result == posted.get("result"):
        return
    reg = get_registration(inst, tenant_id, found["registration_id"])
    try:
        token = access_token(inst, tenant_id, reg, json.loads(found["ags_scopes"]))
        lineitem = found["lineitem_url"] or _find_or_create_lineitem(inst, reg, found, token)
        if lineitem != found["lineitem_url"]:
            db.write_sync(
                lambda conn: conn.execute(
                    "UPDATE lti_launches SET lineitem_url = ? WHERE id = ?", (lineitem, launch_id)
                )
            )
        score = {**result, "userId": found["sub"], "timestamp": _timestamp(inst.clock.now())}
        reply = _send(inst, "POST", scores_url(lineitem), token, SCORE_TYPE, json.dumps(score).encode())
        if reply.status_code == 401:
            forget_token(tenant_id, reg.id)
        if not 200 <= reply.status_code < 300:
            raise AgsError(f"the platform answered the score with HTTP {reply.status_code}: {reply.excerpt() or ''}")
    except (AgsError, outbound.OutboundError) as exc:
        message = exc.message if isinstance(exc, outbound.OutboundError) else str(exc)
        db.write_sync(
            lambda conn: conn.execute(
                "UPDATE lti_launches SET last_error = ? WHERE id = ?", (message[:1000], launch_id)
            )
        )
        raise AgsError(message) from exc
    record = json.dumps({"result": result, "version": found["session_version"]})
    db.write_sync(
        lambda conn: conn.execute(
            "UPDATE lti_launches SET posted = ?, posted_at = ?, last_error = NULL WHERE id = ?",
            (record, inst.clock.now(), launch_id),
        )
    )


def _timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scores_url(lineitem: str) -> str:
    """`{lineitem}/scores`, keeping the line item URL's query (AGS 2.0 §3.4)."""
    parts = urlsplit(lineitem)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (tenant, registration, scopes) -> (token, until)
_tokens_lock = threading.Lock()
TOKEN_MARGIN_SECONDS = 60.0  # a cached token is not used in its last minute
DEFAULT_TOKEN_SECONDS = 300.0  # when the token endpoint does not say how long its token lives
AGS_SCOPES = (c.SCOPE_LINEITEM, c.SCOPE_SCORE, c.SCOPE_LINEITEM_READONLY)


def access_token(inst: Instance, tenant_id: str, reg: Registration, granted: list[str]) -> str:
    """An OAuth 2 access token for the AGS scopes the launch granted, cached until shortly before it expires."""
    return service_token(inst, tenant_id, reg, [s for s in AGS_SCOPES if s in granted] or [c.SCOPE_SCORE])


def service_token(inst: Instance, tenant_id: str, reg: Registration, wanted: list[str]) -> str:
    """An access token of the platform for `wanted` scopes (AGS, or Names and Roles: appliance.services.lms.lti.nrps),
    cached per registration and scopes until shortly before it expires."""
    key, now = (tenant_id, reg.id, " ".join(wanted)), inst.clock.now()
    with _tokens_lock:
        cached = _tokens.get(key)
    if cached is not None and now < cached[1]:
        return cached[0]
    token, lifetime = _request_token(inst, tenant_id, reg, wanted)
    with _tokens_lock:
        _tokens[key] = (token, now + max(0.0, lifetime - TOKEN_MARGIN_SECONDS))
    return token


def forget_token(tenant_id: str, reg_id: str) -> None:
    """Drop a registration's cached tokens (the platform refused one: the retry asks for a new one)."""
    with _tokens_lock:
        for key in [k for k in _tokens if k[:2] == (tenant_id, reg_id)]:
            del _tokens[key]


def _request_token(inst: Instance, tenant_id: str, reg: Registration, wanted: list[str]) -> tuple[str, float]:
    """`client_credentials` with a JWT client assertion signed by the tool's key; (token, seconds it lives)."""
    now = int(inst.clock.now())
    claims = {
        "iss": reg.client_id,
        "sub": reg.client_id,
        "aud": reg.token_url,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
    }
    form = urlencode(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": sign(inst, tenant_id, claims),
            "scope": " ".join(wanted),
        }
    ).encode()
    reply = outbound.send(
        "POST",
        reg.token_url,
        policy=policy(inst),
        timeout=TIMEOUT_SECONDS,
        max_body=MAX_BODY,
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        content=form,
    )
    if reply.status_code != 200:
        raise AgsError(f"the token endpoint answered HTTP {reply.status_code}: {reply.excerpt() or ''}")
    try:
        answer = json.loads(reply.body)
        token = str(answer["access_token"])
        lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_SECONDS)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AgsError("the token endpoint's answer has no access_token") from exc
    return token, lifetime


def _send(
    inst: Instance, method: str, url: str, token: str, media_type: str, body: bytes | None = None
) -> outbound.Reply:
    headers = {"authorization": f"Bearer {token}", "accept": media_type if body is None else "application/json"}
    if body is not None:
        headers["content-type"] = media_type
    return outbound.send(
        method, url, policy=policy(inst), timeout=TIMEOUT_SECONDS, max_body=MAX_BODY, headers=headers, content=body
    )


def _find_or_create_lineitem(inst: Instance, reg: Registration, launch: dict[str, Any], token: str) -> str:
    """The line item of the launch's resource link in the context's container, created when missing."""
    container = launch["lineitems_url"]
    if not container:
        raise PermanentJobError("the launch granted no line item and no line item container")
    parts = urlsplit(container)
    query = "&".join(q for q in (parts.query, urlencode({"resource_link_id": launch["resource_link_id"]})) if q)
    reply = _send(inst, "GET", urlunsplit(parts._replace(query=query)), token, CONTAINER_TYPE)
    if reply.status_code != 200:
        raise AgsError(f"the line item container answered HTTP {reply.status_code}")
    try:
        items = json.loads(reply.body)
    except ValueError as exc:
        raise AgsError("the line item container's answer is not JSON") from exc
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("resourceLinkId") == launch["resource_link_id"] and item.get("id"):
            return str(item["id"])
    created = _send(
        inst,
        "POST",
        container,
        token,
        LINEITEM_TYPE,
        json.dumps(
            {
                "scoreMaximum": SCORE_MAXIMUM,
                "label": launch["package_id"],
                "resourceId": launch["package_id"],
                "resourceLinkId": launch["resource_link_id"],
            }
        ).encode(),
    )
    if created.status_code not in (200, 201):
        raise AgsError(f"creating the line item answered HTTP {created.status_code}")
    try:
        return str(json.loads(created.body)["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AgsError("the created line item has no id") from exc
