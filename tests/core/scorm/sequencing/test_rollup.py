"""Rollup: RB.1.1 a/b measure rollups, RB.1.2 objective rollup, RB.1.3 progress rollup, RB.1.4 rule checks."""

from __future__ import annotations

import pytest

from appliance.core.scorm.sequencing.rollup import overall_rollup, rollup_activity
from appliance.core.scorm.sequencing.tracking import Tracking
from tests.core.scorm.sequencing.builders import (
    cluster,
    leaf,
    map_info,
    primary,
    rollup_rule,
    rollup_rules,
    rule,
    rules,
    seq,
    threshold,
    tracking,
)


def _set(
    t: Tracking, act_id: str, *, satisfied: bool | None = None, completed: bool | None = None, **kw: float
) -> None:
    act = t.tree[act_id]
    record = t.st(act)
    record.attempt_count = max(record.attempt_count, 1)
    record.completed = completed
    obj = t.obj(act, act.definition.primary)
    obj.satisfied = satisfied
    obj.measure = kw.get("measure")
    if "amount" in kw:
        t.set_completion_amount(act, kw["amount"])


def test_rb11a_measure_is_the_weighted_average_of_known_measures() -> None:
    """RB.1.1 a: children without a measure still count in the denominator (weight x measure / sum of weights)."""
    weights = seq(rollup_rules(objectiveMeasureWeight="0.5"))
    t = tracking(cluster("c", leaf("a"), leaf("b", weights), leaf("d")))
    _set(t, "a", measure=1.0)
    _set(t, "b", measure=0.0)
    rollup_activity(t, t.tree["c"])
    assert t.measure(t.tree["c"]) == (1.0 * 1 + 0.0 * 0.5) / 2.5


def test_rb11a_no_known_child_measure_leaves_the_measure_unknown() -> None:
    t = tracking(cluster("c", leaf("a"), leaf("b")))
    rollup_activity(t, t.tree["c"])
    assert t.measure(t.tree["c"]) is None


def test_rb11b_completion_measure_uses_progress_weight() -> None:
    """RB.1.1 b (4th Ed.): weighted average of completion amounts with adlcp progressWeight."""
    t = tracking(cluster("c", leaf("a", completion_threshold=threshold(1.0, False, 0.25)), leaf("b")))
    _set(t, "a", amount=1.0)
    _set(t, "b", amount=0.5)
    rollup_activity(t, t.tree["c"])
    assert t.completion_amount(t.tree["c"]) == (0.25 * 1.0 + 1.0 * 0.5) / 1.25


def test_default_objective_rollup_all_satisfied_and_all_known() -> None:
    """Default rules: all children satisfied -> satisfied; all known but not all satisfied -> not satisfied."""
    t = tracking(cluster("c", leaf("a"), leaf("b")))
    c = t.tree["c"]
    _set(t, "a", satisfied=True)
    rollup_activity(t, c)
    assert t.satisfied(c) is None  # b unknown: neither default rule applies
    _set(t, "b", satisfied=False)
    rollup_activity(t, c)
    assert t.satisfied(c) is False
    _set(t, "b", satisfied=True)
    rollup_activity(t, c)
    assert t.satisfied(c) is True


def test_default_progress_rollup() -> None:
    t = tracking(cluster("c", leaf("a"), leaf("b")))
    _set(t, "a", completed=True)
    _set(t, "b", completed=False)
    rollup_activity(t, t.tree["c"])
    assert t.completed(t.tree["c"]) is False
    _set(t, "b", completed=True)
    rollup_activity(t, t.tree["c"])
    assert t.completed(t.tree["c"]) is True


def test_rb12b_satisfied_rule_wins_over_not_satisfied() -> None:
    both = rollup_rules(
        rollup_rule("notSatisfied", "attempted", child_set="any"),
        rollup_rule("satisfied", "satisfied", child_set="any"),
    )
    t = tracking(cluster("c", leaf("a"), leaf("b"), sequencing=seq(both)))
    _set(t, "a", satisfied=True)
    _set(t, "b", satisfied=False)
    rollup_activity(t, t.tree["c"])
    assert t.satisfied(t.tree["c"]) is True


