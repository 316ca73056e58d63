"""Unauthenticated system routes: health (the process is up) and readiness (its dependencies answer)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec

from appliance import __version__
from appliance.faces.api.deps import InstanceDep
from appliance.services.operations.readiness import Check, dependencies, not_ready_message

READY_DESCRIPTION = (
    "200 when every dependency this worker uses answers now: the database always, Redis when `redis_url` is "
    "set, the object store when `files` is an s3:// bucket (each check bounded: 2 s, 0.25 s, 2 s; run at "
    "the same time). Otherwise 503 NOT_READY, the error naming what is down and `details.checks` holding "
    "every check (`status` ok or unavailable, `error` the failure's kind; the cause goes to the server log)."
)


class SystemController(Controller):
    """Health, readiness and version, for load balancers and the CLI."""

    path = "/api/v1"
    tags = ["system"]

    @get("/health", summary="Health check (no authentication)")
    async def health(self) -> dict[str, Any]:
        """Answer 200 while the server is up."""
        return {"status": "ok", "version": __version__}

    @get(
        "/ready",
        summary="Readiness check per dependency (no authentication)",
        description=READY_DESCRIPTION,
        responses={503: ResponseSpec(data_container=dict[str, Any], description="NOT_READY: a dependency is down")},
    )
    async def ready(self, inst: InstanceDep) -> Response[dict[str, Any]]:
        """200 when every dependency answers, else 503 naming those that do not: a load balancer sends
        no traffic to a worker whose database (or Redis, or object store) is gone, while `/health` still
        says the process lives."""
        found = dependencies(inst)
        results: list[Check] = list(await asyncio.gather(*(asyncio.to_thread(fn, *args) for _, fn, args in found)))
        checks = {check.name: check.json() for check in results}
        if all(check.ok for check in results):
            return Response({"status": "ok", "version": __version__, "checks": checks})
        down = [check.name for check in results if not check.ok]
        return Response(
            {"error": not_ready_message(results), "code": "NOT_READY", "details": {"down": down, "checks": checks}},
            status_code=503,
        )
