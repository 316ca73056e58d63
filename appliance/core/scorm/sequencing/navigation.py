"""The Navigation Request Process (NB.2.1): validate a navigation request against the current state and
translate it into a termination request and/or a sequencing request."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.attempt import common_ancestor
from appliance.core.scorm.sequencing.delivery import delivery_request_error
from appliance.core.scorm.sequencing.tracking import Tracking

NAV_REQUESTS = (
    "start",
    "resumeAll",
    "continue",
    "previous",
    "choice",
    "jump",
    "exit",
    "exitAll",
    "abandon",
    "abandonAll",
    "suspendAll",
    "_none_",
)


@dataclass
class NavOutcome:
    """NB.2.1 output: invalid when `exception` is set."""

    termination: str | None = None
    sequencing: str | None = None
    target: Activity | None = None
    exception: str | None = None


def _with_exit(t: Tracking, cur: Activity, sequencing: str, target: Activity | None = None) -> NavOutcome:
    """Most requests end the current attempt first when it is still open."""
    termination = "exit" if t.st(cur).active else None
    return NavOutcome(termination=termination, sequencing=sequencing, target=target)


def _choice(t: Tracking, cur: Activity | None, target: Activity | None) -> NavOutcome:
    if target is None:
        return NavOutcome(exception="NB.2.1-11")
    if target.parent is not None and not target.parent.definition.control_mode.choice:
        return NavOutcome(exception="NB.2.1-10")
    if cur is None:
        return NavOutcome(sequencing="choice", target=target)
    if cur.parent is None or cur.parent is not target.parent or not cur.definition.control_mode.choice_exit:
        # Leaving the current branch: no active activity on the way up may forbid it (choiceExit=false).
        # The current activity is on that way even when the target is its sibling (or itself): an active
        # activity with choiceExit=false can only be left for its own descendants (as the CTS's CM-07a expects).
        stop = common_ancestor(cur, target)
        for node in cur.ancestors():
            if node is stop:
                break
            if t.st(node).active and not node.definition.control_mode.choice_exit:
                return NavOutcome(exception="NB.2.1-8")
    return _with_exit(t, cur, "choice", target)


def jump_allowed(t: Tracking, target: Activity) -> bool:
    """4th Ed. jump: any available leaf that passes the delivery checks, regardless of control modes."""
    return t.is_available(target) and delivery_request_error(t, target) is None


def _flow_request(t: Tracking, cur: Activity | None, request: str) -> NavOutcome:
    if cur is None:
        return NavOutcome(exception="NB.2.1-2")
    parent = cur.parent
    if request == "previous" and parent is None:
        return NavOutcome(exception="NB.2.1-6")
    if parent is None or not parent.definition.control_mode.flow:
        return NavOutcome(exception="NB.2.1-4" if request == "continue" else "NB.2.1-5")
    if request == "previous" and parent.definition.control_mode.forward_only:
        return NavOutcome(exception="NB.2.1-5")
    return _with_exit(t, cur, request)


def navigation_request(t: Tracking, request: str, target: Activity | None = None) -> NavOutcome:
    """NB.2.1 Navigation Request Process."""
    cur = t.current
    if request == "start":
        return NavOutcome(sequencing="start") if cur is None else NavOutcome(exception="NB.2.1-1")
    if request == "resumeAll":
        if cur is not None:
            return NavOutcome(exception="NB.2.1-1")
        if t.suspended_activity is None:
            return NavOutcome(exception="NB.2.1-3")
        return NavOutcome(sequencing="resumeAll")
    if request in ("continue", "previous"):
        return _flow_request(t, cur, request)
    if request == "choice":
        return _choice(t, cur, target)
    if request == "jump":
        if cur is None or target is None or not jump_allowed(t, target):
            return NavOutcome(exception="NB.2.1-11")
        return _with_exit(t, cur, "jump", target)
    if request in ("exit", "abandon"):
        if cur is None:
            return NavOutcome(exception="NB.2.1-2")
        if not t.st(cur).active:
            return NavOutcome(exception="NB.2.1-12")
        return NavOutcome(termination=request, sequencing="exit")
    if request in ("exitAll", "abandonAll", "suspendAll"):
        if cur is None:
            return NavOutcome(exception="NB.2.1-2")
        return NavOutcome(termination=request, sequencing="exit")
    if request == "_none_":
        return NavOutcome()
    return NavOutcome(exception="NB.2.1-13")
