"""Statement validation exactly as xAPI 1.0.3 and 2.0 require, as plain dict/str checks (no I/O).

The LRS refuses a statement (400) on the first rule it breaks; `StatementError` says which rule and
where (`statement.actor.mbox`, `statements[3].object.definition.choices[0].id`). The checks are
hand-written rather than a JSON Schema because the store's budget is ≥ 20,000 statements/s on two
cores: a typical statement must validate in a few microseconds, so every regex is precompiled and
the strings that repeat across statements (language tags, verb and activity-type IRIs) are memoised.

Use: `validate_statement_batch(body, version)` on a POST/PUT body (one statement or a list), then
`normalize_statement(s)` on each before storing (context activities become arrays, a null 2.0
timestamp is dropped). The conformance suite's every template-driven case is replayed in
tests/xapi/test_validation.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from appliance.xapi.versions import V1, V2

__all__ = [
    "StatementError",
    "is_duration",
    "is_iri",
    "is_language_tag",
    "is_timestamp",
    "is_uuid",
    "normalize_statement",
    "validate_agent",
    "validate_statement",
    "validate_statement_batch",
]

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


class StatementError(Exception):
    """A statement (or an agent parameter) that breaks a rule of the spec: the LRS answers 400.

    `path` locates the offending value (`statement.actor.mbox`); `message` says what is wrong.
    """

    def __init__(self, message: str, path: str = "statement") -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


# --- scalar checks --------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# An absolute IRI: a scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), a colon and a
# non-empty rest without the characters an IRI can never hold (whitespace, <>"{}|\^`).
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+\Z")
_MBOX = re.compile(r"[mM][aA][iI][lL][tT][oO]:[^@\s<>\"]+@[^@\s<>\"]+\Z")
_SHA1 = re.compile(r"[0-9a-fA-F]{40}\Z")

# ISO 8601:2004 section 4.4.3.2 durations (PnYnMnDTnHnMnS, PnW); only the lowest-order component
# may carry a decimal fraction, which the conformance suite does not test and clients do not send,
# so a fraction is allowed on any component (as the ADL LRS does).
_N = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?:{_N}W|(?=\d|T\d)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)\Z"
)

# Timestamps. 1.0.3: ISO 8601 combined date and time, extended or basic format, time zone optional.
# 2.0: RFC 3339 date-time (seconds and an offset required; "t"/"z" may be lower case, as the RFC's
# ABNF allows). Both refuse the "unknown offset" -00:00 (and its basic forms -0000, -00).
_TS_EXT = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:[.,]\d+)?)?(Z|[+-]\d\d(?::?\d\d)?)?\Z")
_TS_BASIC = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(?:(\d\d)(?:[.,]\d+)?)?(Z|[+-]\d\d(?:\d\d)?)?\Z")
_TS_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?([Zz]|[+-]\d\d:\d\d)\Z")
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_V1_VERSION = re.compile(r"1\.0(?:\.\d+)?\Z")
_V2_VERSION = re.compile(r"(?:1\.0|2\.0)(?:\.\d+)?\Z")

# RFC 5646 language tags (case-insensitive): langtag / privateuse / grandfathered.
_LANGTAG = re.compile(
    r"(?:"
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language (+ extlang)
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|\d{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|\d[a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
    r"|x(?:-[a-z0-9]{1,8})+"  # private use alone
    r"|en-gb-oed|i-(?:ami|bnn|default|enochian|hak|klingon|lux|mingo|navajo|pwn|tao|tay|tsu)"
    r"|sgn-(?:be-fr|be-nl|ch-de)"
    r")\Z",
    re.IGNORECASE,
)

# Memo of strings already found valid: the same few tags and IRIs recur in almost every statement.
_MEMO_LIMIT = 50_000
_valid_tags: set[str] = set()
_valid_iris: set[str] = set()


def is_uuid(value: object) -> bool:
    """A UUID in its 8-4-4-4-12 hex form (the spec's statement ids and registrations)."""
    return type(value) is str and _UUID.match(value) is not None


def is_iri(value: object) -> bool:
    """An absolute IRI (or IRL/URI): a scheme, a colon and no character an IRI cannot hold."""
    if type(value) is not str:
        return False
    if value in _valid_iris:
        return True
    if _IRI.match(value) is None:
        return False
    if len(_valid_iris) >= _MEMO_LIMIT:
        _valid_iris.clear()
    _valid_iris.add(value)
    return True


def is_language_tag(value: object) -> bool:
    """A well-formed RFC 5646 tag (no repeated variant or extension singleton)."""
    if type(value) is not str:
        return False
    if value in _valid_tags:
        return True
    if _LANGTAG.match(value) is None or not _tag_unique_subtags(value):
        return False
    if len(_valid_tags) >= _MEMO_LIMIT:
        _valid_tags.clear()
    _valid_tags.add(value)
    return True


def _tag_unique_subtags(tag: str) -> bool:
    """RFC 5646 §2.2.5/§2.2.6: a variant or an extension singleton appears at most once."""
    parts = tag.lower().split("-")
    if len(parts) < 3 or parts[0] in ("x", "i"):
        return True
    seen_singletons: set[str] = set()
    seen_variants: set[str] = set()
    in_extension = False
    for part in parts[1:]:
        if part == "x":
            break
        if len(part) == 1:
            if part in seen_singletons:
                return False
            seen_singletons.add(part)
            in_extension = True
        elif not in_extension and (len(part) >= 5 or (len(part) == 4 and part[0].isdigit())):
            if part in seen_variants:
                return False
            seen_variants.add(part)
    return True


def is_duration(value: object) -> bool:
    """An ISO 8601 duration in the format of section 4.4.3.2 (not the alternative format)."""
    return type(value) is str and _DURATION.match(value) is not None


def is_timestamp(value: object, version: str = V1) -> bool:
    """A timestamp as `version` requires: ISO 8601 (1.0.3) or RFC 3339 (2.0); never offset -00:00."""
    if type(value) is not str:
        return False
    m = _TS_RFC3339.match(value) if version == V2 else (_TS_EXT.match(value) or _TS_BASIC.match(value))
    if m is None:
        return False
    year, month, day, hour, minute, second, offset = m.groups()
    mo = int(month)
    if not 1 <= mo <= 12 or not 1 <= int(day) <= _MONTH_DAYS[mo]:
        return False
    if mo == 2 and day == "29" and not _leap(int(year)):
        return False
    if int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 60):
        return False
    if offset is None or len(offset) == 1:
        return True  # no offset (1.0.3 only) or Z
    if offset[0] == "-" and offset.strip("-:0") == "":
        return False  # -00:00, -0000, -00: the "unknown local offset", which xAPI forbids
    digits = offset[1:].replace(":", "")
    return int(digits[:2]) <= 23 and (len(digits) == 2 or int(digits[2:]) <= 59)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


