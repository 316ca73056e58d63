"""The bridge between the SCO's run-time data and the tracking model (rte-rules.md 5.1 and 5.4).

`report` maps what a SCO reported into the tracking model; `initial_values` gives the CMI values that come
from sequencing (objectives read from the tracking model and global objectives, thresholds, limits).

Contract for `report`: pass the values as they stand at Terminate (after the completion/success evaluation
against thresholds), containing only the elements the SCO set (and the evaluation results). A present
"unknown" counts as reported: it clears the status and stops End Attempt from assuming completed/satisfied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.definition import OBJECTIVE_FIELDS, ObjectiveDef, parse_duration
from appliance.core.scorm.sequencing.tracking import ObjectiveState, Tracking

_COMPLETION = {"completed": True, "incomplete": False, "not attempted": False, "unknown": None}
_SUCCESS = {"passed": True, "failed": False, "unknown": None}
_LESSON_STATUS = {  # SCORM 1.2 cmi.core.lesson_status -> (completed, satisfied)
    "passed": (True, True),
    "failed": (True, False),
    "completed": (True, None),
    "browsed": (True, None),
    "incomplete": (False, None),
}
_PRIMARY_KEYS = frozenset(
    {"success_status", "completion_status", "progress_measure", "score.scaled", "score.raw", "score.min", "score.max"}
)
_OBJECTIVE_KEY = re.compile(r"^cmi\.objectives\.(\d+)\.(.+)$")
_DATA_KEY = re.compile(r"^adl\.data\.(\d+)\.(id|store)$")


def _number(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _cmi12_duration(text: str) -> float | None:
    """SCORM 1.2 CMITimespan HHHH:MM:SS.SS."""
    match = re.match(r"^(\d{2,4}):(\d{2}):(\d{2}(?:\.\d{1,2})?)$", text.strip())
    if match is None:
        return None
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60 + float(match.group(3))


def _clear_reported_unknowns(t: Tracking, act: Activity, objective: ObjectiveDef, values: Mapping[str, str]) -> None:
    """A status the SCO explicitly set to unknown also clears the global objectives it writes (ADL RTE)."""
    if values.get("success_status") == "unknown":
        t.clear_global(act, objective, "satisfied")
    if values.get("completion_status") == "unknown":
        t.clear_global(act, objective, "completed")


def _apply_objective(record: ObjectiveState, values: Mapping[str, str]) -> bool:
    """Copy one cmi.objectives.n (or the top-level primary values) into an objective record.

    Returns whether a success status was reported, which End Attempt needs to know."""
    reported = "success_status" in values
    if reported:
        record.satisfied = _SUCCESS.get(values["success_status"], record.satisfied)
    for key, attr in (("score.scaled", "measure"), ("score.raw", "raw"), ("score.min", "min"), ("score.max", "max")):
        if key in values:
            setattr(record, attr, _number(values[key]))
    if "completion_status" in values:
        record.completed = _COMPLETION.get(values["completion_status"], record.completed)
    if "progress_measure" in values:
        record.progress_measure = _number(values["progress_measure"])
    return reported


def _objectives_by_index(cmi: Mapping[str, str]) -> list[dict[str, str]]:
    grouped: dict[int, dict[str, str]] = {}
    for key, value in cmi.items():
        match = _OBJECTIVE_KEY.match(key)
        if match:
            grouped.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [grouped[index] for index in sorted(grouped)]


def _find_objective(act: Activity, objective_id: str | None) -> ObjectiveDef | None:
    for objective in act.definition.objectives:
        if objective_id is not None and objective.objective_id == objective_id:
            return objective
    return None


def _report_objectives(t: Tracking, act: Activity, cmi: Mapping[str, str]) -> None:
    record = t.st(act)
    for values in _objectives_by_index(cmi):
        objective = _find_objective(act, values.get("id"))
        if objective is None:
            continue
        state = t.obj(act, objective)
        if objective.satisfied_by_measure:
            values = {k: v for k, v in values.items() if k != "success_status"}
        if _apply_objective(state, values) and objective.primary:
            record.content_set_satisfaction = True
        if objective.primary:
            _apply_activity_completion(t, act, values)
        _clear_reported_unknowns(t, act, objective, values)


def _apply_activity_completion(t: Tracking, act: Activity, values: Mapping[str, str]) -> None:
    """The primary objective's completion is the activity's attempt completion."""
    record = t.st(act)
    if "completion_status" in values and not t.by_measure(act):
        record.completed = _COMPLETION.get(values["completion_status"], record.completed)
        record.content_set_completion = True
    if "progress_measure" in values:
        t.set_completion_amount(act, _number(values["progress_measure"]))


def _report_primary(t: Tracking, act: Activity, cmi: Mapping[str, str]) -> None:
    primary = act.definition.primary
    values = {key[4:]: value for key, value in cmi.items() if key[4:] in _PRIMARY_KEYS and key.startswith("cmi.")}
    if primary.satisfied_by_measure:
        values.pop("success_status", None)
    if _apply_objective(t.obj(act, primary), values):
        t.st(act).content_set_satisfaction = True
    _apply_activity_completion(t, act, values)
    _clear_reported_unknowns(t, act, primary, values)


def _report_scorm12(t: Tracking, act: Activity, cmi: Mapping[str, str]) -> None:
    status = cmi.get("cmi.core.lesson_status")
    if status in _LESSON_STATUS:
        completed, satisfied = _LESSON_STATUS[status]
        record = t.st(act)
        record.completed = completed
        record.content_set_completion = True
        if satisfied is not None:
            t.obj(act, act.definition.primary).satisfied = satisfied
            record.content_set_satisfaction = True
    raw, high = _number(cmi.get("cmi.core.score.raw")), _number(cmi.get("cmi.core.score.max"))
    if raw is not None and high:
        t.obj(act, act.definition.primary).measure = max(-1.0, min(1.0, raw / high))


def _report_time(t: Tracking, act: Activity, cmi: Mapping[str, str]) -> None:
    text = cmi.get("cmi.session_time")
    seconds = parse_duration(text) if text else None
    if seconds is None and cmi.get("cmi.core.session_time"):
        seconds = _cmi12_duration(cmi["cmi.core.session_time"])
    if seconds is not None and seconds > 0:
        record = t.st(act)
        record.attempt_experienced_duration += seconds
        record.activity_experienced_duration += seconds


def report_shared_data(act: Activity, cmi: Mapping[str, str], shared_data: dict[str, str]) -> None:
    """Write adl.data.n.store values into the learner's shared data stores the item may write."""
    ids: dict[int, str] = {}
    stores: dict[int, str] = {}
    for key, value in cmi.items():
        match = _DATA_KEY.match(key)
        if match:
            (ids if match.group(2) == "id" else stores)[int(match.group(1))] = value
    writable = {m.target_id for m in act.data_maps if m.write_shared_data}
    for index, store in stores.items():
        target = ids.get(index) or (act.data_maps[index].target_id if index < len(act.data_maps) else None)
        if target in writable:
            if store:
                shared_data[target] = store
            else:  # an empty store is no data: the next reader gets 403 (not initialized), as the CTS's DDM expects
                shared_data.pop(target, None)


