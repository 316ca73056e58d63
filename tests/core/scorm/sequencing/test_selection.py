"""SR.1 Select Children and SR.2 Randomize Children, with an injected random source."""

from __future__ import annotations

import random

from appliance.core.scorm.sequencing.selection import prepare_clusters, randomize_children, select_children
from tests.core.scorm.sequencing.builders import FLOW_MODE, cluster, engine, leaf, seq, tracking

CHILDREN = tuple(leaf(f"a{i}") for i in range(6))


def _randomized(**attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return seq(FLOW_MODE, f"<imsss:randomizationControls{extra}/>")


def test_sr1_select_count_keeps_a_subset_in_original_order() -> None:
    t = tracking(cluster("m", *CHILDREN, sequencing=_randomized(selectCount="3", selectionTiming="once")))
    select_children(t, t.tree["m"], random.Random(1))
    ids = [a.id for a in t.children(t.tree["m"])]
    assert len(ids) == 3 and ids == sorted(ids)


def test_sr1_select_count_at_least_the_number_of_children_selects_all() -> None:
    t = tracking(cluster("m", *CHILDREN, sequencing=_randomized(selectCount="9", selectionTiming="once")))
    select_children(t, t.tree["m"], random.Random(1))
    assert len(t.children(t.tree["m"])) == 6


def test_sr2_reorder_children_is_deterministic_for_a_seed() -> None:
    orders = []
    for _ in range(2):
        t = tracking(
            cluster("m", *CHILDREN, sequencing=_randomized(reorderChildren="true", randomizationTiming="once"))
        )
        randomize_children(t, t.tree["m"], random.Random(42))
        orders.append([a.id for a in t.children(t.tree["m"])])
    assert orders[0] == orders[1] and sorted(orders[0]) == [c.identifier for c in CHILDREN]


def test_timing_never_changes_nothing() -> None:
    t = tracking(cluster("m", *CHILDREN, sequencing=_randomized(selectCount="2", reorderChildren="true")))
    prepare_clusters(t, random.Random(3))
    assert [a.id for a in t.children(t.tree["m"])] == [c.identifier for c in CHILDREN]


def test_selection_survives_dump_and_restore() -> None:
    """The Available Children are part of the persisted state, so a reloaded session sees the same set."""
    xml = _randomized(selectCount="2", selectionTiming="once")
    eng = engine(cluster("m", *CHILDREN, sequencing=xml), seed=5)
    first = eng.navigate("start").delivered
    restored = engine(cluster("m", *CHILDREN, sequencing=xml), state=eng.dump_state(), seed=99)
    kept = [a.id for a in restored.tracking.children(restored.tree["m"])]
    assert kept == [a.id for a in eng.tracking.children(eng.tree["m"])]
    assert first in kept


def test_unselected_children_are_not_choice_targets() -> None:
    xml = _randomized(selectCount="1", selectionTiming="once")
    eng = engine(cluster("m", *CHILDREN, sequencing=xml), seed=5)
    eng.navigate("start")
    (kept,) = eng.tracking.children(eng.tree["m"])
    other = next(c.identifier for c in CHILDREN if c.identifier != kept.id)
    assert eng.navigate("choice", other).exception == "SB.2.9-2"
