"""Dependencies the controllers declare: the instance, and the authenticated principal.

Authentication is also where each tenant's API rate limit is applied and its requests are counted
(appliance.services.tenancy.ratelimit), where a client address with too many failed attempts is refused, and where the
route's roles are checked (appliance.services.tenancy.roles), so every route that needs a tenant gets all of them in one
place; learner routes (launch tokens) have their own per-session and per-tenant limits instead, applied
by the `learner_rate_limit` guard.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from appliance.errors import ApplianceError, RateLimited, Unauthorized
from appliance.instance import Instance
from appliance.services.learning.launch_tokens import signing_secret, verify
from appliance.services.tenancy.auth import Principal, authenticate
from appliance.services.tenancy.ratelimit import AuthFailureLimiter, LearnerLimits, RateLimiter, RequestCounter
from appliance.services.tenancy.roles import allowed_roles, require_role


def provide_instance(request: Request[Any, Any, Any]) -> Instance:
    """The appliance instance this app was built with."""
    inst: Instance = request.app.state.instance
    return inst


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's IP address (uvicorn takes it from `X-Forwarded-For` only from trusted proxies)."""
    client = connection.client
    return client.host if client is not None else "unknown"


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Authenticate the request (registry reads run off the event loop), apply the tenant's rate limit,
    then check that the caller's role may use the route.

    An address blocked for failed attempts is refused with 429 before its credentials are looked at.
    Every authenticated response carries the `RateLimit-*` headers; over the limit the request is
    refused with 429 RATE_LIMITED and `Retry-After`, and is not counted as a request in the usage. A role
    the route does not admit is 403 FORBIDDEN (counted against the limit like any other request).
    """
    inst: Instance = request.app.state.instance
    authorization, api_key = request.headers.get("authorization"), request.headers.get("x-api-key")
    failures: AuthFailureLimiter | None = getattr(request.app.state, "auth_failures", None)
    address = client_address(request)
    if failures is not None:
        wait = failures.retry_after(address, inst.clock.now())
        if wait is not None:
            raise RateLimited(
                "too many failed authentication attempts from this address; try again later",
                {"retry_after": wait, "scope": "address"},
            )
    try:
        principal = await asyncio.to_thread(authenticate, inst, request.app.state.jwks, authorization, api_key)
    except Unauthorized:
        if failures is not None and (authorization or api_key):  # a credential was tried, and failed
            failures.failed(address, inst.clock.now())
        raise
    state = request.scope.setdefault("state", {})
    state["tenant_id"] = principal.tenant.id
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        now = inst.clock.now()
        decision = limiter.hit(principal.tenant.id, principal.tenant.rate_limit_per_minute, now)
        state.setdefault("extra_headers", {}).update(decision.headers())
        if not decision.allowed:
            raise RateLimited(
                f"rate limit of {decision.limit} requests per minute exceeded",
                {"retry_after": decision.reset_seconds, "limit": decision.limit},
            )
        counter: RequestCounter | None = getattr(request.app.state, "usage_counter", None)
        if counter is not None and counter.add(principal.tenant.id, now):
            await asyncio.to_thread(counter.flush, inst)
    require_role(principal.role, allowed_roles(request.route_handler.opt, request.method))
    return principal


async def learner_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard of the player routes: `learner_requests_per_minute` per session, and
    `tenant_learner_requests_per_minute` for all of a tenant's sessions, apart from the tenant's API limit.

    A bad or expired token is left to the route, which answers it; routes marked
    `opt={"learner_rate_limit": False}` (package files) count towards the tenant's cap only.
    """
    limits: LearnerLimits | None = getattr(connection.app.state, "learner_limiter", None)
    token = connection.path_params.get("token")
    if limits is None or not token:
        return
    inst: Instance = connection.app.state.instance
    now = inst.clock.now()
    secret: bytes | None = getattr(connection.app.state, "launch_secret", None)
    if secret is None:  # read (or created) once, off the event loop; it never changes while serving
        secret = await asyncio.to_thread(signing_secret, inst)
        connection.app.state.launch_secret = secret
    try:
        tenant_id, session_id = verify(secret, str(token), now)  # an HMAC: cheap enough for the event loop
    except ApplianceError:
        return
    per_session = handler.opt.get("learner_rate_limit") is not False
    limit_learner(limits, inst, tenant_id, session_id if per_session else None)


def limit_learner(limits: LearnerLimits, inst: Instance, tenant_id: str, session_id: str | None) -> None:
    """Count one learner request; over the session's or the tenant's limit, 429 RATE_LIMITED."""
    refused = limits.hit(tenant_id, session_id, inst.clock.now())
    if refused is None:
        return
    scope, decision = refused
    what = "this session" if scope == "session" else "this organisation's learners"
    raise RateLimited(
        f"too many requests for {what} (limit {decision.limit} per minute)",
        {"retry_after": decision.reset_seconds, "limit": decision.limit, "scope": scope},
    )


PrincipalDep = NamedDependency[Principal]
InstanceDep = NamedDependency[Instance]
