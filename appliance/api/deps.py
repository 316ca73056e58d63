"""Dependencies the controllers declare: the instance, and the authenticated principal."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from appliance.auth import Principal, authenticate
from appliance.instance import Instance


def provide_instance(request: Request[Any, Any, Any]) -> Instance:
    """The appliance instance this app was built with."""
    inst: Instance = request.app.state.instance
    return inst


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Authenticate the request (registry reads run off the event loop)."""
    inst: Instance = request.app.state.instance
    principal = await asyncio.to_thread(
        authenticate,
        inst,
        request.app.state.jwks,
        request.headers.get("authorization"),
        request.headers.get("x-api-key"),
    )
    request.scope.setdefault("state", {})["tenant_id"] = principal.tenant.id
    return principal


PrincipalDep = NamedDependency[Principal]
InstanceDep = NamedDependency[Instance]
