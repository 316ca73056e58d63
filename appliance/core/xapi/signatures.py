"""Signed statements (xAPI 1.0.3 §2.6, 2.0 §4.2.8): a JWS over the statement, sent as an attachment.

A signature is an attachment with usageType `http://adlnet.gov/expapi/attachments/signature`, contentType
`application/octet-stream`, whose raw data (a part of the multipart body) is a JWS in compact
serialization, `header.payload.signature`, with algorithm RS256, RS384 or RS512. Its payload is the
statement as it was before the signature was attached. The LRS rejects (400) a malformed signature:
no data part, another content type, a JWS that is not three base64url segments, another algorithm, a
payload that is not a JSON object, or a payload that is not the statement it came with. When the
JWS header carries an X.509 certificate (`x5c`), the signature is also verified against its key; a
JWS without one cannot be verified (the specification lets the LRS store it as sent).

Pure functions: the statements handler calls `check_signatures` after parsing the multipart body
(appliance.core.xapi.multipart) and before normalising the statements.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from appliance.core.xapi.multipart import Part, media_type

SIGNATURE_USAGE = "http://adlnet.gov/expapi/attachments/signature"
SIGNATURE_CONTENT_TYPE = "application/octet-stream"
ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}
# Properties the LRS sets or may set, never compared with the payload (Statement Comparison
# Requirements), and the attachments: the payload precedes the signature's own attachment.
IGNORED = frozenset({"authority", "stored", "timestamp", "version", "attachments"})
_SECONDS = re.compile(r"(\d+)(?:\.(\d*))?S$")


def _hundredths(duration: str) -> str:
    """A duration as compared: its seconds to exactly two decimals, truncated (PT1S, PT1.0S and
    PT1.009S compare equal)."""
    return _SECONDS.sub(lambda m: f"{m.group(1)}.{((m.group(2) or '') + '00')[:2]}S", duration)


class SignatureError(ValueError):
    """A signed statement the specification rejects (400 Bad Request)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _b64url(segment: str) -> bytes:
    if not segment or any(c in segment for c in "=+/ \t\r\n"):
        raise SignatureError("the signature is not a JWS compact serialization (base64url segments)")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise SignatureError("the signature is not a JWS compact serialization (base64url segments)") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignatureError(f"the JWS {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise SignatureError(f"the JWS {what} is not a JSON object")
    return value


def decode_jws(token: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, payload, signing input, signature) of a compact JWS, or SignatureError."""
    try:
        text = token.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SignatureError("the signature is not a JWS compact serialization") from None
    segments = text.split(".")
    if len(segments) != 3:
        raise SignatureError("the signature is not a JWS compact serialization (three segments)")
    header = _json_object(_b64url(segments[0]), "header")
    payload = _json_object(_b64url(segments[1]), "payload")
    signature = _b64url(segments[2])
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise SignatureError(f"the JWS algorithm must be RS256, RS384 or RS512, not {alg!r}")
    return header, payload, f"{segments[0]}.{segments[1]}".encode("ascii"), signature


def _verify_x5c(header: Mapping[str, Any], signing_input: bytes, signature: bytes) -> None:
    """Verify the signature against the key of the header's first certificate, when it has one."""
    chain = header.get("x5c")
    if chain is None:
        return
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise SignatureError("the JWS header's x5c is not a list of base64 certificates")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (binascii.Error, ValueError):
        raise SignatureError("the JWS header's x5c certificate cannot be read") from None
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("the JWS header's x5c certificate has no RSA key")
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), ALGORITHMS[header["alg"]]())
    except InvalidSignature:
        raise SignatureError("the JWS signature does not verify against its x5c certificate") from None


def _comparable(value: Any, top: bool = False) -> Any:
    """The value as statements are compared: the ignored top-level properties dropped, the UUIDs of
    `id` and `registration` lower-cased (UUIDs compare case-insensitively), and a result's duration
    cut to the hundredth of a second (xAPI 2.0 §4.2.7: finer precision is no part of a comparison)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if top and key in IGNORED:
                continue
            if key in ("id", "registration") and isinstance(item, str) and len(item) == 36:
                out[key] = item.lower()
            elif key == "duration" and isinstance(item, str):
                out[key] = _hundredths(item)
            else:
                out[key] = _comparable(item)
        return out
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def matches_statement(payload: Mapping[str, Any], statement: Mapping[str, Any]) -> bool:
    """Whether a JWS payload is the statement it was sent with (an id only the statement has, as an
    LRS or a client adds after signing, is not a difference)."""
    left, right = _comparable(payload, top=True), _comparable(statement, top=True)
    if "id" not in left:
        right.pop("id", None)
    return left == right


def signature_attachments(statement: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statement's attachments with the signature usageType."""
    attachments = statement.get("attachments") if isinstance(statement, Mapping) else None
    return [
        a
        for a in (attachments if isinstance(attachments, list) else ())
        if isinstance(a, Mapping) and a.get("usageType") == SIGNATURE_USAGE
    ]


def check_statement_signature(statement: Mapping[str, Any], parts: Mapping[str, Part]) -> None:
    """Check one statement's signature attachments (none: nothing to check), or SignatureError."""
    for attachment in signature_attachments(statement):
        if media_type(str(attachment.get("contentType", ""))) != SIGNATURE_CONTENT_TYPE:
            raise SignatureError(f"a signature attachment's contentType must be {SIGNATURE_CONTENT_TYPE}")
        part = parts.get(str(attachment.get("sha2", "")).lower())
        if part is None:
            raise SignatureError("a signature attachment needs its JWS as a part of the multipart body")
        header, payload, signing_input, signature = decode_jws(part.content)
        _verify_x5c(header, signing_input, signature)
        if not matches_statement(payload, statement):
            raise SignatureError("the JWS payload is not the statement it signs")


def check_signatures(statements: Iterable[Mapping[str, Any]], parts: Mapping[str, Part]) -> None:
    """Check the signatures of a batch of statements as received (before normalisation)."""
    for statement in statements:
        check_statement_signature(statement, parts)