# --- the validator ----------------------------------------------------------------------------

_STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments"}
)
_SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
_AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
_GROUP_KEYS = _AGENT_KEYS | {"member"}
_ACCOUNT_KEYS = frozenset({"homePage", "name"})
_VERB_KEYS = frozenset({"id", "display"})
_ACTIVITY_KEYS = frozenset({"objectType", "id", "definition"})
_DEFINITION_KEYS = frozenset(
    {
        "name",
        "description",
        "type",
        "moreInfo",
        "interactionType",
        "correctResponsesPattern",
        "choices",
        "scale",
        "source",
        "target",
        "steps",
        "extensions",
    }
)
_COMPONENT_KEYS = frozenset({"id", "description"})
_STATEMENTREF_KEYS = frozenset({"objectType", "id"})
_RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
_SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
_CONTEXT_KEYS_V1 = frozenset(
    {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
)
_CONTEXT_KEYS_V2 = _CONTEXT_KEYS_V1 | {"contextAgents", "contextGroups"}
_CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
_CONTEXT_AGENT_KEYS = frozenset({"objectType", "agent", "relevantTypes"})
_CONTEXT_GROUP_KEYS = frozenset({"objectType", "group", "relevantTypes"})
_ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})
_ATTACHMENT_REQUIRED = ("usageType", "display", "contentType", "length", "sha2")

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
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


def _fail(message: str, path: str) -> StatementError:
    return StatementError(message, path)


