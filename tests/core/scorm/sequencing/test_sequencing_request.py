"""SB.2.x: start, resumeAll, continue, previous, retry, exit, choice (5 cases), jump, and flow traversal."""

from __future__ import annotations

from tests.core.scorm.sequencing.builders import FLOW, FLOW_MODE, cluster, engine, leaf, play, rule, rules, seq

SKIP = seq(rules(rule("pre", "skip", "always")))
DISABLED = seq(rules(rule("pre", "disabled", "always")))


def test_sb25_start_flows_into_the_first_leaf() -> None:
    """SB.2.5 start: Flow Subprocess forward from the root, entering clusters."""
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=FLOW), leaf("c"))
    assert eng.navigate("start").delivered == "a"


def test_sb25_start_without_flow_is_an_exception_and_launch_leaves_the_choice_to_the_learner() -> None:
    """SB.2.5 without flow on the root fails (SB.2.5-3); the launch policy then delivers nothing, so the
    learner chooses from the table of contents (ADL CTS CM-04a, CM-16, CM-17a...)."""
    eng = engine(leaf("a"), leaf("b"), sequencing=None)
    assert eng.navigate("start").exception == "SB.2.5-3"
    launched = eng.launch()
    assert launched.delivered is None and not launched.ended
    assert [c["id"] for c in eng.toc()["children"] if c["selectable"]] == ["a", "b"]
    assert eng.navigate("choice", "b").delivered == "b"


def test_launch_opens_the_only_activity_of_a_course_without_flow() -> None:
    """With a single activity to choose there is no choice to make: launch opens it (ADL CTS CM-11, SX-08a)."""
    eng = engine(leaf("a"), sequencing=None)
    assert eng.navigate("start").exception == "SB.2.5-3"
    assert eng.launch().delivered == "a"


def test_sb27_continue_walks_into_the_next_cluster_and_off_the_end() -> None:
    """SB.2.7 continue: next leaf across clusters; walking off the last leaf ends the session."""
    eng = engine(cluster("m", leaf("a"), sequencing=FLOW), cluster("n", leaf("b"), sequencing=FLOW))
    eng.navigate("start")
    assert play(eng) == "b"
    result = eng.terminate("b", {}, "continue")
    assert result.ended and result.delivered is None and eng.current is None


def test_sb22_skip_rule_is_passed_over() -> None:
    """SB.2.2 Flow Activity Traversal: a skip pre-condition moves on in the same direction."""
    eng = engine(leaf("a"), leaf("b", SKIP), leaf("c"))
    eng.navigate("start")
    assert play(eng) == "c"
    assert play(eng, nav="previous") == "a"


def test_sb22_skipping_the_last_activity_ends_the_session() -> None:
    eng = engine(leaf("a"), leaf("b", SKIP))
    eng.navigate("start")
    assert eng.terminate("a", {}, "continue").ended


def test_sb22_disabled_activity_stops_flow() -> None:
    """SB.2.2: Check Activity (disabled) -> nothing to deliver, an exception."""
    eng = engine(leaf("a"), leaf("b", DISABLED), leaf("c"))
    eng.navigate("start")
    result = eng.terminate("a", {}, "continue")
    assert result.delivered is None and result.exception == "SB.2.7-2"


def test_sb22_disabled_last_leaf_lets_continue_finish_the_course() -> None:
    """Last leaf = last enabled leaf (ADL reference): continue past the final enabled one ends the session."""
    eng = engine(leaf("a"), leaf("b", DISABLED))
    eng.navigate("start")
    assert eng.terminate("a", {}, "continue").ended


def test_sb28_previous_at_the_start_is_an_exception() -> None:
    """SB.2.8 previous walking off the start of the tree does not end the session."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    result = eng.terminate("a", {}, "previous")
    assert not result.ended and result.exception == "SB.2.8-2"


def test_sb21_backward_into_forward_only_cluster_enters_at_its_first_child() -> None:
    """SB.2.1 backward into a forwardOnly cluster: enter at the first child and turn forward."""
    forward_only = seq('<imsss:controlMode flow="true" forwardOnly="true"/>')
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=forward_only), leaf("c"))
    eng.navigate("start")
    assert play(eng) == "b"
    assert play(eng) == "c"
    assert play(eng, nav="previous") == "a"


def test_sb210_retry_post_condition_starts_a_new_attempt_on_the_same_leaf() -> None:
    """TB.2.2 retry -> SB.2.10 Retry: the leaf is delivered again as a new attempt."""
    retry = seq(rules(rule("post", "retry", "not satisfied")))
    eng = engine(leaf("a", retry), leaf("b"))
    eng.navigate("start")
    result = eng.terminate("a", {"cmi.success_status": "failed"}, "continue")
    assert (result.delivered, result.new_attempt, result.attempt) == ("a", True, 2)
    assert play(eng, {"cmi.success_status": "passed"}) == "b"


def test_sb211_exit_from_a_leaf_waits_and_exit_from_the_root_ends() -> None:
    """SB.2.11: exit below the root delivers nothing (learner chooses next); exiting the root ends."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    result = eng.navigate("exit")
    assert (result.delivered, result.ended, result.exception) == (None, False, None)
    assert eng.navigate("continue").delivered == "b"


