"""Statement validation exactly as xAPI 1.0.3 and 2.0 require, as plain dict/str checks (no I/O): a
statement or SubStatement as a whole (its properties, actor, verb, object, timestamps, attachments,
authority, version) and a batch of them.

The LRS refuses a statement (400) on the first rule it breaks; `StatementError`
(appliance.core.xapi.statement_errors) says which rule and where (`statement.actor.mbox`,
`statements[3].object.definition.choices[0].id`). The parts a statement is made of are checked by
their own modules: value_formats (UUIDs, IRIs, language tags, durations, timestamps), agent_validation,
object_validation (Activities, StatementRefs), result_validation and context_validation; this module
holds what ties them together (a SubStatement is checked by the same rules as a statement, less its
own four properties).

Why hand-written: the store's budget is ≥ 20,000 statements/s on two cores, so a typical statement
must validate in a few microseconds. Each object is checked in one pass over its items (an unknown
property is refused in the same loop that checks the known ones), every regex is precompiled, the
strings that recur across statements (language tags, verb and activity IRIs) are memoised, and a
path string is only composed at an object boundary or when an error is raised.

Use: `validate_statement_batch(body, version)` on a POST/PUT body (one statement or a list), then
`statement_normalization.normalize_statement(s)` on each before storing. Every template-driven case
of the ADL conformance suite is replayed in tests/core/xapi/test_validation.py.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.core.xapi.agent_validation import check_actor, check_agent, check_authority, check_group
from appliance.core.xapi.context_validation import check_context
from appliance.core.xapi.object_validation import check_activity, check_statement_ref
from appliance.core.xapi.result_validation import check_result
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
from appliance.core.xapi.value_formats import KNOWN_IRIS, check_language_map, iri_new, is_timestamp, match_uuid
from appliance.core.xapi.versions import V1, V2

__all__ = ["VOIDED", "validate_statement", "validate_statement_batch"]

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


_V1_VERSION = re.compile(r"1\.0(?:\.\d+)?\Z")
_V2_VERSION = re.compile(r"(?:1\.0|2\.0)(?:\.\d+)?\Z")

_STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments"}
)
_SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
_ATTACHMENT_REQUIRED = ("usageType", "display", "contentType", "length", "sha2")


def _verb(verb: object, path: str) -> str:
    if type(verb) is not dict:
        raise error_at(OBJECT_MSG, path)
    verb_id = MISSING
    for k, v in verb.items():
        if k == "id":
            if type(v) is not str or (v not in KNOWN_IRIS and not iri_new(v)):
                raise error_at(IRI_MSG, path, k)
            verb_id = v
        elif k == "display":
            check_language_map(v, path, k)
        else:
            raise unknown_property(k, path)
    if verb_id is MISSING:
        raise error_at("a Verb requires id", path)
    return verb_id


def _object(obj: object, path: str, version: str, in_substatement: bool) -> str:
    """The statement's object; returns its objectType."""
    if type(obj) is not dict:
        raise error_at(OBJECT_MSG, path)
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        check_activity(obj, path)
    elif object_type == "Agent":
        check_agent(obj, path)
    elif object_type == "Group":
        check_group(obj, path)
    elif object_type == "StatementRef":
        check_statement_ref(obj, path)
    elif object_type == "SubStatement":
        if in_substatement:
            raise error_at("a SubStatement cannot contain a SubStatement", path, "objectType")
        for forbidden in ("id", "stored", "version", "authority"):
            if forbidden in obj:
                raise error_at(f"a SubStatement must not have {forbidden}", path, forbidden)
        if not _SUBSTATEMENT_KEYS.issuperset(obj):
            raise unknown_property(next(k for k in obj if k not in _SUBSTATEMENT_KEYS), path)
        _core(obj, path, version, True)
    else:
        raise error_at(
            "objectType must be one of 'Activity', 'Agent', 'Group', 'StatementRef', 'SubStatement'",
            path,
            "objectType",
        )
    return object_type


def _attachments(value: object, path: str) -> None:
    if type(value) is not list:
        raise error_at("must be an array of Attachments", path)
    for i, attachment in enumerate(value):
        apath = f"{path}[{i}]"
        if type(attachment) is not dict:
            raise error_at(OBJECT_MSG, apath)
        for k, v in attachment.items():
            if k == "usageType" or k == "fileUrl":
                if type(v) is not str or (v not in KNOWN_IRIS and not iri_new(v)):
                    raise error_at(IRI_MSG, apath, k)
            elif k == "display" or k == "description":
                check_language_map(v, apath, k)
            elif k == "contentType" or k == "sha2":
                if type(v) is not str:
                    raise error_at(STRING_MSG, apath, k)
            elif k == "length":
                if type(v) is not int or v < 0:
                    raise error_at("must be a non-negative integer", apath, k)
            else:
                raise unknown_property(k, apath)
        for key in _ATTACHMENT_REQUIRED:
            if key not in attachment:
                raise error_at(f"an Attachment requires {key}", apath)