def _obj(value: object, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _fail("must be a JSON object", path)
    return value


def _keys(value: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    if not allowed.issuperset(value):
        extra = sorted(k for k in value if k not in allowed)
        raise _fail(f"unknown property {extra[0]!r}", path)


def _string(value: object, path: str) -> str:
    if type(value) is not str:
        raise _fail("must be a string", path)
    return value


def _iri(value: object, path: str) -> None:
    if not is_iri(value):
        raise _fail("must be an absolute IRI", path)


def _number(value: object, path: str) -> float:
    t = type(value)
    if t is int:
        return value  # type: ignore[return-value]
    if t is float and math.isfinite(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    raise _fail("must be a number", path)


def _boolean(value: object, path: str) -> None:
    if type(value) is not bool:
        raise _fail("must be a boolean", path)


def _language_map(value: object, path: str) -> None:
    if type(value) is not dict:
        raise _fail("must be a language map (an object of language tag to string)", path)
    for tag, text in value.items():
        if not is_language_tag(tag):
            raise _fail(f"{tag!r} is not an RFC 5646 language tag", path)
        if type(text) is not str:
            raise _fail("must be a string", f"{path}.{tag}")


def _extensions(value: object, path: str) -> None:
    if type(value) is not dict:
        raise _fail("must be an object of IRI to any JSON value", path)
    for key in value:
        if not is_iri(key):
            raise _fail(f"extension key {key!r} is not an absolute IRI", path)


def _uuid(value: object, path: str) -> None:
    if not is_uuid(value):
        raise _fail("must be a UUID", path)


def validate_agent(value: object, path: str, *, as_member: bool = False) -> None:
    """An Agent: at most the spec's properties and exactly one inverse functional identifier."""
    agent = _obj(value, path)
    _keys(agent, _AGENT_KEYS, path)
    object_type = agent.get("objectType", "Agent")
    if object_type != "Agent":
        what = "a Group member" if as_member else "an Agent"
        raise _fail(f"objectType must be 'Agent' for {what}", f"{path}.objectType")
    if "name" in agent:
        _string(agent["name"], f"{path}.name")
    count = _ifis(agent, path)
    if count != 1:
        raise _fail("an Agent must have exactly one of mbox, mbox_sha1sum, openid, account", path)


def _ifis(agent: dict[str, Any], path: str) -> int:
    """Validates the IFIs present and returns how many there are."""
    count = 0
    if "mbox" in agent:
        count += 1
        mbox = agent["mbox"]
        if type(mbox) is not str or _MBOX.match(mbox) is None:
            raise _fail("must be a mailto: IRI of an email address", f"{path}.mbox")
    if "mbox_sha1sum" in agent:
        count += 1
        sha = agent["mbox_sha1sum"]
        if type(sha) is not str or _SHA1.match(sha) is None:
            raise _fail("must be the 40 hex digits of a SHA-1 sum", f"{path}.mbox_sha1sum")
    if "openid" in agent:
        count += 1
        _iri(agent["openid"], f"{path}.openid")
    if "account" in agent:
        count += 1
        account = _obj(agent["account"], f"{path}.account")
        _keys(account, _ACCOUNT_KEYS, f"{path}.account")
        if "homePage" not in account:
            raise _fail("an account requires homePage", f"{path}.account")
        if "name" not in account:
            raise _fail("an account requires name", f"{path}.account")
        _iri(account["homePage"], f"{path}.account.homePage")
        _string(account["name"], f"{path}.account.name")
    return count


def _group(group: dict[str, Any], path: str) -> int:
    """A Group (objectType already 'Group'): identified (one IFI) or anonymous (members, no IFI).

    Returns the member count (0 when absent).
    """
    _keys(group, _GROUP_KEYS, path)
    if "name" in group:
        _string(group["name"], f"{path}.name")
    count = _ifis(group, path)
    if count > 1:
        raise _fail("a Group has at most one of mbox, mbox_sha1sum, openid, account", path)
    members = group.get("member")
    if members is None:
        if "member" in group:
            raise _fail("must be an array of Agents", f"{path}.member")
        if count == 0:
            raise _fail("an anonymous Group (no IFI) requires member", path)
        return 0
    if type(members) is not list:
        raise _fail("must be an array of Agents", f"{path}.member")
    if count == 0 and not members:
        raise _fail("an anonymous Group requires at least one member", f"{path}.member")
    for i, member in enumerate(members):
        validate_agent(member, f"{path}.member[{i}]", as_member=True)
    return len(members)


def _actor(value: object, path: str) -> None:
    """Agent or Group (objectType absent means Agent)."""
    actor = _obj(value, path)
    object_type = actor.get("objectType", "Agent")
    if object_type == "Agent":
        validate_agent(actor, path)
    elif object_type == "Group":
        _group(actor, path)
    else:
        raise _fail("objectType must be 'Agent' or 'Group'", f"{path}.objectType")


def _verb(value: object, path: str) -> str:
    verb = _obj(value, path)
    _keys(verb, _VERB_KEYS, path)
    if "id" not in verb:
        raise _fail("a Verb requires id", path)
    verb_id = verb["id"]
    _iri(verb_id, f"{path}.id")
    if "display" in verb:
        _language_map(verb["display"], f"{path}.display")
    return verb_id


def _activity(activity: dict[str, Any], path: str) -> None:
    _keys(activity, _ACTIVITY_KEYS, path)
    if "objectType" in activity and activity["objectType"] != "Activity":
        raise _fail("objectType must be 'Activity'", f"{path}.objectType")
    if "id" not in activity:
        raise _fail("an Activity requires id", path)
    _iri(activity["id"], f"{path}.id")
    if "definition" in activity:
        _definition(activity["definition"], f"{path}.definition")


def _definition(value: object, path: str) -> None:
    definition = _obj(value, path)
    _keys(definition, _DEFINITION_KEYS, path)
    if "name" in definition:
        _language_map(definition["name"], f"{path}.name")
    if "description" in definition:
        _language_map(definition["description"], f"{path}.description")
    if "type" in definition:
        _iri(definition["type"], f"{path}.type")
    if "moreInfo" in definition:
        _iri(definition["moreInfo"], f"{path}.moreInfo")
    if "extensions" in definition:
        _extensions(definition["extensions"], f"{path}.extensions")
    interaction = definition.get("interactionType")
    if interaction is None:
        if "interactionType" in definition:
            raise _fail("must be one of the spec's interaction types", f"{path}.interactionType")
        for key in ("correctResponsesPattern", *_COMPONENT_LISTS):
            if key in definition:
                raise _fail(f"{key} requires interactionType", path)
        return
    allowed = _INTERACTION_COMPONENTS.get(interaction) if type(interaction) is str else None
    if allowed is None:
        raise _fail("must be one of the spec's interaction types", f"{path}.interactionType")
    if "correctResponsesPattern" in definition:
        pattern = definition["correctResponsesPattern"]
        if type(pattern) is not list:
            raise _fail("must be an array of strings", f"{path}.correctResponsesPattern")
        for i, response in enumerate(pattern):
            _string(response, f"{path}.correctResponsesPattern[{i}]")
    for key in _COMPONENT_LISTS:
        if key in definition:
            if key not in allowed:
                raise _fail(f"interactionType {interaction!r} does not take {key}", f"{path}.{key}")
            _components(definition[key], f"{path}.{key}")


def _components(value: object, path: str) -> None:
    if type(value) is not list:
        raise _fail("must be an array of interaction components", path)
    seen: set[str] = set()
    for i, component in enumerate(value):
        cpath = f"{path}[{i}]"
        component = _obj(component, cpath)
        _keys(component, _COMPONENT_KEYS, cpath)
        if "id" not in component:
            raise _fail("an interaction component requires id", cpath)
        cid = _string(component["id"], f"{cpath}.id")
        if cid in seen:
            raise _fail(f"interaction component id {cid!r} is repeated", f"{cpath}.id")
        seen.add(cid)
        if "description" in component:
            _language_map(component["description"], f"{cpath}.description")


def _statement_ref(ref: dict[str, Any], path: str) -> None:
    _keys(ref, _STATEMENTREF_KEYS, path)
    if ref.get("objectType") != "StatementRef":
        raise _fail("objectType must be 'StatementRef'", f"{path}.objectType")
    if "id" not in ref:
        raise _fail("a StatementRef requires id", path)
    _uuid(ref["id"], f"{path}.id")


def _object(value: object, path: str, version: str, *, in_substatement: bool) -> str:
    """The statement's object; returns its objectType."""
    obj = _obj(value, path)
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        _activity(obj, path)
    elif object_type == "Agent":
        validate_agent(obj, path)
    elif object_type == "Group":
        _group(obj, path)
    elif object_type == "StatementRef":
        _statement_ref(obj, path)
    elif object_type == "SubStatement":
        if in_substatement:
            raise _fail("a SubStatement cannot contain a SubStatement", f"{path}.objectType")
        _substatement(obj, path, version)
    else:
        raise _fail(
            "objectType must be one of 'Activity', 'Agent', 'Group', 'StatementRef', 'SubStatement'",
            f"{path}.objectType",
        )
    return object_type


def _substatement(sub: dict[str, Any], path: str, version: str) -> None:
    for forbidden in ("id", "stored", "version", "authority"):
        if forbidden in sub:
            raise _fail(f"a SubStatement must not have {forbidden}", f"{path}.{forbidden}")
    _keys(sub, _SUBSTATEMENT_KEYS, path)
    _core(sub, path, version, in_substatement=True)


def _result(value: object, path: str) -> None:
    result = _obj(value, path)
    _keys(result, _RESULT_KEYS, path)
    if "score" in result:
        _score(result["score"], f"{path}.score")
    if "success" in result:
        _boolean(result["success"], f"{path}.success")
    if "completion" in result:
        _boolean(result["completion"], f"{path}.completion")
    if "response" in result:
        _string(result["response"], f"{path}.response")
    if "duration" in result and not is_duration(result["duration"]):
        raise _fail("must be an ISO 8601 duration", f"{path}.duration")
    if "extensions" in result:
        _extensions(result["extensions"], f"{path}.extensions")


def _score(value: object, path: str) -> None:
    score = _obj(value, path)
    _keys(score, _SCORE_KEYS, path)
    if "scaled" in score:
        scaled = _number(score["scaled"], f"{path}.scaled")
        if not -1 <= scaled <= 1:
            raise _fail("must be between -1 and 1", f"{path}.scaled")
    low = _number(score["min"], f"{path}.min") if "min" in score else None
    high = _number(score["max"], f"{path}.max") if "max" in score else None
    if low is not None and high is not None and not low < high:
        raise _fail("min must be less than max", path)
    if "raw" in score:
        raw = _number(score["raw"], f"{path}.raw")
        if low is not None and raw < low:
            raise _fail("must not be less than min", f"{path}.raw")
        if high is not None and raw > high:
            raise _fail("must not be greater than max", f"{path}.raw")


def _context(value: object, path: str, version: str, object_type: str) -> None:
    context = _obj(value, path)
    _keys(context, _CONTEXT_KEYS_V2 if version == V2 else _CONTEXT_KEYS_V1, path)
    if "registration" in context:
        _uuid(context["registration"], f"{path}.registration")
    if "instructor" in context:
        _actor(context["instructor"], f"{path}.instructor")
    if "team" in context:
        team = _obj(context["team"], f"{path}.team")
        if team.get("objectType") != "Group":
            raise _fail("team must be a Group (objectType 'Group')", f"{path}.team")
        _group(team, f"{path}.team")
    if "contextActivities" in context:
        _context_activities(context["contextActivities"], f"{path}.contextActivities")
    for key in ("revision", "platform"):
        if key in context:
            _string(context[key], f"{path}.{key}")
            if object_type != "Activity":
                raise _fail(f"{key} is only allowed when the object is an Activity", f"{path}.{key}")
    if "language" in context and not is_language_tag(context["language"]):
        raise _fail("must be an RFC 5646 language tag", f"{path}.language")
    if "statement" in context:
        _statement_ref(_obj(context["statement"], f"{path}.statement"), f"{path}.statement")
    if "extensions" in context:
        _extensions(context["extensions"], f"{path}.extensions")
    if "contextAgents" in context:
        _context_agents(context["contextAgents"], f"{path}.contextAgents")
    if "contextGroups" in context:
        _context_groups(context["contextGroups"], f"{path}.contextGroups")


def _context_activities(value: object, path: str) -> None:
    activities = _obj(value, path)
    _keys(activities, _CONTEXT_ACTIVITY_KEYS, path)
    for key, entry in activities.items():
        kpath = f"{path}.{key}"
        if type(entry) is dict:
            _activity(entry, kpath)
        elif type(entry) is list:
            for i, activity in enumerate(entry):
                _activity(_obj(activity, f"{kpath}[{i}]"), f"{kpath}[{i}]")
        else:
            raise _fail("must be an Activity or an array of Activities", kpath)


def _relevant_types(entry: dict[str, Any], path: str) -> None:
    if "relevantTypes" not in entry:
        return
    types = entry["relevantTypes"]
    if type(types) is not list or not types:
        raise _fail("must be a non-empty array of IRIs", f"{path}.relevantTypes")
    for i, iri in enumerate(types):
        _iri(iri, f"{path}.relevantTypes[{i}]")


def _context_agents(value: object, path: str) -> None:
    if type(value) is not list:
        raise _fail("must be an array of contextAgent objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        entry = _obj(entry, epath)
        _keys(entry, _CONTEXT_AGENT_KEYS, epath)
        if entry.get("objectType") != "contextAgent":
            raise _fail("objectType must be 'contextAgent'", f"{epath}.objectType")
        if "agent" not in entry:
            raise _fail("a contextAgent requires agent", epath)
        validate_agent(entry["agent"], f"{epath}.agent")
        _relevant_types(entry, epath)


def _context_groups(value: object, path: str) -> None:
    if type(value) is not list:
        raise _fail("must be an array of contextGroup objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        entry = _obj(entry, epath)
        _keys(entry, _CONTEXT_GROUP_KEYS, epath)
        if entry.get("objectType") != "contextGroup":
            raise _fail("objectType must be 'contextGroup'", f"{epath}.objectType")
        if "group" not in entry:
            raise _fail("a contextGroup requires group", epath)
        group = _obj(entry["group"], f"{epath}.group")
        if group.get("objectType") != "Group":
            raise _fail("must be a Group (objectType 'Group')", f"{epath}.group")
        _group(group, f"{epath}.group")
        _relevant_types(entry, epath)


def _attachments(value: object, path: str) -> None:
    if type(value) is not list:
        raise _fail("must be an array of Attachments", path)
    for i, attachment in enumerate(value):
        apath = f"{path}[{i}]"
        attachment = _obj(attachment, apath)
        _keys(attachment, _ATTACHMENT_KEYS, apath)
        for key in _ATTACHMENT_REQUIRED:
            if key not in attachment:
                raise _fail(f"an Attachment requires {key}", apath)
        _iri(attachment["usageType"], f"{apath}.usageType")
        _language_map(attachment["display"], f"{apath}.display")
        if "description" in attachment:
            _language_map(attachment["description"], f"{apath}.description")
        _string(attachment["contentType"], f"{apath}.contentType")
        length = attachment["length"]
        if type(length) is not int or length < 0:
            raise _fail("must be a non-negative integer", f"{apath}.length")
        _string(attachment["sha2"], f"{apath}.sha2")
        if "fileUrl" in attachment:
            _iri(attachment["fileUrl"], f"{apath}.fileUrl")


def _authority(value: object, path: str) -> None:
    """An Agent, or (OAuth) an anonymous Group of exactly two Agents."""
    authority = _obj(value, path)
    object_type = authority.get("objectType", "Agent")
    if object_type == "Agent":
        validate_agent(authority, path)
        return
    if object_type != "Group":
        raise _fail("objectType must be 'Agent' or 'Group'", f"{path}.objectType")
    _keys(authority, _GROUP_KEYS, path)
    for ifi in _IFIS:
        if ifi in authority:
            raise _fail("an authority Group must be anonymous (OAuth consumer and user)", f"{path}.{ifi}")
    if _group(authority, path) != 2:
        raise _fail("an authority Group must have exactly two members", f"{path}.member")


def _core(stmt: dict[str, Any], path: str, version: str, *, in_substatement: bool) -> None:
    """What a statement and a SubStatement share: actor, verb, object, result, context, timestamp."""
    for required in ("actor", "verb", "object"):
        if required not in stmt:
            raise _fail(f"{required} is required", path)
    _actor(stmt["actor"], f"{path}.actor")
    verb_id = _verb(stmt["verb"], f"{path}.verb")
    object_type = _object(stmt["object"], f"{path}.object", version, in_substatement=in_substatement)
    if verb_id == VOIDED and not in_substatement and object_type != "StatementRef":
        raise _fail("a voiding statement's object must be a StatementRef", f"{path}.object")
    if "result" in stmt:
        _result(stmt["result"], f"{path}.result")
    if "context" in stmt:
        _context(stmt["context"], f"{path}.context", version, object_type)
    if "timestamp" in stmt:
        timestamp = stmt["timestamp"]
        # 2.0 clients send "timestamp": null for "none"; the LRS then sets it to stored.
        if not (timestamp is None and version == V2) and not is_timestamp(timestamp, version):
            raise _fail(_timestamp_message(version), f"{path}.timestamp")
    if "attachments" in stmt:
        _attachments(stmt["attachments"], f"{path}.attachments")


def _timestamp_message(version: str) -> str:
    if version == V2:
        return "must be an RFC 3339 timestamp with an offset other than -00:00"
    return "must be an ISO 8601 timestamp with an offset other than -00:00"


def validate_statement(obj: object, version: str, path: str = "statement") -> None:
    """Refuses (StatementError) a statement that breaks any rule of xAPI `version` ("1.0.3"/"2.0.0")."""
    if version not in (V1, V2):
        raise ValueError(f"unsupported xAPI version {version!r}")
    stmt = _obj(obj, path)
    _keys(stmt, _STATEMENT_KEYS, path)
    if "id" in stmt:
        _uuid(stmt["id"], f"{path}.id")
    _core(stmt, path, version, in_substatement=False)
    if "stored" in stmt and not is_timestamp(stmt["stored"], version):
        raise _fail(_timestamp_message(version), f"{path}.stored")
    if "authority" in stmt:
        _authority(stmt["authority"], f"{path}.authority")
    if "version" in stmt:
        stated = stmt["version"]
        pattern = _V2_VERSION if version == V2 else _V1_VERSION
        if type(stated) is not str or pattern.match(stated) is None:
            allowed = "1.0.x or 2.0.x" if version == V2 else "1.0.x"
            raise _fail(f"must be {allowed}", f"{path}.version")


def validate_statement_batch(body: object, version: str) -> list[dict[str, Any]]:
    """A POST/PUT body: one statement object or an array of them; returns the statements as a list.

    Refuses the whole batch (StatementError) on the first invalid statement or a statement id used
    twice in it (the spec's batch is all or nothing).
    """
    if type(body) is dict:
        validate_statement(body, version)
        return [body]
    if type(body) is not list:
        raise _fail("must be a statement object or an array of statements", "statements")
    seen: set[str] = set()
    for i, stmt in enumerate(body):
        validate_statement(stmt, version, f"statements[{i}]")
        sid = stmt.get("id")
        if sid is not None:
            key = sid.lower()
            if key in seen:
                raise _fail(f"statement id {sid} is used more than once in the batch", f"statements[{i}].id")
            seen.add(key)
    return body


def normalize_statement(stmt: dict[str, Any]) -> dict[str, Any]:
    """Puts a valid statement in its stored shape, in place (and returns it).

    Each contextActivities value becomes an array (the LRS returns arrays even when a single
    Activity was sent), in the statement's and its SubStatement's context; a null timestamp (2.0)
    is removed so the store sets it to `stored`. Nothing else changes: the `exact` format returns
    what was sent.
    """
    _normalize_context(stmt.get("context"))
    obj = stmt.get("object")
    if type(obj) is dict and obj.get("objectType") == "SubStatement":
        _normalize_context(obj.get("context"))
        if "timestamp" in obj and obj["timestamp"] is None:
            del obj["timestamp"]
    if "timestamp" in stmt and stmt["timestamp"] is None:
        del stmt["timestamp"]
    return stmt


def _normalize_context(context: object) -> None:
    if type(context) is not dict:
        return
    activities = context.get("contextActivities")
    if type(activities) is not dict:
        return
    for key, entry in activities.items():
        if type(entry) is dict:
            activities[key] = [entry]
