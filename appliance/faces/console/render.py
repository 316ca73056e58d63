"""Rendering console pages: the Jinja environment, the common context every page gets, and formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from appliance.services.tenancy.admins import ConsoleSession
from appliance.services.tenancy.quotas import format_size

TEMPLATES = Path(__file__).parent / "templates"


def _when(value: Any) -> str:
    """An RFC 3339 string or epoch seconds as `2026-12-03 17:35 UTC`; blank for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    else:
        value = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _size(value: int | None) -> str:
    return "unlimited" if value is None else format_size(value)


def _percent(part: float | None, whole: float | None) -> int:
    if not part or not whole:
        return 0
    return max(0, min(100, round(100 * part / whole)))


def environment() -> Environment:
    """Autoescaping everywhere (every page shows course titles, learner ids and payloads others wrote)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True), auto_reload=False)
    env.filters.update(when=_when, size=_size)
    env.globals.update(percent=_percent)
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template config (appliance.faces.app): the console is its only user."""
    env = environment()
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(env))


def page(request: Request[Any, Any, Any], name: str, status_code: int = 200, **context: Any) -> Template:
    """Render `name` with the session, its CSRF token and the current tenant (when the route has one)."""
    state = request.scope.get("state", {})
    session: ConsoleSession | None = state.get("console_session")
    return Template(
        template_name=name,
        status_code=status_code,
        context={
            "session": session,
            "admin": session.admin if session else None,
            "csrf": session.csrf_token if session else "",
            "tenant": state.get("console_tenant"),
            "path": request.url.path,
            **context,
        },
    )
