"""The tenant's xAPI documents: State, Activity Profile and Agent Profile (m011_xapi_documents).

A document is opaque bytes with a content type, addressed by its kind and the resource's keys (an
activity, an agent's canonical IFI, a registration, the document's own id); the columns a kind does
not use hold ''. Its ETag is the SHA-1 of the content, so a client can make a write conditional on the
version it read (`If-Match`) or on there being none (`If-None-Match: *`); `check_preconditions` says
412 when such a condition fails. A POST merges a JSON object into a JSON object one level deep (the
new document's top-level properties replace the old ones'); either side not being a JSON object is
a 400, and so is a POST whose JSON is malformed.

Each write is a function of an open write transaction: the precondition is checked and the row
written in the same transaction, so two clients racing with the same ETag cannot both win.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from appliance.storage.sqlite.connection import one, rows

STATE = "state"
ACTIVITY_PROFILE = "activity_profile"
AGENT_PROFILE = "agent_profile"
JSON = "application/json"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
_encode = msgspec.json.Encoder().encode


class DocumentError(Exception):
    """A document request the specification refuses, with the status it answers."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotJsonObject(DocumentError):
    """A merge where either document is not a JSON object (400)."""


class PreconditionFailed(DocumentError):
    """If-Match or If-None-Match not met (412)."""

    status = 412


class DocumentConflict(DocumentError):
    """A PUT with no precondition over an existing document, where the version requires one (409)."""

    status = 409


class PreconditionRequired(DocumentError):
    """A PUT with no precondition at all where xAPI 1.0.3's profiles need one (400)."""


@dataclass(frozen=True)
class DocumentKey:
    """Where a document lives; '' in the columns its kind does not use."""

    kind: str
    document_id: str
    activity_id: str = ""
    agent_ifi: str = ""
    registration: str = ""

    def params(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.activity_id, self.agent_ifi, self.registration, self.document_id)


@dataclass(frozen=True)
class Document:
    """A stored document: its content as sent, its media type, ETag (SHA-1 hex) and update time."""

    content_type: str
    content: bytes
    etag: str
    updated: float


@dataclass(frozen=True)
class Preconditions:
    """A write's If-Match / If-None-Match headers as sent (None: absent)."""

    if_match: str | None = None
    if_none_match: str | None = None

    @property
    def absent(self) -> bool:
        return self.if_match is None and self.if_none_match is None


def etag_of(content: bytes) -> str:
    """The ETag of a content: the SHA-1 in hex (quoted on the wire)."""
    return hashlib.sha1(content).hexdigest()  # noqa: S324 - the specification's choice, not a security hash


def media_type(content_type: str | None) -> str:
    """The media type without parameters, lower-cased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _tags(header: str) -> set[str]:
    """The entity tags of an If-Match/If-None-Match list, unquoted ('*' kept; weak tags compared as strong)."""
    tags = set()
    for item in header.split(","):
        tag = item.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag:
            tags.add(tag.lower() if tag != "*" else tag)
    return tags


def check_preconditions(existing: Document | None, pre: Preconditions) -> None:
    """PreconditionFailed unless the headers admit the write over `existing` (RFC 7232 §3.1, §3.2)."""
    if pre.if_match is not None:
        tags = _tags(pre.if_match)
        if existing is None or ("*" not in tags and existing.etag not in tags):
            raise PreconditionFailed("If-Match does not match the document's current ETag")
    if pre.if_none_match is not None and existing is not None:
        tags = _tags(pre.if_none_match)
        if "*" in tags or existing.etag in tags:
            raise PreconditionFailed("If-None-Match: the document exists (or has that ETag)")


def _from_row(row: dict[str, Any]) -> Document:
    return Document(row["content_type"], bytes(row["content"]), row["etag"], row["updated"])


def get_document(conn: apsw.Connection, key: DocumentKey) -> Document | None:
    """The document at `key`, or None."""
    row = one(
        conn,
        "SELECT content_type, content, etag, updated FROM xapi_documents "
        "WHERE kind = ? AND activity_id = ? AND agent_ifi = ? AND registration = ? AND document_id = ?",
        key.params(),
    )
    return _from_row(row) if row is not None else None


def _scope_sql(kind: str, activity_id: str, agent_ifi: str, registration: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of a kind's documents for one activity/agent; registration None: any registration."""
    sql = "kind = ? AND activity_id = ? AND agent_ifi = ?"
    params: list[Any] = [kind, activity_id, agent_ifi]
    if registration is not None:
        sql += " AND registration = ?"
        params.append(registration)
    return sql, params


