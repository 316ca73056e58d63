"""Walking the activity tree: Flow Tree Traversal (SB.2.1), Flow Activity Traversal (SB.2.2), the Flow
Subprocess (SB.2.3), Choice Activity Traversal (SB.2.4) and the Choice Flow traversal (SB.2.9.1/2).

These functions only read the tracking state; the callers decide what a result means (deliver, end the
session, raise an exception). The shape follows the ADL reference so behaviour matches its conformance suite,
including the "reversal" used when a backward walk meets a forwardOnly cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from appliance.core.scorm.sequencing.activity_tree import Activity, ActivityTree
from appliance.core.scorm.sequencing.rules import PRE_SKIP, PRE_STOP_FORWARD, check_activity, pre_rule
from appliance.core.scorm.sequencing.tracking import Tracking


class Direction(Enum):
    NONE = 0
    FORWARD = 1
    BACKWARD = 2


@dataclass
class Walk:
    """Where a traversal stopped: the activity (or None), the direction it ended up going, and whether it
    walked off the end of the tree (which ends the sequencing session)."""

    at: Activity | None
    direction: Direction = Direction.NONE
    end_session: bool = False


def next_sibling(t: Tracking, act: Activity) -> Activity | None:
    if act.parent is None:
        return None
    siblings = t.children(act.parent)
    index = sibling_index(t, act.parent, act)
    return siblings[index + 1] if index is not None and index + 1 < len(siblings) else None


def previous_sibling(t: Tracking, act: Activity) -> Activity | None:
    if act.parent is None:
        return None
    siblings = t.children(act.parent)
    index = sibling_index(t, act.parent, act)
    return siblings[index - 1] if index is not None and index > 0 else None


def sibling_index(t: Tracking, parent: Activity, act: Activity) -> int | None:
    """The first position of `act` among `parent`'s available children (None: not there).

    A scan, except while the state is frozen: then one position table per parent, so walking a long list of
    siblings is linear rather than quadratic."""
    siblings = t.children(parent)
    if siblings is parent.children:  # no selection or randomization here: the tree's own order
        return _static_positions(t.tree)[act.order] if act.parent is parent else None
    if t.memo is None:
        return _index(siblings, act)
    key = ("positions", parent.id)
    positions = t.memo.get(key)
    if positions is None:
        positions = t.memo[key] = {}
        for index, item in enumerate(siblings):
            positions.setdefault(id(item), index)
    return positions.get(id(act))


def _static_positions(tree: ActivityTree) -> list[int]:
    """Each activity's position among its parent's children in the tree (built once per tree): a walk
    along a thousand siblings asks for each one's position, and scanning for it would be quadratic."""
    positions = tree.sibling_positions
    if positions is None:
        positions = [0] * len(tree.preorder)
        for node in tree.preorder:
            for index, child in enumerate(node.children):
                positions[child.order] = index
        tree.sibling_positions = positions
    return positions


def _index(items: list[Activity], act: Activity) -> int | None:
    for index, item in enumerate(items):
        if item is act:
            return index
    return None


def last_leaf(t: Tracking) -> Activity | None:
    """The last leaf, in available-children preorder, that is not disabled (nor below a disabled cluster).

    Walking forward from it ends the session; the ADL reference computes "last leaf" this way, so a final
    activity that is disabled does not stop a learner from finishing the course.
    """
    if t.memo is not None and "last_leaf" in t.memo:
        return t.memo["last_leaf"]
    # The leaves from the end, as they are asked for: usually the very last one is the answer, so the walk
    # touches one path of the tree instead of listing every activity (as it did on every forward step).
    first: Activity | None = None
    found: Activity | None = None
    for leaf in _leaves_backward(t, t.tree.root):
        if first is None:
            first = leaf
        if not any(check_activity(t, node) for node in leaf.ancestors()):
            found = leaf
            break
    else:
        found = first  # every leaf is disabled (or below a disabled cluster): the last one
    if t.memo is not None:
        t.memo["last_leaf"] = found
    return found


def _leaves_backward(t: Tracking, act: Activity) -> Iterator[Activity]:
    """The leaves below `act` (or `act` itself) in reverse available-children preorder, lazily."""
    if act.is_leaf:
        yield act
        return
    for child in reversed(t.children(act)):
        yield from _leaves_backward(t, child)


def flow_tree_traversal(
    t: Tracking, direction: Direction, previous: Direction, enter: bool, frm: Activity | None, control: bool = True
) -> Walk:
    """SB.2.1: the next activity in `direction`, entering `frm`'s children only when `enter` is set."""
    if frm is None:
        return Walk(None, direction, end_session=True)
    reversed_ = False
    parent = frm.parent
    if parent is not None and previous == Direction.BACKWARD and next_sibling(t, frm) is None:
        # A backward walk that entered a forwardOnly cluster and skipped to its end turns around at its start.
        direction, frm, reversed_ = Direction.BACKWARD, t.children(parent)[0], True
    if direction == Direction.FORWARD:
        return _forward(t, frm, enter, control)
    return _backward(t, frm, enter, control, reversed_)


