"""Browser users' JWTs: verified against the JWKS that their tenant configured.

The token names its tenant in a claim (default `org_id`); the tenant whose JWT settings expect that
value is the only one whose keys can verify it. Signature, `iss`, `aud` and `exp` are all required.
Only asymmetric algorithms are accepted, so a public JWKS can never be used as an HMAC secret.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import jwt

from appliance.errors import Unauthorized
from appliance.tenants import JwtConfig, Tenant

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts."""
    return token.count(".") == 2


class JwksCache:
    """JWKS documents by source, re-read after `ttl` seconds or when an unknown `kid` shows up."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._lock = threading.Lock()

    def keyset(self, config: JwtConfig, now: float, *, refresh: bool = False) -> jwt.PyJWKSet:
        """The key set for a tenant's JWT settings."""
        source = config.jwks_url or config.jwks_file or ""
        with self._lock:
            cached = self._entries.get(source)
        if cached and not refresh and now - cached[0] < self.ttl:
            return cached[1]
        if refresh and cached and now - cached[0] < 30:
            return cached[1]  # do not let forged kids make us hammer the identity provider
        keyset = jwt.PyJWKSet.from_dict(_load_jwks(config))
        with self._lock:
            self._entries[source] = (now, keyset)
        return keyset


def _load_jwks(config: JwtConfig) -> dict[str, Any]:
    try:
        if config.jwks_url:
            response = httpx.get(config.jwks_url, timeout=5.0)
            response.raise_for_status()
            return dict(response.json())
        return dict(json.loads(Path(config.jwks_file or "").read_text("utf-8")))
    except (OSError, ValueError, httpx.HTTPError) as exc:
        raise Unauthorized("the identity provider's keys could not be loaded") from exc


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized("malformed token") from exc


def tenant_for_claims(tenants: list[Tenant], claims: dict[str, Any]) -> Tenant:
    """The one tenant whose JWT settings expect this token's tenant claim."""
    for tenant in tenants:
        cfg = tenant.jwt
        if cfg is not None and claims.get(cfg.claim) == (cfg.claim_value or tenant.id):
            return tenant
    raise Unauthorized("the token names no tenant of this appliance")


def verify_jwt(token: str, tenant: Tenant, cache: JwksCache, now: float) -> dict[str, Any]:
    """Verify signature, issuer, audience and expiry against the tenant's keys; return the claims."""
    cfg = tenant.jwt
    if cfg is None:
        raise Unauthorized("this tenant does not accept tokens")
    header, _ = _unverified(token)
    kid = header.get("kid")
    keyset = cache.keyset(cfg, now)
    key = _find_key(keyset, kid) or _find_key(cache.keyset(cfg, now, refresh=True), kid)
    if key is None:
        raise Unauthorized("the token was signed with an unknown key")
    try:
        return dict(
            jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=cfg.audience,
                issuer=cfg.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc


def _find_key(keyset: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keyset.keys[0] if len(keyset.keys) == 1 else None
    return next((k for k in keyset.keys if k.key_id == kid), None)


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims before verification, only to find which tenant's keys must verify them."""
    return _unverified(token)[1]
