"""DB.1.1 Delivery Request Process, DB.2 Content Delivery Environment, DB.2.1 Clear Suspended Activity."""

from __future__ import annotations

from appliance.scorm.sequencing.delivery import clear_suspended_activity, content_delivery, delivery_request_error
from tests.scorm.sequencing.builders import FLOW, FLOW_MODE, cluster, engine, leaf, play, rule, rules, seq, tracking


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
