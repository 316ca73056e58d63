"""The tool's own signing keys, per tenant: what signs deep-linking responses and AGS client assertions.

The public half of each key is published as a JWKS at `/lti/{tenant}/jwks`, the URL a platform is
given when the tool is registered. Rotation makes a new key the signing key at once and keeps the old
one in the JWKS for a grace period (default a week): a platform that cached the JWKS, or a message
signed just before the rotation, still verifies. The first key is made on first use.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import apsw
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from appliance.clock import rfc3339
from appliance.errors import ValidationFailed
from appliance.instance import Instance
from appliance.storage.sqlite.connection import one, rows

ALGORITHM = "RS256"
KEY_BITS = 2048
DEFAULT_GRACE_SECONDS = 7 * 86_400.0


@dataclass(frozen=True)
class ToolKey:
    """A signing key: `kid`, the PEM of its private half, and the public JWK."""

    kid: str
    private_pem: str
    public_jwk: dict[str, Any]
    created_at: float
    retired_at: float | None
    expires_at: float | None

    def json(self) -> dict[str, Any]:
        """The API's key object (never the private half)."""
        return {
            "kid": self.kid,
            "status": "active" if self.retired_at is None else "retired",
            "created_at": rfc3339(self.created_at),
            "retired_at": rfc3339(self.retired_at),
            "published_until": rfc3339(self.expires_at),
        }


def _from_row(row: dict[str, Any]) -> ToolKey:
    return ToolKey(
        row["kid"],
        row["private_pem"],
        json.loads(row["public_jwk"]),
        row["created_at"],
        row["retired_at"],
        row["expires_at"],
    )


def _new_key(conn: apsw.Connection, now: float) -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    kid = secrets.token_urlsafe(12)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": kid, "alg": ALGORITHM, "use": "sig"}
    conn.execute(
        "INSERT INTO lti_tool_keys (kid, private_pem, public_jwk, created_at) VALUES (?, ?, ?, ?)",
        (kid, pem, json.dumps(jwk), now),
    )
    row = one(conn, "SELECT * FROM lti_tool_keys WHERE kid = ?", (kid,))
    assert row is not None
    return row


def _active(conn: apsw.Connection) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM lti_tool_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1")


def signing_key(inst: Instance, tenant_id: str) -> ToolKey:
    """The tenant's current signing key, made on first use."""
    db = inst.tenant_db(tenant_id)
    found = db.read_sync(_active)
    if found is None:
        found = db.write_sync(lambda c: _active(c) or _new_key(c, inst.clock.now()))
    return _from_row(found)


def rotate(inst: Instance, tenant_id: str, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> ToolKey:
    """A new signing key; the previous one stays published for `grace_seconds`, then drops out."""
    if grace_seconds < 0:
        raise ValidationFailed("grace must not be negative", {"errors": [{"field": "grace_seconds"}]})
    now = inst.clock.now()

    def turn(conn: apsw.Connection) -> dict[str, Any]:
        conn.execute(
            "UPDATE lti_tool_keys SET retired_at = ?, expires_at = ? WHERE retired_at IS NULL",
            (now, now + grace_seconds),
        )
        conn.execute("DELETE FROM lti_tool_keys WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        return _new_key(conn, now)

    return _from_row(inst.tenant_db(tenant_id).write_sync(turn))


def published(inst: Instance, tenant_id: str) -> list[ToolKey]:
    """Keys in the JWKS: the active one, and retired ones inside their grace period; newest first."""
    signing_key(inst, tenant_id)  # a JWKS is never empty
    now = inst.clock.now()
    found = inst.tenant_db(tenant_id).read_sync(
        lambda c: rows(
            c,
            "SELECT * FROM lti_tool_keys WHERE retired_at IS NULL OR expires_at > ? "
            "ORDER BY retired_at IS NOT NULL, created_at DESC, retired_at DESC",
            (now,),
        )
    )
    return [_from_row(r) for r in found]


def jwks(inst: Instance, tenant_id: str) -> dict[str, Any]:
    """The tool's JWKS document for this tenant."""
    return {"keys": [k.public_jwk for k in published(inst, tenant_id)]}


def sign(inst: Instance, tenant_id: str, claims: dict[str, Any]) -> str:
    """A compact JWS of `claims`, RS256 with the current key, its `kid` in the header."""
    key = signing_key(inst, tenant_id)
    return jwt.encode(claims, key.private_pem, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})
