"""Canonical Activity definitions (table xapi_activities), merged from the statements that carry them.

The Activities resource answers "all available information about an activity from any statements
that target the same activityId" (xAPI 1.0.3 §2.5, 2.0 §4.1.6.4): two statements naming an activity
in English and in French give one definition with both names. So a definition is not replaced by the
last one sent but merged into: language maps (`name`, `description`) and `extensions` key by key,
interaction components (`choices`, `scale`, `source`, `target`, `steps`) by component id with their
descriptions merged, every other property (`type`, `moreInfo`, `interactionType`,
`correctResponsesPattern`) replaced by the newer value.

The statement store calls `merge_activity_definitions` inside its insert transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import apsw
import msgspec

LANGUAGE_MAPS = ("name", "description")
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def _components(old: list[Any], new: list[Any]) -> list[Any]:
    """Interaction components merged by id: known ids updated in place, new ids appended."""
    merged = [dict(c) if isinstance(c, dict) else c for c in old]
    index = {c.get("id"): i for i, c in enumerate(merged) if isinstance(c, dict)}
    for component in new:
        if not isinstance(component, dict):
            continue
        at = index.get(component.get("id"))
        if at is None:
            index[component.get("id")] = len(merged)
            merged.append(dict(component))
            continue
        target = merged[at]
        for key, value in component.items():
            if key == "description" and isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    return merged


def merge_definition(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` merged into `old` as the module's docstring says (neither is modified)."""
    merged = dict(old or {})
    for key, value in new.items():
        known = merged.get(key)
        if (key in LANGUAGE_MAPS or key == "extensions") and isinstance(value, dict) and isinstance(known, dict):
            merged[key] = {**known, **value}
        elif key in COMPONENT_LISTS and isinstance(value, list) and isinstance(known, list):
            merged[key] = _components(known, value)
        else:
            merged[key] = value
    return merged


def statement_activities(statement: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every Activity object of a statement: its object, its context activities, a SubStatement's."""
    obj = statement.get("object")
    if isinstance(obj, Mapping):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            yield obj
        elif kind == "SubStatement":
            yield from statement_activities(obj)
    context = statement.get("context")
    if isinstance(context, Mapping) and isinstance(context.get("contextActivities"), Mapping):
        for group in context["contextActivities"].values():
            for activity in group if isinstance(group, list) else [group]:
                if isinstance(activity, Mapping):
                    yield activity


def merge_activity_definitions(conn: apsw.Connection, statements: Iterable[Mapping[str, Any]], updated: float) -> int:
    """Merge the definitions a batch of statements carries into xapi_activities; the rows written.

    Inside the caller's write transaction; one SELECT and one executemany whatever the batch's size.
    """
    incoming: dict[str, list[Mapping[str, Any]]] = {}
    for statement in statements:
        for activity in statement_activities(statement):
            definition = activity.get("definition")
            if isinstance(activity.get("id"), str) and isinstance(definition, Mapping) and definition:
                incoming.setdefault(activity["id"], []).append(definition)
    if not incoming:
        return 0
    ids = list(incoming)
    known: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for activity_id, definition in conn.execute(
            f"SELECT id, definition FROM xapi_activities WHERE id IN ({marks})", chunk
        ):
            known[activity_id] = _decode(definition)
    written = []
    for activity_id, definitions in incoming.items():
        merged = known.get(activity_id)
        for definition in definitions:
            merged = merge_definition(merged, definition)
        written.append((activity_id, _encode(merged).decode(), updated))
    conn.executemany(
        "INSERT INTO xapi_activities (id, definition, updated) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated = excluded.updated",
        written,
    )
    return len(written)


def activity_object(conn: apsw.Connection, activity_id: str) -> dict[str, Any]:
    """The Activity object the Activities resource answers: the canonical definition when known."""
    row = conn.execute("SELECT definition FROM xapi_activities WHERE id = ?", (activity_id,)).fetchone()
    activity: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if row is not None:
        definition = _decode(row[0])
        if definition:
            activity["definition"] = definition
    return activity
