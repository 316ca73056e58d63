"""UP.1 Limit Conditions Check, UP.2 / UP.2.1 Sequencing Rules Check, UP.5 Check Activity, condition semantics."""

from __future__ import annotations

import pytest

from appliance.core.scorm.sequencing.definition import RuleCondition
from appliance.core.scorm.sequencing.rules import (
    apply_operator,
    check_activity,
    check_rules,
    combine,
    evaluate_condition,
    limit_conditions_violated,
)
from tests.core.scorm.sequencing.builders import leaf, map_info, primary, rule, rules, seq, tracking


@pytest.mark.parametrize(
    ("values", "combination", "expected"),
    [
        ([True, True], "all", True),
        ([True, None], "all", None),
        ([True, False, None], "all", False),
        ([False, None], "any", None),
        ([False, False], "any", False),
        ([None, True], "any", True),
    ],
)
def test_up21_three_valued_combination(values: list[bool | None], combination: str, expected: bool | None) -> None:
    """UP.2.1: all = false if any false, unknown if any unknown; any = true if any true, unknown if any unknown."""
    assert combine(values, combination) is expected


def test_up21_not_keeps_unknown_unknown() -> None:
    assert apply_operator(None, "not") is None
    assert apply_operator(True, "not") is False


def test_conditions_on_an_untouched_activity() -> None:
    """SN 5: an activity without data: status/measure/completion unknown, knowns false, attempted false."""
    t = tracking(leaf("a"))
    act = t.tree["a"]
    expected = {
        "satisfied": None,
        "objectiveStatusKnown": False,
        "objectiveMeasureKnown": False,
        "objectiveMeasureGreaterThan": None,
        "completed": None,
        "activityProgressKnown": False,
        "attempted": False,
        "attemptLimitExceeded": False,
        "always": True,
        "never": False,
    }
    for name, value in expected.items():
        assert evaluate_condition(t, act, RuleCondition(name)) is value, name


def test_measure_conditions_compare_against_the_threshold() -> None:
    t = tracking(leaf("a"))
    act = t.tree["a"]
    t.obj(act, act.definition.primary).measure = 0.4
    assert evaluate_condition(t, act, RuleCondition("objectiveMeasureGreaterThan", measure_threshold=0.3)) is True
    assert evaluate_condition(t, act, RuleCondition("objectiveMeasureLessThan", measure_threshold=0.3)) is False


def test_referenced_objective_is_evaluated_instead_of_the_primary() -> None:
    xml = seq(primary(None), '<imsss:objective objectiveID="o2"/></imsss:objectives>')
    t = tracking(leaf("a", xml))
    act = t.tree["a"]
    t.obj(act, act.definition.objective("o2")).satisfied = True
    assert evaluate_condition(t, act, RuleCondition("satisfied", referenced_objective="o2")) is True
    assert evaluate_condition(t, act, RuleCondition("satisfied")) is None


def test_mapped_status_is_read_from_the_global_objective() -> None:
    """Reads through mapInfo: the global value wins over the local one."""
    t = tracking(leaf("a", seq(primary("p", map_info("g")), "</imsss:objectives>")))
    act = t.tree["a"]
    t.obj(act, act.definition.primary).satisfied = True
    t.globals["g"] = {"satisfied": False}
    assert evaluate_condition(t, act, RuleCondition("satisfied")) is False


def test_up2_returns_the_first_firing_rule_in_document_order() -> None:
    xml = seq(
        rules(rule("pre", "disabled", "attempted"), rule("pre", "skip", "always"), rule("pre", "disabled", "always"))
    )
    t = tracking(leaf("a", xml))
    act = t.tree["a"]
    assert check_rules(t, act, act.definition.pre_rules, ["disabled"]) == "disabled"
    assert check_rules(t, act, act.definition.pre_rules, ["skip", "disabled"]) == "skip"
    assert check_rules(t, act, act.definition.pre_rules, ["hiddenFromChoice"]) is None


def test_up1_attempt_limit_reached_disables_an_inactive_activity() -> None:
    """UP.1: attemptLimit (including 0) counts only while the activity is neither active nor suspended."""
    t = tracking(leaf("a", seq('<imsss:limitConditions attemptLimit="1"/>')))
    act = t.tree["a"]
    assert not limit_conditions_violated(t, act)
    t.st(act).attempt_count = 1
    assert limit_conditions_violated(t, act) and check_activity(t, act)
    t.st(act).active = True
    assert not limit_conditions_violated(t, act)


def test_up1_attempt_limit_zero_is_a_real_limit() -> None:
    t = tracking(leaf("a", seq('<imsss:limitConditions attemptLimit="0"/>')))
    assert check_activity(t, t.tree["a"])


def test_up1_begin_time_limit_uses_the_callers_clock() -> None:
    t = tracking(leaf("a", seq('<imsss:limitConditions beginTimeLimit="2030-01-01T00:00:00Z"/>')))
    t.now = 0.0
    assert check_activity(t, t.tree["a"])
    t.now = 2e9
    assert not check_activity(t, t.tree["a"])


def test_up5_disabled_rule_makes_check_activity_true() -> None:
    t = tracking(leaf("a", seq(rules(rule("pre", "disabled", "always")))))
    assert check_activity(t, t.tree["a"])


def test_untracked_activity_has_no_tracking_data() -> None:
    """deliveryControls tracked=false: nothing is known about it, not even what its maps could read."""
    xml = seq(primary("p", map_info("g")), "</imsss:objectives>", '<imsss:deliveryControls tracked="false"/>')
    t = tracking(leaf("a", xml))
    t.globals["g"] = {"satisfied": True}
    assert evaluate_condition(t, t.tree["a"], RuleCondition("satisfied")) is None
