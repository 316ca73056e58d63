"""What the LMS does when a SCO session ends and the next one starts (rte-rules.md sections 3-5).

Three pure functions over flat CMI dicts:

* `end_session` runs the LMS end-of-session rules at LMSFinish/Terminate: lesson_status (1.2) or
  completion/success evaluation (2004), total_time += session_time, nav request hand-off.
* `next_launch_cmi` builds the CMI for the next launch: resume the attempt after exit=suspend, or
  start a new attempt (2004, any other exit) with fresh data.
* `summarize` reduces a CMI dict of either version to the session fields the API reports.

Applying the session time exactly once: `end_session` *consumes* `session_time` (removes it from the
returned dict, as the ADL RTE discards it after Terminate), so its result carries no time left to add
and applying it again to its own output changes nothing. The runtime applies it once, when the
terminate commit arrives (the API state machine allows one Terminate per session); `next_launch_cmi`
applies it to a session that ended without Terminate but had reported a session_time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import msgspec

from appliance.core.scorm.durations import format_duration, format_timespan, parse_cmi_time
from appliance.core.scorm.elements import shared_table
from appliance.core.scorm.launch import initial_cmi
from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.values import evaluated_status

_NAMES_12 = {
    "exit": "cmi.core.exit",
    "session_time": "cmi.core.session_time",
    "total_time": "cmi.core.total_time",
    "entry": "cmi.core.entry",
    "credit": "cmi.core.credit",
    "mode": "cmi.core.lesson_mode",
    "learner_name": "cmi.core.student_name",
}
_NAMES_2004 = {
    "exit": "cmi.exit",
    "session_time": "cmi.session_time",
    "total_time": "cmi.total_time",
    "entry": "cmi.entry",
    "credit": "cmi.credit",
    "mode": "cmi.mode",
    "learner_name": "cmi.learner_name",
}


def names(scorm_version: str) -> dict[str, str]:
    """Element names of the session bookkeeping elements in this version."""
    return _NAMES_12 if scorm_version == SCORM_12 else _NAMES_2004


class SessionEnd(msgspec.Struct, frozen=True):
    """The outcome of `end_session`."""

    cmi: dict[str, str]  # values to persist: statuses evaluated, total_time updated, session_time consumed
    exit: str  # cmi.exit / cmi.core.exit as the SCO left it ("" if never set)
    suspended: bool  # exit == "suspend": the next launch resumes the attempt
    nav_request: str  # 2004 adl.nav.request at Terminate (reset to _none_ in cmi); "" for 1.2
    session_seconds: float  # the time added to total_time


class CmiSummary(msgspec.Struct, frozen=True):
    """Session-level results derived from the CMI of either version (the session resource fields)."""

    completion_status: str  # completed | incomplete | not attempted | unknown
    success_status: str  # passed | failed | unknown
    score_raw: float | None
    score_min: float | None
    score_max: float | None
    score_scaled: float | None
    progress_measure: float | None
    total_time: str  # ISO 8601, e.g. PT1H2M3S
    total_time_seconds: float
    status: str  # not_started | incomplete | completed | passed | failed


@functools.lru_cache(maxsize=4096)
def _time(value: str | None) -> int:
    """Centiseconds of a stored time, treating malformed data (never accepted by SetValue) as zero.
    Cached: every commit summarizes a total time that changes once per session."""
    try:
        return parse_cmi_time(value or "")
    except ValueError:
        return 0


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def end_session(
    scorm_version: str,
    cmi: Mapping[str, str],
    *,
    elapsed_seconds: float | None = None,
) -> SessionEnd:
    """Apply the LMS end-of-session rules to the CMI committed at LMSFinish/Terminate.

    `elapsed_seconds` is the LMS-measured session length, added only when the SCO set no session_time
    (2004 RTE 4.2.21 requires the LMS to track it; for 1.2 it is optional, so pass None to add nothing).
    See the module docstring on applying this once.
    """
    n = names(scorm_version)
    result = dict(cmi)
    session_value = result.pop(n["session_time"], None)
    session = _time(session_value)
    if session_value is None and elapsed_seconds is not None:
        session = round(elapsed_seconds * 100)
    total = _time(result.get(n["total_time"])) + session
    result[n["total_time"]] = format_timespan(total) if scorm_version == SCORM_12 else format_duration(total)
    exit_value = result.get(n["exit"], "")
    nav_request = ""
    if scorm_version == SCORM_12:
        result["cmi.core.lesson_status"] = _lesson_status_12(result)
    else:
        elements = shared_table(scorm_version)["elements"]
        for name in ("cmi.completion_status", "cmi.success_status"):
            result[name] = evaluated_status(elements[name], result) or result.get(name, "unknown")
        nav_request = result.get("adl.nav.request", "_none_")
        result["adl.nav.request"] = "_none_"
    return SessionEnd(result, exit_value, exit_value == "suspend", nav_request, session / 100)


def _lesson_status_12(cmi: Mapping[str, str]) -> str:
    """1.2 lesson_status at LMSFinish (rte-rules.md 4, steps 1-4).

    Browse mode turns an untouched status into "browsed". With credit, normal mode, a mastery score
    and a raw score, the score decides passed/failed unless the SCO said "incomplete". A status the
    SCO never set becomes "completed".
    """
    status = cmi.get("cmi.core.lesson_status", "not attempted")
    mode = cmi.get("cmi.core.lesson_mode", "normal")
    mastery = _number(cmi.get("cmi.student_data.mastery_score"))
    raw = _number(cmi.get("cmi.core.score.raw"))
    if mode == "browse" and status == "not attempted":
        return "browsed"
    credited = cmi.get("cmi.core.credit", "credit") == "credit" and mode == "normal"
    if credited and mastery is not None and raw is not None and status != "incomplete":
        return "passed" if raw >= mastery else "failed"
    return "completed" if status == "not attempted" else status


def next_launch_cmi(
    scorm_version: str,
    previous_cmi: Mapping[str, str] | None,
    *,
    learner_id: str,
    learner_name: str,
    force_new_attempt: bool = False,
    **initial: Any,
) -> tuple[dict[str, str], bool]:
    """The CMI for the next launch of a SCO, and whether it starts a new attempt.

    previous_cmi is the CMI stored at the end of the previous session (None for the first launch).
    After exit=suspend the attempt resumes (entry=resume, data kept). Otherwise 2004 starts a new
    attempt with fresh data (entry=ab-initio); 1.2 keeps the data with entry="" (rte-rules.md 3).
    `initial` holds initial_cmi's keyword arguments (item, credit, mode, ...), used for fresh data;
    credit and mode are also refreshed on resume.
    """
    fresh = {"learner_id": learner_id, "learner_name": learner_name, **initial}
    if not previous_cmi or force_new_attempt:
        return initial_cmi(scorm_version, **fresh), True
    n = names(scorm_version)
    previous = dict(previous_cmi)
    if n["session_time"] in previous:
        previous = end_session(scorm_version, previous).cmi
    suspended = previous.get(n["exit"]) == "suspend"
    if scorm_version != SCORM_12 and not suspended:
        return initial_cmi(scorm_version, **fresh), True
    previous.pop(n["exit"], None)
    previous[n["entry"]] = "resume" if suspended else ""
    previous[n["learner_name"]] = learner_name
    for key in ("credit", "mode"):
        if key in initial:
            previous[n[key]] = initial[key]
    if scorm_version != SCORM_12:
        previous["adl.nav.request"] = "_none_"
    return previous, False


_STATUS_12_MAP = {
    "passed": ("completed", "passed"),
    "failed": ("completed", "failed"),
    "completed": ("completed", "unknown"),
    "incomplete": ("incomplete", "unknown"),
    "browsed": ("incomplete", "unknown"),
    "not attempted": ("not attempted", "unknown"),
}


def summarize(scorm_version: str, cmi: Mapping[str, str]) -> CmiSummary:
    """Completion, success, score, progress and total time of a CMI dict of either version."""
    total = _time(cmi.get(names(scorm_version)["total_time"]))
    if scorm_version == SCORM_12:
        completion, success = _STATUS_12_MAP.get(cmi.get("cmi.core.lesson_status", ""), ("unknown", "unknown"))
        raw, low, high = (_number(cmi.get(f"cmi.core.score.{k}")) for k in ("raw", "min", "max"))
        scaled, progress = _scaled_12(raw, low, high), None
    else:
        elements = shared_table(scorm_version)["elements"]
        completion = evaluated_status(elements["cmi.completion_status"], cmi) or cmi.get(
            "cmi.completion_status", "unknown"
        )
        success = evaluated_status(elements["cmi.success_status"], cmi) or cmi.get("cmi.success_status", "unknown")
        raw, low, high, scaled = (_number(cmi.get(f"cmi.score.{k}")) for k in ("raw", "min", "max", "scaled"))
        progress = _number(cmi.get("cmi.progress_measure"))
    started = total > 0 or cmi.get(names(scorm_version)["entry"], "ab-initio") != "ab-initio"
    status = _session_status(completion, success, started)
    return CmiSummary(
        completion, success, raw, low, high, scaled, progress, format_duration(total), total / 100, status
    )


def _scaled_12(raw: float | None, low: float | None, high: float | None) -> float | None:
    """1.2 has no scaled score: use (raw - min) / (max - min), or raw / 100 (raw is 0..100)."""
    if raw is None:
        return None
    known_range = low is not None and high is not None and high > low
    scaled = (raw - low) / (high - low) if known_range else raw / 100  # type: ignore[operator]
    return max(-1.0, min(1.0, scaled))


def _session_status(completion: str, success: str, started: bool) -> str:
    if success in ("passed", "failed"):
        return success
    if completion in ("completed", "incomplete"):
        return completion
    return "incomplete" if started else "not_started"
