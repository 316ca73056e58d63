"""Sequencing Definition Model parsing: element defaults, IDRef collections, 4th Ed. extensions."""

from __future__ import annotations

import pytest

from appliance.core.scorm.sequencing.definition import (
    DEFAULT_DEFINITION,
    normalize_id,
    parse_datetime,
    parse_duration,
    parse_sequencing,
)
from tests.core.scorm.sequencing.builders import map_info, primary, rollup_rule, rollup_rules, rule, rules, seq

FULL = seq(
    '<imsss:controlMode choice="false" choiceExit="false" flow="true" forwardOnly="true"'
    ' useCurrentAttemptObjectiveInfo="false" useCurrentAttemptProgressInfo="false"/>',
    rules(
        rule("pre", "skip", "satisfied", "not attempted", combination="any"),
        rule("exit", "exit", "completed"),
        rule("post", "retry", "not satisfied@obj1"),
    ),
    '<imsss:limitConditions attemptLimit="3" attemptAbsoluteDurationLimit="PT1H"'
    ' beginTimeLimit="2030-01-01T00:00:00Z"/>',
    '<imsss:auxiliaryResources><imsss:auxiliaryResource auxiliaryResourceID="x" purpose="y"/></imsss:auxiliaryResources>',
    rollup_rules(
        rollup_rule("satisfied", "satisfied", child_set="atLeastCount", minimumCount=2),
        objectiveMeasureWeight="0.5",
        rollupProgressCompletion="false",
    ),
    primary("p1", map_info("g1", writeSatisfiedStatus=True)),
    '<imsss:objective objectiveID="obj1"><imsss:minNormalizedMeasure>0.6</imsss:minNormalizedMeasure>'
    "</imsss:objective></imsss:objectives>",
    '<imsss:randomizationControls randomizationTiming="onEachNewAttempt" selectCount="2" reorderChildren="true"'
    ' selectionTiming="once"/>',
    '<imsss:deliveryControls tracked="false" completionSetByContent="true" objectiveSetByContent="true"/>',
    '<adlseq:constrainedChoiceConsiderations preventActivation="true" constrainChoice="true"/>',
    '<adlseq:rollupConsiderations requiredForSatisfied="ifAttempted" measureSatisfactionIfActive="false"/>',
    '<adlseq:objectives><adlseq:objective objectiveID="p1"><adlseq:mapInfo targetObjectiveID="g1"'
    ' writeCompletionStatus="true" readRawScore="false"/></adlseq:objective></adlseq:objectives>',
)


def test_absent_sequencing_gives_the_sn_defaults() -> None:
    """SN 2: no <imsss:sequencing> -> choice, choiceExit, no flow, tracked, one primary objective."""
    definition = parse_sequencing(None)
    assert definition is DEFAULT_DEFINITION
    cm = definition.control_mode
    assert (cm.choice, cm.choice_exit, cm.flow, cm.forward_only) == (True, True, False, False)
    assert definition.delivery.tracked and not definition.delivery.completion_set_by_content
    assert definition.primary.primary and definition.primary.objective_id is None
    assert definition.primary.min_normalized_measure == 1.0
    assert definition.rollup.objective_measure_weight == 1.0
    assert definition.randomization.selection_timing == "never"


def test_every_element_is_parsed() -> None:
    d = parse_sequencing(FULL)
    assert not d.control_mode.choice and d.control_mode.flow and d.control_mode.forward_only
    assert not d.control_mode.use_current_attempt_objective_info
    assert [r.action for r in d.pre_rules] == ["skip"] and d.pre_rules[0].combination == "any"
    assert d.pre_rules[0].conditions[1].operator == "not"
    assert d.exit_rules[0].action == "exit" and d.post_rules[0].conditions[0].referenced_objective == "obj1"
    assert d.limit_conditions.attempt_limit == 3
    assert d.limit_conditions.attempt_absolute_duration_limit == "PT1H"
    assert d.limit_conditions.begin_time_limit == parse_datetime("2030-01-01T00:00:00Z")
    assert d.rollup_rules[0].child_activity_set == "atLeastCount" and d.rollup_rules[0].minimum_count == 2
    assert d.rollup_rules[0].combination == "any"  # rollup conditions default to any
    assert d.rollup.objective_measure_weight == 0.5 and not d.rollup.rollup_progress_completion
    assert d.rollup.required_for_satisfied == "ifAttempted" and d.rollup.required_for_completed == "always"
    assert not d.rollup.measure_satisfaction_if_active
    assert d.objective("obj1").min_normalized_measure == 0.6
    assert d.randomization.select_count == 2 and d.randomization.reorder_children
    assert not d.delivery.tracked and d.delivery.objective_set_by_content
    assert d.constrain_choice and d.prevent_activation


