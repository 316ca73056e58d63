"""The document store (appliance.services.lrs.documents) on a real tenant database: keys, ETags, preconditions
as RFC 7232 reads them, merges, listing, and that a refused write leaves nothing behind."""

from __future__ import annotations

import hashlib

import pytest

from appliance.instance import Instance
from appliance.services.lrs import documents as docs
from appliance.services.lrs.documents import DocumentKey, Preconditions
from tests.conftest import TenantKey

KEY = DocumentKey(docs.STATE, "s", "http://example.com/a", "mbox:mailto:a@example.com", "")
NONE = Preconditions()


@pytest.fixture
def db(inst: Instance, acme: TenantKey):
    return inst.tenant_db(acme.tenant_id)


def test_put_and_get(db) -> None:
    doc = db.write_sync(lambda c: docs.put_document(c, KEY, "text/plain", b"hello", 10.0, NONE))
    assert doc.etag == hashlib.sha1(b"hello").hexdigest()
    assert db.read_sync(lambda c: docs.get_document(c, KEY)) == doc
    other = DocumentKey(docs.STATE, "s", "http://example.com/a", "mbox:mailto:a@example.com", "reg")
    assert db.read_sync(lambda c: docs.get_document(c, other)) is None
    profile = DocumentKey(docs.ACTIVITY_PROFILE, "s", "http://example.com/a")
    assert db.read_sync(lambda c: docs.get_document(c, profile)) is None


def test_updated_moves_on_even_when_the_clock_does_not(db) -> None:
    first = db.write_sync(lambda c: docs.put_document(c, KEY, None, b"1", 10.0, NONE))
    second = db.write_sync(lambda c: docs.put_document(c, KEY, None, b"2", 10.0, NONE))
    assert second.updated > first.updated and second.content_type == docs.DEFAULT_CONTENT_TYPE


@pytest.mark.parametrize(
    ("header", "ok_when_exists", "ok_when_absent"),
    [
        (Preconditions(if_match="*"), True, False),
        (Preconditions(if_match='"ETAG"'), True, False),
        (Preconditions(if_match='W/"ETAG"'), True, False),
        (Preconditions(if_match='"other", "ETAG"'), True, False),
        (Preconditions(if_match='"other"'), False, False),
        (Preconditions(if_none_match="*"), False, True),
        (Preconditions(if_none_match='"ETAG"'), False, True),
        (Preconditions(if_none_match='"other"'), True, True),
    ],
)
def test_preconditions(header: Preconditions, ok_when_exists: bool, ok_when_absent: bool) -> None:
    etag = docs.etag_of(b"x")
    fix = Preconditions(
        header.if_match.replace("ETAG", etag.upper()) if header.if_match else None,
        header.if_none_match.replace("ETAG", etag) if header.if_none_match else None,
    )
    existing = docs.Document("text/plain", b"x", etag, 1.0)
    for doc, ok in ((existing, ok_when_exists), (None, ok_when_absent)):
        if ok:
            docs.check_preconditions(doc, fix)
        else:
            with pytest.raises(docs.PreconditionFailed):
                docs.check_preconditions(doc, fix)


def test_put_strictness(db) -> None:
    with pytest.raises(docs.PreconditionRequired):
        db.write_sync(lambda c: docs.put_document(c, KEY, None, b"1", 1.0, NONE, require_precondition="always"))
    db.write_sync(lambda c: docs.put_document(c, KEY, None, b"1", 1.0, NONE, require_precondition="existing"))
    for strictness in ("existing", "always"):
        with pytest.raises(docs.DocumentConflict):
            db.write_sync(
                lambda c, s=strictness: docs.put_document(c, KEY, None, b"2", 2.0, NONE, require_precondition=s)
            )
    assert db.read_sync(lambda c: docs.get_document(c, KEY)).content == b"1"


def test_merge(db) -> None:
    post = docs.post_document
    db.write_sync(lambda c: post(c, KEY, "application/json; charset=utf-8", b'{"a": {"x": 1}, "b": 2}', 1.0, NONE))
    merged = db.write_sync(lambda c: post(c, KEY, "application/json", b'{"a": {"y": 1}, "c": 3}', 2.0, NONE))
    assert merged.content == b'{"a":{"y":1},"b":2,"c":3}' and merged.content_type == "application/json"
    with pytest.raises(docs.NotJsonObject):
        db.write_sync(lambda c: post(c, KEY, "text/plain", b"{}", 3.0, NONE))
    with pytest.raises(docs.NotJsonObject):
        db.write_sync(lambda c: post(c, KEY, "application/json", b"[]", 3.0, NONE))
    assert db.read_sync(lambda c: docs.get_document(c, KEY)) == merged


def test_list_and_delete(db) -> None:
    def put(doc_id: str, registration: str, at: float) -> None:
        key = DocumentKey(docs.STATE, doc_id, KEY.activity_id, KEY.agent_ifi, registration)
        db.write_sync(lambda c: docs.put_document(c, key, None, b"", at, NONE))

    put("a", "", 1.0)
    put("b", "r1", 2.0)
    put("c", "", 3.0)
    scope = {"activity_id": KEY.activity_id, "agent_ifi": KEY.agent_ifi}
    assert db.read_sync(lambda c: docs.list_ids(c, docs.STATE, **scope)) == (["a", "b", "c"], 3.0)
    assert db.read_sync(lambda c: docs.list_ids(c, docs.STATE, **scope, since=1.5)) == (["b", "c"], 3.0)
    assert db.read_sync(lambda c: docs.list_ids(c, docs.STATE, **scope, registration="")) == (["a", "c"], 3.0)
    assert db.read_sync(lambda c: docs.list_ids(c, docs.STATE, **scope, since=5.0)) == ([], None)
    assert db.write_sync(lambda c: docs.delete_documents(c, docs.STATE, **scope, registration="r1")) == 1
    key_a = DocumentKey(docs.STATE, "a", KEY.activity_id, KEY.agent_ifi, "")
    with pytest.raises(docs.PreconditionFailed):
        db.write_sync(lambda c: docs.delete_document(c, key_a, Preconditions(if_match='"nope"')))
    assert db.write_sync(lambda c: docs.delete_document(c, key_a, NONE)) is True
    assert db.write_sync(lambda c: docs.delete_document(c, key_a, NONE)) is False
    assert db.read_sync(lambda c: docs.list_ids(c, docs.STATE, **scope)) == (["c"], 3.0)
