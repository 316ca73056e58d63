"""Look-ahead ("tentative") evaluation: adl.nav.request_valid, the player's controls and the table of contents.

Everything here only reads the tracking state. Like the ADL reference, requests are judged from the state as
it is while the SCO runs (no termination is simulated): `continue` is valid whenever the current activity's
parent allows flow (a continue may legitimately end the course), `previous` and `choice` are dry runs of the
navigation, sequencing and delivery request processes.
"""

from __future__ import annotations

from typing import Any

from appliance.scorm.sequencing.activity_tree import Activity
from appliance.scorm.sequencing.delivery import delivery_request_error
from appliance.scorm.sequencing.navigation import jump_allowed, navigation_request
from appliance.scorm.sequencing.rules import check_activity, hidden_from_choice
from appliance.scorm.sequencing.sequencing_request import choice_target_error, previous
from appliance.scorm.sequencing.tracking import Tracking
from appliance.scorm.sequencing.traversal import Direction, flow

PREFIX = "adl.nav.request_valid."


def continue_valid(t: Tracking) -> bool:
    cur = t.current
    return cur is not None and cur.parent is not None and cur.parent.definition.control_mode.flow


def previous_valid(t: Tracking) -> bool:
    cur = t.current
    if cur is None or navigation_request(t, "previous").exception:
        return False
    outcome = previous(t)
    return outcome.deliver is not None and delivery_request_error(t, outcome.deliver) is None


def choice_valid(t: Tracking, target: Activity) -> bool:
    """Would `choice` of this activity deliver something now?"""
    if navigation_request(t, "choice", target).exception or choice_target_error(t, target):
        return False
    deliver: Activity | None = target
    if not target.is_leaf:
        result = flow(t, Direction.FORWARD, True, target)
        deliver = result.at if result.deliverable else None
    return deliver is not None and delivery_request_error(t, deliver) is None


def jump_valid(t: Tracking, target: Activity) -> bool:
    return t.current is not None and target.is_leaf and jump_allowed(t, target)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def request_valid(t: Tracking) -> dict[str, str]:
    """Every adl.nav.request_valid.* value, keyed by its full data model element name."""
    values = {
        PREFIX + "continue": _flag(continue_valid(t)),
        PREFIX + "previous": _flag(previous_valid(t)),
    }
    for act in t.tree.preorder:
        values[f"{PREFIX}choice.{{target={act.id}}}"] = _flag(choice_valid(t, act))
        values[f"{PREFIX}jump.{{target={act.id}}}"] = _flag(jump_valid(t, act))
    return values


def available_controls(t: Tracking) -> dict[str, bool]:
    """Which navigation controls the player should offer, after the current SCO's hideLMSUI."""
    cur = t.current
    hidden = set(cur.hide_lms_ui) if cur is not None else set()
    active = cur is not None and t.st(cur).active
    controls = {
        "start": cur is None and t.suspended_activity is None,
        "resumeAll": cur is None and t.suspended_activity is not None,
        "continue": continue_valid(t),
        "previous": previous_valid(t),
        "exit": active,
        "exitAll": cur is not None,
        "abandon": active,
        "abandonAll": cur is not None,
        "suspendAll": active,
    }
    result = {name: enabled and name not in hidden for name, enabled in controls.items()}
    # A TOC is worth showing when something below the root can be chosen (as in the ADL reference).
    result["choice"] = any(choice_valid(t, act) for act in t.tree.preorder[1:] if t.is_available(act))
    return result


def _status(t: Tracking, act: Activity) -> dict[str, Any]:
    completed = t.completed(act)
    satisfied = t.satisfied(act)
    record = t.st(act)
    return {
        "completion": "unknown" if completed is None else ("completed" if completed else "incomplete"),
        "success": "unknown" if satisfied is None else ("passed" if satisfied else "failed"),
        "measure": t.measure(act),
        "attempted": t.attempted(act),
        "attempts": record.attempt_count,
        "active": record.active,
        "suspended": record.suspended,
        "disabled": check_activity(t, act),
    }


def _node(t: Tracking, act: Activity, hidden: bool) -> dict[str, Any]:
    hidden = hidden or hidden_from_choice(t, act)
    return {
        "id": act.id,
        "title": act.title,
        "leaf": act.is_leaf,
        "visible": act.visible and not hidden,
        "selectable": choice_valid(t, act),
        "current": t.current is act,
        "status": _status(t, act),
        "children": [_node(t, child, hidden) for child in t.children(act)],
    }


def toc(t: Tracking) -> dict[str, Any]:
    """The table of contents as a tree rooted at the organization (only available children are listed)."""
    return _node(t, t.tree.root, False)
