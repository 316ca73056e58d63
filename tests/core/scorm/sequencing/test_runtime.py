"""rte-rules 5.4 run-time data -> tracking model, and 5.1 initial values that come from sequencing."""

from __future__ import annotations

from appliance.core.scorm.model import DataMap
from tests.core.scorm.sequencing.builders import (
    engine,
    leaf,
    map_info,
    objective,
    play,
    primary,
    seq,
    threshold,
)

OBJECTIVES = seq(
    primary("p", map_info("gp", writeSatisfiedStatus=True, writeNormalizedMeasure=True)),
    objective("o2", map_info("g2")),
    "</imsss:objectives>",
    '<imsss:limitConditions attemptAbsoluteDurationLimit="PT30M"/>',
)


def test_report_maps_completion_success_and_score_to_the_primary_objective() -> None:
    """5.4: completion_status -> attempt progress, success_status + score.scaled -> primary objective."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    eng.report_runtime(
        "a", {"cmi.completion_status": "completed", "cmi.success_status": "failed", "cmi.score.scaled": "0.25"}
    )
    a = eng.tree["a"]
    t = eng.tracking
    assert (t.completed(a), t.satisfied(a), t.measure(a)) == (True, False, 0.25)


def test_not_attempted_counts_as_incomplete() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    eng.report_runtime("a", {"cmi.completion_status": "not attempted"})
    assert eng.tracking.completed(eng.tree["a"]) is False


def test_cmi_objectives_feed_the_matching_activity_objectives() -> None:
    """5.4: cmi.objectives.n with an objective's ID updates that objective (primary included)."""
    eng = engine(leaf("a", OBJECTIVES), leaf("b"))
    eng.navigate("start")
    eng.report_runtime(
        "a",
        {
            "cmi.objectives.0.id": "o2",
            "cmi.objectives.0.success_status": "passed",
            "cmi.objectives.0.score.raw": "7",
            "cmi.objectives.1.id": "p",
            "cmi.objectives.1.score.scaled": "0.5",
            "cmi.objectives.2.id": "unknown-objective",
            "cmi.objectives.2.success_status": "passed",
        },
    )
    a = eng.tree["a"]
    t = eng.tracking
    o2 = a.definition.objective("o2")
    assert t.obj(a, o2).satisfied is True and t.obj(a, o2).raw == 7.0
    assert t.measure(a) == 0.5
    assert eng.global_objectives["gp"] == {"measure": 0.5}


def test_writes_reach_global_objectives_and_reads_come_back() -> None:
    """mapInfo write then read: another activity reading the same global sees the status."""
    writer = seq(primary("p", map_info("g", writeSatisfiedStatus=True)), "</imsss:objectives>")
    reader = seq(primary("q", map_info("g")), "</imsss:objectives>")
    eng = engine(leaf("a", writer), leaf("b", reader))
    eng.navigate("start")
    eng.terminate("a", {"cmi.success_status": "passed"}, "continue")
    assert eng.global_objectives["g"]["satisfied"] is True
    assert eng.tracking.satisfied(eng.tree["b"]) is True


def test_completed_by_measure_follows_progress_measure() -> None:
    """4th Ed. completedByMeasure: progress_measure against minProgressMeasure decides completion."""
    eng = engine(leaf("a", completion_threshold=threshold(0.5)), leaf("b"))
    eng.navigate("start")
    eng.report_runtime("a", {"cmi.progress_measure": "0.4", "cmi.completion_status": "completed"})
    assert eng.tracking.completed(eng.tree["a"]) is False


def test_scorm12_lesson_status_is_understood() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    eng.report_runtime(
        "a", {"cmi.core.lesson_status": "failed", "cmi.core.score.raw": "40", "cmi.core.score.max": "80"}
    )
    a = eng.tree["a"]
    assert (eng.tracking.completed(a), eng.tracking.satisfied(a), eng.tracking.measure(a)) == (True, False, 0.5)


def test_reports_for_an_inactive_activity_are_ignored() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    assert not eng.report_runtime("b", {"cmi.success_status": "passed"})


