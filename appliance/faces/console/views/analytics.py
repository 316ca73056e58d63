"""Analytics: the tenant summary and a package's report (appliance.services.learning.analytics), with charts drawn on
the server (appliance.faces.console.charts) and each table as CSV (analytics.report_csv, as the API's)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup

from appliance.faces.api.sessions import base_url
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.charts import Bar, bar_chart, time_buckets
from appliance.faces.console.render import page
from appliance.instance import Instance
from appliance.services.learning import analytics, sessions
from appliance.services.library import packages

TIMED_SESSIONS = 1000  # sessions read for the time-spent histogram (pages of sessions.list_sessions)


def _session_times(inst: Instance, tenant: TenantDep, base: str, package_id: FromPath[str]) -> list[float]:
    """Total time of the package's sessions (those with any), through the sessions listing."""
    times: list[float] = []
    cursor: FromQuery[str | None] = None
    while len(times) < TIMED_SESSIONS:
        found = sessions.list_sessions(inst, tenant, base, filters={"package_id": package_id}, limit=100, cursor=cursor)
        times += [s["total_time_seconds"] for s in found["data"] if s["total_time_seconds"]]
        cursor = found.get("next_cursor")
        if not cursor:
            break
    return times


def charts_of(report: dict[str, Any], times: list[float]) -> dict[str, Markup]:
    """The four charts of a package report, as inline SVG."""
    per_day = [Bar(d["date"][5:], d["completions"]) for d in report["completions_per_day"]]
    scores = [
        Bar(f"{round(b['min'] * 100)}–{round(b['max'] * 100)}%", b["count"]) for b in report["score"]["distribution"]
    ]
    questions = [
        Bar(q["id"], round(100 * (q["correct_rate"] or 0)), f"{q['attempts']} answers") for q in report["interactions"]
    ]
    return {
        "completions": Markup(bar_chart("Completions per day", per_day)),  # noqa: S704 (escaped in charts)
        "scores": Markup(bar_chart("Score distribution (sessions per scaled-score range)", scores)),  # noqa: S704
        "difficulty": Markup(  # noqa: S704
            bar_chart("Per-question difficulty (% answered correctly)", questions, max_value=100)
        ),
        "time": Markup(bar_chart("Time spent (sessions per range)", time_buckets(times))),  # noqa: S704
    }


class AnalyticsPages(Controller):
    """`/admin/t/{tenant_id}/analytics…`."""

    path = "/t/{tenant_id:str}/analytics"

    @get("/", sync_to_thread=True)
    def show(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        package: FromQuery[str | None] = None,
        days: FromQuery[int | None] = None,
    ) -> Template:
        """The tenant summary; with `?package=`, that package's report and charts."""
        inst = instance(request)
        overall = analytics.summary(inst, tenant, days=days)
        listed = packages.list_packages(inst, tenant, status=None, limit=100, cursor=None)["data"]
        report = charts = None
        if package:
            report = analytics.package_report(inst, tenant, package, days=days)
            charts = charts_of(report, _session_times(inst, tenant, base_url(request), package))
        else:
            per_day = [Bar(d["date"][5:], d["completions"]) for d in overall["completions_per_day"]]
            charts = {"completions": Markup(bar_chart("Completions per day, all packages", per_day))}  # noqa: S704
        return page(
            request,
            "analytics.html",
            summary=overall,
            report=report,
            charts=charts,
            packages=listed,
            selected=package or "",
            days=days or "",
            sections=analytics.CSV_SECTIONS,
        )

    @get("/{package_id:str}/csv", sync_to_thread=True)
    def csv(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        package_id: FromPath[str],
        section: FromQuery[str] = "interactions",
        days: FromQuery[int | None] = None,
    ) -> Response[str]:
        """One table of the report as a CSV download."""
        report = analytics.package_report(instance(request), tenant, package_id, days=days)
        return Response(
            analytics.report_csv(report, section),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{package_id}-{section}.csv"'},
        )
