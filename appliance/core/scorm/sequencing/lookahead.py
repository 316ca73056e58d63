"""Look-ahead ("tentative") evaluation: adl.nav.request_valid, the player's controls and the table of contents.

Everything here only reads the tracking state. Like the ADL reference, requests are judged from the state as
it is while the SCO runs (no termination is simulated): `continue` is valid whenever the current activity's
parent allows flow (a continue may legitimately end the course), `previous` and `choice` are dry runs of the
navigation, sequencing and delivery request processes.

`choice_valid` is the dry run for one target, written as the processes read; asked of every activity it
walks the tree once per activity (cubic in the worst case). `choice_validity` answers for all activities in
one pass over the tree (plus one memoised flow into each cluster) with the same result; request_valid, the
controls and the TOC use it, inside a frozen tracking state so each derived value is computed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.core.scorm.sequencing.activity_tree import Activity, ActivityTree
from appliance.core.scorm.sequencing.definition import SequencingDefinition
from appliance.core.scorm.sequencing.delivery import delivery_request_error
from appliance.core.scorm.sequencing.navigation import jump_allowed, navigation_request
from appliance.core.scorm.sequencing.rules import PRE_STOP_FORWARD, check_activity, hidden_from_choice, pre_rule
from appliance.core.scorm.sequencing.sequencing_request import choice_target_error, previous
from appliance.core.scorm.sequencing.tracking import Tracking
from appliance.core.scorm.sequencing.traversal import Direction, choice_flow, flow

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
    """Would `choice` of this activity deliver something now? (The reference for `choice_validity`.)"""
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
    with t.frozen() as memo:
        values = memo.get("request_valid")
        if values is None:
            values = memo["request_valid"] = _request_valid(t)
        return dict(values)


def _request_valid(t: Tracking) -> dict[str, str]:
    values = {
        PREFIX + "continue": _flag(continue_valid(t)),
        PREFIX + "previous": _flag(previous_valid(t)),
    }
    table = choice_validity(t)
    for (choice_key, jump_key), choice, jump in zip(_target_keys(t), table.choice, table.jump, strict=True):
        values[choice_key] = "true" if choice else "false"
        values[jump_key] = "true" if jump else "false"
    return values


def _target_keys(t: Tracking) -> list[tuple[str, str]]:
    """The choice and jump element names of every activity, in preorder (built once per tree)."""
    keys = t.tree.lookahead_keys
    if keys is None:
        keys = t.tree.lookahead_keys = [
            (f"{PREFIX}choice.{{target={act.id}}}", f"{PREFIX}jump.{{target={act.id}}}") for act in t.tree.preorder
        ]
    return keys


def available_controls(t: Tracking) -> dict[str, bool]:
    """Which navigation controls the player should offer, after the current SCO's hideLMSUI."""
    with t.frozen():
        return _controls(t)


def _controls(t: Tracking) -> dict[str, bool]:
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
    table = choice_validity(t)
    result["choice"] = any(table.choice[act.order] for act in t.tree.preorder[1:] if t.is_available(act))
    return result


def toc_status(t: Tracking, act: Activity, disabled: bool) -> dict[str, Any]:
    """One TOC entry's status (`disabled`: its own Check Activity); UNTOUCHED_STATUS when nothing happened."""
    if t.untouched(act):
        return {**UNTOUCHED_STATUS, "disabled": disabled}
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
        "disabled": disabled,
    }


UNTOUCHED_STATUS = {
    "completion": "unknown",
    "success": "unknown",
    "measure": None,
    "attempted": False,
    "attempts": 0,
    "active": False,
    "suspended": False,
}


def _node(t: Tracking, act: Activity, hidden: bool, table: ChoiceTable) -> dict[str, Any]:
    hidden = hidden or table.own_hidden[act.order]
    return {
        "id": act.id,
        "title": act.title,
        "leaf": act.is_leaf,
        "visible": act.visible and not hidden,
        "selectable": table.choice[act.order],
        "current": t.current is act,
        "status": toc_status(t, act, table.own_disabled[act.order]),
        "children": [_node(t, child, hidden, table) for child in t.children(act)],
    }


def toc(t: Tracking) -> dict[str, Any]:
    """The table of contents as a tree rooted at the organization (only available children are listed)."""
    with t.frozen():
        return _node(t, t.tree.root, False, choice_validity(t))


# -- all targets at once -------------------------------------------------------------------------------