def test_sb29_case2_sibling_blocked_by_stop_forward_traversal() -> None:
    """SB.2.9 case 2 (siblings): a stopForwardTraversal rule on a passed sibling blocks choosing beyond it."""
    stop = seq(rules(rule("pre", "stopForwardTraversal", "always")))
    eng = engine(leaf("a", stop), leaf("b"), leaf("c"))
    eng.navigate("start")
    assert eng.navigate("choice", "c").exception == "SB.2.9-5"


def test_sb29_case2_backward_into_forward_only_parent() -> None:
    eng = engine(leaf("a"), leaf("b"), sequencing=seq('<imsss:controlMode flow="true" forwardOnly="true"/>'))
    eng.navigate("start")
    play(eng)
    assert eng.navigate("choice", "a").exception == "SB.2.9-5"


def test_sb29_hidden_from_choice() -> None:
    """SB.2.9-3: a hiddenFromChoice rule on the target or an ancestor."""
    hidden = seq(rules(rule("pre", "hiddenFromChoice", "always")))
    eng = engine(cluster("m", leaf("a"), sequencing=hidden), leaf("b"))
    eng.navigate("start")
    assert eng.navigate("choice", "a").exception == "SB.2.9-3"


def test_sb29_case3_prevent_activation_blocks_entering_an_inactive_cluster() -> None:
    """SB.2.9 case 3/5: preventActivation on an inactive cluster on the way down -> SB.2.9-6."""
    prevent = seq(FLOW_MODE, '<adlseq:constrainedChoiceConsiderations preventActivation="true"/>')
    eng = engine(leaf("a"), cluster("m", leaf("b"), leaf("c"), sequencing=prevent))
    eng.navigate("start")
    assert eng.navigate("choice", "c").exception == "SB.2.9-6"
    assert eng.navigate("choice", "m").delivered == "b"  # the cluster itself may be chosen
    assert eng.navigate("choice", "c").delivered == "c"  # now it is active


def test_sb29_case5_constrain_choice_limits_to_the_next_activity() -> None:
    """SB.2.9 case 5 with constrainChoice: only what flow reaches next/previous from the cluster (SB.2.9-8)."""
    constrained = seq(FLOW_MODE, '<adlseq:constrainedChoiceConsiderations constrainChoice="true"/>')
    eng = engine(
        cluster("m", leaf("a"), sequencing=constrained),
        cluster("n", leaf("b"), sequencing=FLOW),
        leaf("c"),
    )
    eng.navigate("start")
    assert eng.navigate("choice", "c").exception == "SB.2.9-8"
    assert eng.navigate("choice", "b").delivered == "b"


def test_sb29_choice_of_a_cluster_flows_into_it() -> None:
    eng = engine(leaf("a"), cluster("m", leaf("b"), leaf("c"), sequencing=FLOW))
    eng.navigate("start")
    assert eng.navigate("choice", "m").delivered == "b"


def test_sb29_choice_of_a_cluster_without_flow_moves_the_current_activity() -> None:
    """SB.2.9 step 6: nothing to flow into -> SB.2.9-9, the cluster becomes current (learner picks inside)."""
    eng = engine(leaf("a"), cluster("m", leaf("b"), leaf("c")))
    eng.navigate("start")
    result = eng.navigate("choice", "m")
    assert result.exception == "SB.2.9-9" and eng.current == "m"
    assert eng.navigate("choice", "c").delivered == "c"


def test_sb213_jump_ignores_rules_but_not_delivery_checks() -> None:
    """SB.2.13 jump: no control modes or skip rules, but DB.1.1 still refuses disabled targets."""
    eng = engine(leaf("a"), leaf("b", SKIP), leaf("c", DISABLED))
    eng.navigate("start")
    assert eng.navigate("jump", "b").delivered == "b"
    assert eng.navigate("jump", "c").exception == "NB.2.1-11"
