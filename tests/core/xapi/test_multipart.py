"""multipart/mixed statement bodies (appliance.core.xapi.multipart): the bodies the conformance suite
sends, each of the specification's 400s, and the answer GET builds, read back by the parser."""

from __future__ import annotations

import hashlib
import json

import pytest

from appliance.core.xapi.multipart import (
    MultipartError,
    Part,
    boundary_of,
    build_multipart,
    check_attachments,
    parse_multipart,
)

BOUNDARY = "-------314159265358979323846"
CT = f"multipart/mixed; boundary={BOUNDARY}"
TEXT1 = b"here is a simple attachment"
TEXT2 = b"here is a second simple attachment"
SHA1 = hashlib.sha256(TEXT1).hexdigest()
SHA2 = hashlib.sha256(TEXT2).hexdigest()


def statement(*shas: str, file_url: bool = False) -> dict:
    attachments = []
    for sha in shas:
        a = {
            "usageType": "http://example.com/attachment-usage/test",
            "display": {"en-US": "A test attachment"},
            "contentType": "text/plain",
            "length": 27,
            "sha2": sha,
        }
        if file_url:
            a["fileUrl"] = "http://over.there.com/file.txt"
        attachments.append(a)
    return {
        "actor": {"mbox": "mailto:a@example.com"},
        "verb": {"id": "http://example.com/v"},
        "object": {"id": "http://example.com/o"},
        "attachments": attachments,
    }


def part(content: bytes, sha: str | None, encoding: str | None = "binary", ctype: str = "text/plain") -> str:
    lines = [f"--{BOUNDARY}", f"Content-Type: {ctype}"]
    if encoding is not None:
        lines.append(f"Content-Transfer-Encoding: {encoding}")
    if sha is not None:
        lines.append(f"X-Experience-API-Hash: {sha}")
    return "\r\n".join(lines) + "\r\n\r\n" + content.decode() + "\r\n"


def body(stmt: dict | list, *parts: str, first_type: str = "application/json", close: bool = True) -> bytes:
    msg = f"--{BOUNDARY}\r\nContent-Type: {first_type}\r\n\r\n{json.dumps(stmt)}\r\n" + "".join(parts)
    if close:
        msg += f"--{BOUNDARY}--\r\n"
    return msg.encode()


def test_a_statement_with_two_attachments() -> None:
    stmt = statement(SHA1, SHA2)
    raw, parts = parse_multipart(CT, body(stmt, part(TEXT1, SHA1), part(TEXT2, SHA2)))
    assert json.loads(raw) == stmt
    assert parts == {SHA1: Part("text/plain", TEXT1), SHA2: Part("text/plain", TEXT2)}
    check_attachments([stmt], parts)


def test_the_suites_signed_statement_layout() -> None:
    """The suite's signed bodies: a leading CRLF, no space after the colons, no CRLF after the close."""
    jws = b"aGVhZA.cGF5bG9hZA.c2ln"
    sha = hashlib.sha256(jws).hexdigest()
    msg = (
        (
            f"\r\n--{BOUNDARY}\r\nContent-Type:application/json\r\n\r\n{{}}"
            f"\r\n--{BOUNDARY}\r\nContent-Type:application/octet-stream\r\nContent-Transfer-Encoding:binary\r\n"
            f"X-Experience-API-Hash:{sha}\r\n\r\n"
        ).encode()
        + jws
        + f"\r\n--{BOUNDARY}--".encode()
    )
    raw, parts = parse_multipart(CT, msg)
    assert raw == b"{}" and parts[sha] == Part("application/octet-stream", jws)


def test_binary_content_is_kept_byte_for_byte() -> None:
    content = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    sha = hashlib.sha256(content).hexdigest()
    msg = (
        body(statement(sha))[: -len(f"--{BOUNDARY}--\r\n")]
        + f"--{BOUNDARY}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n"
        f"X-Experience-API-Hash: {sha}\r\n\r\n".encode()
        + content
        + f"\r\n--{BOUNDARY}--".encode()
    )
    _, parts = parse_multipart(CT, msg)
    assert parts[sha].content == content


def test_boundary_quoted_or_bare_and_missing() -> None:
    assert boundary_of('multipart/mixed; boundary="a b"') == "a b"
    assert boundary_of("Multipart/Mixed;charset=utf-8; BOUNDARY=xyz") == "xyz"
    for bad in ("multipart/mixed;", "multipart/mixed", "multipart/form-data; boundary=x", None):
        with pytest.raises(MultipartError):
            boundary_of(bad)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("no boundary in the body", lambda: body(statement(SHA1), part(TEXT1, SHA1)).replace(BOUNDARY.encode(), b"x")),
        (
            "no delimiter before the statements",
            lambda: (
                f"Content-Type: application/json\r\n\r\n{json.dumps(statement(SHA1))}\r\n{part(TEXT1, SHA1)}"
                f"--{BOUNDARY}--\r\n".encode()
            ),
        ),
        ("first part not JSON", lambda: body(statement(SHA1), part(TEXT1, SHA1), first_type="text/plain")),
        ("missing hash header", lambda: body(statement(SHA1), part(TEXT1, None))),
        ("hash that is not the content's", lambda: body(statement(SHA2), part(TEXT1, SHA2))),
        ("base64 transfer encoding", lambda: body(statement(SHA1), part(TEXT1, SHA1, encoding="base64"))),
        ("no transfer encoding in 1.0.3", lambda: body(statement(SHA1), part(TEXT1, SHA1, encoding=None))),
        ("no closing boundary", lambda: body(statement(SHA1), part(TEXT1, SHA1), close=False)),
    ],
)
def test_malformed_bodies_are_rejected(name: str, make) -> None:
    with pytest.raises(MultipartError):
        parse_multipart(CT, make())


def test_2_0_allows_an_absent_transfer_encoding() -> None:
    _, parts = parse_multipart(CT, body(statement(SHA1), part(TEXT1, SHA1, encoding=None)), version="2.0.0")
    assert SHA1 in parts


def test_attachments_and_parts_must_pair() -> None:
    parts = {SHA1: Part("text/plain", TEXT1), SHA2: Part("text/plain", TEXT2)}
    with pytest.raises(MultipartError, match="no fileUrl"):
        check_attachments([statement(SHA1, SHA2)], {SHA1: parts[SHA1]})
    with pytest.raises(MultipartError, match="no attachment names"):
        check_attachments([statement(SHA1)], parts)
    with pytest.raises(MultipartError, match="no fileUrl"):
        check_attachments([statement(SHA1)], {})  # a JSON body with raw-data attachments
    check_attachments([statement(SHA1, file_url=True)], {})
    check_attachments([statement(SHA1), statement(SHA2)], parts)  # a batch shares the parts
    check_attachments([statement(SHA1), statement(SHA1)], {SHA1: parts[SHA1]})  # one part for a shared hash
    check_attachments([{"attachments": 5}, {"attachments": "abc"}, 7], {})  # validation refuses these, not this


def test_an_answer_reads_back() -> None:
    stmts = json.dumps([statement(SHA1, SHA2)]).encode()
    parts = [
        (SHA1, Part("text/plain", TEXT1)),
        (SHA2, Part("text/plain; charset=utf-8", TEXT2)),
        (SHA1, Part("x", b"")),
    ]
    payload, content_type = build_multipart(stmts, parts)
    assert content_type.startswith("multipart/mixed; boundary=")
    raw, found = parse_multipart(content_type, payload)
    assert raw == stmts
    assert found == {SHA1: Part("text/plain", TEXT1), SHA2: Part("text/plain; charset=utf-8", TEXT2)}