def test_rb14_child_activity_sets() -> None:
    """RB.1.4: any / none / atLeastCount / atLeastPercent over the contributing children."""
    cases = {
        "any": (rollup_rule("satisfied", "satisfied", child_set="any"), True),
        "none": (rollup_rule("satisfied", "satisfied", child_set="none"), None),
        "count": (rollup_rule("satisfied", "satisfied", child_set="atLeastCount", minimumCount=2), True),
        "percent": (rollup_rule("satisfied", "satisfied", child_set="atLeastPercent", minimumPercent=0.9), None),
    }
    for name, (xml_rule, expected) in cases.items():
        t = tracking(cluster("c", leaf("a"), leaf("b"), leaf("d"), sequencing=seq(rollup_rules(xml_rule))))
        _set(t, "a", satisfied=True)
        _set(t, "b", satisfied=True)
        _set(t, "d", satisfied=False)
        rollup_activity(t, t.tree["c"])
        assert t.satisfied(t.tree["c"]) is expected, name


def test_rb14_all_over_no_contributing_child_holds_like_the_adl_reference() -> None:
    """RB.1.4 edge case the conformance suite relies on (RU-15b): an `all` rule with nobody to ask fires."""
    excluded = seq(rollup_rules(rollupObjectiveSatisfied="false"))
    t = tracking(cluster("c", leaf("a", excluded), sequencing=seq(rollup_rules(rollup_rule("satisfied", "attempted")))))
    rollup_activity(t, t.tree["c"])
    assert t.satisfied(t.tree["c"]) is True


def test_rb142_required_for_if_attempted_excludes_unattempted_children() -> None:
    """RB.1.4.2 Check Child for Rollup: requiredForSatisfied=ifAttempted."""
    if_attempted = seq('<adlseq:rollupConsiderations requiredForSatisfied="ifAttempted"/>')
    t = tracking(cluster("c", leaf("a"), leaf("b", if_attempted)))
    _set(t, "a", satisfied=True)
    rollup_activity(t, t.tree["c"])
    assert t.satisfied(t.tree["c"]) is True


def test_rb142_if_not_skipped_excludes_children_a_skip_rule_hides() -> None:
    skipped = seq(
        rules(rule("pre", "skip", "always")), '<adlseq:rollupConsiderations requiredForSatisfied="ifNotSkipped"/>'
    )
    t = tracking(cluster("c", leaf("a"), leaf("b", skipped)))
    _set(t, "a", satisfied=True)
    rollup_activity(t, t.tree["c"])
    assert t.satisfied(t.tree["c"]) is True


# One rule per action, so that only the requiredFor... attribute under test decides whether child b counts:
# (attribute, rule, child a's data, child b's data, the cluster's status when b is left out).
REQUIRED_FOR = {
    "requiredForSatisfied": (rollup_rule("satisfied", "satisfied"), {"satisfied": True}, {"satisfied": False}, True),
    "requiredForNotSatisfied": (
        rollup_rule("notSatisfied", "not satisfied"),
        {"satisfied": False},
        {"satisfied": True},
        False,
    ),
    "requiredForCompleted": (rollup_rule("completed", "completed"), {"completed": True}, {"completed": False}, True),
    "requiredForIncomplete": (
        rollup_rule("incomplete", "not completed"),
        {"completed": False},
        {"completed": True},
        False,
    ),
}


@pytest.mark.parametrize("suspended", [True, False], ids=["suspended", "not suspended"])
@pytest.mark.parametrize("attribute", sorted(REQUIRED_FOR))
def test_rb142_if_not_suspended_leaves_out_an_attempted_suspended_child(attribute: str, suspended: bool) -> None:
    """RB.1.4.2: with requiredFor...="ifNotSuspended" a child with an attempt that is suspended does not take part
    in the rule; the same child not suspended does (and its status keeps the `all` rule from firing)."""
    xml_rule, a_data, b_data, without_b = REQUIRED_FOR[attribute]
    b_seq = seq(f'<adlseq:rollupConsiderations {attribute}="ifNotSuspended"/>')
    t = tracking(cluster("c", leaf("a"), leaf("b", b_seq), sequencing=seq(rollup_rules(xml_rule))))
    _set(t, "a", **a_data)
    _set(t, "b", **b_data)
    t.st(t.tree["b"]).suspended = suspended
    rollup_activity(t, t.tree["c"])
    status = t.satisfied(t.tree["c"]) if "Satisfied" in attribute else t.completed(t.tree["c"])
    assert status is (without_b if suspended else None)