def list_ids(
    conn: apsw.Connection,
    kind: str,
    *,
    activity_id: str = "",
    agent_ifi: str = "",
    registration: str | None = None,
    since: float | None = None,
) -> tuple[list[str], float | None]:
    """(document ids, latest update) of a kind for one activity/agent, updated after `since` when given.

    State ids of every registration when `registration` is None, as the reference LRS answers.
    """
    where, params = _scope_sql(kind, activity_id, agent_ifi, registration)
    if since is not None:
        where += " AND updated > ?"
        params.append(since)
    found = rows(conn, f"SELECT document_id, updated FROM xapi_documents WHERE {where} ORDER BY updated", tuple(params))
    ids = list(dict.fromkeys(r["document_id"] for r in found))
    return ids, max((r["updated"] for r in found), default=None)


def _write(
    conn: apsw.Connection, key: DocumentKey, existing: Document | None, content_type: str, content: bytes, now: float
) -> Document:
    """Store the document over `existing` (as read in this transaction); its update time never goes back."""
    updated = max(now, existing.updated + 1e-6) if existing is not None else now
    doc = Document(content_type, content, etag_of(content), updated)
    conn.execute(
        "INSERT INTO xapi_documents (kind, activity_id, agent_ifi, registration, document_id, content_type, "
        "content, etag, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, activity_id, agent_ifi, registration, document_id) DO UPDATE SET "
        "content_type = excluded.content_type, content = excluded.content, etag = excluded.etag, "
        "updated = excluded.updated",
        (*key.params(), doc.content_type, doc.content, doc.etag, doc.updated),
    )
    return doc


def put_document(
    conn: apsw.Connection,
    key: DocumentKey,
    content_type: str | None,
    content: bytes,
    now: float,
    pre: Preconditions,
    *,
    require_precondition: str = "none",
) -> Document:
    """Store (replace) a document; inside a write transaction.

    `require_precondition` is how strictly a PUT without If-Match/If-None-Match is refused: "none"
    (xAPI 1.0.3's State), "existing" (409 over an existing document: 2.0's documents) or "always"
    (409 over an existing document, 400 otherwise: 1.0.3's Activity and Agent Profiles).
    """
    existing = get_document(conn, key)
    check_preconditions(existing, pre)
    if pre.absent and require_precondition != "none":
        if existing is not None:
            raise DocumentConflict(
                "the document exists: send If-Match with its ETag (or If-None-Match: * for a new one) to replace it"
            )
        if require_precondition == "always":
            raise PreconditionRequired("a PUT of this document needs an If-Match or If-None-Match header")
    return _write(conn, key, existing, content_type or DEFAULT_CONTENT_TYPE, content, now)


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(content)
    except msgspec.DecodeError:
        raise NotJsonObject(f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise NotJsonObject(f"the {what} is not a JSON object")
    return value


def post_document(
    conn: apsw.Connection, key: DocumentKey, content_type: str | None, content: bytes, now: float, pre: Preconditions
) -> Document:
    """Merge a JSON object into the document (one level deep), or store it when there is none.

    A JSON post must parse as a JSON object; merging needs both sides to be application/json objects.
    """
    existing = get_document(conn, key)
    check_preconditions(existing, pre)
    posted_json = media_type(content_type) == JSON
    new = _json_object(content, "posted document") if posted_json else None
    if existing is None:
        return _write(conn, key, None, content_type or DEFAULT_CONTENT_TYPE, content, now)
    if new is None or media_type(existing.content_type) != JSON:
        raise NotJsonObject("a POST merges JSON objects: both documents must be application/json")
    merged = _json_object(existing.content, "stored document")
    merged.update(new)
    return _write(conn, key, existing, JSON, _encode(merged), now)


def delete_document(conn: apsw.Connection, key: DocumentKey, pre: Preconditions) -> bool:
    """Delete one document (whether it existed); the preconditions are checked first."""
    check_preconditions(get_document(conn, key), pre)
    conn.execute(
        "DELETE FROM xapi_documents "
        "WHERE kind = ? AND activity_id = ? AND agent_ifi = ? AND registration = ? AND document_id = ?",
        key.params(),
    )
    return conn.changes() > 0


def delete_documents(
    conn: apsw.Connection, kind: str, *, activity_id: str, agent_ifi: str, registration: str | None
) -> int:
    """Delete a kind's documents for one activity/agent (every registration when None); the count."""
    where, params = _scope_sql(kind, activity_id, agent_ifi, registration)
    conn.execute(f"DELETE FROM xapi_documents WHERE {where}", tuple(params))
    return conn.changes()
