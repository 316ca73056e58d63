"""Identifiers and secrets: prefixed opaque ids and API key material."""

from __future__ import annotations

import base64
import hashlib
import secrets

PREFIXES = ("ten", "pkg", "ses", "whk", "dlv", "key", "job", "evt", "req")


def new_id(prefix: str) -> str:
    """Return a new URL-safe id such as `pkg_3k9w…`, 24 random base32 characters after the prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    body = base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    return f"{prefix}_{body}"


def new_secret(nbytes: int = 32) -> str:
    """Return a URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Hash a high-entropy secret for storage; such secrets need no slow KDF."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
