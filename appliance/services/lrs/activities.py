"""Canonical Activity definitions (table xapi_activities), merged from the statements that carry them.

The Activities resource answers "all available information about an activity from any statements
that target the same activityId" (xAPI 1.0.3 §2.5, 2.0 §4.1.6.4): two statements naming an activity
in English and in French give one definition with both names. So a definition is not replaced by the
last one sent but merged into: language maps (`name`, `description`) and `extensions` key by key,
interaction components (`choices`, `scale`, `source`, `target`, `steps`) by component id with their
descriptions merged, every other property (`type`, `moreInfo`, `interactionType`,
`correctResponsesPattern`) replaced by the newer value.

The statement store collects a batch's definitions (`collect_definitions`) as it prepares the batch and
writes them (`write_definitions`) inside its insert transaction.
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


def statement_activities(statement: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every Activity object of a statement: its object, its context activities, a SubStatement's.

    Plain dict checks (statements arrive decoded from JSON): the store calls this for every statement.
    """
    obj = statement.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            yield obj
        elif kind == "SubStatement":
            yield from statement_activities(obj)
    context = statement.get("context")
    if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
        for group in context["contextActivities"].values():
            for activity in group if isinstance(group, list) else [group]:
                if isinstance(activity, dict):
                    yield activity


def collect_definitions(
    statements: Iterable[dict[str, Any]], into: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """activity id → the definition the statements carry for it, merged in their order (pure: the
    statement store collects a batch's while it prepares the batch, before its transaction)."""
    incoming = {} if into is None else into
    for statement in statements:
        for activity in statement_activities(statement):
            definition = activity.get("definition")
            if type(definition) is dict and definition and type(activity.get("id")) is str:
                aid = activity["id"]
                known = incoming.get(aid)
                incoming[aid] = definition if known is None else merge_definition(known, definition)
    return incoming


def merge_activity_definitions(conn: apsw.Connection, statements: Iterable[dict[str, Any]], updated: float) -> int:
    """Merge the definitions a batch of statements carries into xapi_activities; the rows written."""
    return write_definitions(conn, collect_definitions(statements), updated)


def write_definitions(conn: apsw.Connection, incoming: dict[str, dict[str, Any]], updated: float) -> int:
    """Merge collected definitions into xapi_activities; the rows written.

    Inside the caller's write transaction (the statement store's insert); one SELECT per 500 ids and
    one executemany whatever the batch's size. A definition sent again as the LRS already has it (the
    usual case: every statement of a course carries the same) writes nothing.
    """
    if not incoming:
        return 0
    ids = list(incoming)
    known: dict[str, str] = {}
    for start_at in range(0, len(ids), 500):
        chunk = ids[start_at : start_at + 500]
        marks = ",".join("?" * len(chunk))
        known.update(conn.execute(f"SELECT id, definition FROM xapi_activities WHERE id IN ({marks})", chunk))
    changed: list[tuple[str, str, float]] = []
    for aid, definition in incoming.items():
        text = _encode(definition).decode()
        before = known.get(aid)
        if before is not None and before != text:
            text = _encode(merge_definition(_decode(before), definition)).decode()
        if text != before:
            changed.append((aid, text, updated))
    if changed:
        conn.executemany(
            "INSERT INTO xapi_activities (id, definition, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated = excluded.updated",
            changed,
        )
    return len(changed)


def activity_object(conn: apsw.Connection, activity_id: str) -> dict[str, Any]:
    """The Activity object the Activities resource answers: the canonical definition when known."""
    row = conn.execute("SELECT definition FROM xapi_activities WHERE id = ?", (activity_id,)).fetchone()
    activity: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if row is not None:
        definition = _decode(row[0])
        if definition:
            activity["definition"] = definition
    return activity
