"""A statement's context: registration, context activities, instructor and team, platform, revision,
language, statement, extensions, and 2.0's contextAgents and contextGroups.

A module of its own because the context holds most of the version-specific rules (2.0's contextAgents
and contextGroups) and checks its Activities and Groups with the other modules' rules.
"""

from __future__ import annotations

from appliance.core.xapi.agent_validation import check_actor, check_group, validate_agent
from appliance.core.xapi.object_validation import check_activity, check_statement_ref
from appliance.core.xapi.statement_errors import (
    IRI_MSG,
    OBJECT_MSG,
    STRING_MSG,
    UUID_MSG,
    StatementError,
    error_at,
    rebased,
    unknown_property,
)
from appliance.core.xapi.value_formats import KNOWN_IRIS, KNOWN_TAGS, check_extensions, iri_new, match_uuid, tag_new
from appliance.core.xapi.versions import V2

_CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})


def check_context(context: object, path: str, version: str, object_type: str) -> None:
    if type(context) is not dict:
        raise error_at(OBJECT_MSG, path)
    for k, v in context.items():
        if k == "registration":
            if type(v) is not str or match_uuid(v) is None:
                raise error_at(UUID_MSG, path, k)
        elif k == "contextActivities":
            _context_activities(v, f"{path}.contextActivities")
        elif k == "extensions":
            check_extensions(v, path, k)
        elif k == "platform" or k == "revision":
            if type(v) is not str:
                raise error_at(STRING_MSG, path, k)
            if object_type != "Activity":
                raise error_at(f"{k} is only allowed when the object is an Activity", path, k)
        elif k == "language":
            if type(v) is not str or (v not in KNOWN_TAGS and not tag_new(v)):
                raise error_at("must be an RFC 5646 language tag", path, k)
        elif k == "instructor":
            check_actor(v, f"{path}.instructor")
        elif k == "team":
            if type(v) is not dict or v.get("objectType") != "Group":
                raise error_at("team must be a Group (objectType 'Group')", path, k)
            check_group(v, f"{path}.team")
        elif k == "statement":
            if type(v) is not dict:
                raise error_at(OBJECT_MSG, path, k)
            check_statement_ref(v, f"{path}.statement")
        elif k == "contextAgents" and version == V2:
            _context_agents(v, f"{path}.contextAgents")
        elif k == "contextGroups" and version == V2:
            _context_groups(v, f"{path}.contextGroups")
        else:
            raise unknown_property(k, path)


def _context_activities(activities: object, path: str) -> None:
    if type(activities) is not dict:
        raise error_at(OBJECT_MSG, path)
    for k, v in activities.items():
        if k not in _CONTEXT_ACTIVITY_KEYS:
            raise unknown_property(k, path)
        # Validated under the container's path; an error's path is given its key (and index)
        # only when it is raised, so the common, valid case composes no path strings.
        if type(v) is dict:
            try:
                check_activity(v, path)
            except StatementError as exc:
                raise rebased(exc, path, f"{path}.{k}") from None
        elif type(v) is list:
            for i, activity in enumerate(v):
                if type(activity) is not dict:
                    raise error_at(OBJECT_MSG, f"{path}.{k}[{i}]")
                try:
                    check_activity(activity, path)
                except StatementError as exc:
                    raise rebased(exc, path, f"{path}.{k}[{i}]") from None
        else:
            raise error_at("must be an Activity or an array of Activities", path, k)


def _relevant_types(types: object, path: str) -> None:
    if type(types) is not list or not types:
        raise error_at("must be a non-empty array of IRIs", path, "relevantTypes")
    for i, iri in enumerate(types):
        if type(iri) is not str or (iri not in KNOWN_IRIS and not iri_new(iri)):
            raise error_at(IRI_MSG, path, f"relevantTypes[{i}]")


def _context_agents(value: object, path: str) -> None:
    if type(value) is not list:
        raise error_at("must be an array of contextAgent objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        if type(entry) is not dict:
            raise error_at(OBJECT_MSG, epath)
        for k, v in entry.items():
            if k == "agent":
                validate_agent(v, f"{epath}.agent")
            elif k == "relevantTypes":
                _relevant_types(v, epath)
            elif k != "objectType":
                raise unknown_property(k, epath)
        if entry.get("objectType") != "contextAgent":
            raise error_at("objectType must be 'contextAgent'", epath, "objectType")
        if "agent" not in entry:
            raise error_at("a contextAgent requires agent", epath)


def _context_groups(value: object, path: str) -> None:
    if type(value) is not list:
        raise error_at("must be an array of contextGroup objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        if type(entry) is not dict:
            raise error_at(OBJECT_MSG, epath)
        for k, v in entry.items():
            if k == "group":
                if type(v) is not dict or v.get("objectType") != "Group":
                    raise error_at("must be a Group (objectType 'Group')", epath, k)
                check_group(v, f"{epath}.group")
            elif k == "relevantTypes":
                _relevant_types(v, epath)
            elif k != "objectType":
                raise unknown_property(k, epath)
        if entry.get("objectType") != "contextGroup":
            raise error_at("objectType must be 'contextGroup'", epath, "objectType")
        if "group" not in entry:
            raise error_at("a contextGroup requires group", epath)