def test_initial_values_from_sequencing() -> None:
    """5.1: objectives with IDs (values read through maps), scaled_passing_score, max_time_allowed."""
    measured = seq(primary("p", by_measure=0.8), "</imsss:objectives>")
    eng = engine(leaf("a", OBJECTIVES), leaf("b", measured, completion_threshold=threshold(0.7)))
    eng.global_objectives["g2"] = {"satisfied": False, "measure": -0.5}
    values = eng.initial_cmi_overrides("a")
    assert values["cmi.objectives.0.id"] == "p" and values["cmi.objectives.1.id"] == "o2"
    assert values["cmi.objectives.1.success_status"] == "failed"
    assert values["cmi.objectives.1.score.scaled"] == "-0.5"
    assert values["cmi.max_time_allowed"] == "PT30M"
    assert "cmi.scaled_passing_score" not in values
    other = eng.initial_cmi_overrides("b")
    assert other["cmi.scaled_passing_score"] == "0.8" and other["cmi.completion_threshold"] == "0.7"
    assert eng.initial_cmi_overrides("nope") == {}


def test_shared_data_stores() -> None:
    """4th Ed. adl.data: ids and readable stores are offered; writable stores are kept per learner."""
    maps = [DataMap(target_id="notes", write_shared_data=True), DataMap(target_id="ro", write_shared_data=False)]
    eng = engine(leaf("a", data_maps=maps), leaf("b"), shared_data={"ro": "hello"})
    eng.navigate("start")
    values = eng.initial_cmi_overrides("a")
    assert values["adl.data.0.id"] == "notes" and values["adl.data.1.store"] == "hello"
    eng.report_runtime("a", {"adl.data.0.id": "notes", "adl.data.0.store": "x", "adl.data.1.store": "no"})
    assert eng.shared_data == {"ro": "hello", "notes": "x"}


UNTRACKED = '<imsss:deliveryControls tracked="false"/>'


def test_untracked_activity_still_shows_global_objective_reads() -> None:
    """RTE 4.2.17 / 5.1: an untracked activity keeps no tracking data, but its cmi.objectives start from what
    its maps read; a satisfiedByMeasure objective's status comes from the read measure (CTS OB-14a)."""
    by_measure = (
        '<imsss:objective objectiveID="m" satisfiedByMeasure="true">'
        f"<imsss:minNormalizedMeasure>0.6</imsss:minNormalizedMeasure>{map_info('gm')}</imsss:objective>"
    )
    xml = seq(primary(), objective("o", map_info("go")), by_measure, "</imsss:objectives>", UNTRACKED)
    eng = engine(leaf("a", xml), leaf("b"))
    eng.global_objectives.update(
        {"go": {"satisfied": True, "measure": -0.5}, "gm": {"satisfied": True, "measure": 0.3}}
    )
    values = eng.initial_cmi_overrides("a")
    assert values["cmi.objectives.0.id"] == "o"
    assert (values["cmi.objectives.0.success_status"], values["cmi.objectives.0.score.scaled"]) == ("passed", "-0.5")
    assert (values["cmi.objectives.1.success_status"], values["cmi.objectives.1.score.scaled"]) == ("failed", "0.3")


COMPLETION_MAP = (
    '<adlseq:objectives><adlseq:objective objectiveID="p"><adlseq:mapInfo targetObjectiveID="gc" '
    'writeCompletionStatus="true" writeProgressMeasure="true"/></adlseq:objective></adlseq:objectives>'
)


def test_primary_completion_is_shown_as_the_global_says() -> None:
    """5.1 (4th Ed. adlseq:mapInfo readCompletionStatus): the primary objective's completion_status is the
    global's status as written, not re-evaluated against this activity's own threshold (CTS CO-10)."""
    xml = seq(primary("p"), "</imsss:objectives>", COMPLETION_MAP)
    eng = engine(
        leaf("a", xml, completion_threshold=threshold(0.4)),
        leaf("b", xml, completion_threshold=threshold(0.15)),
    )
    eng.navigate("start")
    play(eng, {"cmi.objectives.0.id": "p", "cmi.objectives.0.progress_measure": "0.2"})
    values = eng.initial_cmi_overrides("b")
    assert values["cmi.objectives.0.progress_measure"] == "0.2"
    assert values["cmi.objectives.0.completion_status"] == "incomplete"  # 0.2 < a's 0.4, though >= b's 0.15


def test_empty_shared_data_store_is_no_data() -> None:
    """4th Ed. adl.data: a store set to "" is removed, so the next reader gets 403 not initialized (CTS DDM)."""
    maps = [DataMap(target_id="notes", write_shared_data=True)]
    eng = engine(leaf("a", data_maps=maps), leaf("b"), shared_data={"notes": "old"})
    eng.navigate("start")
    eng.report_runtime("a", {"adl.data.0.store": ""})
    assert eng.shared_data == {}
    assert "adl.data.0.store" not in eng.initial_cmi_overrides("a")
