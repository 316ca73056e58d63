"""The Statement resource's GET `format` parameter: `exact`, `ids` and `canonical`, as pure functions.

- `exact`: the statement as it was received (and normalised when stored).
- `ids`: only identifiers — Agents and Groups reduced to their IFI (an anonymous Group to its
  members' IFIs), Activities and Verbs to their id; everything else as in `exact`.
- `canonical`: Activity definitions and Verb displays with each language map reduced to the one
  language that best fits the request's `Accept-Language`; Agents as in `exact`. The LRS may pass
  its canonical Activity definitions (`definition_of`) to use instead of the statement's own.

Each returns a new statement; the stored one is never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "FORMATS",
    "accept_languages",
    "best_language",
    "canonical",
    "exact",
    "format_statement",
    "ids",
]

FORMATS = ("exact", "ids", "canonical")

Statement = dict[str, Any]
DefinitionLookup = Callable[[str], "dict[str, Any] | None"]

_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


def exact(statement: Statement) -> Statement:
    """The statement as stored (a shallow copy, so callers may add to it)."""
    return dict(statement)


# --- ids --------------------------------------------------------------------------------------


def _agent_ids(agent: Any) -> Any:
    """An Agent or Group reduced to objectType (if sent) and its IFI; an anonymous Group to members."""
    if type(agent) is not dict:
        return agent
    out: dict[str, Any] = {}
    if "objectType" in agent:
        out["objectType"] = agent["objectType"]
    has_ifi = False
    for key in _IFIS:
        if key in agent:
            out[key] = agent[key]
            has_ifi = True
    if not has_ifi and "member" in agent:
        out["member"] = [_agent_ids(m) for m in agent["member"]]
    return out


def _activity_ids(activity: Any) -> Any:
    if type(activity) is not dict:
        return activity
    return {"id": activity.get("id")}


def _object_ids(obj: Any) -> Any:
    if type(obj) is not dict:
        return obj
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        return _activity_ids(obj)
    if object_type in ("Agent", "Group"):
        return _agent_ids(obj)
    if object_type == "SubStatement":
        return _core_ids(obj)
    return dict(obj)


def _context_ids(context: Any) -> Any:
    if type(context) is not dict:
        return context
    out = dict(context)
    if "instructor" in out:
        out["instructor"] = _agent_ids(out["instructor"])
    if "team" in out:
        out["team"] = _agent_ids(out["team"])
    activities = out.get("contextActivities")
    if type(activities) is dict:
        out["contextActivities"] = {
            key: [_activity_ids(a) for a in value] if type(value) is list else _activity_ids(value)
            for key, value in activities.items()
        }
    if type(out.get("contextAgents")) is list:
        out["contextAgents"] = [
            {**entry, "agent": _agent_ids(entry.get("agent"))} if type(entry) is dict else entry
            for entry in out["contextAgents"]
        ]
    if type(out.get("contextGroups")) is list:
        out["contextGroups"] = [
            {**entry, "group": _agent_ids(entry.get("group"))} if type(entry) is dict else entry
            for entry in out["contextGroups"]
        ]
    return out


def _core_ids(stmt: Statement) -> Statement:
    out = dict(stmt)
    if "actor" in out:
        out["actor"] = _agent_ids(out["actor"])
    if type(out.get("verb")) is dict:
        out["verb"] = {"id": out["verb"].get("id")}
    if "object" in out:
        out["object"] = _object_ids(out["object"])
    if "context" in out:
        out["context"] = _context_ids(out["context"])
    return out


def ids(statement: Statement) -> Statement:
    """The `ids` format: identifiers only for Agents, Groups, Activities and Verbs."""
    out = _core_ids(statement)
    if "authority" in out:
        out["authority"] = _agent_ids(out["authority"])
    return out


# --- canonical ----------------------------------------------------------------------------------


def accept_languages(header: str | None) -> list[str]:
    """The `Accept-Language` header's tags, best first (by q, then order); `*` and q=0 dropped."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        tag = tag.strip()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, index, tag))
    weighted.sort()
    return [tag for _, _, tag in weighted]


