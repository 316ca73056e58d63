"""The player's compact TOC and request_valid (`sequencing.outline`) against the engine's full forms, and the
rollup rules' early answer against evaluating every child.

The compact forms must expand to exactly `engine.toc()` and `engine.request_valid()` on every state the
generated courses of `test_lookahead` reach (selection and randomization included, which change the
outline's key); the outline is sent only when the player's key differs. Rollup's `all` / `any` / `none`
stop at the first child that decides them: generated clusters with random rollup rules must end in the
same state as with the whole bag evaluated, as before.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.core.scorm.model import Item
from appliance.core.scorm.sequencing import outline, rollup
from appliance.core.scorm.sequencing.definition import RollupRule
from appliance.core.scorm.sequencing.engine import SequencingEngine
from appliance.core.scorm.sequencing.rules import Tri
from appliance.core.scorm.sequencing.tracking import Tracking
from tests.core.scorm.sequencing.builders import cluster, engine, leaf, rollup_rule, rollup_rules, seq
from tests.core.scorm.sequencing.test_lookahead import _apply, items, sequencing, steps


def assert_compact_is_full(eng: SequencingEngine, held: str | None = None) -> str:
    """The compact forms expand to the full ones; returns the outline's key. With `held` (the key the player
    holds) the outline is left out exactly when it is the same."""
    t = eng.tracking
    full_toc, full_valid = eng.toc(), eng.request_valid()
    fresh = outline.toc_state(t)
    assert fresh["outline"] is not None and fresh["outline"]["key"] == fresh["key"]
    assert outline.expand_toc(fresh["outline"], fresh) == full_toc
    assert outline.expand_request_valid(fresh["outline"], outline.request_valid_state(t)) == full_valid
    again = outline.toc_state(t, held)
    assert (again["outline"] is None) == (held == fresh["key"])
    assert {**again, "outline": None} == {**fresh, "outline": None}
    return fresh["key"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=items(), root=sequencing(True), plan=steps())
def test_compact_toc_and_request_valid_expand_to_the_full_forms(
    tree: list[Item], root: str | None, plan: list[tuple[str, int, int]]
) -> None:
    eng = engine(*tree, sequencing=root)
    key = assert_compact_is_full(eng)
    eng.launch(now=1.0)
    key = assert_compact_is_full(eng, key)
    for index, step in enumerate(plan):
        _apply(eng, step, now=2.0 + index)
        key = assert_compact_is_full(eng, key)


def test_the_outline_key_follows_selection_and_randomization() -> None:
    """Reordered available children are a different outline (a new key, the new order in `kids`); the
    same tree in another state with the default order has the same key as a fresh one."""
    shuffle = seq(
        '<imsss:controlMode choice="true" flow="true"/>',
        '<imsss:randomizationControls randomizationTiming="onEachNewAttempt" reorderChildren="true"/>',
    )
    parts = [cluster("m", *(leaf(f"x{i}") for i in range(6)), sequencing=shuffle), leaf("after")]
    mode = seq('<imsss:controlMode choice="true" flow="true"/>')
    plain = engine(*parts, sequencing=mode)
    before = outline.toc_state(plain.tracking)
    assert before["outline"]["kids"] == {}
    plain.launch(now=1.0)
    shuffled = outline.toc_state(plain.tracking, before["key"])
    order = [child.order for child in plain.tracking.children(plain.tree["m"])]
    assert order != sorted(order)  # seed 7 reorders these six
    assert shuffled["key"] != before["key"] and shuffled["outline"]["kids"] == {"1": order}
    assert outline.expand_toc(shuffled["outline"], shuffled) == plain.toc()
    other = engine(*parts, sequencing=mode)
    assert outline.toc_state(other.tracking, before["key"])["outline"] is None


def test_a_large_course_answers_in_kilobytes() -> None:
    """At the package limit the per-answer part is a few hundred bytes, however many activities there are:
    only what happened (two activities and the root) has a status, the selectable ones are one range."""
    mode = seq('<imsss:controlMode choice="true" flow="true"/>')
    eng = engine(*(leaf(f"a{i}") for i in range(5000)), sequencing=mode)
    eng.launch(now=0)
    eng.terminate("a0", {"cmi.completion_status": "completed"}, "{target=a2500}choice", now=1)
    state = outline.toc_state(eng.tracking, outline.toc_state(eng.tracking)["key"])
    assert state["outline"] is None
    assert state["selectable"] == [[0, 5001]]
    assert set(state["status"]) == {"0", "1", "2501"}
    assert state["current"] == 2501
    valid = outline.request_valid_state(eng.tracking)
    assert valid["choice"] == [[0, 5001]] and valid["jump"] == [[1, 5001]]
    assert outline.expand_toc(outline.toc_state(eng.tracking)["outline"], state) == eng.toc()


def test_ranges_round_trip() -> None:
    rng = random.Random(5)
    for size in (0, 1, 2, 7, 100):
        for _ in range(50):
            values = [rng.random() < 0.5 for _ in range(size)]
            assert outline.flags(outline.ranges(values), size) == values
    assert outline.ranges([True, True, False, True]) == [[0, 2], [3, 4]]


# -- rollup: the early answer of all / any / none --------------------------------------------------------------


def full_bag_rule_applies(t: Tracking, act: Any, rule: RollupRule, quiet: set[int] | None = None) -> bool:
    """RB.1.4 for one rule as it was written before the early answer: the whole bag, then the set."""
    bag: list[Tri] = list(rollup._child_values(t, act, rule, quiet))
    hits = sum(1 for v in bag if v is True)
    kind = rule.child_activity_set
    if kind == "any":
        return hits > 0
    if kind == "none":
        return all(v is False for v in bag)
    all_unknown = all(v is None for v in bag)
    if kind == "atLeastCount":
        return bool(bag) and not all_unknown and hits >= rule.minimum_count
    if kind == "atLeastPercent":
        return bool(bag) and not all_unknown and hits >= int(rule.minimum_percent * len(bag) + 0.5)
    return not bag or (not all_unknown and hits == len(bag))


ROLLUP_CONDITIONS = ("satisfied", "completed", "attempted", "objectiveStatusKnown", "activityProgressKnown")
ACTIONS = ("satisfied", "notSatisfied", "completed", "incomplete")
SETS = ("all", "any", "none", "atLeastCount", "atLeastPercent")


@st.composite
def rollup_sequencing(draw: st.DrawFn) -> str:
    chosen = []
    for _ in range(draw(st.integers(1, 4))):
        conditions = draw(
            st.lists(
                st.sampled_from([*ROLLUP_CONDITIONS, *(f"not {c}" for c in ROLLUP_CONDITIONS)]), min_size=1, max_size=2
            )
        )
        chosen.append(
            rollup_rule(
                draw(st.sampled_from(ACTIONS)),
                *conditions,
                child_set=draw(st.sampled_from(SETS)),
                minimumCount=draw(st.integers(0, 3)),
                minimumPercent=draw(st.sampled_from(["0.0", "0.5", "1.0"])),
            )
        )
    return seq('<imsss:controlMode choice="true" flow="true"/>', rollup_rules(*chosen))


@st.composite
def rollup_course(draw: st.DrawFn) -> list[Item]:
    def clusters(prefix: str, depth: int) -> Iterator[Item]:
        for index in range(draw(st.integers(1, 4))):
            name = f"{prefix}{index}"
            if depth < 2 and draw(st.booleans()):
                yield cluster(name, *clusters(name + "_", depth + 1), sequencing=draw(rollup_sequencing()))
            else:
                yield leaf(name)

    return list(clusters("r", 0))


CMI = (
    {"cmi.completion_status": "completed", "cmi.success_status": "passed"},
    {"cmi.completion_status": "incomplete", "cmi.success_status": "failed"},
    {"cmi.completion_status": "completed"},
    {"cmi.success_status": "unknown", "cmi.completion_status": "unknown"},
    {},
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    course=rollup_course(),
    root=rollup_sequencing(),
    plan=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 4)), max_size=10),
)
def test_rollup_answers_as_with_every_child_evaluated(
    course: list[Item], root: str, plan: list[tuple[int, int]]
) -> None:
    fast, full = engine(*course, sequencing=root), engine(*course, sequencing=root)

    def both(work: Any) -> None:
        work(fast)
        with mock.patch.object(rollup, "rule_applies", full_bag_rule_applies):
            work(full)
        assert fast.dump_state() == full.dump_state()
        assert fast.global_objectives == full.global_objectives

    both(lambda eng: eng.launch(now=1.0))
    leaves = [act.id for act in fast.tree.preorder if act.is_leaf]
    for index, (target, cmi) in enumerate(plan):
        if fast.current is None:
            both(lambda eng, i=index: eng.navigate("start", now=2.0 + i))
            continue
        request = f"{{target={leaves[target % len(leaves)]}}}choice"
        both(lambda eng, i=index, r=request, c=cmi: eng.terminate(eng.current, CMI[c], r, now=2.0 + i))
