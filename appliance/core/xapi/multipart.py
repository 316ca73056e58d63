"""xAPI's `multipart/mixed` bodies: statements with their attachments' raw data (xAPI 1.0.3 §4.1.11,
2.0 §4.1.11 and §2.4.11), parsed for PUT/POST /statements and built for GET with `attachments=true`.

The first part is the statement(s) as `application/json`; each later part is one attachment's data,
named by its `X-Experience-API-Hash` (the SHA-256 `sha2` of the attachment) and sent with
`Content-Transfer-Encoding: binary`. The specification's errors are all 400s: a missing boundary, a
first part that is not JSON, a part without its hash header or whose content does not hash to it, a
part no attachment names, an attachment with neither a part nor a `fileUrl`.

Pure functions over bytes: the statements handler (appliance.faces.api.xapi.statements) parses the body
here, validates the statements, then calls `check_attachments` to pair attachments and parts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MULTIPART_MIXED = "multipart/mixed"
JSON = "application/json"
HASH_HEADER = "x-experience-api-hash"
TRANSFER_HEADER = "content-transfer-encoding"
_BOUNDARY_PARAM = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class MultipartError(ValueError):
    """A multipart body the specification rejects (always 400 Bad Request)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Part:
    """One attachment's raw data and the media type its part was sent with."""

    content_type: str
    content: bytes

    @property
    def sha2(self) -> str:
        """The SHA-256 of the content in lower-case hex, as attachments' `sha2`."""
        return hashlib.sha256(self.content).hexdigest()


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type value without its parameters, lower-cased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def boundary_of(content_type: str | None) -> str:
    """The `boundary` parameter of a `multipart/mixed` Content-Type, or MultipartError."""
    if media_type(content_type) != MULTIPART_MIXED:
        raise MultipartError(f"the Content-Type must be {MULTIPART_MIXED}")
    match = _BOUNDARY_PARAM.search((content_type or "").split(";", 1)[1] if ";" in (content_type or "") else "")
    boundary = (match.group(1) or match.group(2)) if match else ""
    if not boundary or len(boundary) > 200:
        raise MultipartError("the multipart/mixed Content-Type has no boundary parameter")
    return boundary


