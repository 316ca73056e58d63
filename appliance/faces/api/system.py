"""Unauthenticated system routes: health (the process is up) and readiness (its dependencies answer)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get

from appliance import __version__
from appliance.faces.api.deps import InstanceDep


class SystemController(Controller):
    """Health, readiness and version, for load balancers and the CLI."""

    path = "/api/v1"
    tags = ["system"]

    @get("/health", summary="Health check (no authentication)")
    async def health(self) -> dict[str, Any]:
        """Answer 200 while the server is up."""
        return {"status": "ok", "version": __version__}

    @get("/ready", summary="Readiness check per dependency (no authentication)")
    async def ready(self, inst: InstanceDep) -> Response[dict[str, Any]]:
        """200 when every dependency answers, else 503 with the one that does not: a load balancer sends
        no traffic to a worker whose database is gone, while `/health` still says the process lives."""
        problem = await asyncio.to_thread(inst.database_problem)
        database: dict[str, Any] = {"backend": inst.backend, "status": "ok" if problem is None else "unavailable"}
        if problem is None:
            return Response({"status": "ok", "version": __version__, "checks": {"database": database}})
        database["error"] = problem
        return Response(
            {
                "error": "not ready: the database does not answer",
                "code": "NOT_READY",
                "details": {"checks": {"database": database}},
            },
            status_code=503,
        )