@pytest.mark.parametrize("attribute", sorted(REQUIRED_FOR))
def test_rb142_if_attempted_and_if_not_skipped_per_action(attribute: str) -> None:
    """RB.1.4.2 for each of the four actions: ifAttempted leaves out a child never attempted, ifNotSkipped a child
    a skip pre-rule hides; the same children count under `always`."""
    xml_rule, a_data, b_data, without_b = REQUIRED_FOR[attribute]
    considerations = {
        "ifAttempted": "",
        "ifNotSkipped": rules(rule("pre", "skip", "always")),
        "always": rules(rule("pre", "skip", "always")),
    }
    for required, extra in considerations.items():
        b_seq = seq(extra, f'<adlseq:rollupConsiderations {attribute}="{required}"/>')
        t = tracking(cluster("c", leaf("a"), leaf("b", b_seq), sequencing=seq(rollup_rules(xml_rule))))
        _set(t, "a", **a_data)
        if required != "ifAttempted":
            _set(t, "b", **b_data)  # attempted, with the status that keeps the rule from firing
        rollup_activity(t, t.tree["c"])
        status = t.satisfied(t.tree["c"]) if "Satisfied" in attribute else t.completed(t.tree["c"])
        assert status is (None if required == "always" else without_b), required


def test_rb12a_satisfied_by_measure_against_min_normalized_measure() -> None:
    """RB.1.2 a: with satisfiedByMeasure the (rolled-up) measure decides; no measure -> unknown."""
    t = tracking(cluster("c", leaf("a"), sequencing=seq(primary(None, by_measure=0.6), "</imsss:objectives>")))
    c = t.tree["c"]
    rollup_activity(t, c)
    assert t.satisfied(c) is None
    _set(t, "a", measure=0.7)
    rollup_activity(t, c)
    assert t.satisfied(c) is True


def test_rb12a_measure_satisfaction_if_active_false_while_active() -> None:
    xml = seq(
        primary(None, by_measure=0.5),
        "</imsss:objectives>",
        '<adlseq:rollupConsiderations measureSatisfactionIfActive="false"/>',
    )
    t = tracking(cluster("c", leaf("a"), sequencing=xml))
    c = t.tree["c"]
    _set(t, "a", measure=0.9)
    rollup_activity(t, c)
    t.st(c).active = True
    assert t.satisfied(c) is None
    t.st(c).active = False
    assert t.satisfied(c) is True


def test_rb13a_completed_by_measure() -> None:
    """RB.1.3 a (4th Ed.): completion follows the completion amount against minProgressMeasure."""
    t = tracking(cluster("c", leaf("a"), completion_threshold=threshold(0.5)))
    _set(t, "a", amount=0.6)
    rollup_activity(t, t.tree["c"])
    assert t.completed(t.tree["c"]) is True


def test_rb15_overall_rollup_reaches_the_root_and_writes_globals() -> None:
    """RB.1.5 from a leaf to the root; a cluster writes its rolled-up status through its write map."""
    writer = seq(primary("p", map_info("g", writeSatisfiedStatus=True)), "</imsss:objectives>")
    t = tracking(cluster("c", leaf("a"), sequencing=writer))
    _set(t, "a", satisfied=True)
    overall_rollup(t, t.tree["a"])
    assert t.satisfied(t.tree.root) is True
    assert t.globals["g"]["satisfied"] is True


def test_rb15_clusters_reading_a_written_global_are_rolled_up_too() -> None:
    """Like the ADL reference: a write to a global also rolls up the clusters above activities reading it."""
    writer = seq(primary("p", map_info("g", writeSatisfiedStatus=True)), "</imsss:objectives>")
    reader = seq(primary("p", map_info("g")), "</imsss:objectives>")
    t = tracking(cluster("c1", leaf("a", writer)), cluster("c2", leaf("b", reader)))
    _set(t, "a", satisfied=True)
    overall_rollup(t, t.tree["a"])
    assert t.satisfied(t.tree["c2"]) is True


def test_use_current_attempt_objective_info_ignores_earlier_child_data() -> None:
    """controlMode useCurrentAttemptObjectiveInfo=true: a new attempt on the parent makes old child data stale."""
    t = tracking(cluster("c", leaf("a")))
    c = t.tree["c"]
    _set(t, "a", satisfied=True)
    t.begin_attempt(c)
    rollup_activity(t, c)
    assert t.satisfied(c) is None
    t.begin_attempt(t.tree["a"])
    _set(t, "a", satisfied=True)
    rollup_activity(t, c)
    assert t.satisfied(c) is True


def test_use_current_attempt_objective_info_false_keeps_earlier_child_data() -> None:
    t = tracking(cluster("c", leaf("a"), sequencing=seq('<imsss:controlMode useCurrentAttemptObjectiveInfo="false"/>')))
    c = t.tree["c"]
    _set(t, "a", satisfied=True)
    t.begin_attempt(c)
    rollup_activity(t, c)
    assert t.satisfied(c) is True