def _split_parts(boundary: str, body: bytes) -> list[bytes]:
    """The parts between the delimiters (RFC 2046 §5.1.1): the preamble and the epilogue dropped."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode("latin-1")) + rb"(--)?[ \t]*(?=\r?\n|$)")
    pieces: list[bytes] = []
    start: int | None = None
    for match in delimiter.finditer(body):
        if start is not None:
            pieces.append(body[start : match.start()])
        if match.group(1):  # the close delimiter
            if start is None:
                break
            return pieces
        end = match.end()
        start = end + (2 if body[end : end + 2] == b"\r\n" else 1)
    if start is None:
        raise MultipartError("the body has no part delimited by the Content-Type's boundary")
    raise MultipartError("the multipart body has no closing boundary")


def _parse_part(raw: bytes) -> tuple[dict[str, str], bytes]:
    """(headers with lower-cased names, content) of one part; headers end at the first empty line."""
    if raw.startswith(b"\r\n"):
        return {}, raw[2:]
    if raw.startswith(b"\n"):
        return {}, raw[1:]
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        raise MultipartError("a multipart part has no empty line after its headers")
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", raw[: match.start()]):
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MultipartError("a multipart part has a malformed header line")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers, raw[match.end() :]


def parse_multipart(content_type: str | None, body: bytes, version: str = "1.0.3") -> tuple[bytes, dict[str, Part]]:
    """(the statements' JSON bytes, {sha2: Part}) of a `multipart/mixed` body, or MultipartError.

    Each attachment part must carry `X-Experience-API-Hash` equal to the SHA-256 of its content and
    `Content-Transfer-Encoding: binary` (required in 1.0.3; in 2.0 it may be absent, never another value).
    """
    parts = _split_parts(boundary_of(content_type), body)
    if not parts:
        raise MultipartError("the multipart body has no part")
    first_headers, statements = _parse_part(parts[0])
    if media_type(first_headers.get("content-type")) != JSON:
        raise MultipartError(f"the first part of a multipart/mixed body must be {JSON} (the statements)")
    found: dict[str, Part] = {}
    for raw in parts[1:]:
        headers, content = _parse_part(raw)
        sha2 = headers.get(HASH_HEADER, "").strip().lower()
        if not sha2:
            raise MultipartError("every attachment part needs an X-Experience-API-Hash header")
        encoding = headers.get(TRANSFER_HEADER)
        if encoding is None and version.startswith("1."):
            raise MultipartError("every attachment part needs Content-Transfer-Encoding: binary")
        if encoding is not None and encoding.strip().lower() != "binary":
            raise MultipartError(f"Content-Transfer-Encoding must be binary, not {encoding!r}")
        if "content-type" not in headers:
            raise MultipartError("every attachment part needs a Content-Type header")
        part = Part(headers["content-type"], content)
        if part.sha2 != sha2:
            raise MultipartError(f"the part with X-Experience-API-Hash {sha2} does not hash to it")
        found[sha2] = part
    return statements, found


def _attachments(statements: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for statement in statements:
        attachments = statement.get("attachments") if isinstance(statement, Mapping) else None
        for attachment in attachments if isinstance(attachments, list) else ():
            if isinstance(attachment, Mapping):
                yield attachment


def check_attachments(statements: Iterable[Mapping[str, Any]], parts: Mapping[str, Part]) -> None:
    """Pair the statements' attachments with the parts, or MultipartError.

    An attachment without `fileUrl` needs a part with its `sha2`; every part must be named by some
    attachment's `sha2` (no excess parts). Call it on JSON bodies too, with no parts: an attachment
    that has no `fileUrl` then cannot be stored.
    """
    named: set[str] = set()
    for attachment in _attachments(statements):
        sha2 = str(attachment.get("sha2", "")).lower()
        named.add(sha2)
        if "fileUrl" not in attachment and sha2 not in parts:
            raise MultipartError(f"the attachment with sha2 {sha2} has no fileUrl and no part in the body")
    excess = sorted(set(parts) - named)
    if excess:
        raise MultipartError(f"the body has parts no attachment names: {', '.join(excess)}")


def build_multipart(
    statements_json: bytes, parts: Iterable[tuple[str, Part]], boundary: str | None = None
) -> tuple[bytes, str]:
    """(body, Content-Type) of a `multipart/mixed` answer: the statements, then each attachment once.

    For GET /statements with `attachments=true`; `parts` are (sha2, Part) of the attachments the
    statements name and the LRS holds.
    """
    boundary = boundary or "xapi-" + secrets.token_hex(16)
    dash = b"--" + boundary.encode("ascii")
    chunks = [dash, b"\r\nContent-Type: application/json\r\n\r\n", statements_json, b"\r\n"]
    seen: set[str] = set()
    for sha2, part in parts:
        if sha2 in seen:
            continue
        seen.add(sha2)
        chunks += [
            dash,
            b"\r\nContent-Type: ",
            part.content_type.encode("latin-1"),
            b"\r\nContent-Transfer-Encoding: binary\r\nX-Experience-API-Hash: ",
            sha2.encode("ascii"),
            b"\r\n\r\n",
            part.content,
            b"\r\n",
        ]
    chunks += [dash, b"--\r\n"]
    return b"".join(chunks), f'{MULTIPART_MIXED}; boundary="{boundary}"'


def is_sha256_hex(value: object) -> bool:
    """Whether a value is a lower- or upper-case hex SHA-256, as attachments' `sha2`."""
    return isinstance(value, str) and bool(_SHA256_HEX.match(value.lower()))
