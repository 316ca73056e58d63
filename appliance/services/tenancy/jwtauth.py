"""Browser users' JWTs: verified against the JWKS that their tenant configured.

The token names its tenant in a claim (default `org_id`); the tenant whose JWT settings expect that
value is the only one whose keys can verify it. Signature, `iss`, `aud` and `exp` are all required,
and a token may not live longer than `jwt_max_lifetime_seconds` (a leaked long-lived token is a
standing credential). Only asymmetric algorithms are accepted, so a public JWKS can never be used as
an HMAC secret. A token naming no tenant and one signed by a key its tenant does not have get the
same answer, so the 401 does not tell which tenant claim values exist. JWKS URLs are fetched through
the outbound guard (appliance.services.delivery.outbound): an internal address only with the administrator's allow-list.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import jwt

from appliance.errors import Unauthorized
from appliance.services.delivery import outbound
from appliance.services.tenancy.tenants import JwtConfig, Tenant

log = logging.getLogger("appliance.jwtauth")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
DEFAULT_MAX_LIFETIME_SECONDS = 86_400.0
JWKS_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 1024 * 1024
RETRY_AFTER_FAILURE_SECONDS = 30.0  # a JWKS that failed to load is not tried again sooner
UNTRUSTED = "the token is not from an identity provider this appliance trusts"
KEYS_UNAVAILABLE = "the identity provider's keys could not be loaded"


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts."""
    return token.count(".") == 2


class JwksCache:
    """JWKS documents by source, re-read after `ttl` seconds or when an unknown `kid` shows up.

    A source that failed to load is not tried again for `RETRY_AFTER_FAILURE_SECONDS`: otherwise every
    token presented while the identity provider is down (or refused by the outbound guard) would make
    the server fetch again and wait up to the fetch timeout, which anyone could use to tie it up.
    """

    def __init__(self, ttl: float, policy: outbound.Policy | None = None) -> None:
        self.ttl = ttl
        self.policy = policy or outbound.Policy()  # what a JWKS URL may point at
        self._entries: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._failed: dict[str, float] = {}  # source -> when it last failed to load
        self._lock = threading.Lock()

    def keyset(self, config: JwtConfig, now: float, *, refresh: bool = False) -> jwt.PyJWKSet:
        """The key set for a tenant's JWT settings."""
        source = config.jwks_url or config.jwks_file or ""
        with self._lock:
            cached = self._entries.get(source)
            failed_at = self._failed.get(source)
        if cached and not refresh and now - cached[0] < self.ttl:
            return cached[1]
        if refresh and cached and now - cached[0] < 30:
            return cached[1]  # do not let forged kids make us hammer the identity provider
        if failed_at is not None and 0 <= now - failed_at < RETRY_AFTER_FAILURE_SECONDS:
            raise Unauthorized(KEYS_UNAVAILABLE)
        try:
            keyset = self._load(config, source)
        except Unauthorized:
            with self._lock:
                self._failed[source] = now
            raise
        with self._lock:
            self._failed.pop(source, None)
            self._entries[source] = (now, keyset)
        return keyset

    def _load(self, config: JwtConfig, source: str) -> jwt.PyJWKSet:
        try:
            return jwt.PyJWKSet.from_dict(_load_jwks(config, self.policy))
        except jwt.PyJWKSetError as exc:  # no keys, or none this library can use: no token can verify
            log.warning("the JWKS at %s holds no usable key: %s", source, exc)
            raise Unauthorized(KEYS_UNAVAILABLE) from exc


def _load_jwks(config: JwtConfig, policy: outbound.Policy) -> dict[str, Any]:
    """The JWKS document of a tenant's settings, from its file or (through the guard) its URL."""
    try:
        if config.jwks_url:
            reply = outbound.send(
                "GET",
                config.jwks_url,
                policy=policy,
                timeout=JWKS_TIMEOUT_SECONDS,
                max_body=MAX_JWKS_BYTES,
                headers={"accept": "application/json"},
            )
            if reply.status_code != 200 or reply.truncated:
                raise ValueError(f"HTTP {reply.status_code}" + (" (larger than 1 MiB)" if reply.truncated else ""))
            document = json.loads(reply.body)
        else:
            document = json.loads(Path(config.jwks_file or "").read_text("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document
    except outbound.OutboundError as exc:
        log.warning("the JWKS at %s could not be fetched: %s", config.jwks_url, exc.reason)
        raise Unauthorized(KEYS_UNAVAILABLE) from exc
    except (OSError, ValueError) as exc:
        log.warning("the JWKS at %s could not be loaded: %s", config.jwks_url or config.jwks_file, exc)
        raise Unauthorized(KEYS_UNAVAILABLE) from exc


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
    raise Unauthorized(UNTRUSTED)


def verify_jwt(
    token: str, tenant: Tenant, cache: JwksCache, now: float, max_lifetime: float = DEFAULT_MAX_LIFETIME_SECONDS
) -> dict[str, Any]:
    """Verify signature, issuer, audience, expiry and lifetime against the tenant's keys; return the claims."""
    cfg = tenant.jwt
    if cfg is None:
        raise Unauthorized("this tenant does not accept tokens")
    header, _ = _unverified(token)
    kid = header.get("kid")
    keyset = cache.keyset(cfg, now)
    key = _find_key(keyset, kid) or _find_key(cache.keyset(cfg, now, refresh=True), kid)
    if key is None:
        raise Unauthorized(UNTRUSTED)
    try:
        claims = dict(
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
    _check_lifetime(claims, now, max_lifetime)
    return claims


def _check_lifetime(claims: dict[str, Any], now: float, max_lifetime: float) -> None:
    """Refuse a token meant to live longer than `max_lifetime`: `exp - iat`, or `exp - now` without `iat`.

    `decode` has already checked that `exp` (and `iat`, when present) are numbers.
    """
    start = claims.get("iat", now)
    lifetime = float(claims["exp"]) - float(start)
    if lifetime > max_lifetime:
        raise Unauthorized(
            f"the token's lifetime ({lifetime:.0f} s) is longer than the {max_lifetime:.0f} s this appliance accepts",
            {"max_lifetime_seconds": max_lifetime},
        )


def _find_key(keyset: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return keyset.keys[0] if len(keyset.keys) == 1 else None
    return next((k for k in keyset.keys if k.key_id == kid), None)


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims before verification, only to find which tenant's keys must verify them."""
    return _unverified(token)[1]
