"""Analytics: tenant and package reports from sessions, and per-question statistics from cmi.interactions.

Reports read the derived rows that `appliance.services.learning.analytics_index` keeps in step with the CMI inside the
run-time's own transactions (interactions, question statistics, completions), never session CMI, so
they stay fast with hundreds of thousands of sessions. Session-level figures (status, score, time) come
from the `sessions` table through covering indexes.
"""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.learning import session_view
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

SCORE_BUCKETS = 10
TOP_RESPONSES = 5
DEFAULT_DAYS = 30
MAX_DAYS = 3660
SUMMARY_PACKAGES = 100
CSV_SECTIONS = ("interactions", "sessions_by_status", "score_distribution", "completions_per_day")

# -- reports ----------------------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _status_block(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status and the completion and pass rates, from rows grouped by the three statuses."""
    by_status = dict.fromkeys(session_view.STATUSES, 0)
    total = completed = passed = failed = 0
    for g in groups:
        n = int(g["n"])
        total += n
        by_status[g["status"]] = by_status.get(g["status"], 0) + n
        if g["completion_status"] == "completed":
            completed += n
        if g["success_status"] == "passed":
            passed += n
        elif g["success_status"] == "failed":
            failed += n
    return {
        "sessions": {"total": total, "by_status": by_status},
        "completed": completed,
        "passed": passed,
        "failed": failed,
        "completion_rate": _rate(completed, total),
        "pass_rate": _rate(passed, passed + failed),
    }


def _session_figures(conn: apsw.Connection, package_id: str) -> dict[str, Any]:
    """Counts by status, score distribution and average, time average and median of one package.

    Each figure is read from its own covering index (`sessions_analytics`, `sessions_package_score`,
    `sessions_package_time`): a grouped count, ten range counts and an offset, never a table scan.
    """
    groups = rows(
        conn,
        "SELECT status, completion_status, success_status, count(*) AS n FROM sessions WHERE package_id = ? "
        "GROUP BY status, completion_status, success_status",
        (package_id,),
    )
    score = one(
        conn,
        "SELECT count(score_scaled) AS n, total(score_scaled) AS total FROM sessions "
        "WHERE package_id = ? AND score_scaled IS NOT NULL",
        (package_id,),
    )
    buckets = []
    for b in range(SCORE_BUCKETS):
        low, high = b / SCORE_BUCKETS, (b + 1) / SCORE_BUCKETS
        # Scaled scores run from -1 to 1: below 0 counts in the first bucket, 1.0 in the last.
        where = ("score_scaled < ?", (high,)) if b == 0 else ("score_scaled >= ?", (low,))
        if 0 < b < SCORE_BUCKETS - 1:
            where = ("score_scaled >= ? AND score_scaled < ?", (low, high))
        found = one(
            conn, f"SELECT count(*) AS n FROM sessions WHERE package_id = ? AND {where[0]}", (package_id, *where[1])
        )
        buckets.append({"min": round(low, 2), "max": round(high, 2), "count": int(found["n"]) if found else 0})
    timed = one(
        conn,
        "SELECT count(*) AS n, total(total_time_seconds) AS total FROM sessions "
        "WHERE package_id = ? AND total_time_seconds > 0",
        (package_id,),
    )
    scored, score_total = (int(score["n"]), float(score["total"])) if score else (0, 0.0)
    timed_count, time_total = (int(timed["n"]), float(timed["total"])) if timed else (0, 0.0)
    average = time_total / timed_count if timed_count else None
    median = _median_time(conn, package_id, timed_count)
    return {
        **_status_block(groups),
        "score": {
            "count": scored,
            "average_scaled": round(score_total / scored, 4) if scored else None,
            "distribution": buckets,
        },
        "time": {
            "count": timed_count,
            "average_seconds": round(average, 2) if average is not None else None,
            "median_seconds": round(median, 2) if median is not None else None,
            "average": session_view.iso_duration(average) if average is not None else None,
            "median": session_view.iso_duration(median) if median is not None else None,
        },
    }


