"""DB.1.1 Delivery Request Process, DB.2 Content Delivery Environment, DB.2.1 Clear Suspended Activity."""

from __future__ import annotations

from appliance.core.scorm.sequencing.delivery import clear_suspended_activity, content_delivery, delivery_request_error
from tests.core.scorm.sequencing.builders import (
    FLOW,
    FLOW_MODE,
    cluster,
    end_objectives,
    engine,
    leaf,
    map_info,
    objective,
    play,
    primary,
    rule,
    rules,
    seq,
    tracking,
)


def test_db11_only_leaves_are_delivered() -> None:
    """DB.1.1-1: a cluster is never delivered."""
    t = tracking(cluster("m", leaf("a")))
    assert delivery_request_error(t, t.tree["m"]) == "DB.1.1-1"
    assert delivery_request_error(t, t.tree["a"]) is None


def test_db11_disabled_ancestor_blocks_delivery() -> None:
    """DB.1.1-3: Check Activity fails for an activity on the path from the root."""
    disabled = seq(FLOW_MODE, rules(rule("pre", "disabled", "always")))
    t = tracking(cluster("m", leaf("a"), sequencing=disabled))
    assert delivery_request_error(t, t.tree["a"]) == "DB.1.1-3"


def test_db2_begins_attempts_on_the_whole_path() -> None:
    """DB.2 step 4: each inactive activity on the path gets a new attempt and becomes active."""
    t = tracking(cluster("m", leaf("a"), sequencing=FLOW))
    delivered = content_delivery(t, t.tree["a"])
    assert not isinstance(delivered, str) and delivered.new_attempt and delivered.attempt == 1
    assert all(t.st(t.tree[i]).active and t.st(t.tree[i]).attempt_count == 1 for i in ("root", "m", "a"))
    assert t.current is t.tree["a"]


def test_db2_refuses_while_the_current_activity_is_active() -> None:
    """DB.2-1: the previous SCO was not terminated."""
    t = tracking(leaf("a"), leaf("b"))
    content_delivery(t, t.tree["a"])
    assert content_delivery(t, t.tree["b"]) == "DB.2-1"


def test_db2_untracked_activity_gets_no_attempt_count() -> None:
    untracked = seq('<imsss:deliveryControls tracked="false"/>')
    eng = engine(leaf("a", untracked), leaf("b"))
    result = eng.navigate("start")
    assert result.delivered == "a" and result.new_attempt
    assert eng.tracking.st(eng.tree["a"]).attempt_count == 0


def test_db2_suspended_leaf_resumes_its_attempt() -> None:
    """DB.2: a suspended (cmi.exit=suspend) leaf delivered again continues the same attempt."""
    eng = engine(leaf("a"), leaf("b"))
    eng.navigate("start")
    play(eng, {"cmi.exit": "suspend"})
    result = eng.navigate("previous")
    assert (result.delivered, result.new_attempt, result.attempt) == ("a", False, 1)


def test_db21_clear_suspended_activity_unsuspends_the_old_branch() -> None:
    """DB.2.1: delivering elsewhere clears suspension up to the common ancestor."""
    t = tracking(cluster("m", leaf("a"), sequencing=FLOW), leaf("b"))
    for act_id in ("root", "m", "a"):
        t.st(t.tree[act_id]).suspended = True
    t.suspended_activity = t.tree["a"]
    clear_suspended_activity(t, t.tree["b"])
    assert t.suspended_activity is None
    assert not t.st(t.tree["a"]).suspended and not t.st(t.tree["m"]).suspended


def test_db2_untracked_suspended_sco_resumes() -> None:
    """DB.2 step 4 only counts attempts of tracked activities, but an untracked SCO that exited with suspend
    is delivered again as a resumed session (cmi.entry=resume), as the CTS's OB-14b expects."""
    untracked = seq('<imsss:deliveryControls tracked="false"/>')
    eng = engine(leaf("a", untracked), leaf("b"))
    eng.navigate("start")
    assert play(eng, {"cmi.exit": "suspend"}) == "b"
    result = eng.navigate("previous")
    assert (result.delivered, result.new_attempt) == ("a", False)
    assert eng.tracking.st(eng.tree["a"]).attempt_count == 0
    play(eng, {"cmi.exit": "normal"})
    assert eng.navigate("previous").new_attempt


COURSE_SCOPED = seq(primary(None, map_info("g", writeSatisfiedStatus=True)), end_objectives())


def test_db2_new_attempt_on_the_root_starts_course_scoped_globals_afresh() -> None:
    """DB.2 on the root: with objectivesGlobalToSystem=false a new course attempt forgets the course's global
    objectives; a root attempt left suspended (a SCO exited with suspend before exitAll) keeps them (CTS OB-03b)."""
    eng = engine(leaf("a", COURSE_SCOPED), leaf("b"), objectives_global_to_system=False)
    eng.navigate("start")
    eng.terminate("a", {"cmi.success_status": "passed", "cmi.exit": "suspend"}, "exitAll")
    assert eng.global_objectives["g"]["satisfied"] is True
    assert eng.launch().delivered == "a"  # the root's attempt was suspended: it continues
    assert eng.global_objectives["g"]["satisfied"] is True
    eng.terminate("a", {"cmi.exit": "normal"}, "exitAll")
    assert eng.launch().delivered == "a"  # a new attempt on the course
    assert "g" not in eng.global_objectives


def test_db2_global_objectives_survive_in_a_system_wide_store() -> None:
    """DB.2 on the root: objectivesGlobalToSystem=true (the default) keeps globals across course attempts."""
    eng = engine(leaf("a", COURSE_SCOPED), leaf("b"))
    eng.navigate("start")
    eng.terminate("a", {"cmi.success_status": "passed"}, "exitAll")
    eng.launch()
    assert eng.global_objectives["g"]["satisfied"] is True


def test_db2_resumed_attempt_does_not_write_back_stale_objective_data() -> None:
    """DB.2 resuming a suspended leaf: fields its objectives read from and write to one global take the
    global's newer value, so ending the resumed attempt does not put the old value back (CTS CO-10)."""
    shared = seq(primary(), objective("o", map_info("g", writeNormalizedMeasure=True)), end_objectives())
    eng = engine(leaf("a", shared), leaf("b", shared))
    eng.navigate("start")
    play(eng, {"cmi.objectives.0.id": "o", "cmi.objectives.0.score.scaled": "0.5", "cmi.exit": "suspend"})
    play(eng, {"cmi.objectives.0.id": "o", "cmi.objectives.0.score.scaled": "0.9"}, "previous")
    assert eng.current == "a"
    play(eng, {"cmi.completion_status": "completed"})
    assert eng.global_objectives["g"]["measure"] == 0.9
