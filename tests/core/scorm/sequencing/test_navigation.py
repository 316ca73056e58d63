"""NB.2.1 Navigation Request Process: which requests are valid in which state, and their exception codes."""

from __future__ import annotations

import pytest

from appliance.core.scorm.sequencing.navigation import navigation_request
from tests.core.scorm.sequencing.builders import FLOW_NO_CHOICE, cluster, engine, leaf, play, seq

SIMPLE = (leaf("a"), leaf("b"), leaf("c"))


def test_nb21_start_only_without_a_current_activity() -> None:
    """NB.2.1 start: valid before the session; afterwards NB.2.1-1."""
    eng = engine(*SIMPLE)
    assert eng.navigate("start").delivered == "a"
    assert eng.navigate("start").exception == "NB.2.1-1"


def test_nb21_resume_all_needs_a_suspended_activity() -> None:
    """NB.2.1 resumeAll: NB.2.1-3 without a suspended activity, NB.2.1-1 during a session."""
    eng = engine(*SIMPLE)
    assert eng.navigate("resumeAll").exception == "NB.2.1-3"
    eng.navigate("start")
    assert eng.navigate("resumeAll").exception == "NB.2.1-1"


@pytest.mark.parametrize("request_", ["continue", "previous", "exit", "exitAll", "abandon", "abandonAll", "suspendAll"])
def test_nb21_requests_needing_a_session_fail_before_start(request_: str) -> None:
    """NB.2.1-2: no current activity."""
    assert engine(*SIMPLE).navigate(request_).exception == "NB.2.1-2"


def test_nb21_continue_with_flow_disabled() -> None:
    """NB.2.1 continue with flow disabled on the parent -> NB.2.1-4 (and previous -> NB.2.1-5)."""
    eng = engine(*SIMPLE, sequencing=None)  # default controlMode: choice only
    eng.navigate("choice", "b")
    assert eng.navigate("continue").exception == "NB.2.1-4"
    assert eng.navigate("previous").exception == "NB.2.1-5"


def test_nb21_previous_with_forward_only_parent() -> None:
    """NB.2.1 previous when the parent is forwardOnly -> NB.2.1-5."""
    eng = engine(*SIMPLE, sequencing=seq('<imsss:controlMode flow="true" forwardOnly="true"/>'))
    eng.navigate("start")
    assert play(eng) == "b"
    assert eng.navigate("previous").exception == "NB.2.1-5"


def test_nb21_continue_terminates_the_active_attempt() -> None:
    """NB.2.1 continue: termination exit (current is active) and sequencing continue."""
    eng = engine(*SIMPLE)
    eng.navigate("start")
    nav = navigation_request(eng.tracking, "continue")
    assert (nav.termination, nav.sequencing) == ("exit", "continue")


def test_nb21_choice_target_must_exist() -> None:
    """NB.2.1 choice of an unknown activity -> NB.2.1-11."""
    assert engine(*SIMPLE).navigate("choice", "zzz").exception == "NB.2.1-11"


def test_nb21_choice_into_a_cluster_without_choice() -> None:
    """NB.2.1 choice when the target's parent has choice=false -> NB.2.1-10."""
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=FLOW_NO_CHOICE))
    assert eng.navigate("choice", "b").exception == "NB.2.1-10"


def test_nb21_choice_may_not_leave_an_active_choice_exit_false_cluster() -> None:
    """NB.2.1 choice out of an active cluster with choiceExit=false -> NB.2.1-8."""
    locked = seq('<imsss:controlMode flow="true" choiceExit="false"/>')
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=locked), leaf("c"))
    assert eng.navigate("start").delivered == "a"
    assert eng.navigate("choice", "c").exception == "NB.2.1-8"
    assert eng.navigate("choice", "b").delivered == "b"  # staying inside is fine


def test_nb21_exit_and_abandon_need_an_active_current_activity() -> None:
    """NB.2.1 exit/abandon when the current activity is not active -> NB.2.1-12."""
    eng = engine(*SIMPLE)
    eng.navigate("start")
    assert eng.navigate("exit").exception is None  # a ends; nothing more is delivered
    assert eng.navigate("exit").exception == "NB.2.1-12"
    assert eng.navigate("abandon").exception == "NB.2.1-12"


def test_nb21_unknown_request() -> None:
    """NB.2.1-13: not a navigation request (forward/backward of IMS SS are not supported either)."""
    assert engine(*SIMPLE).navigate("forward").exception == "NB.2.1-13"


def test_nb21_none_does_nothing() -> None:
    eng = engine(*SIMPLE)
    eng.navigate("start")
    result = eng.navigate("_none_")
    assert result.delivered is None and result.exception is None and eng.current == "a"


def test_nb21_jump_needs_a_session_and_an_available_target() -> None:
    """4th Ed. jump: only during a session (NB.2.1-11 otherwise) and ignores control modes."""
    eng = engine(cluster("m", leaf("a"), leaf("b"), sequencing=FLOW_NO_CHOICE), leaf("c"))
    assert eng.navigate("jump", "b").exception == "NB.2.1-11"
    eng.navigate("start")
    assert eng.navigate("jump", "b").delivered == "b"  # choice=false does not matter
    assert eng.navigate("jump", "m").exception == "NB.2.1-11"  # clusters cannot be delivered


def test_targeted_requests_in_adl_nav_request_syntax() -> None:
    """adl.nav.request values {target=ID}choice / {target=ID}jump are accepted as they come from the SCO."""
    eng = engine(*SIMPLE)
    eng.navigate("start")
    assert eng.navigate("{target=c}choice").delivered == "c"
    assert eng.navigate("{target=a}jump").delivered == "a"


def test_nb21_choice_exit_false_on_the_current_leaf_blocks_its_siblings() -> None:
    """NB.2.1-8: an active activity with choiceExit=false cannot be left by choice, not even for a sibling
    or by choosing itself again; the table of contents then offers nothing (CTS CM-07a)."""
    no_exit = seq('<imsss:controlMode choiceExit="false"/>')
    eng = engine(leaf("a"), leaf("b", no_exit), leaf("c"))
    eng.navigate("start")
    play(eng)
    assert eng.current == "b"
    for target in ("a", "b", "c"):
        assert navigation_request(eng.tracking, "choice", eng.tree[target]).exception == "NB.2.1-8"
    assert not eng.available_controls()["choice"]
    assert play(eng) == "c"  # flow may still leave it
    assert navigation_request(eng.tracking, "choice", eng.tree["a"]).exception is None
