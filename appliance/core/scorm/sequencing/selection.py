"""Selection and randomization of children (SR.1 Select Children, SR.2 Randomize Children).

The random source is injected (any `random.Random`), so tests and replays are deterministic; the outcome is
stored as the cluster's Available Children in the tracking state, so it survives between requests.
"""

from __future__ import annotations

import random

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.tracking import Tracking

NEVER = "never"
ONCE = "once"
ON_EACH_NEW_ATTEMPT = "onEachNewAttempt"


def select_children(t: Tracking, act: Activity, rng: random.Random) -> None:
    """SR.1: keep a random subset of selectCount children, in their original order."""
    if act.is_leaf:
        return
    count = act.definition.randomization.select_count
    record = t.st(act)
    if count is not None and 0 < count < len(act.children):
        chosen = set(rng.sample(range(len(act.children)), count))
        record.available = [child.id for index, child in enumerate(act.children) if index in chosen]
    record.selection_done = True


def randomize_children(t: Tracking, act: Activity, rng: random.Random) -> None:
    """SR.2: shuffle the Available Children when reorderChildren is set."""
    if act.is_leaf:
        return
    record = t.st(act)
    if act.definition.randomization.reorder_children:
        order = [child.id for child in t.children(act)]
        rng.shuffle(order)
        record.available = order
    record.randomization_done = True


def prepare_clusters(t: Tracking, rng: random.Random) -> None:
    """At the start of a session, apply selection and randomization that have not happened yet.

    Like the ADL reference, every cluster with a timing other than `never` is prepared once here; clusters
    with `onEachNewAttempt` are prepared again whenever one of their attempts ends (see `reprepare`).
    """
    for act in t.tree.preorder:
        if act.is_leaf:
            continue
        rand = act.definition.randomization
        record = t.st(act)
        if rand.selection_timing != NEVER and not record.selection_done:
            select_children(t, act, rng)
        if rand.randomization_timing != NEVER and not record.randomization_done:
            randomize_children(t, act, rng)


def reprepare(t: Tracking, act: Activity, rng: random.Random) -> None:
    """After an attempt on a cluster ends (not suspended), re-select/re-order for `onEachNewAttempt`."""
    rand = act.definition.randomization
    if rand.selection_timing == ON_EACH_NEW_ATTEMPT:
        t.st(act).available = None
        select_children(t, act, rng)
    if rand.randomization_timing == ON_EACH_NEW_ATTEMPT:
        randomize_children(t, act, rng)
