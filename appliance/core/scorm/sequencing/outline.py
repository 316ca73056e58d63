"""The player's compact forms of the table of contents and of adl.nav.request_valid.

`lookahead.toc` is one dict per activity and `lookahead.request_valid` two element names per activity: at
5,000 activities about 1.2 MB and 0.5 MB of JSON in every launch, navigation and Terminate answer, most of
the request's CPU time to build, encode and send, though little of it changes from one request to the next.
The player gets them split instead:

* the **outline**: every activity's id and title in preorder (`Activity.order`), the tree's shape (each
  activity's parent, and the Available Children of the clusters where selection or randomization made them
  differ) and the static `isvisible="false"` positions. It changes only with selection and randomization, so
  it carries a `key`; the player sends back the key of the outline it holds (`toc_key`) and the outline is
  sent only when the key differs (always on a launch);
* per answer, what the state decides: the selectable positions (as `[start, stop)` ranges), the positions
  hidden from choice, the current position, and the status of only the activities something happened to or
  that are disabled (every other one is "untouched"); request_valid as continue, previous and the ranges of
  positions whose choice and jump are valid.

`expand_toc` and `expand_request_valid` give back exactly `lookahead.toc` and `lookahead.request_valid`; the
player does the same in JavaScript (appliance/faces/static/runtime/outline.js) and tests compare both with the full
forms. Building the compact forms costs one pass over the look-ahead table's lists and the state's records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from appliance.core.scorm.sequencing.activity_tree import Activity, ActivityTree
from appliance.core.scorm.sequencing.lookahead import (
    PREFIX,
    UNTOUCHED_STATUS,
    choice_validity,
    continue_valid,
    previous_valid,
    toc_status,
)
from appliance.core.scorm.sequencing.tracking import Tracking

Ranges = list[list[int]]
DEFAULT_STATUS: dict[str, Any] = {**UNTOUCHED_STATUS, "disabled": False}


@dataclass(frozen=True)
class _Static:
    """What the outline takes from the tree alone (built once per tree, kept on it)."""

    fingerprint: str
    ids: list[str]
    titles: list[str]
    parents: list[int]
    invisible: list[int]
    clusters: list[Activity]
    mapped: list[Activity]  # primary objective reads a global: never "untouched"


def _static(tree: ActivityTree) -> _Static:
    found = tree.outline_static
    if found is None:
        preorder = tree.preorder
        ids = [act.id for act in preorder]
        titles = [act.title for act in preorder]
        parents = [act.parent.order if act.parent is not None else -1 for act in preorder]
        invisible = [act.order for act in preorder if not act.visible]
        digest = hashlib.sha1(json.dumps([ids, titles, parents, invisible]).encode(), usedforsecurity=False)
        found = tree.outline_static = _Static(
            fingerprint=digest.hexdigest()[:16],
            ids=ids,
            titles=titles,
            parents=parents,
            invisible=invisible,
            clusters=[act for act in preorder if act.children],
            mapped=[act for act in preorder if act.definition.primary.maps],
        )
    return found


def _kids(t: Tracking, static: _Static) -> dict[str, list[int]]:
    """The Available Children of the clusters whose stored list differs from the tree's own children."""
    kids: dict[str, list[int]] = {}
    records = t.state.activities
    for act in static.clusters:
        record = records.get(act.id)
        if record is None or record.available is None:
            continue
        children = [child.order for child in t.children(act)]
        if children != [child.order for child in act.children]:
            kids[str(act.order)] = children
    return kids


def outline(t: Tracking) -> dict[str, Any]:
    """The outline of the tree as this state shows it, with its key (see the module's docstring)."""
    static = _static(t.tree)
    kids = _kids(t, static)
    shape = hashlib.sha1(json.dumps(kids, sort_keys=True).encode(), usedforsecurity=False).hexdigest()[:16]
    return {
        "key": f"{static.fingerprint}-{shape if kids else '0'}",
        "ids": static.ids,
        "titles": static.titles,
        "parents": static.parents,
        "invisible": static.invisible,
        "kids": kids,
    }


def ranges(flags: list[bool]) -> Ranges:
    """The `[start, stop)` runs of true values."""
    found: Ranges = []
    start = -1
    for index, flag in enumerate(flags):
        if flag:
            if start < 0:
                start = index
        elif start >= 0:
            found.append([start, index])
            start = -1
    if start >= 0:
        found.append([start, len(flags)])
    return found