def _forward(t: Tracking, frm: Activity, enter: bool, control: bool) -> Walk:
    if frm is last_leaf(t):
        return Walk(None, Direction.FORWARD, end_session=True)
    if frm.is_leaf or not enter:
        sibling = next_sibling(t, frm)
        if sibling is not None:
            return Walk(sibling, Direction.FORWARD)
        up = flow_tree_traversal(t, Direction.FORWARD, Direction.NONE, False, frm.parent, control)
        return Walk(up.at, Direction.FORWARD, up.end_session)
    children = t.children(frm)
    return Walk(children[0] if children else None, Direction.FORWARD)


def _backward(t: Tracking, frm: Activity, enter: bool, control: bool, reversed_: bool) -> Walk:
    parent = frm.parent
    if parent is None:
        return Walk(None, Direction.BACKWARD)  # cannot walk back past the start of the tree
    if frm.is_leaf or not enter:
        if control and not reversed_ and parent.definition.control_mode.forward_only:
            return Walk(None, Direction.BACKWARD)
        sibling = previous_sibling(t, frm)
        if sibling is not None:
            return Walk(sibling, Direction.BACKWARD)
        up = flow_tree_traversal(t, Direction.BACKWARD, Direction.NONE, False, parent, control)
        return Walk(up.at, Direction.BACKWARD, up.end_session)
    children = t.children(frm)
    if not children:
        return Walk(None, Direction.BACKWARD)
    if frm.definition.control_mode.forward_only:
        return Walk(children[0], Direction.FORWARD)
    return Walk(children[-1], Direction.BACKWARD)


@dataclass
class Flow:
    """Result of a flow: a deliverable leaf, or failure (possibly because the session should end)."""

    at: Activity | None
    deliverable: bool
    end_session: bool = False


def flow_activity_traversal(t: Tracking, direction: Direction, previous: Direction, at: Activity) -> Flow:
    """SB.2.2: skip rules, Check Activity and descent into clusters until a deliverable leaf is found.

    A frozen state memoises the result per (direction, previous, activity): look-ahead flows into every
    cluster, and those walks share their tails."""
    if t.memo is None:
        return _flow_activity_traversal(t, direction, previous, at)
    key = ("flow", id(direction), id(previous), id(at))  # ids: an Enum member hashes in Python code
    result = t.memo.get(key)
    if result is None:
        result = t.memo[key] = _flow_activity_traversal(t, direction, previous, at)
    return result


def _flow_activity_traversal(t: Tracking, direction: Direction, previous: Direction, at: Activity) -> Flow:
    parent = at.parent
    if parent is None or not parent.definition.control_mode.flow:
        return Flow(at, False)
    if pre_rule(t, at, PRE_SKIP):
        walk = flow_tree_traversal(t, direction, previous, False, at, True)
        if walk.at is None:
            return Flow(None, False, walk.end_session)
        if previous == Direction.BACKWARD and walk.direction == Direction.BACKWARD:
            return flow_activity_traversal(t, Direction.BACKWARD, Direction.NONE, walk.at)
        return flow_activity_traversal(t, direction, previous, walk.at)
    if check_activity(t, at):
        return Flow(at, False)
    if at.is_leaf:
        return Flow(at, True)
    walk = flow_tree_traversal(t, direction, Direction.NONE, True, at, True)
    if walk.at is None:
        return Flow(at, False, walk.end_session)
    if direction == Direction.BACKWARD and walk.direction == Direction.FORWARD:
        return flow_activity_traversal(t, Direction.FORWARD, Direction.BACKWARD, walk.at)
    return flow_activity_traversal(t, direction, Direction.NONE, walk.at)


def flow(t: Tracking, direction: Direction, enter: bool, frm: Activity) -> Flow:
    """SB.2.3 Flow Subprocess: one tree step from `frm`, then activity traversal from there."""
    walk = flow_tree_traversal(t, direction, Direction.NONE, enter, frm, True)
    if walk.at is None:
        return Flow(None, False, walk.end_session)
    return flow_activity_traversal(t, direction, Direction.NONE, walk.at)


def choice_flow(t: Tracking, act: Activity, direction: Direction) -> Activity | None:
    """SB.2.9.2 Choice Flow Tree Traversal: the next/previous activity ignoring control modes and rules."""
    walk = flow_tree_traversal(t, direction, Direction.NONE, False, act, control=False)
    return walk.at


def choice_traversal_allowed(t: Tracking, act: Activity, direction: Direction) -> bool:
    """SB.2.4 Choice Activity Traversal: stopForwardTraversal blocks going forward past the activity,
    a forwardOnly parent blocks going backward."""
    if direction == Direction.FORWARD:
        return not pre_rule(t, act, PRE_STOP_FORWARD)
    parent = act.parent
    return parent is not None and not parent.definition.control_mode.forward_only
