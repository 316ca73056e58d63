"""Who is calling: resolves request credentials to exactly one tenant, without any HTTP types.

API keys (`Authorization: Bearer sak_…` or `X-API-Key`) and browser users' JWTs (`Authorization: Bearer
<jwt>`) both end in a `Principal` naming one tenant; everything the request does afterwards goes
through that tenant's database only.
"""

from __future__ import annotations

import msgspec

from appliance.errors import Forbidden, Unauthorized
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import authenticate_key, note_key_use
from appliance.services.tenancy.jwtauth import (
    JwksCache,
    looks_like_jwt,
    tenant_for_claims,
    unverified_claims,
    verify_jwt,
)
from appliance.services.tenancy.roles import DEFAULT_JWT_ROLE, LEARNER, role_from_claims
from appliance.services.tenancy.tenants import Tenant, list_tenants


class Principal(msgspec.Struct):
    """The authenticated caller: a tenant, how it proved who it is, and its role (appliance.services.tenancy.roles)."""

    tenant: Tenant
    kind: str  # "api_key" | "jwt"
    key_id: str | None = None
    subject: str | None = None
    role: str = LEARNER  # the least power unless `authenticate` finds more


def credentials(authorization: str | None, api_key: str | None) -> str:
    """The presented secret from the two accepted headers, or Unauthorized."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use 'Authorization: Bearer <key or token>'")
        return value.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    raise Unauthorized("missing credentials: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


def authenticate(inst: Instance, jwks: JwksCache, authorization: str | None, api_key: str | None) -> Principal:
    """Resolve the request's credentials to a Principal; suspended tenants are Forbidden."""
    secret = credentials(authorization, api_key)
    if looks_like_jwt(secret):
        claims = unverified_claims(secret)
        tenant = tenant_for_claims([t for t in list_tenants(inst) if t.jwt is not None], claims)
        verified = verify_jwt(secret, tenant, jwks, inst.clock.now(), inst.config.jwt_max_lifetime_seconds)
        principal = Principal(
            tenant=tenant, kind="jwt", subject=str(verified.get("sub") or ""), role=_jwt_role(tenant, verified)
        )
    else:
        tenant, key = inst.registry.read_sync(lambda c: authenticate_key(c, secret))
        principal = Principal(tenant=tenant, kind="api_key", key_id=key.id, role=key.role)
        note_key_use(inst, key)
    if not principal.tenant.active:
        raise Forbidden("this tenant is suspended", {"tenant_id": principal.tenant.id})
    return principal


def _jwt_role(tenant: Tenant, claims: dict[str, object]) -> str:
    """The role a verified token grants under its tenant's JWT settings."""
    cfg = tenant.jwt
    if cfg is None:
        return DEFAULT_JWT_ROLE
    return role_from_claims(claims, cfg.role_claim, cfg.role_prefix, cfg.default_role)
