"""Analytics routes: the tenant summary and the per-package report (JSON, or CSV with ?format=csv)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter

from appliance.errors import ValidationFailed
from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.learning import analytics

Days = Annotated[int | None, QueryParameter(ge=1, le=analytics.MAX_DAYS, description="Days of completions_per_day")]


class AnalyticsController(Controller):
    """Reports over the authenticated tenant's sessions."""

    path = "/api/v1/analytics"
    tags = ["analytics"]

    @get("/summary", sync_to_thread=True, summary="Tenant-wide figures")
    def summary(self, principal: PrincipalDep, inst: InstanceDep, days: Days = None) -> dict[str, Any]:
        """Packages, sessions by status, completion and pass rates, completions per day, busiest packages."""
        return analytics.summary(inst, principal.tenant, days=days)

    @get("/packages/{package_id:str}", sync_to_thread=True, summary="One package's report")
    def package(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        package_id: FromPath[str],
        days: Days = None,
        format: FromQuery[str | None] = None,  # the contract's parameter name, although it shadows a builtin
        section: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Sessions by status, rates, score distribution, time, per-question statistics, completions per day.

        `?format=csv` answers one table as CSV: the per-question statistics, or the `section` named.
        """
        if format not in (None, "json", "csv"):
            raise ValidationFailed("format must be json or csv", {"errors": [{"field": "format"}]})
        report = analytics.package_report(inst, principal.tenant, package_id, days=days)
        if format != "csv":
            return Response(report)
        table = section or "interactions"
        text = analytics.report_csv(report, table)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{package_id}-{table}.csv"'},
        )
