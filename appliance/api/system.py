"""Unauthenticated system routes: health."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get

from appliance import __version__


class SystemController(Controller):
    """Health and version, for load balancers and the CLI."""

    path = "/api/v1"
    tags = ["system"]

    @get("/health", summary="Health check (no authentication)")
    async def health(self) -> dict[str, Any]:
        """Answer 200 while the server is up."""
        return {"status": "ok", "version": __version__}
