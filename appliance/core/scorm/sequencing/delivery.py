"""Delivery: the Delivery Request Process (DB.1.1), the Content Delivery Environment Process (DB.2) and the
Clear Suspended Activity Subprocess (DB.2.1)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.attempt import common_ancestor, terminate_descendent_attempts
from appliance.core.scorm.sequencing.rules import check_activity
from appliance.core.scorm.sequencing.tracking import Tracking


@dataclass
class Delivered:
    """What DB.2 did: the activity is now current; `new_attempt` is False when a suspended attempt resumes."""

    activity: Activity
    new_attempt: bool
    attempt: int


def delivery_request_error(t: Tracking, act: Activity) -> str | None:
    """DB.1.1: only leaves are delivered, and nothing on the path from the root may be disabled or limited."""
    if not act.is_leaf:
        return "DB.1.1-1"
    if any(check_activity(t, node) for node in act.path_from_root()):
        return "DB.1.1-3"
    return None


def clear_suspended_activity(t: Tracking, act: Activity) -> None:
    """DB.2.1: un-suspend the old suspended branch up to the common ancestor with the delivered activity."""
    suspended = t.suspended_activity
    if suspended is None:
        return
    if suspended is not act:
        stop = common_ancestor(act, suspended)
        node: Activity | None = suspended
        while node is not None and node is not stop:
            record = t.st(node)
            record.suspended = any(t.st(child).suspended for child in t.children(node)) if node.children else False
            node = node.parent
    t.suspended_activity = None


def _new_course_attempt(t: Tracking) -> None:
    """A new attempt on the root is a new attempt on the course: global objectives scoped to the course
    (objectivesGlobalToSystem="false") start afresh, as in the ADL reference. A root attempt that was
    suspended (a SCO exited with suspend before exitAll) continues instead, keeping them."""
    if not t.tree.objectives_global_to_system:
        for target in t.tree.global_targets():
            t.globals.pop(target, None)


def content_delivery(t: Tracking, act: Activity) -> Delivered | str:
    """DB.2: begin (or resume) attempts on the path to the activity and make it current.

    Returns an exception code when the current activity is still active (the previous SCO was not terminated).
    """
    cur = t.current
    if cur is not None and t.st(cur).active:
        return "DB.2-1"
    clear_suspended_activity(t, act)
    terminate_descendent_attempts(t, act)
    new_attempt = False
    for node in act.path_from_root():
        record = t.st(node)
        if record.active:
            continue
        if node.tracked:
            if record.suspended:
                record.suspended = False
                record.attempt_started = t.now
                if node.is_leaf:
                    t.sync_from_globals(node)
            else:
                if node.parent is None and record.attempt_count > 0:
                    _new_course_attempt(t)
                t.begin_attempt(node)
                new_attempt = new_attempt or node is act
        elif record.suspended:
            # Untracked: no attempt is counted, but a SCO session it suspended (cmi.exit=suspend) resumes.
            record.suspended = False
        else:
            new_attempt = new_attempt or node is act
        record.active = True
    t.current = act
    t.suspended_activity = None
    return Delivered(activity=act, new_attempt=new_attempt, attempt=t.st(act).attempt_count)