def _median_time(conn: apsw.Connection, package_id: str, count: int) -> float | None:
    if not count:
        return None
    found = rows(
        conn,
        "SELECT total_time_seconds AS t FROM sessions WHERE package_id = ? AND total_time_seconds > 0 "
        "ORDER BY total_time_seconds LIMIT ? OFFSET ?",
        (package_id, 2 - count % 2, (count - 1) // 2),
    )
    return statistics.fmean(r["t"] for r in found) if found else None


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def _completions_per_day(conn: apsw.Connection, package_id: str | None, now: float, days: int) -> list[dict[str, Any]]:
    today = int(now // 86_400)
    first = today - days + 1
    where, params = ("package_id = ? AND ", (package_id,)) if package_id else ("", ())
    found = rows(
        conn,
        f"SELECT CAST(completed_at / 86400 AS INTEGER) AS day, count(*) AS n FROM session_completions "
        f"WHERE {where}completed_at >= ? GROUP BY day",
        (*params, first * 86_400.0),
    )
    counts = {int(r["day"]): int(r["n"]) for r in found}
    return [{"date": _day(d * 86_400.0), "completions": counts.get(d, 0)} for d in range(first, today + 1)]


def _interactions(conn: apsw.Connection, package_id: str) -> list[dict[str, Any]]:
    stats = rows(conn, "SELECT * FROM interaction_stats WHERE package_id = ? ORDER BY interaction_id", (package_id,))
    top: dict[str, list[dict[str, Any]]] = {}
    for r in rows(
        conn,
        "SELECT interaction_id, response, count FROM (SELECT interaction_id, response, count, row_number() OVER "
        "(PARTITION BY interaction_id ORDER BY count DESC, response) AS rank FROM interaction_responses "
        "WHERE package_id = ?) WHERE rank <= ? ORDER BY interaction_id, rank",
        (package_id, TOP_RESPONSES),
    ):
        top.setdefault(r["interaction_id"], []).append({"response": r["response"], "count": r["count"]})
    out = []
    for s in stats:
        judged = s["correct"] + s["incorrect"] + s["unanticipated"] + s["neutral"]
        out.append(
            {
                "id": s["interaction_id"],
                "type": s["type"],
                "description": s["description"],
                "attempts": s["attempts"],
                "correct": s["correct"],
                "correct_rate": _rate(s["correct"], judged),
                "results": {
                    "correct": s["correct"],
                    "incorrect": s["incorrect"],
                    "unanticipated": s["unanticipated"],
                    "neutral": s["neutral"],
                    "numeric": s["numeric"],
                    "none": s["no_result"],
                },
                "average_latency_seconds": (
                    round(s["latency_total"] / s["latency_count"], 2) if s["latency_count"] else None
                ),
                "top_responses": top.get(s["interaction_id"], []),
            }
        )
    return out


def _check_days(days: int | None) -> int:
    value = DEFAULT_DAYS if days is None else days
    if not 1 <= value <= MAX_DAYS:
        raise ValidationFailed(
            f"days must be between 1 and {MAX_DAYS}", {"errors": [{"field": "days", "message": "out of range"}]}
        )
    return value


def package_report(inst: Instance, tenant: Tenant, package_id: str, *, days: int | None = None) -> dict[str, Any]:
    """Sessions by status, rates, score distribution, time, per-question statistics and daily completions."""
    window = _check_days(days)
    now = inst.clock.now()

    def read(conn: apsw.Connection) -> dict[str, Any]:
        pkg = one(conn, "SELECT id, title FROM packages WHERE id = ?", (package_id,))
        if pkg is None:
            raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
        return {
            "package_id": package_id,
            "title": pkg["title"],
            **_session_figures(conn, package_id),
            "interactions": _interactions(conn, package_id),
            "completions_per_day": _completions_per_day(conn, package_id, now, window),
            "generated_at": rfc3339(now),
        }

    return inst.tenant_db(tenant.id).read_sync(read)


def summary(inst: Instance, tenant: Tenant, *, days: int | None = None) -> dict[str, Any]:
    """Tenant-wide: packages by status, sessions by status, rates, daily completions, busiest packages."""
    window = _check_days(days)
    now = inst.clock.now()

    def read(conn: apsw.Connection) -> dict[str, Any]:
        packages = rows(
            conn,
            "SELECT v.status, count(*) AS n FROM packages p JOIN package_versions v "
            "ON v.package_id = p.id AND v.version = p.latest_version GROUP BY v.status",
        )
        by_package = rows(
            conn,
            "SELECT package_id, status, completion_status, success_status, count(*) AS n FROM sessions "
            "GROUP BY package_id, status, completion_status, success_status",
        )
        titles = {r["id"]: r["title"] for r in rows(conn, "SELECT id, title FROM packages")}
        return {
            "packages": packages,
            "groups": by_package,
            "titles": titles,
            "daily": _completions_per_day(conn, None, now, window),
        }

    data = inst.tenant_db(tenant.id).read_sync(read)
    package_status = {"processing": 0, "ready": 0, "failed": 0}
    for r in data["packages"]:
        package_status[r["status"]] = int(r["n"])
    per_package: dict[str, list[dict[str, Any]]] = {}
    for g in data["groups"]:
        per_package.setdefault(g["package_id"], []).append(g)
    busiest = sorted(per_package.items(), key=lambda kv: (-sum(g["n"] for g in kv[1]), kv[0]))[:SUMMARY_PACKAGES]
    return {
        "packages": {"total": sum(package_status.values()), "by_status": package_status},
        **_status_block(data["groups"]),
        "completions_per_day": data["daily"],
        "top_packages": [
            {
                "package_id": package_id,
                "title": data["titles"].get(package_id),
                "deleted": package_id not in data["titles"],
                **_status_block(groups),
            }
            for package_id, groups in busiest
        ],
        "generated_at": rfc3339(now),
    }


def report_csv(report: dict[str, Any], section: str = "interactions") -> str:
    """One table of a package report as CSV (a spreadsheet wants one table per file)."""
    if section not in CSV_SECTIONS:
        raise ValidationFailed(
            f"section must be one of {', '.join(CSV_SECTIONS)}",
            {"errors": [{"field": "section", "message": "unknown"}]},
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if section == "interactions":
        writer.writerow(
            [
                "interaction_id",
                "type",
                "description",
                "attempts",
                "correct",
                "incorrect",
                "unanticipated",
                "neutral",
                "numeric",
                "no_result",
                "correct_rate",
                "average_latency_seconds",
                "top_responses",
            ]
        )
        for i in report["interactions"]:
            results = i["results"]
            writer.writerow(
                [
                    _cell(i["id"]),
                    _cell(i["type"]),
                    _cell(i["description"]),
                    i["attempts"],
                    results["correct"],
                    results["incorrect"],
                    results["unanticipated"],
                    results["neutral"],
                    results["numeric"],
                    results["none"],
                    _blank(i["correct_rate"]),
                    _blank(i["average_latency_seconds"]),
                    _cell("; ".join(f"{r['response']} ({r['count']})" for r in i["top_responses"])),
                ]
            )
    elif section == "sessions_by_status":
        writer.writerow(["status", "sessions"])
        for status, count in report["sessions"]["by_status"].items():
            writer.writerow([status, count])
    elif section == "score_distribution":
        writer.writerow(["min_scaled", "max_scaled", "sessions"])
        for b in report["score"]["distribution"]:
            writer.writerow([b["min"], b["max"], b["count"]])
    else:
        writer.writerow(["date", "completions"])
        for d in report["completions_per_day"]:
            writer.writerow([d["date"], d["completions"]])
    return out.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _cell(value: str | None) -> str:
    """Text for a CSV cell; a leading =, +, - or @ is quoted so spreadsheets do not run it as a formula."""
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
