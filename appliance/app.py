"""create_app(config): the one place that assembles the Litestar application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.di import Provide

from appliance.api.deps import provide_instance, provide_principal
from appliance.api.docs import openapi_config, swagger_assets_router
from appliance.api.errors import EXCEPTION_HANDLERS
from appliance.api.middleware import add_request_id, header_limit_middleware
from appliance.api.system import SystemController
from appliance.api.tenant import TenantController
from appliance.clock import Clock
from appliance.config import Config
from appliance.instance import Instance
from appliance.jwtauth import JwksCache

log = logging.getLogger("appliance")

ROUTE_HANDLERS: list[Any] = [SystemController, TenantController]


def create_app(config: Config, *, clock: Clock | None = None, start_scheduler: bool = True) -> Litestar:
    """Build the application for `config`. The data directory is prepared in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        inst = Instance(config, clock)
        inst.data.clean_tmp()
        app.state.instance = inst
        app.state.jwks = JwksCache(config.jwks_cache_seconds)
        try:
            yield
        finally:
            inst.close()

    return Litestar(
        route_handlers=[*ROUTE_HANDLERS, swagger_assets_router()],
        dependencies={"inst": Provide(provide_instance, sync_to_thread=False), "principal": Provide(provide_principal)},
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_request_id],
        middleware=[header_limit_middleware(config.max_request_header_bytes)],
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        debug=False,
    )
