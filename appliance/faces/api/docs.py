"""The OpenAPI schema at /api/v1/openapi.json and Swagger UI at /api/v1/docs, served offline.

Litestar's own OpenAPI router adds a catch-all that answers unknown paths below it with an HTML 404;
under /api/v1 that would hide the contract's JSON errors, so that route is removed here. Swagger UI's
assets (Swagger UI 5, which renders OpenAPI 3.1) are vendored in `swagger_ui/`, so the docs work on
a LAN with no internet.

The docs share the origin of the player and its course content, so they may not be framed at all
(a course could otherwise frame them and draw over them), and the page's CSP admits only its own
assets, its one inline script (by hash) and requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from appliance import __version__
from appliance.faces.api.middleware import response_headers_middleware
from appliance.services.tenancy.roles import ROLES, allowed_roles

API_BASE = "/api/v1"
_PATH_PARAM = re.compile(r"\{(\w+):[^}]+\}")  # Litestar's `{id:str}` is OpenAPI's `{id}`
SWAGGER_UI = Path(__file__).parent / "swagger_ui"  # Swagger UI 5 (OpenAPI 3.1), vendored: its README.md
ASSETS = f"{API_BASE}/docs/assets"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>scorm-appliance API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>{script}</script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise load a badge from validator.swagger.io.
_SCRIPT = (
    f'window.ui = SwaggerUIBundle({{url: "{API_BASE}/openapi.json", dom_id: "#swagger-ui", deepLinking: true, '
    "validatorUrl: null});"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
DOCS_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'self' 'sha256-{_SCRIPT_HASH}'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class RolesJsonPlugin(JsonRenderPlugin):
    """The JSON schema, each authenticated operation carrying the roles it admits (appliance.services.tenancy.roles).

    Roles live in the routes' `opt` and are checked at request time, so the generated schema alone
    would not say who may call what: every operation that takes a principal gets `x-roles` (the list)
    and a "Roles:" line in its description. Computed from the application's own routes, so the schema
    and the check cannot drift.
    """

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The schema with each operation's roles added."""
        add_roles(openapi_schema, operation_roles(request.app))
        return self.render_json(request, openapi_schema)


def operation_roles(app: Any) -> dict[tuple[str, str], list[str]]:
    """(OpenAPI path, lower-case method) → the roles admitted, for every route that authenticates."""
    found: dict[tuple[str, str], list[str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not handler.include_in_schema or not _authenticates(handler):
                continue
            path = _PATH_PARAM.sub(r"{\1}", route.path)
            for method in handler.http_methods:
                allowed = allowed_roles(handler.opt, method)
                found[(path, method.lower())] = [r for r in ROLES if r in allowed]
    return found


def _authenticates(handler: Any) -> bool:
    """Whether the handler takes the principal, so that `provide_principal` checks its roles."""
    return "principal" in handler.parsed_fn_signature.parameters


def add_roles(schema: dict[str, Any], roles: dict[tuple[str, str], list[str]]) -> None:
    """Write `x-roles` and the description line into the operations of `schema` (idempotent)."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            admitted = roles.get((path, method))
            if admitted is None or not isinstance(operation, dict):
                continue
            operation["x-roles"] = admitted
            line = f"Roles: {', '.join(admitted)}."
            description = operation.get("description") or ""
            if line not in description:
                operation["description"] = f"{description}\n\n{line}".strip()


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI from local assets; also prunes Litestar's HTML catch-all from the OpenAPI router."""

    def __init__(self) -> None:
        super().__init__(path="/docs")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The Swagger UI page pointing at the JSON schema."""
        return _PAGE.format(assets=ASSETS, script=_SCRIPT).encode()

    def receive_router(self, router: Router) -> None:
        """Drop the `/{path:str}` and `/` catch-alls so unknown API paths get the contract's 404."""
        router.routes[:] = [r for r in router.routes if r.path not in (API_BASE, f"{API_BASE}/{{path:str}}")]


def openapi_config() -> OpenAPIConfig:
    """The OpenAPI 3.1 settings."""
    return OpenAPIConfig(
        title="scorm-appliance",
        version=__version__,
        description="A self-hosted SCORM API server. Errors have the body {error, code, details}.",
        path=API_BASE,
        render_plugins=[RolesJsonPlugin(path="/openapi.json"), OfflineSwaggerPlugin()],
        openapi_router=Router(
            API_BASE, route_handlers=[], include_in_schema=False, middleware=[response_headers_middleware(DOCS_HEADERS)]
        ),
    )


def swagger_assets_router() -> Router:
    """Static Swagger UI files, with the docs' headers (their CSP is that of a script or stylesheet's page)."""
    return create_static_files_router(
        path=ASSETS,
        directories=[SWAGGER_UI],
        include_in_schema=False,
        middleware=[response_headers_middleware(DOCS_HEADERS)],
    )