def best_language(language_map: dict[str, Any], preferences: list[str]) -> str | None:
    """The key of `language_map` that best fits `preferences` (RFC 4647 lookup, case-insensitive).

    For each preferred tag in order: an exact key, else a key that the tag truncates to (`en-GB` →
    `en`), else a key in the same language (`en` → `en-US`). With no fit: `und`, else the first key.
    """
    if not language_map:
        return None
    lowered = {key.lower(): key for key in language_map}
    for wanted in preferences:
        wanted = wanted.lower()
        if wanted in lowered:
            return lowered[wanted]
        parts = wanted.split("-")
        while len(parts) > 1:
            parts.pop()
            prefix = "-".join(parts)
            if prefix in lowered:
                return lowered[prefix]
        base = wanted.split("-")[0]
        for low, key in lowered.items():
            if low.split("-")[0] == base:
                return key
    if "und" in lowered:
        return lowered["und"]
    return next(iter(language_map))


def _one_language(value: Any, preferences: list[str]) -> Any:
    if type(value) is not dict or not value:
        return value
    key = best_language(value, preferences)
    return {key: value[key]} if key is not None else value


def _definition_canonical(definition: Any, preferences: list[str]) -> Any:
    if type(definition) is not dict:
        return definition
    out = dict(definition)
    for key in ("name", "description"):
        if key in out:
            out[key] = _one_language(out[key], preferences)
    for key in _COMPONENT_LISTS:
        if type(out.get(key)) is list:
            out[key] = [
                {**c, "description": _one_language(c["description"], preferences)}
                if type(c) is dict and "description" in c
                else c
                for c in out[key]
            ]
    return out


def _activity_canonical(activity: Any, preferences: list[str], definition_of: DefinitionLookup | None) -> Any:
    if type(activity) is not dict:
        return activity
    out = dict(activity)
    definition = out.get("definition")
    if definition_of is not None and type(out.get("id")) is str:
        known = definition_of(out["id"])
        if known:
            definition = known
    if definition is not None:
        out["definition"] = _definition_canonical(definition, preferences)
    return out


def _core_canonical(stmt: Statement, preferences: list[str], definition_of: DefinitionLookup | None) -> Statement:
    out = dict(stmt)
    verb = out.get("verb")
    if type(verb) is dict and "display" in verb:
        out["verb"] = {**verb, "display": _one_language(verb["display"], preferences)}
    obj = out.get("object")
    if type(obj) is dict:
        object_type = obj.get("objectType", "Activity")
        if object_type == "Activity":
            out["object"] = _activity_canonical(obj, preferences, definition_of)
        elif object_type == "SubStatement":
            out["object"] = _core_canonical(obj, preferences, definition_of)
    context = out.get("context")
    if type(context) is dict and type(context.get("contextActivities")) is dict:
        out["context"] = {
            **context,
            "contextActivities": {
                key: [_activity_canonical(a, preferences, definition_of) for a in value]
                if type(value) is list
                else _activity_canonical(value, preferences, definition_of)
                for key, value in context["contextActivities"].items()
            },
        }
    return out


def canonical(statement: Statement, preferences: list[str], definition_of: DefinitionLookup | None = None) -> Statement:
    """The `canonical` format: one language per Activity name/description and Verb display."""
    return _core_canonical(statement, preferences, definition_of)


def format_statement(
    statement: Statement,
    fmt: str,
    languages: str | list[str] | tuple[str, ...] | None = None,
    definition_of: DefinitionLookup | None = None,
) -> Statement:
    """The statement in `fmt` ("exact", "ids" or "canonical"); ValueError for another format.

    `languages` is the request's `Accept-Language` header, or its tags already ranked best first.
    """
    if fmt == "exact":
        return exact(statement)
    if fmt == "ids":
        return ids(statement)
    if fmt == "canonical":
        preferences = (
            accept_languages(languages) if languages is None or isinstance(languages, str) else list(languages)
        )
        return canonical(statement, preferences, definition_of)
    raise ValueError(f"unknown format {fmt!r}")