def report(t: Tracking, act: Activity, cmi: Mapping[str, str]) -> bool:
    """Map a SCO's run-time data into the tracking model (only while its attempt is open, as the ADL
    reference requires). Returns whether anything was applied."""
    record = t.st(act)
    if not record.active or not act.is_leaf:
        return False
    exit_value = cmi.get("cmi.exit", cmi.get("cmi.core.exit"))
    record.suspended = exit_value == "suspend"
    _report_time(t, act, cmi)
    if act.tracked:
        _report_objectives(t, act, cmi)
        _report_primary(t, act, cmi)
        _report_scorm12(t, act, cmi)
        t.push(act)
    return True


# ---------------------------------------------------------------------------------------------------------
# initial values


def _fmt(value: float) -> str:
    return repr(float(value))


def _mapped_value(t: Tracking, objective: ObjectiveDef, name: str) -> Any:
    """A field as the objective's maps read it from the global objectives (None: no map reads a value)."""
    for m in objective.maps:
        if m.reads(name):
            value = t.globals.get(m.target_id, {}).get(name)
            if value is not None:
                return value
    return None


def _objective_values(t: Tracking, act: Activity, objective: ObjectiveDef, prefix: str) -> dict[str, str]:
    values = {f"{prefix}.id": objective.objective_id or ""}
    if act.tracked:
        read = {name: t.objective_value(act, objective, name) for name in OBJECTIVE_FIELDS}
        if objective.primary:
            read["completed"] = t.completion_status_read(act)
    else:
        # An untracked activity keeps no tracking data, but its SCO still sees what its maps read (RTE 4.2.17).
        read = {name: _mapped_value(t, objective, name) for name in OBJECTIVE_FIELDS}
        if objective.satisfied_by_measure:  # only the (read) measure decides, as for tracked activities
            measure = read["measure"]
            read["satisfied"] = None if measure is None else float(measure) >= objective.min_normalized_measure
    satisfied = read["satisfied"]
    if satisfied is not None:
        values[f"{prefix}.success_status"] = "passed" if satisfied else "failed"
    completed = read["completed"]
    if completed is not None:
        values[f"{prefix}.completion_status"] = "completed" if completed else "incomplete"
    fields: list[tuple[str, Any]] = [
        ("score.scaled", read["measure"]),
        ("score.raw", read["raw"]),
        ("score.min", read["min"]),
        ("score.max", read["max"]),
        ("progress_measure", read["progress_measure"]),
    ]
    for name, value in fields:
        if value is not None:
            values[f"{prefix}.{name}"] = _fmt(value)
    return values


def initial_values(t: Tracking, act: Activity, shared_data: Mapping[str, str]) -> dict[str, str]:
    """The CMI values sequencing provides before Initialize (rte-rules.md 5.1)."""
    values: dict[str, str] = {}
    if act.completion_threshold is not None and act.completion_threshold.completed_by_measure:
        values["cmi.completion_threshold"] = _fmt(act.completion_threshold.min_progress_measure)
    primary = act.definition.primary
    if primary.satisfied_by_measure:
        values["cmi.scaled_passing_score"] = _fmt(primary.min_normalized_measure)
    limit = act.definition.limit_conditions.attempt_absolute_duration_limit
    if limit:
        values["cmi.max_time_allowed"] = limit
    index = 0
    for objective in act.definition.objectives:
        if objective.objective_id:
            values.update(_objective_values(t, act, objective, f"cmi.objectives.{index}"))
            index += 1
    for n, data_map in enumerate(act.data_maps):
        values[f"adl.data.{n}.id"] = data_map.target_id
        if data_map.read_shared_data and data_map.target_id in shared_data:
            values[f"adl.data.{n}.store"] = shared_data[data_map.target_id]
    return values