def _core(stmt: dict[str, Any], path: str, version: str, in_substatement: bool) -> None:
    """What a statement and a SubStatement share: actor, verb, object, result, context, timestamp."""
    if "actor" not in stmt or "verb" not in stmt or "object" not in stmt:
        missing = next(k for k in ("actor", "verb", "object") if k not in stmt)
        raise error_at(f"{missing} is required", path)
    paths = _CHILD_PATHS.get(path) or _child_paths(path)
    check_actor(stmt["actor"], paths[0])
    verb_id = _verb(stmt["verb"], paths[1])
    object_type = _object(stmt["object"], paths[2], version, in_substatement)
    if verb_id == VOIDED and not in_substatement and object_type != "StatementRef":
        raise error_at("a voiding statement's object must be a StatementRef", path, "object")
    if "result" in stmt:
        check_result(stmt["result"], paths[3])
    if "context" in stmt:
        check_context(stmt["context"], paths[4], version, object_type)
    if "timestamp" in stmt:
        timestamp = stmt["timestamp"]
        # 2.0 clients send "timestamp": null for "none"; the store then sets it to stored.
        if not (timestamp is None and version == V2) and not is_timestamp(timestamp, version):
            raise error_at(_timestamp_message(version), path, "timestamp")
    if "attachments" in stmt:
        _attachments(stmt["attachments"], paths[5])


# The child paths of a statement's path, composed once: statements are validated under the paths
# "statement" and "statement.object" (a batch's errors are rebased to "statements[i]" when raised).
_CHILD_PATHS: dict[str, tuple[str, ...]] = {}


def _child_paths(path: str) -> tuple[str, ...]:
    paths = tuple(f"{path}.{key}" for key in ("actor", "verb", "object", "result", "context", "attachments"))
    if len(_CHILD_PATHS) < 64:
        _CHILD_PATHS[path] = paths
    return paths


def _timestamp_message(version: str) -> str:
    if version == V2:
        return "must be an RFC 3339 timestamp with an offset other than -00:00"
    return "must be an ISO 8601 timestamp with an offset other than -00:00"


def validate_statement(obj: object, version: str, path: str = "statement") -> None:
    """Refuses (StatementError) a statement that breaks any rule of xAPI `version` ("1.0.3"/"2.0.0")."""
    if version != V1 and version != V2:
        raise ValueError(f"unsupported xAPI version {version!r}")
    if type(obj) is not dict:
        raise error_at(OBJECT_MSG, path)
    if not _STATEMENT_KEYS.issuperset(obj):
        raise unknown_property(next(k for k in obj if k not in _STATEMENT_KEYS), path)
    if "id" in obj:
        sid = obj["id"]
        if type(sid) is not str or match_uuid(sid) is None:
            raise error_at(UUID_MSG, path, "id")
    _core(obj, path, version, False)
    if "stored" in obj and not is_timestamp(obj["stored"], version):
        raise error_at(_timestamp_message(version), path, "stored")
    if "authority" in obj:
        check_authority(obj["authority"], f"{path}.authority")
    if "version" in obj:
        stated = obj["version"]
        pattern = _V2_VERSION if version == V2 else _V1_VERSION
        if type(stated) is not str or pattern.match(stated) is None:
            raise error_at("must be 1.0.x or 2.0.x" if version == V2 else "must be 1.0.x", path, "version")


def validate_statement_batch(body: object, version: str) -> list[dict[str, Any]]:
    """A POST/PUT body: one statement object or an array of them; returns the statements as a list.

    Refuses the whole batch (StatementError) on the first invalid statement, or on a statement id
    used twice in it (the spec's batch is all or nothing). An empty array is returned as is.
    """
    if type(body) is dict:
        validate_statement(body, version)
        return [body]
    if type(body) is not list:
        raise error_at("must be a statement object or an array of statements", "statements")
    seen: set[str] = set()
    for i, stmt in enumerate(body):
        try:
            validate_statement(stmt, version)
        except StatementError as exc:
            raise rebased(exc, "statement", f"statements[{i}]") from None
        sid = stmt.get("id")
        if sid is not None:
            key = sid.lower()
            if key in seen:
                raise error_at(f"statement id {sid} is used more than once in the batch", f"statements[{i}]", "id")
            seen.add(key)
    return body