def flags(runs: Ranges, size: int) -> list[bool]:
    """`ranges` undone."""
    values = [False] * size
    for start, stop in runs:
        values[start:stop] = [True] * (stop - start)
    return values


def toc_state(t: Tracking, client_key: str | None = None) -> dict[str, Any]:
    """The table of contents in its compact form; the outline only when the player's `client_key` differs."""
    with t.frozen():
        table = choice_validity(t)
        shape = outline(t)
        current = t.current
        return {
            "key": shape["key"],
            "outline": None if client_key == shape["key"] else shape,
            "current": current.order if current is not None else None,
            "selectable": ranges(table.choice),
            "hidden": [index for index, hidden in enumerate(table.own_hidden) if hidden],
            "status": _statuses(t, table.own_disabled),
        }


def _statuses(t: Tracking, disabled: list[bool]) -> dict[str, dict[str, Any]]:
    """The TOC status of every activity that is not untouched-and-enabled, by position: only those can
    differ from DEFAULT_STATUS, and only activities with a state record (or a global read) can be touched."""
    tree = t.tree
    candidates = {act.order: act for act in _static(tree).mapped}
    for activity_id, record in list(t.state.activities.items()):
        if not (
            record.attempt_count
            or record.active
            or record.suspended
            or record.completed is not None
            or record.completion_amount is not None
            or record.objectives
        ):
            continue  # a record a read created: untouched (`Tracking.untouched`), unless a global is read
        act = tree.get(activity_id)
        if act is not None:
            candidates[act.order] = act
    for index, flag in enumerate(disabled):
        if flag:
            candidates[index] = tree.preorder[index]
    found: dict[str, dict[str, Any]] = {}
    for index in sorted(candidates):
        act = candidates[index]
        if disabled[index] or not t.untouched(act):
            found[str(index)] = toc_status(t, act, disabled[index])
    return found


def request_valid_state(t: Tracking) -> dict[str, Any]:
    """adl.nav.request_valid in its compact form: continue, previous, and the choice and jump ranges."""
    with t.frozen():
        table = choice_validity(t)
        return {
            "continue": "true" if continue_valid(t) else "false",
            "previous": "true" if previous_valid(t) else "false",
            "choice": ranges(table.choice),
            "jump": ranges(table.jump),
        }


# -- the reference expansions (the player's outline.js does the same) ---------------------------------------


def expand_request_valid(shape: dict[str, Any], compact: dict[str, Any]) -> dict[str, str]:
    """`request_valid_state` back to `lookahead.request_valid`."""
    ids = shape["ids"]
    values = {PREFIX + "continue": compact["continue"], PREFIX + "previous": compact["previous"]}
    choice, jump = flags(compact["choice"], len(ids)), flags(compact["jump"], len(ids))
    for index, activity_id in enumerate(ids):
        values[f"{PREFIX}choice.{{target={activity_id}}}"] = "true" if choice[index] else "false"
        values[f"{PREFIX}jump.{{target={activity_id}}}"] = "true" if jump[index] else "false"
    return values


def expand_toc(shape: dict[str, Any], compact: dict[str, Any]) -> dict[str, Any]:
    """`toc_state` (with the outline it names) back to `lookahead.toc`."""
    ids, titles, parents = shape["ids"], shape["titles"], shape["parents"]
    children: list[list[int]] = [[] for _ in ids]
    for index, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(index)
    leaf = [not kids for kids in children]
    for index, kids in shape["kids"].items():
        children[int(index)] = kids
    invisible = set(shape["invisible"])
    hidden_here = set(compact["hidden"])
    selectable = flags(compact["selectable"], len(ids))
    statuses = compact["status"]

    def node(index: int, hidden: bool) -> dict[str, Any]:
        hidden = hidden or index in hidden_here
        return {
            "id": ids[index],
            "title": titles[index],
            "leaf": leaf[index],
            "visible": index not in invisible and not hidden,
            "selectable": selectable[index],
            "current": compact["current"] == index,
            "status": statuses.get(str(index), DEFAULT_STATUS),
            "children": [node(child, hidden) for child in children[index]],
        }

    return node(0, False)
