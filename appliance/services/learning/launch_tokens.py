"""Launch tokens: signed, expiring grants to one session's player, runtime endpoints and files.

A token is `base64url(payload).base64url(HMAC-SHA256(payload))` with payload `{t: tenant id, s:
session id, e: expiry}`. The signing secret lives in the registry's settings and is created on first
use. Verification is constant-time and checks expiry; the session must still exist when used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import apsw

from appliance.errors import Forbidden, NotFound
from appliance.ids import new_secret
from appliance.instance import Instance
from appliance.services.tenancy.tenants import tenant_status
from appliance.storage.sqlite.connection import one

SETTING_NAME = "launch_token_secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_secret(inst: Instance) -> bytes:
    """The registry's token secret, created once (the first writer wins)."""

    def get_or_create(conn: apsw.Connection) -> str:
        row = one(conn, "SELECT value FROM settings WHERE key = ?", (SETTING_NAME,))
        if row:
            return str(row["value"])
        value = new_secret(32)
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (SETTING_NAME, value))
        return value

    cached = getattr(inst, "_launch_secret", None)
    if cached is None:
        cached = inst.registry.write_sync(get_or_create).encode()
        inst._launch_secret = cached  # type: ignore[attr-defined]
    return cached


def issue(secret: bytes, tenant_id: str, session_id: str, expires_at: float) -> str:
    """A token for one session, valid until `expires_at`."""
    payload = _b64(json.dumps({"t": tenant_id, "s": session_id, "e": int(expires_at)}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


VERIFIED_CACHE_SIZE = 10_000
_verified: dict[tuple[bytes, str], tuple[str, str, float]] = {}


def verify(secret: bytes, token: str, now: float) -> tuple[str, str]:
    """(tenant id, session id) of a valid token; a forged, malformed or expired one is NotFound.

    NotFound rather than Unauthorized: a bad token must not tell anything about what exists. A token
    whose signature checked out is remembered (a player sends the same one with every commit); its
    expiry is still checked on every use.
    """
    known = _verified.get((secret, token))
    if known is None:
        known = _verify_signed(secret, token)
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            _verified.clear()
        _verified[(secret, token)] = known
    tenant_id, session_id, expires = known
    if expires < now:
        raise NotFound("this launch link has expired; ask for a new one", {"expired": True})
    return tenant_id, session_id


def _verify_signed(secret: bytes, token: str) -> tuple[str, str, float]:
    """(tenant id, session id, expiry) of a token signed with `secret` (constant-time check), or NotFound."""
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature):
        raise NotFound("no such launch")
    try:
        data = json.loads(_unb64(payload))
        tenant_id, session_id, expires = str(data["t"]), str(data["s"]), float(data["e"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NotFound("no such launch") from exc
    return tenant_id, session_id, expires


def open_launch(inst: Instance, token: str) -> tuple[str, str, int]:
    """(tenant id, session id, session ttl) for a valid token of an active tenant.

    Every learner route starts here. An unknown tenant is NotFound like a bad token; a suspended one is
    Forbidden. The tenant's status is cached for a few seconds (`tenants.tenant_status`).
    """
    tenant_id, session_id = verify(signing_secret(inst), token, inst.clock.now())
    status, ttl = tenant_status(inst, tenant_id)
    if status is None:
        raise NotFound("no such launch")
    if status != "active":
        raise Forbidden("this organisation's account is suspended")
    return tenant_id, session_id, ttl
