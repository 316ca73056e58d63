"""Ending attempts: End Attempt (UP.4) and Terminate Descendent Attempts (UP.3)."""

from __future__ import annotations

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.rollup import overall_rollup
from appliance.core.scorm.sequencing.selection import reprepare
from appliance.core.scorm.sequencing.tracking import Tracking


def common_ancestor(a: Activity, b: Activity) -> Activity:
    """The nearest cluster containing both activities (a leaf never counts as its own ancestor here, as in
    the ADL reference: ending attempts "up to the common ancestor" must end the leaf itself)."""
    start = a.parent if a.is_leaf and a.parent is not None else a
    target = b.parent if b.is_leaf and b.parent is not None else b
    for node in start.ancestors():
        if target.is_descendant_of(node):
            return node
    return start.path_from_root()[0]


def _apply_default_status(t: Tracking, act: Activity) -> None:
    """A tracked leaf whose content said nothing counts as completed and satisfied (UP.4 step 1)."""
    record = t.st(act)
    delivery = act.definition.delivery
    if (
        not delivery.completion_set_by_content
        and record.completed is None
        and not record.content_set_completion
        and not t.by_measure(act)  # completion comes from the progress measure only
    ):
        record.completed = True
    primary = act.definition.primary
    if primary.satisfied_by_measure or delivery.objective_set_by_content or record.content_set_satisfaction:
        return
    # A status read through the primary objective's maps counts as known too (as in the ADL reference).
    if t.satisfied(act, primary) is None:
        t.obj(act, primary).satisfied = True


def end_attempt(t: Tracking, act: Activity) -> None:
    """UP.4 End Attempt Process: defaults for silent leaves, cluster suspension, then Overall Rollup."""
    record = t.st(act)
    if act.is_leaf:
        if act.tracked and not record.suspended:
            _apply_default_status(t, act)
    else:
        record.suspended = any(t.st(child).suspended for child in t.children(act))
        if not record.suspended:
            reprepare(t, act, t.rng)
    record.active = False
    t.close_attempt_clock(act)
    overall_rollup(t, act)


def terminate_descendent_attempts(t: Tracking, act: Activity) -> None:
    """UP.3: end the open attempts from the current activity up to (excluding) its common ancestor with `act`."""
    cur = t.current
    if cur is None:
        return
    stop = common_ancestor(cur, act)
    for node in cur.ancestors():
        if node is stop:
            break
        if t.st(node).active:
            end_attempt(t, node)
