"""A valid statement put in its stored shape: context activities as arrays, a null timestamp removed,
2.0 timestamps converted to UTC.

A module of its own because it runs after validation, on what is stored, and never refuses anything.
"""

from __future__ import annotations

from typing import Any

from appliance.core.xapi.value_formats import utc_timestamp
from appliance.core.xapi.versions import V2


def normalize_statement(stmt: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """Puts a valid statement in its stored shape, in place (and returns it).

    Each contextActivities value becomes an array (the LRS returns arrays even when one Activity
    was sent), in the statement's and its SubStatement's context; a null timestamp (2.0) is
    removed so the store sets it to `stored`. With `version="2.0.0"`, timestamps not in UTC are
    also converted to it (`utc_timestamp`), as 2.0 §4.2.7 requires ("shall convert Timestamps to
    UTC"). Nothing else changes: `exact` returns what was sent.
    """
    context = stmt.get("context")
    if context is not None:
        _normalize_context(context)
    obj = stmt.get("object")
    if type(obj) is dict and obj.get("objectType") == "SubStatement":
        _normalize_context(obj.get("context"))
        _normalize_timestamp(obj, version)
    _normalize_timestamp(stmt, version)
    return stmt


def _normalize_timestamp(stmt: dict[str, Any], version: str | None) -> None:
    if "timestamp" not in stmt:
        return
    timestamp = stmt["timestamp"]
    if timestamp is None:
        del stmt["timestamp"]
    elif version == V2 and type(timestamp) is str and timestamp[-1] != "Z":
        stmt["timestamp"] = utc_timestamp(timestamp)


def _normalize_context(context: object) -> None:
    if type(context) is not dict:
        return
    activities = context.get("contextActivities")
    if type(activities) is not dict:
        return
    for key, entry in activities.items():
        if type(entry) is dict:
            activities[key] = [entry]