def test_adlseq_map_info_extends_the_imsss_map_of_the_same_target() -> None:
    """4th Ed. adlseq:objectives/mapInfo adds completion, progress and score fields to the same global."""
    (g1,) = parse_sequencing(FULL).primary.maps
    assert g1.write_satisfied and g1.read_satisfied and g1.read_measure
    assert g1.write_completed and not g1.read_raw and g1.read_progress_measure


def test_imsss_map_info_alone_shares_only_satisfaction_and_measure() -> None:
    (m,) = parse_sequencing(seq(primary("p", map_info("g")), "</imsss:objectives>")).primary.maps
    assert m.reads("satisfied") and m.reads("measure")
    assert not m.reads("completed") and not m.reads("progress_measure") and not m.writes("satisfied")


def test_unknown_referenced_objective_means_the_primary() -> None:
    d = parse_sequencing(FULL)
    assert d.objective("nope") is d.primary
    assert d.objective(None) is d.primary


def test_idref_item_elements_replace_referenced_elements_whole() -> None:
    """IDRef: the collection entry is the base; an element the item repeats replaces it with its own defaults."""
    collection = {
        "c1": seq(
            '<imsss:controlMode forwardOnly="true" choice="false"/>',
            rules(rule("pre", "disabled", "always")),
            '<imsss:limitConditions attemptLimit="1"/>',
        ).replace("<imsss:sequencing ", '<imsss:sequencing ID="c1" ')
    }
    d = parse_sequencing(seq('<imsss:controlMode flow="true"/>', ref="c1"), collection)
    assert d.control_mode.flow and not d.control_mode.forward_only and d.control_mode.choice
    assert d.pre_rules[0].action == "disabled"  # not repeated by the item: inherited
    assert d.limit_conditions.attempt_limit == 1


def test_empty_rollup_rules_on_the_item_clear_referenced_rules() -> None:
    collection = {"c": seq(rollup_rules(rollup_rule("satisfied", "not satisfied")))}
    d = parse_sequencing(seq("<imsss:rollupRules/>", ref="c"), collection)
    assert d.rollup_rules == ()


def test_unknown_idref_is_ignored() -> None:
    assert parse_sequencing(seq(ref="missing"), {}).control_mode.flow is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("obj%201", "obj 1"), ("  %20obj%20%201%20  ", "obj 1"), ("ob%20%20%20j  1", "ob j 1"), ("plain", "plain")],
)
def test_objective_ids_are_decoded_and_blank_collapsed(raw: str, expected: str) -> None:
    assert normalize_id(raw) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1H30M", 5400.0), ("P1D", 86400.0), ("PT0.5S", 0.5), ("P1Y", 365 * 86400.0), ("P", None), ("junk", None)],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_bad_numbers_keep_defaults() -> None:
    d = parse_sequencing(seq(rollup_rules(objectiveMeasureWeight="heavy"), '<imsss:limitConditions attemptLimit="x"/>'))
    assert d.rollup.objective_measure_weight == 1.0 and d.limit_conditions.attempt_limit is None


def test_idref_item_rules_replace_only_the_kinds_the_item_defines() -> None:
    """IDRef + item rules: an item's own post-condition rule leaves the shared pre-condition rule in place
    (ADL reference getSequencingRules; the golf Simple Remediation course depends on it)."""
    collection = {
        "c": seq(rules(rule("pre", "skip", "satisfied"))).replace("<imsss:sequencing ", '<imsss:sequencing ID="c" ')
    }
    d = parse_sequencing(seq(rules(rule("post", "retry", "not satisfied")), ref="c"), collection)
    assert [r.action for r in d.pre_rules] == ["skip"]
    assert [r.action for r in d.post_rules] == ["retry"]
