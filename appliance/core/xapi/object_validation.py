"""A statement's object when it is an Activity (its definition and interaction components) or a
StatementRef (also the context's `statement`).

A module of its own because an Activity's definition is the largest part of the rules (xAPI 1.0.3 Data
2.4.4.1: interaction types and their component lists), and context activities are Activities too.
"""

from __future__ import annotations

from typing import Any

from appliance.core.xapi.statement_errors import (
    IRI_MSG,
    MISSING,
    OBJECT_MSG,
    STRING_MSG,
    UUID_MSG,
    StatementError,
    error_at,
    rebased,
    unknown_property,
)
from appliance.core.xapi.value_formats import KNOWN_IRIS, check_extensions, check_language_map, iri_new, match_uuid

_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
# interactionType → the interaction component lists it may carry (xAPI 1.0.3 Data 2.4.4.1).
_INTERACTION_COMPONENTS: dict[str, frozenset[str]] = {
    "true-false": frozenset(),
    "choice": frozenset({"choices"}),
    "fill-in": frozenset(),
    "long-fill-in": frozenset(),
    "matching": frozenset({"source", "target"}),
    "performance": frozenset({"steps"}),
    "sequencing": frozenset({"choices"}),
    "likert": frozenset({"scale"}),
    "numeric": frozenset(),
    "other": frozenset(),
}


def check_activity(activity: dict[str, Any], path: str) -> None:
    has_id = False
    for k, v in activity.items():
        if k == "id":
            if type(v) is not str or (v not in KNOWN_IRIS and not iri_new(v)):
                raise error_at(IRI_MSG, path, k)
            has_id = True
        elif k == "definition":
            _definition(v, f"{path}.definition")
        elif k == "objectType":
            if v != "Activity":
                raise error_at("objectType must be 'Activity'", path, k)
        else:
            raise unknown_property(k, path)
    if not has_id:
        raise error_at("an Activity requires id", path)


def _definition(definition: object, path: str) -> None:
    if type(definition) is not dict:
        raise error_at(OBJECT_MSG, path)
    interaction = MISSING
    interactive = False  # a correctResponsesPattern or an interaction component list is present
    for k, v in definition.items():
        if k == "name" or k == "description":
            check_language_map(v, path, k)
        elif k == "type" or k == "moreInfo":
            if type(v) is not str or (v not in KNOWN_IRIS and not iri_new(v)):
                raise error_at(IRI_MSG, path, k)
        elif k == "extensions":
            check_extensions(v, path, k)
        elif k == "interactionType":
            interaction = v
        elif k == "correctResponsesPattern":
            if type(v) is not list:
                raise error_at("must be an array of strings", path, k)
            for i, response in enumerate(v):
                if type(response) is not str:
                    raise error_at(STRING_MSG, path, f"{k}[{i}]")
            interactive = True
        elif k in _COMPONENT_LISTS:
            interactive = True
        else:
            raise unknown_property(k, path)
    if interaction is MISSING:
        if interactive:
            raise error_at("correctResponsesPattern and interaction components require interactionType", path)
        return
    allowed = _INTERACTION_COMPONENTS.get(interaction) if type(interaction) is str else None
    if allowed is None:
        raise error_at("must be one of the spec's interaction types", path, "interactionType")
    if interactive:
        for key in _COMPONENT_LISTS:
            if key in definition:
                if key not in allowed:
                    raise error_at(f"interactionType {interaction!r} does not take {key}", path, key)
                _components(definition[key], f"{path}.{key}")


def _components(value: object, path: str) -> None:
    if type(value) is not list:
        raise error_at("must be an array of interaction components", path)
    seen: set[str] = set()
    for i, component in enumerate(value):
        if type(component) is not dict:
            raise error_at(OBJECT_MSG, f"{path}[{i}]")
        cid = MISSING
        for k, v in component.items():
            if k == "id":
                if type(v) is not str:
                    raise error_at(STRING_MSG, f"{path}[{i}]", k)
                cid = v
            elif k == "description":
                try:
                    check_language_map(v, path, k)
                except StatementError as exc:
                    raise rebased(exc, path, f"{path}[{i}]") from None
            else:
                raise unknown_property(k, f"{path}[{i}]")
        if cid is MISSING:
            raise error_at("an interaction component requires id", f"{path}[{i}]")
        if cid in seen:
            raise error_at(f"interaction component id {cid!r} is repeated", f"{path}[{i}]", "id")
        seen.add(cid)


def check_statement_ref(ref: dict[str, Any], path: str) -> None:
    has_id = False
    for k, v in ref.items():
        if k == "id":
            if type(v) is not str or match_uuid(v) is None:
                raise error_at(UUID_MSG, path, k)
            has_id = True
        elif k != "objectType":
            raise unknown_property(k, path)
    if ref.get("objectType") != "StatementRef":
        raise error_at("objectType must be 'StatementRef'", path, "objectType")
    if not has_id:
        raise error_at("a StatementRef requires id", path)