@dataclass
class ChoiceTable:
    """`choice_valid` and `jump_valid` of every activity, by its preorder position (`Activity.order`), and
    the activity's own hiddenFromChoice and Check Activity answers (the TOC shows them)."""

    choice: list[bool]
    jump: list[bool]
    own_hidden: list[bool]
    own_disabled: list[bool]


def choice_validity(t: Tracking) -> ChoiceTable:
    """`choice_valid`/`jump_valid` for every activity of the tree, memoised for the frozen state.

    Each check of the choice dry run is a walk along an ancestor chain, or along the current activity's
    siblings, that only depends on where the chain meets the current activity's path; one preorder pass
    (parents first) carries those walks down the tree, so the whole table costs one visit per activity plus
    the flows into clusters (memoised, so their shared tails are walked once). A stored state whose
    available-children lists are not proper sublists of the tree's children falls back to the reference."""
    with t.frozen() as memo:
        table = memo.get("choice_table")
        if table is None:
            t.spend(len(t.tree.preorder))
            table = memo["choice_table"] = _ChoicePass(t).table()
        return table


class _ChoicePass:
    """The per-node facts `choice_valid` reads, computed parents first (see `choice_validity`)."""

    def __init__(self, t: Tracking) -> None:
        self.t = t
        self.cur = t.current
        self.stop_forward: dict[int, bool] = {}
        self.reach: dict[tuple[int, Direction], Activity | None] = {}
        self.subtree_end: list[int] | None = None

    def table(self) -> ChoiceTable:
        t = self.t
        preorder = t.tree.preorder
        if not self._regular():
            return ChoiceTable(
                [choice_valid(t, act) for act in preorder],
                [jump_valid(t, act) for act in preorder],
                [hidden_from_choice(t, act) for act in preorder],
                [check_activity(t, act) for act in preorder],
            )
        self._per_node()
        self._current_path()
        choice = self._choices()
        jump = [
            self.cur is not None and act.is_leaf and self.available[act.order] and not self.disabled[act.order]
            for act in preorder
        ]
        return ChoiceTable(choice, jump, self.own_hidden, self.own_disabled)

    # -- facts --------------------------------------------------------------------------------------------

    def _regular(self) -> bool:
        """Every stored available-children list names distinct children of its own cluster."""
        t = self.t
        for act in t.tree.preorder:
            if act.children and t.st(act).available is not None:
                kids = t.children(act)
                if len({id(kid) for kid in kids}) != len(kids) or any(kid.parent is not act for kid in kids):
                    return False
        return True

    def _per_node(self) -> None:
        """Availability, hidden-from-choice and disabled on the path from the root, the deepest ancestor on
        the current activity's path (their common ancestor), and the walk-down checks below that ancestor."""
        t = self.t
        preorder = t.tree.preorder
        n = len(preorder)
        cur = self.cur
        if cur is None:
            on_path = {id(t.tree.root)}
        else:
            start = cur.parent if cur.is_leaf and cur.parent is not None else cur
            on_path = {id(node) for node in start.ancestors()}
        self.available = t.available_flags()
        self.hidden = hidden_below = [False] * n
        self.disabled = disabled_below = [False] * n
        self.own_hidden = own_hidden = [False] * n
        self.own_disabled = own_disabled = [False] * n
        self.deep = deep = [t.tree.root] * n
        self.down_ok = down_ok = [True] * n
        plain, walks_plain = _static_flags(t.tree)
        for act in preorder:
            i, parent = act.order, act.parent
            if plain[i]:
                hidden = disabled = False
            else:
                hidden = own_hidden[i] = hidden_from_choice(t, act)
                disabled = own_disabled[i] = check_activity(t, act)
            if parent is None:
                hidden_below[i], disabled_below[i], deep[i] = hidden, disabled, act
                continue
            p = parent.order
            hidden_below[i] = hidden_below[p] or hidden
            disabled_below[i] = disabled_below[p] or disabled
            if id(act) in on_path:
                deep[i] = act
            else:
                deep[i] = deep[p]
                down_ok[i] = down_ok[p] and (walks_plain[i] or self._walk_down_passes(act))

    def _walk_down_passes(self, node: Activity) -> bool:
        """One step of `_walk_down`: forward traversal allowed, and no inactive preventActivation cluster."""
        if not node.definition.pre_rules and not node.definition.prevent_activation:
            return True
        return not self._stops_forward(node) and not (not self.t.st(node).active and node.definition.prevent_activation)

    def _stops_forward(self, node: Activity) -> bool:
        key = id(node)
        value = self.stop_forward.get(key)
        if value is None:
            value = self.stop_forward[key] = pre_rule(self.t, node, PRE_STOP_FORWARD)
        return value

    def _current_path(self) -> None:
        """The walks that start at the current activity: up to each of its ancestors (choiceExit of active
        activities for the navigation request; choiceExit and constrainChoice of the definitions for the
        choice request), and along its siblings (stopForwardTraversal forward, forwardOnly backward)."""
        t, cur = self.t, self.cur
        self.nav_blocked: dict[int, bool] = {}
        self.nav_blocked_all = False
        self.exit_path: dict[int, tuple[bool, Activity | None]] = {}
        self.exit_path_all: tuple[bool, Activity | None] = (False, None)
        self.sibling_at: dict[int, int] = {}
        self.cur_index: int | None = None
        self.forward_block, self.backward_block = 0, 0
        if cur is None:
            return
        blocked = False
        for node in cur.ancestors():
            self.nav_blocked[id(node)] = blocked
            blocked = blocked or (t.st(node).active and not node.definition.control_mode.choice_exit)
        self.nav_blocked_all = blocked
        exit_blocked, constrained = False, None
        for node in cur.ancestors(include_self=False):
            self.exit_path[id(node)] = (exit_blocked, constrained)
            if exit_blocked:
                continue
            if not node.definition.control_mode.choice_exit:
                exit_blocked = True
            elif constrained is None and node.definition.constrain_choice:
                constrained = node
        self.exit_path_all = (exit_blocked, constrained)
        if cur.parent is None:
            return
        siblings = t.children(cur.parent)
        self.sibling_at = {id(node): index for index, node in enumerate(siblings)}
        index = self.cur_index = self.sibling_at.get(id(cur))
        if index is None:
            return
        self.forward_block = next(
            (k for k in range(index, len(siblings)) if self._stops_forward(siblings[k])), len(siblings)
        )
        self.backward_block = next((k for k in range(index, -1, -1) if not _backward_allowed(siblings[k])), -1)

    # -- every target ---------------------------------------------------------------------------------------

    def _choices(self) -> list[bool]:
        """`_choice` of every activity. The leaves of one cluster share every check but their own
        availability, hiding and disabling (`_leaf_path`), so those are answered from the per-node lists;
        the rest (clusters, the current activity's siblings, a constrained choice) one by one."""
        tree = self.t.tree
        choice = [False] * len(tree.preorder)
        choice[tree.root.order] = self._choice(tree.root)
        available, hidden, disabled = self.available, self.hidden, self.disabled
        for parent in tree.preorder:
            kids = parent.children
            if not kids or not parent.definition.control_mode.choice:
                continue  # no child of a cluster without choice is a valid target
            if self.cur is not None and self.cur.parent is parent:
                self._sibling_choices(parent, choice)
                continue
            shared = self._leaf_path(parent)
            for target in kids:
                i = target.order
                if shared is None or target.children:
                    choice[i] = self._choice(target)
                else:
                    choice[i] = shared and available[i] and not hidden[i] and not disabled[i]
        return choice

    def _sibling_choices(self, parent: Activity, choice: list[bool]) -> None:
        """`_choice` of the current activity's siblings: the leaves share the navigation check (choiceExit,
        or the ancestors' choiceExit) and differ only in where they sit relative to the current activity."""
        cur = self.cur
        assert cur is not None
        available, hidden, disabled = self.available, self.hidden, self.disabled
        nav_ok = cur.definition.control_mode.choice_exit or not self.nav_blocked.get(
            id(self.deep[parent.order]), self.nav_blocked_all
        )
        for target in parent.children:
            i = target.order
            if target.children:
                choice[i] = self._choice(target)
            elif not nav_ok or not available[i] or hidden[i] or disabled[i]:
                choice[i] = False
            else:
                choice[i] = target is cur or self._siblings_pass(cur, target)

    def _leaf_path(self, parent: Activity) -> bool | None:
        """What `_choice` answers for every leaf child of `parent` (whose choice mode allows it) besides the
        leaf's own availability, hiding and disabling; None when it depends on the leaf itself: `parent` is
        the current activity's parent (the walk along siblings), or a constrained choice applies."""
        cur = self.cur
        if cur is None:
            ancestor = frm = self.t.tree.root
        else:
            if cur.parent is parent:
                return None
            ancestor = self.deep[parent.order]
            if self.nav_blocked.get(id(ancestor), self.nav_blocked_all):
                return False
            frm = cur
        if frm is not ancestor:
            blocked, constrained = self.exit_path.get(id(ancestor), self.exit_path_all)
            if blocked:
                return False
            if constrained is not None:
                return None
        return self.down_ok[parent.order] and not self._stops_forward(ancestor)

    # -- one target -----------------------------------------------------------------------------------------

    def _choice(self, target: Activity) -> bool:
        i = target.order
        parent = target.parent
        if parent is not None and not parent.definition.control_mode.choice:
            return False
        if not self.available[i] or self.hidden[i]:
            return False
        cur = self.cur
        ancestor = self.t.tree.root
        if cur is not None:
            ancestor = self.deep[(parent if target.is_leaf and parent is not None else target).order]
            same_parent = cur.parent is not None and cur.parent is parent and cur.definition.control_mode.choice_exit
            if not same_parent and self.nav_blocked.get(id(ancestor), self.nav_blocked_all):
                return False
        if not self._path_passes(cur if cur is not None else ancestor, ancestor, target):
            return False
        deliver: Activity | None = target
        if not target.is_leaf:
            result = flow(self.t, Direction.FORWARD, True, target)
            deliver = result.at if result.deliverable else None
        return deliver is not None and deliver.is_leaf and not self.disabled[deliver.order]

    def _path_passes(self, frm: Activity, ancestor: Activity, target: Activity) -> bool:
        """`_choice_path_error` is None: the five cases of SB.2.9 step 5, from the precomputed walks."""
        if frm is target:
            return True
        if frm.parent is not None and frm.parent is target.parent:
            return self._siblings_pass(frm, target)
        if frm is ancestor:
            return self._down_passes(ancestor, target)
        blocked, constrained = self.exit_path.get(id(ancestor), self.exit_path_all)
        if target is ancestor or blocked:
            return not blocked
        if constrained is not None and not self._within_constraint(constrained, target):
            return False
        return self._down_passes(ancestor, target)

    def _siblings_pass(self, cur: Activity, target: Activity) -> bool:
        index = self.cur_index
        if index is None:  # not among its parent's available children: only its own step is checked
            return not self._stops_forward(cur)
        at = self.sibling_at.get(id(target))
        if at is None or at > index:
            return self.forward_block >= (at if at is not None else len(self.sibling_at))
        return self.backward_block <= at

    def _down_passes(self, ancestor: Activity, target: Activity) -> bool:
        parent = target.parent
        if parent is not None and not self.down_ok[parent.order]:
            return False
        return not self._stops_forward(ancestor)

    def _within_constraint(self, constrained: Activity, target: Activity) -> bool:
        direction = Direction.FORWARD if target.order > constrained.order else Direction.BACKWARD
        key = (id(constrained), direction)
        if key not in self.reach:
            self.reach[key] = choice_flow(self.t, constrained, direction)
        reach = self.reach[key]
        if reach is None:
            return False
        return reach.order <= target.order <= self._subtree_end()[reach.order]

    def _subtree_end(self) -> list[int]:
        """The preorder position of each activity's last descendant (descendant test by interval)."""
        if self.subtree_end is None:
            preorder = self.t.tree.preorder
            end = [act.order for act in preorder]
            for act in reversed(preorder):
                if act.parent is not None:
                    end[act.parent.order] = max(end[act.parent.order], end[act.order])
            self.subtree_end = end
        return self.subtree_end


def _static_flags(tree: ActivityTree) -> tuple[list[bool], list[bool]]:
    """Per activity, by preorder position (built once per tree): `_plain`, and whether a walk down through
    it always passes (no pre-condition rule, no preventActivation: `_walk_down_passes` is true)."""
    flags = tree.derived.get("lookahead_flags")
    if flags is None:
        plain = [_plain(act.definition) for act in tree.preorder]
        walks = [not act.definition.pre_rules and not act.definition.prevent_activation for act in tree.preorder]
        flags = tree.derived["lookahead_flags"] = (plain, walks)
    return flags


def _plain(definition: SequencingDefinition) -> bool:
    """No pre-condition rule and no attempt limit or time window: such an activity is never hidden from
    choice, disabled or over its limits (Check Activity is false whatever its state), so the pass skips the
    reads."""
    limits = definition.limit_conditions
    return (
        not definition.pre_rules
        and limits.attempt_limit is None
        and limits.begin_time_limit is None
        and limits.end_time_limit is None
    )


def _backward_allowed(node: Activity) -> bool:
    """Choice Activity Traversal backward: the parent must not be forwardOnly."""
    parent = node.parent
    return parent is not None and not parent.definition.control_mode.forward_only
