"""TB.2.1 exit action rules, TB.2.2 post-condition rules, TB.2.3 Termination Request Process; UP.3/UP.4."""

from __future__ import annotations

from tests.core.scorm.sequencing.builders import (
    FLOW_MODE,
    cluster,
    end_objectives,
    engine,
    leaf,
    map_info,
    play,
    primary,
    rule,
    rules,
    seq,
)

PASSED = {"cmi.success_status": "passed", "cmi.completion_status": "completed"}


def test_up4_silent_sco_counts_as_completed_and_satisfied() -> None:
    """UP.4 End Attempt: a tracked leaf that reported nothing becomes completed and satisfied."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    play(eng)
    a = eng.tree["a"]
    assert eng.tracking.completed(a) is True and eng.tracking.satisfied(a) is True


def test_up4_content_set_flags_and_explicit_unknown_keep_the_status_unknown() -> None:
    """UP.4: completionSetByContent / objectiveSetByContent, or the SCO reporting unknown, prevent the defaults."""
    set_by_content = seq('<imsss:deliveryControls completionSetByContent="true" objectiveSetByContent="true"/>')
    eng = engine(leaf("a", set_by_content), leaf("b"), leaf("c"))
    eng.navigate("start")
    play(eng)
    play(eng, {"cmi.success_status": "unknown", "cmi.completion_status": "unknown"})
    for act in ("a", "b"):
        assert eng.tracking.completed(eng.tree[act]) is None
        assert eng.tracking.satisfied(eng.tree[act]) is None


def test_tb21_exit_action_rule_on_an_ancestor_ends_the_subtree() -> None:
    """TB.2.1: the first ancestor (from the root) whose exit rule fires ends, and sequencing starts from it."""
    exits = seq(FLOW_MODE, rules(rule("exit", "exit", "satisfied")))
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=exits), leaf("c"))
    eng.navigate("start")
    assert play(eng, {"cmi.success_status": "failed"}) == "b"
    assert play(eng, PASSED) == "c"  # m is not satisfied (a failed): ordinary flow
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=exits), leaf("c"))
    eng.navigate("start")
    assert play(eng, PASSED) == "b"
    # b passes too: m is satisfied, its exit rule ends m and the previous request now starts from m itself.
    result = eng.terminate("b", PASSED, "previous")
    assert result.exception == "SB.2.8-2" and eng.current == "m"
    assert eng.tracking.st(eng.tree["m"]).active is False


def test_tb22_exit_parent_and_post_condition_continue() -> None:
    """TB.2.2 exitParent moves up; the parent's post-condition (continue) then decides the next request."""
    leave = seq(rules(rule("post", "exitParent", "always")))
    parent = seq(FLOW_MODE, rules(rule("post", "continue", "always")))
    eng = engine(cluster("m", leaf("a", leave), leaf("b"), sequencing=parent), leaf("c"))
    eng.navigate("start")
    assert play(eng, nav="previous") == "c"


def test_tb22_exit_all_post_condition_ends_the_course() -> None:
    eng = engine(leaf("a", seq(rules(rule("post", "exitAll", "always")))), leaf("b"))
    eng.navigate("start")
    assert eng.terminate("a", {}, "continue").ended


def test_tb22_retry_all_restarts_the_course() -> None:
    """TB.2.2 retryAll: exitAll then retry of the root -> the first activity again, as a new attempt."""
    eng = engine(leaf("a"), leaf("b", seq(rules(rule("post", "retryAll", "not satisfied")))))
    eng.navigate("start")
    play(eng)
    result = eng.terminate("b", {"cmi.success_status": "failed"}, "continue")
    assert result.delivered == "a" and result.attempt == 2
    assert eng.tracking.st(eng.tree.root).attempt_count == 2


def test_tb23_exit_all_ends_every_attempt() -> None:
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=seq(FLOW_MODE)))
    eng.navigate("start")
    result = eng.navigate("exitAll")
    assert result.ended and not result.suspended
    assert not any(record.active for record in eng.tracking.state.activities.values())


def test_tb23_suspend_all_then_resume_all_continues_the_same_attempt() -> None:
    """TB.2.3 suspendAll + SB.2.6 resumeAll: the suspended leaf resumes (not a new attempt)."""
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=seq(FLOW_MODE)))
    eng.navigate("start")
    result = eng.terminate("a", {"cmi.exit": "suspend"}, "suspendAll")
    assert result.ended and result.suspended and eng.suspended_activity == "a"
    assert all(eng.tracking.st(eng.tree[i]).suspended for i in ("a", "m", "root"))
    resumed = eng.launch()
    assert (resumed.delivered, resumed.new_attempt, resumed.attempt) == ("a", False, 1)
    assert eng.suspended_activity is None and not eng.tracking.st(eng.tree["m"]).suspended


def test_tb23_abandon_discards_the_attempt_data() -> None:
    """TB.2.3 abandon: the attempt ends without rollup or defaults; reported data is thrown away."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    result = eng.terminate("a", PASSED, "abandon")
    assert result.delivered is None and result.exception is None
    assert eng.tracking.completed(eng.tree["a"]) is None


def test_tb23_abandon_all_ends_the_session() -> None:
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    assert eng.navigate("abandonAll").ended


def test_time_out_or_logout_forces_exit_all() -> None:
    """rte-rules 5.3: cmi.exit time-out/logout -> exitAll whatever the pending request."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    assert eng.terminate("a", {"cmi.exit": "time-out"}, "continue").ended


def test_up4_default_satisfaction_respects_a_status_read_through_a_map() -> None:
    """UP.4 step 1: the default "satisfied" is for a primary objective whose status is unknown; a status the
    primary reads through its objective map is known, so it is not overridden locally."""
    reads = seq(primary(None, map_info("g")), end_objectives())
    eng = engine(leaf("a", reads), leaf("b"), global_objectives={"g": {"satisfied": False}})
    eng.navigate("start")
    play(eng)
    a = eng.tree["a"]
    assert eng.tracking.satisfied(a) is False
    assert eng.tracking.obj(a, a.definition.primary).satisfied is None
