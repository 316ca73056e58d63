"""The contract's session object and the payload of a session's events, from a session row (no I/O).

Apart from the session service so that everything that answers or announces a session (the service, a
cmi5 registration's results, the LTI launch) renders it one way without importing the service.
"""

from __future__ import annotations

from typing import Any

from appliance.clock import rfc3339

STATUSES = ("not_started", "incomplete", "completed", "passed", "failed", "expired")
RESULT_EVENTS = {"completed": "session.completed", "passed": "session.passed", "failed": "session.failed"}


def session_json(row: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """The contract's session object."""
    total = row["total_time_seconds"]
    return {
        "id": row["id"],
        "package_id": row["package_id"],
        "package_version": row["package_version"],
        "learner": {"id": row["learner_id"], "name": row["learner_name"]},
        "status": row["status"],
        "completion_status": row["completion_status"],
        "success_status": row["success_status"],
        "score": {
            "raw": row["score_raw"],
            "min": row["score_min"],
            "max": row["score_max"],
            "scaled": row["score_scaled"],
        },
        "progress_measure": row["progress_measure"],
        "total_time": iso_duration(total),
        "total_time_seconds": total,
        "server_time_seconds": round(row["server_time_seconds"], 3),
        "attempt": row["attempt"],
        "version": row["version"],
        "current_activity": row["current_activity"],
        "launch_url": url,
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "last_activity_at": rfc3339(row["last_activity_at"]),
        "expires_at": rfc3339(row["expires_at"]),
    }


def iso_duration(seconds: float) -> str:
    """ISO 8601 duration such as PT1H2M3.5S."""
    whole = int(seconds)
    frac = round(seconds - whole, 2)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    sec = secs + frac
    if sec or text == "PT":
        text += f"{sec:g}S"
    return text


def result_event(row: dict[str, Any], cmi5: dict[str, Any] | None = None) -> dict[str, Any]:
    """A results-bearing event's data: the final values, so receivers need no follow-up read; a cmi5
    registration's session carries its `cmi5` member as the sessions API answers it."""
    data = session_json(row)
    data.pop("launch_url", None)
    if cmi5 is not None:
        data["cmi5"] = cmi5
    return {"session_id": row["id"], "session": data}
