"""The Sequencing Request Process (SB.2.12) and the request processes it dispatches to (SB.2.5 - SB.2.13).

Each process returns a `SeqOutcome`: an activity to deliver, the end of the sequencing session, nothing (wait
for the learner), or an exception code. Exception codes are the SN book's labels; they are diagnostics only.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.attempt import common_ancestor, end_attempt, terminate_descendent_attempts
from appliance.core.scorm.sequencing.rules import hidden_from_choice
from appliance.core.scorm.sequencing.tracking import Tracking
from appliance.core.scorm.sequencing.traversal import (
    Direction,
    Flow,
    choice_flow,
    choice_traversal_allowed,
    flow,
    next_sibling,
    previous_sibling,
)


def _flow(t: Tracking, direction: Direction, enter: bool, frm: Activity) -> Flow:
    """The Flow Subprocess in a frozen state: it only reads, so its walks may use the memo (a flow that skips
    many activities would otherwise rebuild the last leaf and scan the sibling lists at every step)."""
    with t.frozen():
        return flow(t, direction, enter, frm)


@dataclass
class SeqOutcome:
    deliver: Activity | None = None
    end_session: bool = False
    exception: str | None = None


def _end_session(t: Tracking) -> SeqOutcome:
    """Walking off the end of the tree: end every open attempt up to and including the root."""
    root = t.tree.root
    terminate_descendent_attempts(t, root)
    if t.st(root).active:
        end_attempt(t, root)
    t.current = root
    return SeqOutcome(end_session=True)


def start(t: Tracking) -> SeqOutcome:
    """SB.2.5 Start Sequencing Request Process."""
    if t.current is not None:
        return SeqOutcome(exception="SB.2.5-1")
    root = t.tree.root
    if root.is_leaf:
        return SeqOutcome(deliver=root)
    result = _flow(t, Direction.FORWARD, True, root)
    if result.deliverable:
        return SeqOutcome(deliver=result.at)
    if result.end_session:
        return _end_session(t)
    return SeqOutcome(exception="SB.2.5-3")


def resume_all(t: Tracking) -> SeqOutcome:
    """SB.2.6 Resume All Sequencing Request Process."""
    if t.current is not None:
        return SeqOutcome(exception="SB.2.6-1")
    suspended = t.suspended_activity
    if suspended is None:
        return SeqOutcome(exception="SB.2.6-2")
    return SeqOutcome(deliver=suspended)


def continue_(t: Tracking) -> SeqOutcome:
    """SB.2.7 Continue Sequencing Request Process; walking off the end ends the session."""
    cur = t.current
    if cur is None:
        return SeqOutcome(exception="SB.2.7-1")
    if cur.parent is not None and not cur.parent.definition.control_mode.flow:
        return SeqOutcome(exception="SB.2.7-2")
    result = _flow(t, Direction.FORWARD, False, cur)
    if result.deliverable:
        return SeqOutcome(deliver=result.at)
    if result.end_session:
        return _end_session(t)
    return SeqOutcome(exception="SB.2.7-2")


def previous(t: Tracking) -> SeqOutcome:
    """SB.2.8 Previous Sequencing Request Process; walking off the start is an exception."""
    cur = t.current
    if cur is None:
        return SeqOutcome(exception="SB.2.8-1")
    if cur.parent is not None and not cur.parent.definition.control_mode.flow:
        return SeqOutcome(exception="SB.2.8-2")
    result = _flow(t, Direction.BACKWARD, False, cur)
    if result.deliverable:
        return SeqOutcome(deliver=result.at)
    return SeqOutcome(exception="SB.2.8-2")


def retry(t: Tracking) -> SeqOutcome:
    """SB.2.10 Retry Sequencing Request Process: a new attempt on the current activity."""
    cur = t.current
    if cur is None:
        return SeqOutcome(exception="SB.2.10-1")
    record = t.st(cur)
    if record.active or record.suspended:
        return SeqOutcome(exception="SB.2.10-2")
    if cur.is_leaf:
        return SeqOutcome(deliver=cur)
    result = _flow(t, Direction.FORWARD, True, cur)
    if result.deliverable:
        return SeqOutcome(deliver=result.at)
    return SeqOutcome(exception="SB.2.10-3")


def exit_(t: Tracking) -> SeqOutcome:
    """SB.2.11 Exit Sequencing Request Process: exiting the root ends the session."""
    cur = t.current
    if cur is None:
        return SeqOutcome(exception="SB.2.11-1")
    if t.st(cur).active:
        return SeqOutcome(exception="SB.2.11-2")
    if cur.is_root:
        return SeqOutcome(end_session=True)
    return SeqOutcome()


def jump(t: Tracking, target: Activity) -> SeqOutcome:
    """SB.2.13 Jump Sequencing Request Process (4th Ed.): no control modes or rules, only delivery checks."""
    if t.current is None:
        return SeqOutcome(exception="SB.2.13-1")
    return SeqOutcome(deliver=target)


def _walk_siblings(t: Tracking, cur: Activity, target: Activity) -> str | None:
    """Choice case 2: every sibling passed between the current activity and the target must allow it."""
    siblings = t.children(cur.parent) if cur.parent is not None else [cur]
    forward = siblings.index(target) > siblings.index(cur) if target in siblings and cur in siblings else True
    direction = Direction.FORWARD if forward else Direction.BACKWARD
    node: Activity | None = cur
    while node is not None and node is not target:
        if not choice_traversal_allowed(t, node, direction):
            return "SB.2.9-5"
        node = next_sibling(t, node) if forward else previous_sibling(t, node)
    return None


def _walk_down(t: Tracking, ancestor: Activity, target: Activity) -> str | None:
    """Choice cases 3 and 5: from the common ancestor down to the target's parent, forward traversal must be
    allowed and an inactive activity with preventActivation blocks the choice."""
    node = target.parent
    while node is not None and node is not ancestor:
        if not choice_traversal_allowed(t, node, Direction.FORWARD):
            return "SB.2.9-5"
        if not t.st(node).active and node.definition.prevent_activation:
            return "SB.2.9-6"
        node = node.parent
    if not choice_traversal_allowed(t, ancestor, Direction.FORWARD):
        return "SB.2.9-5"
    return None


def _exit_path_blocked(cur: Activity, stop: Activity) -> tuple[bool, Activity | None]:
    """The ancestors of `cur` below `stop`: is any of them choiceExit=false, and which one constrains choice."""
    constrained: Activity | None = None
    node = cur.parent
    while node is not None and node is not stop:
        if not node.definition.control_mode.choice_exit:
            return True, constrained
        if constrained is None and node.definition.constrain_choice:
            constrained = node
        node = node.parent
    return False, constrained


def _check_constrained(t: Tracking, constrained: Activity, target: Activity) -> str | None:
    """constrainChoice: only the activity flow would reach next (or previous) from the constraining cluster,
    or something inside it, may be chosen."""
    direction = Direction.FORWARD if target.order > constrained.order else Direction.BACKWARD
    reach = choice_flow(t, constrained, direction)
    if reach is None or not target.is_descendant_of(reach):
        return "SB.2.9-8"
    return None


def _choice_path_error(t: Tracking, cur: Activity | None, target: Activity) -> str | None:
    """The five cases of the Choice Sequencing Request Process, step 5."""
    ancestor = common_ancestor(cur, target) if cur is not None else t.tree.root
    frm = cur if cur is not None else ancestor
    if frm is target:
        return None
    if frm.parent is not None and frm.parent is target.parent:
        return _walk_siblings(t, frm, target)
    if frm is ancestor:
        return _walk_down(t, ancestor, target)
    if target is ancestor:
        blocked, _ = _exit_path_blocked(frm, target)
        return "SB.2.9-7" if blocked else None
    blocked, constrained = _exit_path_blocked(frm, ancestor)
    if blocked:
        return "SB.2.9-7"
    if constrained is not None:
        error = _check_constrained(t, constrained, target)
        if error:
            return error
    return _walk_down(t, ancestor, target)


def choice_target_error(t: Tracking, target: Activity) -> str | None:
    """SB.2.9 steps 1-5: every check that does not change the tree, for the request and for look-ahead."""
    if not t.is_available(target):
        return "SB.2.9-2"
    if any(hidden_from_choice(t, node) for node in target.ancestors()):
        return "SB.2.9-3"
    if target.parent is not None and not target.parent.definition.control_mode.choice:
        return "SB.2.9-4"
    return _choice_path_error(t, t.current, target)


def choice(t: Tracking, target: Activity) -> SeqOutcome:
    """SB.2.9 Choice Sequencing Request Process."""
    with t.frozen():  # the checks only read the state (and walk siblings: linear with the memo)
        error = choice_target_error(t, target)
    if error:
        return SeqOutcome(exception=error)
    if target.is_leaf:
        return SeqOutcome(deliver=target)
    result = _flow(t, Direction.FORWARD, True, target)
    if result.deliverable:
        return SeqOutcome(deliver=result.at)
    cur = t.current
    if cur is not None:
        # Nothing to deliver inside the chosen cluster: end what is open and make the cluster current,
        # so the learner can choose within it.
        ancestor = common_ancestor(cur, target)
        terminate_descendent_attempts(t, ancestor)
        if t.st(ancestor).active:
            end_attempt(t, ancestor)
        t.current = target
    return SeqOutcome(exception="SB.2.9-9")


def sequencing_request(t: Tracking, request: str, target: Activity | None = None) -> SeqOutcome:
    """SB.2.12: dispatch a sequencing request."""
    if request == "start":
        return start(t)
    if request == "resumeAll":
        return resume_all(t)
    if request == "continue":
        return continue_(t)
    if request == "previous":
        return previous(t)
    if request == "retry":
        return retry(t)
    if request == "exit":
        return exit_(t)
    if request in ("choice", "jump"):
        if target is None:
            return SeqOutcome(exception="SB.2.9-1")
        return choice(t, target) if request == "choice" else jump(t, target)
    return SeqOutcome(exception="SB.2.12-1")
