"""Signed statements (appliance.core.xapi.signatures): real RS256/384/512 JWSs made with PyJWT, the
suite's malformed cases, payloads that differ from the statement, and x5c certificates."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from appliance.core.xapi.multipart import Part
from appliance.core.xapi.signatures import SIGNATURE_USAGE, SignatureError, check_signatures, decode_jws

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def base_statement() -> dict[str, Any]:
    return {
        "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee",
        "actor": {"objectType": "Agent", "mbox": "mailto:a@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted", "display": {"en-US": "attempted"}},
        "object": {"id": "http://example.com/activity"},
        "timestamp": "2026-01-01T00:00:00Z",
    }


def signed(payload: Any, token: bytes | None = None, content_type: str = "application/octet-stream", **sign: Any):
    """(statement with its signature attachment, parts), the payload signed unless `token` is given."""
    if token is None:
        token = jwt.encode(payload, PEM, algorithm=sign.pop("algorithm", "RS256"), **sign).encode()
    sha = hashlib.sha256(token).hexdigest()
    stmt = dict(base_statement())
    stmt["attachments"] = [
        {
            "usageType": SIGNATURE_USAGE,
            "display": {"en-US": "Signed"},
            "contentType": content_type,
            "length": len(token),
            "sha2": sha,
        }
    ]
    return stmt, {sha: Part(content_type, token)}


def certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_rs_algorithms_are_accepted(algorithm: str) -> None:
    stmt, parts = signed(base_statement(), algorithm=algorithm)
    check_signatures([stmt], parts)


def test_lrs_set_properties_and_a_later_id_are_not_differences() -> None:
    payload = base_statement()
    del payload["id"], payload["timestamp"]
    stmt, parts = signed(payload)
    stmt["stored"] = "2026-01-02T00:00:00Z"
    stmt["authority"] = {"mbox": "mailto:lrs@example.com"}
    stmt["version"] = "1.0.3"
    stmt["id"] = stmt["id"].upper()
    check_signatures([stmt], parts)


def test_durations_compare_to_the_hundredth() -> None:
    """The 2.0 suite signs PT…0.12S and sends PT…0.1237S: the same duration to a comparison."""
    payload = {**base_statement(), "result": {"duration": "P1DT12H36M0.12S"}}
    stmt, parts = signed(payload)
    stmt["result"] = {"duration": "P1DT12H36M0.1237S"}
    check_signatures([stmt], parts)
    stmt["result"] = {"duration": "P1DT12H36M0.13S"}
    with pytest.raises(SignatureError, match="not the statement"):
        check_signatures([stmt], parts)
    stmt, parts = signed({**base_statement(), "result": {"duration": "PT1S"}})
    for same in ("PT1.0S", "PT1.009S", "PT1S"):
        stmt["result"] = {"duration": same}
        check_signatures([stmt], parts)
    stmt["result"] = {"duration": "PT10S"}
    with pytest.raises(SignatureError):
        check_signatures([stmt], parts)


def test_another_algorithm_is_rejected() -> None:
    token = jwt.encode(base_statement(), "a shared secret of at least thirty-two bytes", algorithm="HS256").encode()
    stmt, parts = signed(None, token=token)
    with pytest.raises(SignatureError, match="RS256"):
        check_signatures([stmt], parts)


def test_the_suites_broken_json_payload_is_rejected() -> None:
    """The suite signs `JSON.stringify(statement)` with its first quote made an apostrophe."""
    text = json.dumps(base_statement()).replace('"', "'", 1)
    header = base64.urlsafe_b64encode(b'{"alg":"RS256"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(text.encode()).rstrip(b"=")
    token = header + b"." + body + b"." + base64.urlsafe_b64encode(b"sig").rstrip(b"=")
    stmt, parts = signed(None, token=token)
    with pytest.raises(SignatureError, match="not valid JSON"):
        check_signatures([stmt], parts)


@pytest.mark.parametrize("token", [b"not a jws", b"a.b", b"a.b.c.d", b"e30.e30.", b"\xff\xfe.x.y", b"e30=.e30.eA"])
def test_malformed_compact_serializations(token: bytes) -> None:
    with pytest.raises(SignatureError):
        decode_jws(token)


def test_a_payload_that_is_not_the_statement_is_rejected() -> None:
    payload = base_statement()
    payload["verb"] = {"id": "http://adlnet.gov/expapi/verbs/passed"}
    stmt, parts = signed(payload)
    with pytest.raises(SignatureError, match="not the statement"):
        check_signatures([stmt], parts)
    other = base_statement()
    other["id"] = "00000000-0000-4000-8000-000000000000"
    stmt, parts = signed(other)
    with pytest.raises(SignatureError, match="not the statement"):
        check_signatures([stmt], parts)


def test_the_content_type_must_be_octet_stream() -> None:
    stmt, parts = signed(base_statement(), content_type="text/plain; charset=ascii")
    with pytest.raises(SignatureError, match="octet-stream"):
        check_signatures([stmt], parts)


def test_a_signature_needs_its_part() -> None:
    stmt, _ = signed(base_statement())
    with pytest.raises(SignatureError, match="part"):
        check_signatures([stmt], {})


def test_unsigned_statements_pass() -> None:
    check_signatures([base_statement(), {**base_statement(), "attachments": []}], {})
    # malformed statements are validation's to refuse: nothing here raises on them
    check_signatures([{**base_statement(), "attachments": 5}, {**base_statement(), "attachments": "x"}, 7], {})


def test_an_x5c_certificate_verifies_the_signature() -> None:
    stmt, parts = signed(base_statement(), headers={"x5c": [certificate(KEY)]})
    check_signatures([stmt], parts)
    stmt, parts = signed(base_statement(), headers={"x5c": [certificate(OTHER_KEY)]})
    with pytest.raises(SignatureError, match="does not verify"):
        check_signatures([stmt], parts)
    stmt, parts = signed(base_statement(), headers={"x5c": ["bm90IGEgY2VydA=="]})
    with pytest.raises(SignatureError, match="x5c"):
        check_signatures([stmt], parts)
