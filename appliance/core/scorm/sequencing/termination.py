"""The Termination Request Process (TB.2.3) with its exit-action (TB.2.1) and post-condition (TB.2.2) rules.

Termination ends the current attempt(s) before a new sequencing request is processed. Post-condition rules
may replace the sequencing request (retry, continue, previous) or turn the termination into exitParent /
exitAll; the result tells the overall process which sequencing request to run next.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.attempt import end_attempt, terminate_descendent_attempts
from appliance.core.scorm.sequencing.rollup import overall_rollup
from appliance.core.scorm.sequencing.rules import exit_rule_fires, post_rule
from appliance.core.scorm.sequencing.tracking import Tracking


@dataclass
class TermOutcome:
    """valid unless `exception`; `sequencing` replaces the navigation's sequencing request when set."""

    sequencing: str | None = None
    exception: str | None = None
    exit_all: bool = False  # the attempt on the whole tree ended (course-scoped data may be discarded)


def exit_action_rules(t: Tracking) -> None:
    """TB.2.1: the first ancestor (from the root down) whose exit rule fires ends, with everything below it."""
    cur = t.current
    if cur is None:
        return
    for node in cur.path_from_root()[:-1]:
        if exit_rule_fires(t, node):
            terminate_descendent_attempts(t, node)
            end_attempt(t, node)
            t.current = node
            return


def _exit_all(t: Tracking, sequencing: str | None) -> TermOutcome:
    """TB.2.3 exitAll: end everything, the root last; the session then ends (or the root is retried)."""
    cur = t.current
    if cur is not None and t.st(cur).active:
        end_attempt(t, cur)
    root = t.tree.root
    terminate_descendent_attempts(t, root)
    end_attempt(t, root)
    t.current = root
    if sequencing == "retry" and not t.tree.objectives_global_to_system:
        # A retry of the whole course starts its course-scoped global objectives afresh (ADL reference).
        for target in t.tree.global_targets():
            t.globals.pop(target, None)
    return TermOutcome(sequencing=sequencing or "exit", exit_all=True)


def _exit(t: Tracking) -> TermOutcome:
    """TB.2.3 exit: End Attempt, exit action rules, then post-condition rules until none moves further up."""
    cur = t.current
    assert cur is not None
    end_attempt(t, cur)
    exit_action_rules(t)
    sequencing: str | None = None
    if t.st(cur).suspended:
        return TermOutcome()
    while True:
        node = t.current
        assert node is not None
        action = post_rule(t, node) if not t.st(node).suspended else None
        if action in ("retry", "continue", "previous"):
            sequencing = action
            if action == "retry" and node.is_root:
                return _exit_all(t, "retry")
            break
        if action in ("exitAll", "retryAll"):
            return _exit_all(t, "retry" if action == "retryAll" else None)
        if action == "exitParent":
            if node.parent is None:
                return TermOutcome(exception="TB.2.3-4")
            t.current = node.parent
            end_attempt(t, node.parent)
            continue
        break
    node = t.current
    if node is not None and node.is_root and sequencing != "retry":
        return TermOutcome(sequencing="exit")
    return TermOutcome(sequencing=sequencing)


def _suspend_all(t: Tracking, cur: Activity) -> TermOutcome:
    """TB.2.3 suspendAll: remember where the learner was and suspend the whole active path."""
    record = t.st(cur)
    if record.active or record.suspended:
        if cur.is_leaf:
            record.suspended = True
        overall_rollup(t, cur)
        t.suspended_activity = cur
    elif cur.parent is not None:
        t.suspended_activity = cur.parent
    else:
        return TermOutcome(exception="TB.2.3-3")
    node = t.suspended_activity
    while node is not None:
        state = t.st(node)
        if state.active:
            t.close_attempt_clock(node)
        state.active = False
        state.suspended = True
        node = node.parent
    t.current = t.tree.root
    return TermOutcome(sequencing="exit")


def _abandon(t: Tracking, cur: Activity) -> TermOutcome:
    """TB.2.3 abandon: the attempt stops counting; whatever the content reported is discarded."""
    record = t.st(cur)
    record.active = False
    record.completed = None
    record.completion_amount = None
    record.objectives = {}
    return TermOutcome()


def _abandon_all(t: Tracking, cur: Activity) -> TermOutcome:
    _abandon(t, cur)
    for node in cur.ancestors():
        t.st(node).active = False
    t.current = t.tree.root
    return TermOutcome(sequencing="exit", exit_all=True)


def termination_request(t: Tracking, request: str) -> TermOutcome:
    """TB.2.3 Termination Request Process."""
    cur = t.current
    if cur is None:
        return TermOutcome(exception="TB.2.3-1")
    active = t.st(cur).active
    if request in ("exit", "abandon") and not active:
        return TermOutcome(exception="TB.2.3-2")
    if request == "exit":
        return _exit(t)
    if request == "exitAll":
        return _exit_all(t, None)
    if request == "suspendAll":
        return _suspend_all(t, cur)
    if request == "abandon":
        return _abandon(t, cur)
    if request == "abandonAll":
        return _abandon_all(t, cur)
    return TermOutcome(exception="TB.2.3-7")
