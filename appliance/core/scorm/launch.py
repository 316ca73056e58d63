"""The CMI values an LMS presents at the first launch of a SCO (rte-rules.md 4 and 5.1).

`initial_cmi` takes what the manifest item and the session say and returns the flat CMI dict a
`DataModel` starts from. It only writes values the LMS owns (learner, credit, mode, entry, time,
manifest-sourced limits and pre-loaded records); everything else falls back to the table defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from appliance.core.scorm.elements import shared_table
from appliance.core.scorm.model import SCORM_12, SCORM_2004_4TH, Item
from appliance.core.scorm.values import check_value


def number_text(number: float) -> str:
    """A manifest number as CMI text: 80.0 -> "80", 0.85 -> "0.85"."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _valid(scorm_version: str, element: str, value: str) -> bool:
    """Whether a manifest-sourced value fits its element (invalid manifest values are left out)."""
    spec = shared_table(scorm_version)["elements"][element]
    return check_value(shared_table(scorm_version), {**spec, "access": "RW"}, value)[0] is None


def _time_limit_action(raw: str | None) -> str | None:
    """Normalise adlcp:timelimitaction text such as "Exit, Message" to the vocabulary form."""
    if raw is None:
        return None
    return ",".join(part.strip() for part in raw.strip().lower().split(","))


def _put_valid(cmi: dict[str, str], scorm_version: str, element: str, value: str | None) -> None:
    if value is not None and _valid(scorm_version, element, value):
        cmi[element] = value


def initial_cmi(
    scorm_version: str,
    *,
    learner_id: str,
    learner_name: str,
    item: Item | None = None,
    credit: str = "credit",
    mode: str = "normal",
    entry: str = "ab-initio",
    scaled_passing_score: float | None = None,
    max_time_allowed: str | None = None,
    objectives: Sequence[Mapping[str, str]] = (),
    comments_from_lms: str | Sequence[Mapping[str, str]] | None = None,
    shared_data: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The CMI dict for the first session of an attempt.

    Args:
        scorm_version: one of model.SCORM_VERSIONS.
        learner_id: cmi.core.student_id / cmi.learner_id.
        learner_name: cmi.core.student_name / cmi.learner_name.
        item: the launched manifest item (mastery score, time limits, launch data, completion threshold,
            4th Edition data maps).
        credit: "credit" or "no-credit".
        mode: "normal", "browse" or "review".
        entry: "ab-initio" for a new attempt (next_launch_cmi decides otherwise).
        scaled_passing_score: 2004 primary objective minNormalizedMeasure when satisfiedByMeasure is true
            (the sequencing engine knows); None leaves cmi.scaled_passing_score unset.
        max_time_allowed: overrides item.max_time_allowed (2004: attemptAbsoluteDurationLimit).
        objectives: 2004 records to pre-load, each {"id": ..., "success_status": ..., "score.scaled": ...}.
        comments_from_lms: 1.2 text, or 2004 records {"comment", "location", "timestamp"}.
        shared_data: 4th Edition adl.data store values by targetID.
    """
    if scorm_version == SCORM_12:
        cmi = _initial_12(learner_id, learner_name, item, credit, mode, entry, max_time_allowed)
        if isinstance(comments_from_lms, str):
            cmi["cmi.comments_from_lms"] = comments_from_lms
        return cmi
    cmi = _initial_2004(scorm_version, learner_id, learner_name, item, credit, mode, entry, max_time_allowed)
    if scaled_passing_score is not None:
        _put_valid(cmi, scorm_version, "cmi.scaled_passing_score", number_text(scaled_passing_score))
    _put_records(cmi, "cmi.objectives", objectives)
    if comments_from_lms is not None and not isinstance(comments_from_lms, str):
        _put_records(cmi, "cmi.comments_from_lms", comments_from_lms)
    if scorm_version == SCORM_2004_4TH and item is not None:
        for index, data_map in enumerate(item.data_maps):
            cmi[f"adl.data.{index}.id"] = data_map.target_id
            if shared_data is not None and data_map.target_id in shared_data:
                cmi[f"adl.data.{index}.store"] = shared_data[data_map.target_id]
    return cmi


def _put_records(cmi: dict[str, str], array: str, records: Sequence[Mapping[str, str]]) -> None:
    for index, record in enumerate(records):
        for child, value in record.items():
            cmi[f"{array}.{index}.{child}"] = value


def _initial_12(
    learner_id: str,
    learner_name: str,
    item: Item | None,
    credit: str,
    mode: str,
    entry: str,
    max_time_allowed: str | None,
) -> dict[str, str]:
    cmi = {
        "cmi.core.student_id": learner_id,
        "cmi.core.student_name": learner_name,
        "cmi.core.credit": credit,
        "cmi.core.entry": entry,
        "cmi.core.lesson_mode": mode,
        "cmi.core.lesson_status": "not attempted",
        "cmi.core.total_time": "0000:00:00.00",
        "cmi.launch_data": "",
    }
    if item is None:
        return cmi
    if item.data_from_lms is not None:
        cmi["cmi.launch_data"] = item.data_from_lms
    if item.mastery_score is not None:
        _put_valid(cmi, SCORM_12, "cmi.student_data.mastery_score", number_text(item.mastery_score))
    _put_valid(cmi, SCORM_12, "cmi.student_data.max_time_allowed", max_time_allowed or item.max_time_allowed)
    _put_valid(cmi, SCORM_12, "cmi.student_data.time_limit_action", _time_limit_action(item.time_limit_action))
    return cmi


def _initial_2004(
    scorm_version: str,
    learner_id: str,
    learner_name: str,
    item: Item | None,
    credit: str,
    mode: str,
    entry: str,
    max_time_allowed: str | None,
) -> dict[str, str]:
    cmi = {
        "cmi.learner_id": learner_id,
        "cmi.learner_name": learner_name,
        "cmi.credit": credit,
        "cmi.mode": mode,
        "cmi.entry": entry,
        "cmi.completion_status": "unknown",
        "cmi.success_status": "unknown",
        "cmi.total_time": "PT0H0M0S",
        "cmi.time_limit_action": "continue,no message",
        "adl.nav.request": "_none_",
    }
    _put_valid(cmi, scorm_version, "cmi.max_time_allowed", max_time_allowed)
    if item is None:
        return cmi
    if item.data_from_lms is not None:
        cmi["cmi.launch_data"] = item.data_from_lms
    if "cmi.max_time_allowed" not in cmi:
        _put_valid(cmi, scorm_version, "cmi.max_time_allowed", item.max_time_allowed)
    _put_valid(cmi, scorm_version, "cmi.time_limit_action", _time_limit_action(item.time_limit_action))
    threshold = item.completion_threshold
    # 4th Edition: the threshold applies only with completedByMeasure="true"; 2nd/3rd: the element text.
    if threshold is not None and (threshold.completed_by_measure or scorm_version != SCORM_2004_4TH):
        _put_valid(cmi, scorm_version, "cmi.completion_threshold", number_text(threshold.min_progress_measure))
    return cmi


def adl_data_access(item: Item | None) -> list[tuple[bool, bool]]:
    """(readSharedData, writeSharedData) per adl.data record, for DataModel(data_access=...)."""
    if item is None:
        return []
    return [(data_map.read_shared_data, data_map.write_shared_data) for data_map in item.data_maps]
