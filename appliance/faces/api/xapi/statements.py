"""`/xapi/statements`: PUT, POST and GET (HEAD) of statements (xAPI 1.0.3 §7.2, 2.0 §4.1.6.1).

The handler turns the request into the store's terms (appliance.services.lrs.statements): a body into
validated statements and their attachments' parts, the GET parameters into a `StatementQuery`, a
`more` token into the cursor of the query that issued it. A batch is one `db.write` (one
transaction, grouped with the other writers of the same loop round); a GET is one read transaction
in a thread, so the page, `X-Experience-API-Consistent-Through` and `Last-Modified` come from one
snapshot.

`more` tokens carry the query and its cursor (the last `seq` the first page could see, the last
`seq` answered), signed with a key derived from the registry's token secret and the tenant: they
need no server-side state, cannot be forged to widen a query, and pages stay consistent while
statements arrive (newer ones are after the fixed bound).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Any

import msgspec

from appliance.core.cmi5.au_rules import Rejected
from appliance.core.xapi import agents, formats, multipart, statement_normalization, validation, value_formats
from appliance.core.xapi.duplicate_keys import DuplicateKey, check_no_duplicate_keys
from appliance.core.xapi.signatures import SignatureError, check_signatures
from appliance.core.xapi.statement_errors import StatementError
from appliance.faces.api.errors import error_body
from appliance.faces.api.xapi.messages import XapiError, XapiRequest, XapiResponse
from appliance.instance import Instance
from appliance.services.learning.launch_tokens import signing_secret
from appliance.services.lrs import bulk
from appliance.services.lrs import statement_queries as queries
from appliance.services.lrs import statements as store
from appliance.services.lrs.quota import check_lrs_storage
from appliance.services.lrs.statement_keys import agent_key

PREFIX = "/xapi/statements"
FILTERS = (
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "ascending",
)
PRESENTATION = ("format", "attachments")
SINGLE = ("statementId", "voidedStatementId")
GET_PARAMS = frozenset(FILTERS + PRESENTATION + SINGLE + ("more",))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# tenant id → `stored` times (ms) of the batches being written now: Consistent-Through stays before them.
_in_flight: dict[str, list[int]] = {}
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


async def handle(inst: Instance, req: XapiRequest) -> XapiResponse:
    """Dispatch on the method (HEAD is GET: the face drops the body)."""
    if req.reading:
        return await _get(inst, req)
    if req.method == "PUT":
        return await _put(inst, req)
    if req.method == "POST":
        return await _post(inst, req)
    raise XapiError(405, f"the statements resource does not answer {req.method}")


# -- writing -------------------------------------------------------------------------------------


def _body(req: XapiRequest) -> tuple[Any, dict[str, multipart.Part]]:
    """(the decoded JSON body, attachment parts by sha2) of a PUT or POST, or XapiError (400)."""
    parts: dict[str, multipart.Part] = {}
    raw = req.body
    if req.content_type == multipart.MULTIPART_MIXED:
        try:
            raw, parts = multipart.parse_multipart(req.headers.get("content-type"), req.body, req.version)
        except multipart.MultipartError as exc:
            raise XapiError(400, exc.message) from None
    elif req.content_type != "application/json" and not (req.alternate and not req.content_type):
        raise XapiError(400, "statements are sent as application/json or multipart/mixed")
    try:
        value = _decode(raw)
    except msgspec.DecodeError as exc:
        raise XapiError(400, f"the body is not valid JSON: {exc}") from None
    if req.version.startswith("2."):
        try:
            check_no_duplicate_keys(raw, value, "statements" if isinstance(value, list) else "statement")
        except DuplicateKey as exc:
            raise XapiError(400, str(exc), {"path": exc.path}) from None
    return value, parts


def _validated(req: XapiRequest, value: Any, parts: dict[str, multipart.Part]) -> list[dict[str, Any]]:
    """The batch validated and normalised (appliance.core.xapi.validation), attachments and signatures checked."""
    batch = value if isinstance(value, list) else [value]
    try:
        check_signatures([s for s in batch if isinstance(s, dict)], parts)
    except SignatureError as exc:
        raise XapiError(400, str(exc)) from None
    statements = _validate(value, req.version)
    try:
        multipart.check_attachments(statements, parts)
    except multipart.MultipartError as exc:
        raise XapiError(400, exc.message) from None
    return statements


def _validate(value: Any, version: str) -> list[dict[str, Any]]:
    """appliance.core.xapi.validation's batch check; its StatementError is the client's 400."""
    try:
        return [
            statement_normalization.normalize_statement(s, version)
            for s in validation.validate_statement_batch(value, version)
        ]
    except StatementError as exc:
        details = {"path": exc.path} if getattr(exc, "path", None) else {}
        raise XapiError(400, str(exc), details) from None


async def _store(inst: Instance, req: XapiRequest, statements: list[dict[str, Any]], parts: dict) -> list[str]:
    """One transaction for the batch: all stored, or nothing (409 conflict, 400 refused).

    A credential's batch is prepared here on the loop and written by the tenant's LRS writer thread
    (appliance.services.lrs.bulk), grouped with the batches queued meanwhile; an AU session's (cmi5) goes
    through cmi5's rules in an ordinary write.
    """
    assert req.credential is not None
    credential = req.credential
    stored = inst.clock.now()
    attachments = {sha2: (part.content_type, part.content) for sha2, part in parts.items()}
    db = inst.tenant_db(req.tenant_id)
    pending = _in_flight.setdefault(req.tenant_id, [])
    mark = int(stored * 1000)
    pending.append(mark)

    def prepared(batch: list[dict[str, Any]]) -> store.Batch:
        return store.prepare_batch(
            batch,
            stored=stored,
            authority=credential.authority(),
            credential_id=credential.id,
            version=req.version,
            attachments=attachments,
        )

    def write(c: Any) -> list[str]:
        from appliance.services.learning import (
            cmi5_registrations,  # an AU session's token: cmi5's rules and the LMS's statements
        )

        def insert(batch: list[dict[str, Any]]) -> list[str]:
            return store.write_batch(c, prepared(batch))

        return cmi5_registrations.store_statements(inst, c, req.cmi5, statements, insert, stored)

    try:
        if req.cmi5 is not None:
            return await db.write(write)
        assert req.tenant is not None
        check_lrs_storage(inst, req.tenant, len(req.body))
        return await bulk.writer_for(db, store.run_queued).submit(prepared(statements))
    except Rejected as exc:  # cmi5's refusal of an AU's statement
        raise XapiError(403, str(exc), {"requirement": exc.requirement}) from None
    except store.StatementConflict as exc:
        raise XapiError(409, exc.message, exc.details) from None
    except store.StatementRefused as exc:
        raise XapiError(400, exc.message, exc.details) from None
    finally:
        pending.remove(mark)


def _consistent_through(inst: Instance, tenant_id: str) -> str:
    """Now, or just before the earliest batch still being written: every statement stored up to then
    is visible to a read that starts after this call (the event loop's thread runs both)."""
    now = int(inst.clock.now() * 1000)
    pending = _in_flight.get(tenant_id)
    return _timestamp(min(now, min(pending) - 1) if pending else now)


async def _put(inst: Instance, req: XapiRequest) -> XapiResponse:
    """PUT ?statementId=: one statement under that id; 204 (also when the same one is already stored)."""
    unknown = sorted(set(req.params) - {"statementId"})
    if unknown:
        raise XapiError(400, f"PUT /statements takes only statementId, not {', '.join(unknown)}")
    sid = req.params.get("statementId")
    if sid is None:
        raise XapiError(400, "PUT /statements needs the statementId parameter (or POST without it)")
    sid = _uuid(sid, "statementId")
    value, parts = _body(req)
    if not isinstance(value, dict):
        raise XapiError(400, "PUT /statements takes one statement (an object)")
    given = value.get("id")
    if given is not None and (not isinstance(given, str) or given.lower() != sid):
        raise XapiError(400, "the statement's id differs from the statementId parameter", {"statementId": sid})
    value["id"] = sid
    await _store(inst, req, _validated(req, value, parts), parts)
    return XapiResponse(204, content_type=None)


async def _post(inst: Instance, req: XapiRequest) -> XapiResponse:
    """POST: one statement or an array; 200 with the ids in order."""
    if req.params:
        raise XapiError(400, f"POST /statements takes no parameter, not {', '.join(sorted(req.params))}")
    value, parts = _body(req)
    if isinstance(value, list) and not value:
        raise XapiError(400, "the batch is empty")
    ids = await _store(inst, req, _validated(req, value, parts), parts)
    return XapiResponse(200, body=ids)


# -- reading -------------------------------------------------------------------------------------


def _uuid(value: str, name: str) -> str:
    """A UUID parameter, lower-cased, or 400."""
    import uuid

    try:
        return str(uuid.UUID(value)) if len(value) == 36 else _bad(name, value)
    except ValueError:
        return _bad(name, value)


def _bad(name: str, value: str) -> str:
    raise XapiError(400, f"{name} is not valid: {value!r}", {"parameter": name})


def _bool(params: dict[str, str], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        _bad(name, value)
    return value == "true"


def _millis(value: str, name: str) -> int:
    """A `since`/`until` timestamp as whole milliseconds since the epoch (floored), or 400."""
    try:
        parsed = value_formats.parse_timestamp(value)
    except ValueError:
        _bad(name, value)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _agent(value: str) -> str:
    """The `agent` parameter (JSON Agent or identified Group) as the store's agent key, or 400."""
    try:
        agent = agents.parse_agent_param(value)
    except StatementError as exc:
        raise XapiError(400, f"agent {exc}", {"parameter": "agent"}) from None
    key = agent_key(agent)
    if key is None:
        _bad("agent", value)
    assert key is not None
    return key


def _query(params: dict[str, str]) -> queries.StatementQuery:
    """The filters of a GET without statementId, checked (400 on any value the spec refuses)."""
    q = queries.StatementQuery()
    if "agent" in params:
        q.agent = _agent(params["agent"])
    for name in ("verb", "activity"):
        if name in params:
            if not params[name] or ":" not in params[name]:
                _bad(name, params[name])
            setattr(q, name, params[name])
    if "registration" in params:
        q.registration = _uuid(params["registration"], "registration")
    q.related_agents = _bool(params, "related_agents")
    q.related_activities = _bool(params, "related_activities")
    q.ascending = _bool(params, "ascending")
    if "since" in params:
        q.since_ms = _millis(params["since"], "since")
    if "until" in params:
        q.until_ms = _millis(params["until"], "until")
    if "limit" in params:
        text = params["limit"]
        if not text.isdigit():
            _bad("limit", text)
        q.limit = int(text)
    return q


def _more_key(inst: Instance, tenant_id: str) -> bytes:
    return hmac.new(signing_secret(inst), b"xapi-more\x00" + tenant_id.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _more_token(inst: Instance, tenant_id: str, params: dict[str, str], upper: int, after: int) -> str:
    payload = _b64(_encode({"p": params, "u": upper, "a": after}))
    mac = _b64(hmac.new(_more_key(inst, tenant_id), payload.encode(), hashlib.sha256).digest()[:18])
    return f"{payload}.{mac}"


def _from_more(inst: Instance, tenant_id: str, token: str) -> tuple[dict[str, str], int, int]:
    """(the first page's parameters, upper seq, last seq answered) of a `more` token, or 400."""
    payload, _, mac = token.partition(".")
    expected = _b64(hmac.new(_more_key(inst, tenant_id), payload.encode(), hashlib.sha256).digest()[:18])
    if not mac or not hmac.compare_digest(mac, expected):
        raise XapiError(400, "the more token is not one this LRS issued")
    data = _decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return dict(data["p"]), int(data["u"]), int(data["a"])


def _timestamp(ms: int) -> str:
    return store.stored_text(ms / 1000)


def _http_date(ms: int) -> str:
    return formatdate(ms / 1000, usegmt=True)


async def _get(inst: Instance, req: XapiRequest) -> XapiResponse:
    """GET/HEAD: one statement or a StatementResult; errors carry Consistent-Through too."""
    db = inst.tenant_db(req.tenant_id)
    through = _consistent_through(inst, req.tenant_id)
    try:
        return await _answer_get(inst, req, db, through)
    except XapiError as exc:
        body = error_body(
            {400: "VALIDATION_FAILED", 404: "NOT_FOUND"}.get(exc.status, f"HTTP_{exc.status}"), exc.message, exc.details
        )
        return XapiResponse(exc.status, body=body, headers={"X-Experience-API-Consistent-Through": through})


async def _answer_get(inst: Instance, req: XapiRequest, db: Any, through: str) -> XapiResponse:
    params = dict(req.params)
    unknown = sorted(set(params) - GET_PARAMS)
    if unknown:
        raise XapiError(400, f"unknown parameter(s): {', '.join(unknown)}", {"parameters": unknown})
    cursor: tuple[int, int] | None = None
    if "more" in params:
        if len(params) > 1:
            raise XapiError(400, "a more token is used alone")
        params, upper, after = _from_more(inst, req.tenant_id, params["more"])
        cursor = (upper, after)
    fmt = params.get("format", "exact")
    if fmt not in formats.FORMATS:
        _bad("format", fmt)
    with_attachments = _bool(params, "attachments")
    languages = formats.accept_languages(req.headers.get("accept-language"))
    single = [name for name in SINGLE if name in params]
    if single:
        others = sorted(set(params) - set(PRESENTATION) - {single[0]})
        if others:
            raise XapiError(400, f"{single[0]} cannot be combined with {', '.join(others)}")
        sid = _uuid(params[single[0]], single[0])
        return await _single(db, sid, single[0] == "voidedStatementId", fmt, languages, with_attachments, through)
    q = _query(params)
    if cursor is not None:
        q.upper, q.after = cursor

    def read(conn: Any) -> tuple[queries.Page, list[bytes], dict[str, tuple[str, bytes]]]:
        page = queries.query_statements(conn, q)
        parts = queries.attachments_of(conn, [s.seq for s in page.statements]) if with_attachments else {}
        shape = _formatter(conn, fmt, languages)
        return page, [shape(s.body) for s in page.statements], parts

    page, bodies, parts = await db.read(read)
    more = ""
    if page.more and page.statements:
        token = _more_token(inst, req.tenant_id, params, page.upper, page.statements[-1].seq)
        more = f"{PREFIX}?more={token}"
    payload = b'{"statements":[' + b",".join(bodies) + b'],"more":' + _encode(more) + b"}"
    headers = {"X-Experience-API-Consistent-Through": through}
    newest = max((s.stored_ms for s in page.statements), default=page.consistent_through_ms)
    if newest is not None:
        headers["Last-Modified"] = _http_date(newest)
    return _respond(payload, parts, with_attachments, headers)


async def _single(
    db: Any, sid: str, voided: bool, fmt: str, languages: list[str], with_attachments: bool, through: str
) -> XapiResponse:
    """statementId / voidedStatementId: the statement, or 404 (a voided one only by voidedStatementId)."""

    def read(conn: Any) -> tuple[queries.StoredStatement | None, bytes, dict[str, tuple[str, bytes]]]:
        found = queries.get_statement(conn, sid, voided=voided)
        if found is None:
            return None, b"", {}
        parts = queries.attachments_of(conn, [found.seq]) if with_attachments else {}
        return found, _formatter(conn, fmt, languages)(found.body), parts

    found, body, parts = await db.read(read)
    if found is None:
        what = "voided statement" if voided else "statement"
        raise XapiError(404, f"no {what} {sid}", {"statement_id": sid})
    headers = {"X-Experience-API-Consistent-Through": through, "Last-Modified": _http_date(found.stored_ms)}
    return _respond(body, parts, with_attachments, headers)


def _respond(
    payload: bytes, parts: dict[str, tuple[str, bytes]], with_attachments: bool, headers: dict[str, str]
) -> XapiResponse:
    """The JSON answer, or with attachments=true the multipart/mixed one (statements first)."""
    if not with_attachments:
        return XapiResponse(200, body=payload, headers=headers)
    body, content_type = multipart.build_multipart(
        payload, [(sha2, multipart.Part(ct, content)) for sha2, (ct, content) in parts.items()]
    )
    return XapiResponse(200, body=body, content_type=content_type, headers=headers)


# -- formats -------------------------------------------------------------------------------------


def _formatter(conn: Any, fmt: str, languages: list[str]) -> Any:
    """bytes → bytes in the asked format (appliance.core.xapi.formats); `canonical` takes the LRS's own
    latest definition of each activity (xapi_activities) over the one a statement carried."""
    if fmt == "exact":
        return lambda body: body
    known: dict[str, dict[str, Any] | None] = {}

    def definition_of(activity_id: str) -> dict[str, Any] | None:
        if activity_id not in known:
            found = conn.execute("SELECT definition FROM xapi_activities WHERE id = ?", (activity_id,)).fetchall()
            known[activity_id] = _decode(found[0][0]) if found else None
        return known[activity_id]

    return lambda body: _encode(formats.format_statement(_decode(body), fmt, languages, definition_of))
