"""Dependencies the controllers declare: the instance, and the authenticated principal.

Authentication is also where each tenant's API rate limit is applied and its requests are counted
(appliance.ratelimit), so every route that needs a tenant gets both; learner routes (launch tokens)
have their own per-session limit instead, applied by the `learner_rate_limit` guard.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from appliance.auth import Principal, authenticate
from appliance.errors import ApplianceError, RateLimited
from appliance.instance import Instance
from appliance.launch_tokens import signing_secret, verify
from appliance.ratelimit import RateLimiter, RequestCounter


def provide_instance(request: Request[Any, Any, Any]) -> Instance:
    """The appliance instance this app was built with."""
    inst: Instance = request.app.state.instance
    return inst


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Authenticate the request (registry reads run off the event loop), then apply the tenant's rate limit.

    Every authenticated response carries the `RateLimit-*` headers; over the limit the request is
    refused with 429 RATE_LIMITED and `Retry-After`, and is not counted as a request in the usage.
    """
    inst: Instance = request.app.state.instance
    principal = await asyncio.to_thread(
        authenticate,
        inst,
        request.app.state.jwks,
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
    )
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
    return principal


async def learner_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard of the player routes: `learner_requests_per_minute` per session, apart from the tenant's limit.

    A bad or expired token is left to the route, which answers it; routes marked
    `opt={"learner_rate_limit": False}` (package files) are not limited.
    """
    limiter: RateLimiter | None = getattr(connection.app.state, "learner_limiter", None)
    token = connection.path_params.get("token")
    if limiter is None or not token or handler.opt.get("learner_rate_limit") is False:
        return
    inst: Instance = connection.app.state.instance
    now = inst.clock.now()
    secret: bytes | None = getattr(connection.app.state, "launch_secret", None)
    if secret is None:  # read (or created) once, off the event loop; it never changes while serving
        secret = await asyncio.to_thread(signing_secret, inst)
        connection.app.state.launch_secret = secret
    try:
        _, session_id = verify(secret, str(token), now)  # an HMAC: cheap enough for the event loop
    except ApplianceError:
        return
    limit_learner(limiter, inst, session_id)


def limit_learner(limiter: RateLimiter, inst: Instance, session_id: str) -> None:
    """Count one learner request for the session; over `learner_requests_per_minute`, 429 RATE_LIMITED."""
    decision = limiter.hit(session_id, inst.config.learner_requests_per_minute, inst.clock.now())
    if not decision.allowed:
        raise RateLimited(
            f"too many requests for this session (limit {decision.limit} per minute)",
            {"retry_after": decision.reset_seconds, "limit": decision.limit},
        )


PrincipalDep = NamedDependency[Principal]
InstanceDep = NamedDependency[Instance]
