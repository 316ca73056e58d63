"""The SequencingEngine facade: OP.1 end to end, persistence, look-ahead, controls, TOC, launch policy."""

from __future__ import annotations

import json

from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing.engine import NOT_CURRENT, SequencingEngine, parse_nav_request
from tests.core.scorm.sequencing.builders import (
    FLOW,
    FLOW_NO_CHOICE,
    cluster,
    engine,
    hide,
    leaf,
    manifest,
    map_info,
    play,
    primary,
    rule,
    rules,
    seq,
)

VALID = "adl.nav.request_valid."


def test_op1_walks_a_flow_course_to_the_end() -> None:
    eng = engine(leaf("a"), cluster("m", leaf("b"), leaf("c"), sequencing=FLOW), leaf("d"))
    assert eng.navigate("start", now=0).delivered == "a"
    assert [play(eng) for _ in range(3)] == ["b", "c", "d"]
    final = eng.terminate("d", {}, "continue")
    assert final.ended and eng.current is None
    assert eng.tracking.completed(eng.tree.root) is True and eng.tracking.satisfied(eng.tree.root) is True


def test_state_round_trips_through_json_mid_session() -> None:
    """dump_state() is JSON; a restored engine continues exactly where the first one was."""
    items = (leaf("a"), leaf("b"), leaf("c"))
    eng = engine(*items)
    eng.navigate("start")
    play(eng, {"cmi.success_status": "failed"})
    state = json.loads(json.dumps(eng.dump_state()))
    restored = engine(*items, state=state)
    assert restored.current == "b"
    assert restored.tracking.satisfied(restored.tree["a"]) is False
    assert play(restored) == "c"


def test_global_objectives_are_the_callers_dict() -> None:
    """The server passes the learner's store in and persists it afterwards (scoping is its decision)."""
    store: dict[str, dict[str, object]] = {"g": {"satisfied": True}}
    reader = seq(primary("p", map_info("g")), "</imsss:objectives>", rules(rule("pre", "skip", "satisfied")))
    eng = engine(leaf("a", reader), leaf("b"), global_objectives=store)
    assert eng.navigate("start").delivered == "b"
    assert eng.global_objectives is store


def test_course_scoped_globals_are_cleared_when_the_course_is_retried() -> None:
    """objectivesGlobalToSystem=false: a retry of the whole course starts its global objectives afresh."""
    writer = seq(
        primary("p", map_info("g", writeSatisfiedStatus=True)),
        "</imsss:objectives>",
        rules(rule("post", "retryAll", "not satisfied")),
    )
    eng = engine(leaf("a", writer), objectives_global_to_system=False)
    eng.navigate("start")
    result = eng.terminate("a", {"cmi.success_status": "failed"}, "continue")
    assert result.delivered == "a" and "g" not in eng.global_objectives


def test_request_valid_during_a_sco_session() -> None:
    """adl.nav.request_valid: continue when the parent flows, previous by dry run, choice/jump per target."""
    eng = engine(leaf("a"), leaf("b"), leaf("c"))
    eng.navigate("start")
    valid = eng.request_valid()
    assert valid[VALID + "continue"] == "true"
    assert valid[VALID + "previous"] == "false"
    assert valid[VALID + "choice.{target=c}"] == "true"
    assert valid[VALID + "jump.{target=c}"] == "true"
    assert valid[VALID + "jump.{target=root}"] == "false"
    play(eng)
    assert eng.request_valid()[VALID + "previous"] == "true"


def test_request_valid_without_choice_or_flow() -> None:
    eng = engine(leaf("a"), leaf("b"), sequencing=FLOW_NO_CHOICE)
    eng.navigate("start")
    assert eng.request_valid()[VALID + "choice.{target=b}"] == "false"
    free = engine(leaf("a"), leaf("b"), sequencing=None)
    free.launch()
    assert free.request_valid()[VALID + "continue"] == "false"


def test_available_controls_follow_control_modes_and_hide_lms_ui() -> None:
    eng = engine(leaf("a", presentation=hide("continue", "suspendAll")), leaf("b"), sequencing=FLOW_NO_CHOICE)
    assert eng.available_controls()["start"]
    eng.navigate("start")
    controls = eng.available_controls()
    assert not controls["continue"] and not controls["suspendAll"]  # hidden by the SCO's hideLMSUI
    assert not controls["previous"] and not controls["choice"]
    assert controls["exitAll"] and controls["exit"]
    play(eng)
    controls = eng.available_controls()
    assert controls["continue"] and controls["previous"] and controls["suspendAll"]


def test_toc_lists_available_activities_with_status() -> None:
    hidden = seq(rules(rule("pre", "hiddenFromChoice", "always")))
    eng = engine(leaf("a"), leaf("b", hidden), leaf("c", isvisible=False))
    eng.navigate("start")
    play(eng)
    toc = eng.toc()
    assert toc["id"] == "root" and [c["id"] for c in toc["children"]] == ["a", "b", "c"]
    a, b, c = toc["children"]
    assert a["status"]["completion"] == "completed" and a["status"]["success"] == "passed" and a["selectable"]
    assert not b["visible"] and not b["selectable"]
    assert not c["visible"] and c["selectable"]  # invisible in the TOC but still a valid choice target
    assert b["current"] is True


def test_terminate_without_request_keeps_the_sco_current_until_the_lms_asks() -> None:
    """adl.nav.request _none_: the attempt stays open; the LMS UI request later ends it."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    result = eng.terminate("a", {"cmi.completion_status": "incomplete"}, "_none_")
    assert result.delivered is None and eng.current == "a" and eng.tracking.st(eng.tree["a"]).active
    assert eng.navigate("continue").delivered == "b"
    assert eng.tracking.completed(eng.tree["a"]) is False


def test_late_terminate_after_an_lms_ui_request_is_ignored() -> None:
    """The LMS UI navigated while the SCO ran; the SCO's Terminate (and its request) arrives afterwards."""
    eng = engine(leaf("a"), leaf("b"), leaf("c"))
    eng.navigate("start")
    eng.report_runtime("a", {"cmi.completion_status": "completed"})
    assert eng.navigate("continue").delivered == "b"
    late = eng.terminate("a", {"cmi.completion_status": "incomplete"}, "continue")
    assert late.exception == NOT_CURRENT and eng.current == "b"
    assert eng.tracking.completed(eng.tree["a"]) is True


def test_launch_resumes_a_suspended_session() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.launch()
    play(eng)
    eng.terminate("b", {"cmi.exit": "suspend"}, "suspendAll")
    again = engine(leaf("a"), leaf("b"), state=eng.dump_state())
    assert again.launch().delivered == "b"


def test_launch_redelivers_the_running_activity() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.launch()
    assert eng.launch().delivered == "a"


def test_scorm12_courses_get_choice_and_flow() -> None:
    """SCORM 1.2 has no sequencing: previous/continue and the TOC work like in common LMSs."""
    built = manifest(leaf("a"), leaf("b"), version=SCORM_12, sequencing=seq('<imsss:controlMode flow="false"/>'))
    eng = SequencingEngine.from_manifest(built)
    assert eng.launch().delivered == "a"
    assert eng.terminate("a", {"cmi.core.lesson_status": "completed"}, "continue").delivered == "b"
    assert eng.request_valid()[VALID + "choice.{target=a}"] == "true"


def test_parse_nav_request() -> None:
    assert parse_nav_request("{target=x.y}choice") == ("choice", "x.y")
    assert parse_nav_request("{target=x}jump") == ("jump", "x")
    assert parse_nav_request(None) == ("_none_", None)
    assert parse_nav_request("exitAll") == ("exitAll", None)
