"""Identifiers and secrets: prefixed opaque ids and API key material."""

from __future__ import annotations

import hashlib
import random
import secrets

PREFIXES = ("ten", "pkg", "ses", "whk", "dlv", "key", "job", "evt", "req", "lrs", "fwd", "fdl", "ltr", "ltl", "dsp")


def new_id(prefix: str) -> str:
    """Return a new URL-safe id such as `pkg_3k9w…`, 24 random base32 characters after the prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{base32(secrets.token_bytes(15))}"


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # every 10-bit group as two characters


def base32(raw: bytes) -> str:
    """Lower-case RFC 4648 base32 of `raw` (a multiple of 5 bytes, so no padding).

    The same text as `base64.b32encode(raw).decode().lower()` at a fraction of its cost (the stdlib's
    is pure Python).
    """
    if len(raw) % 5:
        raise ValueError("base32 takes a multiple of 5 bytes")
    n = int.from_bytes(raw, "big")
    return "".join([_B32_PAIRS[(n >> shift) & 1023] for shift in range(len(raw) * 8 - 10, -1, -10)])


def new_request_id() -> str:
    """A request id: `req_` and 96 random bits in hex. Request ids need to be unique, not secret, and
    one is made per request, so they come from Python's own generator (seeded from the system's, which
    `new_id` reads at a system call each). Not a counter: that would tell any client how busy the
    server, and so the other tenants, are."""
    return f"req_{_random.getrandbits(96):024x}"


_random = random.Random()


def new_secret(nbytes: int = 32) -> str:
    """Return a URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Hash a high-entropy secret for storage; such secrets need no slow KDF."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
