"""The one table of SCORM run-time data-model elements, for the server and the browser.

`datamodel_table(scorm_version)` returns a JSON-serialisable dict. `datamodel.DataModel` interprets
it in Python; the server sends the same dict to the player, where `static/runtime/datamodel.js`
interprets it with the same algorithm. Element rules therefore live here only.

Element names use "n" for an array index ("cmi.interactions.n.id"). Each element spec has:
  access   "RO" | "WO" | "RW"
  kind     how a value is checked: string | localized | language | pattern | number | vocab | result |
           nav_request | interaction (see values.check_value)
  pattern  a key of `patterns` (kinds pattern, number, result)
  vocab    allowed tokens; `settable` narrows what SetValue accepts (1.2 lesson_status)
  range    [min, max], either may be null
  spm      smallest permitted maximum length; a hard limit in 1.2, advisory in 2004 (1.2 cmi.suspend_data's
           is the table's `suspend_data_limit` parameter: see `datamodel_table`)
  blank    "" is accepted in addition to the kind's format
  default  the value GetValue answers while the element is unset (absent: 2004 answers 403)
  depends  elements (with "n") that must be set first (2004: 408)
  unique   value must differ from the same element of every sibling record (351)
  write_once  once set, only the same value may be written again (351)
  computed the 2004 completion/success evaluation applied on GetValue (rte-rules.md 5.2)
  empty_unset  a stored "" reads as never set (403): an emptied adl.data store is no shared data
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from appliance.core.scorm import cmi_types
from appliance.core.scorm.model import SCORM_12, SCORM_2004_2ND, SCORM_2004_3RD, SCORM_2004_4TH, SCORM_VERSIONS

Spec = dict[str, Any]


def _e(access: str, kind: str, **rules: Any) -> Spec:
    """Build one element spec; keyword arguments are the rules listed in the module docstring."""
    return {"access": access, "kind": kind, **rules}


# ---------------------------------------------------------------------------------------------- 1.2
_STATUS_12 = ["passed", "completed", "failed", "incomplete", "browsed", "not attempted"]
_SCORE_12 = {"pattern": "decimal", "range": [0, 100], "blank": True, "default": ""}
_STR255 = {"spm": 255, "default": ""}
_STR4096 = {"spm": 4096, "default": ""}
_ID_12 = {"pattern": "identifier12", "spm": 255}

ELEMENTS_12: dict[str, Spec] = {
    "cmi.core.student_id": _e("RO", "pattern", **_ID_12, default=""),
    "cmi.core.student_name": _e("RO", "string", **_STR255),
    "cmi.core.lesson_location": _e("RW", "string", **_STR255),
    "cmi.core.credit": _e("RO", "vocab", vocab=["credit", "no-credit"], default="credit"),
    "cmi.core.lesson_status": _e("RW", "vocab", vocab=_STATUS_12, settable=_STATUS_12[:5], default="not attempted"),
    "cmi.core.entry": _e("RO", "vocab", vocab=["ab-initio", "resume", ""], default=""),
    "cmi.core.score.raw": _e("RW", "number", **_SCORE_12),
    "cmi.core.score.max": _e("RW", "number", **_SCORE_12),
    "cmi.core.score.min": _e("RW", "number", **_SCORE_12),
    "cmi.core.total_time": _e("RO", "pattern", pattern="timespan12", default="0000:00:00.00"),
    "cmi.core.lesson_mode": _e("RO", "vocab", vocab=["browse", "normal", "review"], default="normal"),
    "cmi.core.exit": _e("WO", "vocab", vocab=["time-out", "suspend", "logout", ""]),
    "cmi.core.session_time": _e("WO", "pattern", pattern="timespan12"),
    "cmi.suspend_data": _e("RW", "string", **_STR4096),
    "cmi.launch_data": _e("RO", "string", **_STR4096),
    "cmi.comments": _e("RW", "string", **_STR4096),
    "cmi.comments_from_lms": _e("RO", "string", **_STR4096),
    "cmi.objectives.n.id": _e("RW", "pattern", **_ID_12, default=""),
    "cmi.objectives.n.score.raw": _e("RW", "number", **_SCORE_12),
    "cmi.objectives.n.score.min": _e("RW", "number", **_SCORE_12),
    "cmi.objectives.n.score.max": _e("RW", "number", **_SCORE_12),
    "cmi.objectives.n.status": _e("RW", "vocab", vocab=_STATUS_12, default="not attempted"),
    "cmi.student_data.mastery_score": _e("RO", "number", pattern="decimal", range=[0, 100], blank=True, default=""),
    "cmi.student_data.max_time_allowed": _e("RO", "pattern", pattern="timespan12", blank=True, default=""),
    "cmi.student_data.time_limit_action": _e(
        "RO",
        "vocab",
        vocab=["exit,message", "exit,no message", "continue,message", "continue,no message", ""],
        default="",
    ),
    "cmi.student_preference.audio": _e("RW", "number", pattern="sinteger", range=[-1, 100], default="0"),
    "cmi.student_preference.language": _e("RW", "string", **_STR255),
    "cmi.student_preference.speed": _e("RW", "number", pattern="sinteger", range=[-100, 100], default="0"),
    "cmi.student_preference.text": _e("RW", "number", pattern="sinteger", range=[-1, 1], default="0"),
    # Interactions are a write-only journal in 1.2. Response formats are only length-checked:
    # real 1.2 content (e.g. Storyline) writes long identifiers where the spec wants single characters.
    "cmi.interactions.n.id": _e("WO", "pattern", **_ID_12),
    "cmi.interactions.n.objectives.n.id": _e("WO", "pattern", **_ID_12),
    "cmi.interactions.n.time": _e("WO", "pattern", pattern="time12"),
    "cmi.interactions.n.type": _e(
        "WO",
        "vocab",
        vocab=["true-false", "choice", "fill-in", "matching", "performance", "sequencing", "likert", "numeric"],
    ),
    "cmi.interactions.n.correct_responses.n.pattern": _e("WO", "string", spm=255),
    "cmi.interactions.n.weighting": _e("WO", "number", pattern="decimal"),
    "cmi.interactions.n.student_response": _e("WO", "string", spm=255),
    "cmi.interactions.n.result": _e(
        "WO", "result", vocab=["correct", "wrong", "unanticipated", "neutral"], pattern="decimal"
    ),
    "cmi.interactions.n.latency": _e("WO", "pattern", pattern="timespan12"),
}

CHILDREN_12: dict[str, str] = {
    "cmi": "core,suspend_data,launch_data,comments,objectives,student_data,student_preference,interactions",
    "cmi.core": (
        "student_id,student_name,lesson_location,credit,lesson_status,entry,score,total_time,lesson_mode,exit,"
        "session_time"
    ),
    "cmi.core.score": "raw,min,max",
    "cmi.objectives": "id,score,status",
    "cmi.objectives.n.score": "raw,min,max",
    "cmi.student_data": "mastery_score,max_time_allowed,time_limit_action",
    "cmi.student_preference": "audio,language,speed,text",
    "cmi.interactions": "id,objectives,time,type,correct_responses,weighting,student_response,result,latency",
}

# 1.2 names no SPM for arrays; these are the appliance's limits (protect storage), far above real use.
ARRAYS_12: dict[str, Spec] = {
    "cmi.objectives": {"max_records": 1000},
    "cmi.interactions": {"max_records": 1000},
    "cmi.interactions.n.objectives": {"max_records": 100},
    "cmi.interactions.n.correct_responses": {"max_records": 100},
}

# --------------------------------------------------------------------------------------------- 2004
_REAL = {"pattern": "decimal"}
_ID = {"pattern": "identifier", "spm": 4000}
_COMPLETION = ["completed", "incomplete", "not attempted", "unknown"]
_SUCCESS = ["passed", "failed", "unknown"]
_IX = "cmi.interactions.n"
_OBJ = "cmi.objectives.n"
_VALID = ["true", "false", "unknown"]
_TLA = ["exit,message", "continue,message", "exit,no message", "continue,no message"]
_INTERACTION_TYPES = list(cmi_types.INTERACTION_TYPES)


def _comment(access: str) -> dict[str, Spec]:
    """comments_from_learner and comments_from_lms have the same three children."""
    return {
        "comment": _e(access, "localized", spm=4000),
        "location": _e(access, "string", spm=250),
        "timestamp": _e(access, "pattern", pattern="timestamp"),
    }


def _elements_2004(edition: str) -> dict[str, Spec]:
    """All 2004 elements of one edition (2nd/3rd/4th differ in suspend_data SPM, adl.data, jump)."""
    elements: dict[str, Spec] = {}
    for child, spec in _comment("RW").items():
        elements[f"cmi.comments_from_learner.n.{child}"] = spec
    for child, spec in _comment("RO").items():
        elements[f"cmi.comments_from_lms.n.{child}"] = spec
    completion = {"threshold": "cmi.completion_threshold", "measure": "cmi.progress_measure"}
    success = {"threshold": "cmi.scaled_passing_score", "measure": "cmi.score.scaled"}
    elements.update(
        {
            "cmi.completion_status": _e(
                "RW",
                "vocab",
                vocab=_COMPLETION,
                default="unknown",
                computed={**completion, "above": "completed", "below": "incomplete"},
            ),
            "cmi.completion_threshold": _e("RO", "number", **_REAL, range=[0, 1]),
            "cmi.credit": _e("RO", "vocab", vocab=["credit", "no-credit"], default="credit"),
            "cmi.entry": _e("RO", "vocab", vocab=["ab-initio", "resume", ""], default=""),
            "cmi.exit": _e("WO", "vocab", vocab=["time-out", "suspend", "logout", "normal", ""]),
            f"{_IX}.id": _e("RW", "pattern", **_ID),
            f"{_IX}.type": _e("RW", "vocab", vocab=_INTERACTION_TYPES),
            f"{_IX}.objectives.n.id": _e("RW", "pattern", **_ID, unique=True),
            f"{_IX}.timestamp": _e("RW", "pattern", pattern="timestamp"),
            f"{_IX}.correct_responses.n.pattern": _e(
                "RW", "interaction", role="pattern", type_of=f"{_IX}.type", depends=[f"{_IX}.type"]
            ),
            f"{_IX}.weighting": _e("RW", "number", **_REAL),
            f"{_IX}.learner_response": _e(
                "RW", "interaction", role="response", type_of=f"{_IX}.type", depends=[f"{_IX}.type"]
            ),
            f"{_IX}.result": _e(
                "RW", "result", vocab=["correct", "incorrect", "unanticipated", "neutral"], pattern="decimal"
            ),
            f"{_IX}.latency": _e("RW", "pattern", pattern="duration"),
            f"{_IX}.description": _e("RW", "localized", spm=250),
            "cmi.launch_data": _e("RO", "string", spm=4000),
            "cmi.learner_id": _e("RO", "pattern", **_ID),
            "cmi.learner_name": _e("RO", "localized", spm=250),
            "cmi.learner_preference.audio_level": _e("RW", "number", **_REAL, range=[0, None], default="1"),
            "cmi.learner_preference.language": _e("RW", "language", spm=250, blank=True, default=""),
            "cmi.learner_preference.delivery_speed": _e("RW", "number", **_REAL, range=[0, None], default="1"),
            "cmi.learner_preference.audio_captioning": _e("RW", "vocab", vocab=["-1", "0", "1"], default="0"),
            "cmi.location": _e("RW", "string", spm=1000),
            "cmi.max_time_allowed": _e("RO", "pattern", pattern="duration"),
            "cmi.mode": _e("RO", "vocab", vocab=["browse", "normal", "review"], default="normal"),
            f"{_OBJ}.id": _e("RW", "pattern", **_ID, unique=True, write_once=True),
            f"{_OBJ}.score.scaled": _e("RW", "number", **_REAL, range=[-1, 1]),
            f"{_OBJ}.score.raw": _e("RW", "number", **_REAL),
            f"{_OBJ}.score.min": _e("RW", "number", **_REAL),
            f"{_OBJ}.score.max": _e("RW", "number", **_REAL),
            f"{_OBJ}.success_status": _e("RW", "vocab", vocab=_SUCCESS, default="unknown"),
            f"{_OBJ}.completion_status": _e("RW", "vocab", vocab=_COMPLETION, default="unknown"),
            f"{_OBJ}.progress_measure": _e("RW", "number", **_REAL, range=[0, 1]),
            f"{_OBJ}.description": _e("RW", "localized", spm=250),
            "cmi.progress_measure": _e("RW", "number", **_REAL, range=[0, 1]),
            "cmi.scaled_passing_score": _e("RO", "number", **_REAL, range=[-1, 1]),
            "cmi.score.scaled": _e("RW", "number", **_REAL, range=[-1, 1]),
            "cmi.score.raw": _e("RW", "number", **_REAL),
            "cmi.score.min": _e("RW", "number", **_REAL),
            "cmi.score.max": _e("RW", "number", **_REAL),
            "cmi.session_time": _e("WO", "pattern", pattern="duration"),
            "cmi.success_status": _e(
                "RW",
                "vocab",
                vocab=_SUCCESS,
                default="unknown",
                computed={**success, "above": "passed", "below": "failed"},
            ),
            "cmi.suspend_data": _e("RW", "string", spm=4000 if edition == SCORM_2004_2ND else 64000),
            "cmi.time_limit_action": _e("RO", "vocab", vocab=_TLA, default="continue,no message"),
            "cmi.total_time": _e("RO", "pattern", pattern="duration", default="PT0H0M0S"),
            "adl.nav.request": _e(
                "RW",
                "nav_request",
                vocab=["continue", "previous", "exit", "exitAll", "abandon", "abandonAll", "suspendAll", "_none_"],
                pattern="nav_target" if edition == SCORM_2004_4TH else "nav_target_3rd",
                default="_none_",
            ),
            "adl.nav.request_valid.continue": _e("RO", "vocab", vocab=_VALID, default="unknown"),
            "adl.nav.request_valid.previous": _e("RO", "vocab", vocab=_VALID, default="unknown"),
        }
    )
    for name, spec in elements.items():
        # Every child of an interaction/objective record needs the record's id first (408).
        for record in (_IX, _OBJ):
            nested = name.startswith(f"{_IX}.objectives.")  # its record's only child is the id
            if name.startswith(record + ".") and name != f"{record}.id" and not nested:
                spec["depends"] = [f"{record}.id", *spec.get("depends", [])]
    if edition == SCORM_2004_4TH:
        elements["adl.data.n.id"] = _e("RO", "pattern", **_ID)
        elements["adl.data.n.store"] = _e("RW", "string", spm=64000, depends=["adl.data.n.id"], empty_unset=True)
    return dict(sorted(elements.items()))


def _children_2004(edition: str) -> dict[str, str]:
    children = {
        "cmi.comments_from_learner": "comment,location,timestamp",
        "cmi.comments_from_lms": "comment,location,timestamp",
        "cmi.interactions": "id,type,objectives,timestamp,correct_responses,weighting,learner_response,result,"
        "latency,description",
        "cmi.learner_preference": "audio_level,language,delivery_speed,audio_captioning",
        "cmi.objectives": "id,score,success_status,completion_status,progress_measure,description",
        "cmi.objectives.n.score": "scaled,raw,min,max",
        "cmi.score": "scaled,raw,min,max",
    }
    if edition == SCORM_2004_4TH:
        children["adl.data"] = "id,store"
    return children


def _arrays_2004(edition: str) -> dict[str, Spec]:
    """Collections: `spm` is the minimum an LMS must hold; `max_records` is the appliance's hard limit (351).

    `id_field` names the child that must be written first to create a record (else 408).
    `fixed`: the records come from the LMS (adl.data, from the package's data maps), so SetValue never
    appends one (351, as the conformance suite's DMI expects, not 408).
    """
    arrays: dict[str, Spec] = {
        "cmi.comments_from_learner": {"spm": 250, "max_records": 1000},
        "cmi.comments_from_lms": {"spm": 100, "max_records": 1000},
        "cmi.interactions": {"spm": 250, "max_records": 1000, "id_field": "id"},
        "cmi.interactions.n.objectives": {"spm": 10, "max_records": 100, "id_field": "id"},
        "cmi.interactions.n.correct_responses": {"spm": 5, "max_records": 100},
        "cmi.objectives": {"spm": 100, "max_records": 1000, "id_field": "id"},
    }
    if edition == SCORM_2004_4TH:
        arrays["adl.data"] = {"spm": 250, "max_records": 1000, "id_field": "id", "fixed": True}
    return arrays


def _targets_2004(edition: str) -> dict[str, Spec]:
    """Elements addressed with a `.{target=ID}` suffix (rte-rules.md 5.5); answers come from the sequencer."""
    targets = {"adl.nav.request_valid.choice": {"access": "RO", "default": "unknown"}}
    if edition == SCORM_2004_4TH:
        targets["adl.nav.request_valid.jump"] = {"access": "RO", "default": "unknown"}
    return targets


# SCORM 1.2 cmi.suspend_data: the spec's limit (CMIString4096), and the most the appliance lets a 1.2
# package store instead (2004's SPM). Authoring tools (Storyline, Captivate) write more than 4096
# characters to 1.2 suspend_data, so the appliance's services raise the limit unless told to be strict.
SUSPEND_DATA_12_SPM = 4096
SUSPEND_DATA_12_MAX = 64000


def _elements_12(suspend_data_limit: int) -> dict[str, Spec]:
    """The 1.2 elements, with `suspend_data_limit` as cmi.suspend_data's (hard) limit."""
    if suspend_data_limit == SUSPEND_DATA_12_SPM:
        return ELEMENTS_12
    return {**ELEMENTS_12, "cmi.suspend_data": {**ELEMENTS_12["cmi.suspend_data"], "spm": suspend_data_limit}}


def _build(scorm_version: str, suspend_data_limit: int) -> dict[str, Any]:
    is_12 = scorm_version == SCORM_12
    return {
        "version": scorm_version,
        "family": "1.2" if is_12 else "2004",
        "api_name": "API" if is_12 else "API_1484_11",
        "data_model_version": "3.4" if is_12 else "1.0",
        # 1.2 SPMs are hard limits (405); 2004 SPMs are minimums, and longer values are stored up to
        # max_chars, the appliance's own limit against unbounded storage (beyond it: 351). In 1.2,
        # max_chars bounds only the elements without an SPM (numbers, patterns).
        "spm_is_limit": is_12,
        "max_chars": 4096 if is_12 else 262144,
        "elements": _elements_12(suspend_data_limit) if is_12 else _elements_2004(scorm_version),
        "children": CHILDREN_12 if is_12 else _children_2004(scorm_version),
        "arrays": ARRAYS_12 if is_12 else _arrays_2004(scorm_version),
        "targets": {} if is_12 else _targets_2004(scorm_version),
        # Names that look like keywords but are undefined (ADL 2004 has no cmi._children).
        "undefined": [] if is_12 else ["cmi._children"],
        "patterns": cmi_types.PATTERNS,
        "language_codes": "" if is_12 else cmi_types.LANGUAGE_CODES,  # space-separated
        "interaction_types": {} if is_12 else cmi_types.INTERACTION_TYPES,
        "errors": cmi_types.ERRORS_12 if is_12 else cmi_types.ERRORS_2004,
        "rte": cmi_types.RTE_12 if is_12 else cmi_types.RTE_2004,
        "error_strings": cmi_types.ERROR_STRINGS_12 if is_12 else cmi_types.ERROR_STRINGS_2004,
    }


@functools.lru_cache(maxsize=32)
def _cached(scorm_version: str, suspend_data_limit: int) -> dict[str, Any]:
    return _build(scorm_version, suspend_data_limit)


def _table_key(scorm_version: str, suspend_data_limit: int | None) -> tuple[str, int]:
    """Check the arguments; 2004 tables ignore the 1.2 limit (one cached table per 2004 edition)."""
    if scorm_version not in SCORM_VERSIONS:
        raise ValueError(f"unknown SCORM version {scorm_version!r}; expected one of {SCORM_VERSIONS}")
    if suspend_data_limit is None or scorm_version != SCORM_12:
        return scorm_version, SUSPEND_DATA_12_SPM
    if (
        isinstance(suspend_data_limit, bool)
        or not isinstance(suspend_data_limit, int)
        or not SUSPEND_DATA_12_SPM <= suspend_data_limit <= SUSPEND_DATA_12_MAX
    ):
        raise ValueError(
            f"suspend_data_limit must be an integer from {SUSPEND_DATA_12_SPM} to {SUSPEND_DATA_12_MAX}, "
            f"not {suspend_data_limit!r}"
        )
    return scorm_version, suspend_data_limit


def datamodel_table(scorm_version: str, *, suspend_data_limit: int | None = None) -> dict[str, Any]:
    """The element table for one SCORM version, as a fresh JSON-serialisable dict.

    `suspend_data_limit` (SUSPEND_DATA_12_SPM..SUSPEND_DATA_12_MAX) is 1.2 cmi.suspend_data's limit in
    characters; None is the spec's 4096. It is a parameter of the table, not a second table: the player
    receives the table with the limit of its session's package, and the server checks with the same.
    2004 ignores it (its suspend_data SPM is a minimum; see `max_chars`).

    Served to the browser runtime unchanged; callers may mutate the copy they get.
    """
    return copy.deepcopy(_cached(*_table_key(scorm_version, suspend_data_limit)))


def shared_table(scorm_version: str, suspend_data_limit: int | None = None) -> dict[str, Any]:
    """The cached table itself, for read-only use by the Python data model (no copy per call)."""
    return _cached(*_table_key(scorm_version, suspend_data_limit))


__all__ = [
    "SCORM_12",
    "SCORM_2004_2ND",
    "SCORM_2004_3RD",
    "SCORM_2004_4TH",
    "SUSPEND_DATA_12_MAX",
    "SUSPEND_DATA_12_SPM",
    "datamodel_table",
    "shared_table",
]
