"""Statement validation exactly as xAPI 1.0.3 and 2.0 require, as plain dict/str checks (no I/O).

The LRS refuses a statement (400) on the first rule it breaks; `StatementError` says which rule and
where (`statement.actor.mbox`, `statements[3].object.definition.choices[0].id`).

Why hand-written: the store's budget is ≥ 20,000 statements/s on two cores, so a typical statement
must validate in a few microseconds. Each object is checked in one pass over its items (an unknown
property is refused in the same loop that checks the known ones), every regex is precompiled, the
strings that recur across statements (language tags, verb and activity IRIs) are memoised, and a
path string is only composed at an object boundary or when an error is raised.

Use: `validate_statement_batch(body, version)` on a POST/PUT body (one statement or a list), then
`normalize_statement(s)` on each before storing. Every template-driven case of the ADL conformance
suite is replayed in tests/core/xapi/test_validation.py.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.core.xapi.versions import V1, V2

__all__ = [
    "VOIDED",
    "StatementError",
    "is_duration",
    "is_iri",
    "is_language_tag",
    "is_timestamp",
    "is_uuid",
    "normalize_statement",
    "parse_timestamp",
    "validate_agent",
    "utc_timestamp",
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

# ISO 8601:2004 section 4.4.3.2 durations (PnYnMnDTnHnMnS, PnW; the alternative format of 4.4.3.3
# is refused). A decimal fraction is accepted on any component, as the ADL LRS does.
_N = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?:{_N}W|(?=\d|T\d)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)\Z"
)

# Timestamps. 1.0.3: ISO 8601 combined date and time, extended or basic format, the time zone
# optional (the spec: SHOULD include it; without one the LRS reads UTC). 2.0: RFC 3339 date-time
# (seconds and an offset required; "t"/"z" may be lower case, as the RFC's ABNF allows). Both
# refuse the "unknown local offset" -00:00 and its basic forms -0000 and -00 (the suite's
# XAPI-00123 cases). Field ranges are in the patterns; only day 29-31 against the month is
# checked after the match.
_MO = r"(0[1-9]|1[0-2])"
_DD = r"(0[1-9]|[12]\d|3[01])"
_HH = r"(?:[01]\d|2[0-3])"
_MM = r"[0-5]\d"
_SS = r"(?:[0-5]\d|60)"
_TS_EXT = re.compile(
    rf"(\d{{4}})-{_MO}-{_DD}T{_HH}:{_MM}(?::{_SS}(?:[.,]\d+)?)?"
    rf"(?:Z|(?!-00(?::?00)?\Z)[+-]{_HH}(?::?{_MM})?)?\Z"
)
_TS_BASIC = re.compile(
    rf"(\d{{4}}){_MO}{_DD}T{_HH}{_MM}(?:{_SS}(?:[.,]\d+)?)?(?:Z|(?!-00(?:00)?\Z)[+-]{_HH}(?:{_MM})?)?\Z"
)
_TS_RFC3339 = re.compile(rf"(\d{{4}})-{_MO}-{_DD}[Tt]{_HH}:{_MM}:{_SS}(?:\.\d+)?(?:[Zz]|(?!-00:00\Z)[+-]{_HH}:{_MM})\Z")
_TS_PARSE = re.compile(
    r"(\d{4})-?(\d\d)-?(\d\d)[Tt](\d\d):?(\d\d)(?::?(\d\d)(?:[.,](\d+))?)?([Zz]|([+-])(\d\d)(?::?(\d\d))?)?\Z"
)

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
_TAGS: set[str] = set()
_IRIS: set[str] = set()


def _iri_new(value: object) -> bool:
    """An IRI not met before: match it and remember it (the caller checked the memo)."""
    if type(value) is not str or _IRI.match(value) is None:
        return False
    if len(_IRIS) >= _MEMO_LIMIT:
        _IRIS.clear()
    _IRIS.add(value)
    return True


def _tag_new(value: object) -> bool:
    if type(value) is not str or _LANGTAG.match(value) is None or not _tag_unique_subtags(value):
        return False
    if len(_TAGS) >= _MEMO_LIMIT:
        _TAGS.clear()
    _TAGS.add(value)
    return True


def _tag_unique_subtags(tag: str) -> bool:
    """RFC 5646 §2.2.5/§2.2.6: a variant or an extension singleton appears at most once."""
    parts = tag.lower().split("-")
    if len(parts) < 3 or parts[0] in ("x", "i"):
        return True
    singletons: set[str] = set()
    variants: set[str] = set()
    in_extension = False
    for part in parts[1:]:
        if part == "x":
            break
        if len(part) == 1:
            if part in singletons:
                return False
            singletons.add(part)
            in_extension = True
        elif not in_extension and (len(part) >= 5 or (len(part) == 4 and part[0].isdigit())):
            if part in variants:
                return False
            variants.add(part)
    return True


def is_uuid(value: object) -> bool:
    """A UUID in its 8-4-4-4-12 hex form (statement ids, registrations)."""
    return type(value) is str and _UUID.match(value) is not None


def is_iri(value: object) -> bool:
    """An absolute IRI (or IRL/URI): a scheme, a colon and no character an IRI cannot hold."""
    return type(value) is str and (value in _IRIS or _iri_new(value))


def is_language_tag(value: object) -> bool:
    """A well-formed RFC 5646 tag (no repeated variant or extension singleton)."""
    return type(value) is str and (value in _TAGS or _tag_new(value))


def is_duration(value: object) -> bool:
    """An ISO 8601 duration in the format of section 4.4.3.2."""
    return type(value) is str and _DURATION.match(value) is not None


def is_timestamp(value: object, version: str = V1) -> bool:
    """A timestamp as `version` requires: ISO 8601 (1.0.3) or RFC 3339 (2.0); never offset -00:00."""
    if type(value) is not str:
        return False
    m = _TS_RFC3339.match(value) if version == V2 else (_TS_EXT.match(value) or _TS_BASIC.match(value))
    if m is None:
        return False
    year, month, day = m.groups()
    if day[0] != "3" and day != "29":
        return True
    if month == "02":
        y = int(year)
        return day == "29" and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return day != "31" or month in ("01", "03", "05", "07", "08", "10", "12")


def parse_timestamp(value: str) -> datetime:
    """A valid timestamp (or a `since`/`until` parameter) as an aware UTC datetime.

    No offset means UTC (xAPI 1.0.3: the LRS MAY read it so). Precision beyond microseconds is
    truncated. Raises ValueError for text that is not an ISO 8601 date-time.
    """
    m = _TS_PARSE.match(value)
    if m is None:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    year, month, day, hour, minute, second, fraction, zone, sign, off_h, off_m = m.groups()
    leap = second == "60"
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    parsed = datetime(
        int(year), int(month), int(day), int(hour), int(minute), 59 if leap else int(second or 0), micro, UTC
    )
    if leap:
        parsed += timedelta(seconds=1)
    if sign is not None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        parsed = parsed - offset if sign == "+" else parsed + offset
    return parsed


# --- the validator ----------------------------------------------------------------------------

_IFI_KEYS = frozenset({"mbox", "mbox_sha1sum", "openid", "account"})
_STATEMENT_KEYS = frozenset(
    {"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments"}
)
_SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
_CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
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

_OBJECT = "must be a JSON object"
_STRING = "must be a string"
_IRI_MSG = "must be an absolute IRI"
_UUID_MSG = "must be a UUID"
_LANGMAP = "must be a language map (an object of language tag to string)"
_MISSING: Any = object()


def _err(message: str, path: str, key: str | None = None) -> StatementError:
    return StatementError(message, path if key is None else f"{path}.{key}")


def _unknown(key: object, path: str) -> StatementError:
    return StatementError(f"unknown property {key!r}", path)


def _language_map(value: object, path: str, key: str) -> None:
    if type(value) is not dict:
        raise _err(_LANGMAP, path, key)
    for tag, text in value.items():
        if tag not in _TAGS and not _tag_new(tag):
            raise _err(f"{tag!r} is not an RFC 5646 language tag", path, key)
        if type(text) is not str:
            raise _err(_STRING, f"{path}.{key}", tag)


def _extensions(value: object, path: str, key: str) -> None:
    if type(value) is not dict:
        raise _err("must be an object of IRI to any JSON value", path, key)
    for name in value:
        if name not in _IRIS and not _iri_new(name):
            raise _err(f"extension key {name!r} is not an absolute IRI", path, key)


def _ifi(key: str, value: object, path: str) -> None:
    """One inverse functional identifier's value."""
    if key == "mbox":
        if type(value) is not str or _MBOX.match(value) is None:
            raise _err("must be a mailto: IRI of an email address", path, key)
    elif key == "account":
        if type(value) is not dict:
            raise _err(_OBJECT, path, key)
        apath = f"{path}.account"
        for k, v in value.items():
            if k == "homePage":
                if type(v) is not str or (v not in _IRIS and not _iri_new(v)):
                    raise _err(_IRI_MSG, apath, k)
            elif k == "name":
                if type(v) is not str:
                    raise _err(_STRING, apath, k)
            else:
                raise _unknown(k, apath)
        if "homePage" not in value:
            raise _err("an account requires homePage", apath)
        if "name" not in value:
            raise _err("an account requires name", apath)
    elif key == "mbox_sha1sum":
        if type(value) is not str or _SHA1.match(value) is None:
            raise _err("must be the 40 hex digits of a SHA-1 sum", path, key)
    elif type(value) is not str or (value not in _IRIS and not _iri_new(value)):  # openid
        raise _err(_IRI_MSG, path, key)


def _agent(agent: dict[str, Any], path: str, what: str = "an Agent") -> None:
    count = 0
    for k, v in agent.items():
        if k == "objectType":
            if v != "Agent":
                raise _err(f"objectType must be 'Agent' for {what}", path, k)
        elif k == "name":
            if type(v) is not str:
                raise _err(_STRING, path, k)
        elif k in _IFI_KEYS:
            count += 1
            _ifi(k, v, path)
        else:
            raise _unknown(k, path)
    if count != 1:
        raise _err("an Agent must have exactly one of mbox, mbox_sha1sum, openid, account", path)


def validate_agent(value: object, path: str = "agent", *, as_member: bool = False) -> None:
    """An Agent: only the spec's properties and exactly one inverse functional identifier."""
    if type(value) is not dict:
        raise _err(_OBJECT, path)
    _agent(value, path, "a Group member" if as_member else "an Agent")


def _group(group: dict[str, Any], path: str) -> int:
    """A Group (objectType already 'Group'): identified (one IFI) or anonymous (members, no IFI).

    Returns the member count (0 when absent).
    """
    count = 0
    members = _MISSING
    for k, v in group.items():
        if k == "member":
            members = v
        elif k == "name":
            if type(v) is not str:
                raise _err(_STRING, path, k)
        elif k in _IFI_KEYS:
            count += 1
            _ifi(k, v, path)
        elif k != "objectType":
            raise _unknown(k, path)
    if count > 1:
        raise _err("a Group has at most one of mbox, mbox_sha1sum, openid, account", path)
    if members is _MISSING:
        if count == 0:
            raise _err("an anonymous Group (no IFI) requires member", path)
        return 0
    if type(members) is not list:
        raise _err("must be an array of Agents", path, "member")
    if count == 0 and not members:
        raise _err("an anonymous Group requires at least one member", path, "member")
    for i, member in enumerate(members):
        mpath = f"{path}.member[{i}]"
        if type(member) is not dict:
            raise _err(_OBJECT, mpath)
        _agent(member, mpath, "a Group member")
    return len(members)


def _actor(actor: object, path: str) -> None:
    """Agent or Group (objectType absent means Agent)."""
    if type(actor) is not dict:
        raise _err(_OBJECT, path)
    object_type = actor.get("objectType", "Agent")
    if object_type == "Agent":
        _agent(actor, path)
    elif object_type == "Group":
        _group(actor, path)
    else:
        raise _err("objectType must be 'Agent' or 'Group'", path, "objectType")


def _verb(verb: object, path: str) -> str:
    if type(verb) is not dict:
        raise _err(_OBJECT, path)
    verb_id = _MISSING
    for k, v in verb.items():
        if k == "id":
            if type(v) is not str or (v not in _IRIS and not _iri_new(v)):
                raise _err(_IRI_MSG, path, k)
            verb_id = v
        elif k == "display":
            _language_map(v, path, k)
        else:
            raise _unknown(k, path)
    if verb_id is _MISSING:
        raise _err("a Verb requires id", path)
    return verb_id


def _activity(activity: dict[str, Any], path: str) -> None:
    has_id = False
    for k, v in activity.items():
        if k == "id":
            if type(v) is not str or (v not in _IRIS and not _iri_new(v)):
                raise _err(_IRI_MSG, path, k)
            has_id = True
        elif k == "definition":
            _definition(v, f"{path}.definition")
        elif k == "objectType":
            if v != "Activity":
                raise _err("objectType must be 'Activity'", path, k)
        else:
            raise _unknown(k, path)
    if not has_id:
        raise _err("an Activity requires id", path)


def _definition(definition: object, path: str) -> None:
    if type(definition) is not dict:
        raise _err(_OBJECT, path)
    interaction = _MISSING
    interactive = False  # a correctResponsesPattern or an interaction component list is present
    for k, v in definition.items():
        if k == "name" or k == "description":
            _language_map(v, path, k)
        elif k == "type" or k == "moreInfo":
            if type(v) is not str or (v not in _IRIS and not _iri_new(v)):
                raise _err(_IRI_MSG, path, k)
        elif k == "extensions":
            _extensions(v, path, k)
        elif k == "interactionType":
            interaction = v
        elif k == "correctResponsesPattern":
            if type(v) is not list:
                raise _err("must be an array of strings", path, k)
            for i, response in enumerate(v):
                if type(response) is not str:
                    raise _err(_STRING, path, f"{k}[{i}]")
            interactive = True
        elif k in _COMPONENT_LISTS:
            interactive = True
        else:
            raise _unknown(k, path)
    if interaction is _MISSING:
        if interactive:
            raise _err("correctResponsesPattern and interaction components require interactionType", path)
        return
    allowed = _INTERACTION_COMPONENTS.get(interaction) if type(interaction) is str else None
    if allowed is None:
        raise _err("must be one of the spec's interaction types", path, "interactionType")
    if interactive:
        for key in _COMPONENT_LISTS:
            if key in definition:
                if key not in allowed:
                    raise _err(f"interactionType {interaction!r} does not take {key}", path, key)
                _components(definition[key], f"{path}.{key}")


def _components(value: object, path: str) -> None:
    if type(value) is not list:
        raise _err("must be an array of interaction components", path)
    seen: set[str] = set()
    for i, component in enumerate(value):
        if type(component) is not dict:
            raise _err(_OBJECT, f"{path}[{i}]")
        cid = _MISSING
        for k, v in component.items():
            if k == "id":
                if type(v) is not str:
                    raise _err(_STRING, f"{path}[{i}]", k)
                cid = v
            elif k == "description":
                try:
                    _language_map(v, path, k)
                except StatementError as exc:
                    raise _rebased(exc, path, f"{path}[{i}]") from None
            else:
                raise _unknown(k, f"{path}[{i}]")
        if cid is _MISSING:
            raise _err("an interaction component requires id", f"{path}[{i}]")
        if cid in seen:
            raise _err(f"interaction component id {cid!r} is repeated", f"{path}[{i}]", "id")
        seen.add(cid)


def _statement_ref(ref: dict[str, Any], path: str) -> None:
    has_id = False
    for k, v in ref.items():
        if k == "id":
            if type(v) is not str or _UUID.match(v) is None:
                raise _err(_UUID_MSG, path, k)
            has_id = True
        elif k != "objectType":
            raise _unknown(k, path)
    if ref.get("objectType") != "StatementRef":
        raise _err("objectType must be 'StatementRef'", path, "objectType")
    if not has_id:
        raise _err("a StatementRef requires id", path)


def _object(obj: object, path: str, version: str, in_substatement: bool) -> str:
    """The statement's object; returns its objectType."""
    if type(obj) is not dict:
        raise _err(_OBJECT, path)
    object_type = obj.get("objectType", "Activity")
    if object_type == "Activity":
        _activity(obj, path)
    elif object_type == "Agent":
        _agent(obj, path)
    elif object_type == "Group":
        _group(obj, path)
    elif object_type == "StatementRef":
        _statement_ref(obj, path)
    elif object_type == "SubStatement":
        if in_substatement:
            raise _err("a SubStatement cannot contain a SubStatement", path, "objectType")
        for forbidden in ("id", "stored", "version", "authority"):
            if forbidden in obj:
                raise _err(f"a SubStatement must not have {forbidden}", path, forbidden)
        if not _SUBSTATEMENT_KEYS.issuperset(obj):
            raise _unknown(next(k for k in obj if k not in _SUBSTATEMENT_KEYS), path)
        _core(obj, path, version, True)
    else:
        raise _err(
            "objectType must be one of 'Activity', 'Agent', 'Group', 'StatementRef', 'SubStatement'",
            path,
            "objectType",
        )
    return object_type


def _result(result: object, path: str) -> None:
    if type(result) is not dict:
        raise _err(_OBJECT, path)
    for k, v in result.items():
        if k == "score":
            _score(v, f"{path}.score")
        elif k == "success" or k == "completion":
            if type(v) is not bool:
                raise _err("must be a boolean", path, k)
        elif k == "duration":
            if type(v) is not str or _DURATION.match(v) is None:
                raise _err("must be an ISO 8601 duration", path, k)
        elif k == "response":
            if type(v) is not str:
                raise _err(_STRING, path, k)
        elif k == "extensions":
            _extensions(v, path, k)
        else:
            raise _unknown(k, path)


def _score(score: object, path: str) -> None:
    if type(score) is not dict:
        raise _err(_OBJECT, path)
    low = high = raw = None
    for k, v in score.items():
        if k != "scaled" and k != "raw" and k != "min" and k != "max":
            raise _unknown(k, path)
        t = type(v)
        if not (t is int or (t is float and math.isfinite(v))):
            raise _err("must be a number", path, k)
        if k == "scaled":
            if not -1 <= v <= 1:
                raise _err("must be between -1 and 1", path, k)
        elif k == "raw":
            raw = v
        elif k == "min":
            low = v
        else:
            high = v
    if low is not None and high is not None and not low < high:
        raise _err("min must be less than max", path)
    if raw is not None:
        if low is not None and raw < low:
            raise _err("must not be less than min", path, "raw")
        if high is not None and raw > high:
            raise _err("must not be greater than max", path, "raw")


def _context(context: object, path: str, version: str, object_type: str) -> None:
    if type(context) is not dict:
        raise _err(_OBJECT, path)
    for k, v in context.items():
        if k == "registration":
            if type(v) is not str or _UUID.match(v) is None:
                raise _err(_UUID_MSG, path, k)
        elif k == "contextActivities":
            _context_activities(v, f"{path}.contextActivities")
        elif k == "extensions":
            _extensions(v, path, k)
        elif k == "platform" or k == "revision":
            if type(v) is not str:
                raise _err(_STRING, path, k)
            if object_type != "Activity":
                raise _err(f"{k} is only allowed when the object is an Activity", path, k)
        elif k == "language":
            if type(v) is not str or (v not in _TAGS and not _tag_new(v)):
                raise _err("must be an RFC 5646 language tag", path, k)
        elif k == "instructor":
            _actor(v, f"{path}.instructor")
        elif k == "team":
            if type(v) is not dict or v.get("objectType") != "Group":
                raise _err("team must be a Group (objectType 'Group')", path, k)
            _group(v, f"{path}.team")
        elif k == "statement":
            if type(v) is not dict:
                raise _err(_OBJECT, path, k)
            _statement_ref(v, f"{path}.statement")
        elif k == "contextAgents" and version == V2:
            _context_agents(v, f"{path}.contextAgents")
        elif k == "contextGroups" and version == V2:
            _context_groups(v, f"{path}.contextGroups")
        else:
            raise _unknown(k, path)


def _context_activities(activities: object, path: str) -> None:
    if type(activities) is not dict:
        raise _err(_OBJECT, path)
    for k, v in activities.items():
        if k not in _CONTEXT_ACTIVITY_KEYS:
            raise _unknown(k, path)
        # Validated under the container's path; an error's path is given its key (and index)
        # only when it is raised, so the common, valid case composes no path strings.
        if type(v) is dict:
            try:
                _activity(v, path)
            except StatementError as exc:
                raise _rebased(exc, path, f"{path}.{k}") from None
        elif type(v) is list:
            for i, activity in enumerate(v):
                if type(activity) is not dict:
                    raise _err(_OBJECT, f"{path}.{k}[{i}]")
                try:
                    _activity(activity, path)
                except StatementError as exc:
                    raise _rebased(exc, path, f"{path}.{k}[{i}]") from None
        else:
            raise _err("must be an Activity or an array of Activities", path, k)


def _rebased(exc: StatementError, old: str, new: str) -> StatementError:
    """`exc` with its path's `old` prefix replaced by `new`."""
    return StatementError(exc.message, new + exc.path[len(old) :])


def _relevant_types(types: object, path: str) -> None:
    if type(types) is not list or not types:
        raise _err("must be a non-empty array of IRIs", path, "relevantTypes")
    for i, iri in enumerate(types):
        if type(iri) is not str or (iri not in _IRIS and not _iri_new(iri)):
            raise _err(_IRI_MSG, path, f"relevantTypes[{i}]")


def _context_agents(value: object, path: str) -> None:
    if type(value) is not list:
        raise _err("must be an array of contextAgent objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        if type(entry) is not dict:
            raise _err(_OBJECT, epath)
        for k, v in entry.items():
            if k == "agent":
                validate_agent(v, f"{epath}.agent")
            elif k == "relevantTypes":
                _relevant_types(v, epath)
            elif k != "objectType":
                raise _unknown(k, epath)
        if entry.get("objectType") != "contextAgent":
            raise _err("objectType must be 'contextAgent'", epath, "objectType")
        if "agent" not in entry:
            raise _err("a contextAgent requires agent", epath)


def _context_groups(value: object, path: str) -> None:
    if type(value) is not list:
        raise _err("must be an array of contextGroup objects", path)
    for i, entry in enumerate(value):
        epath = f"{path}[{i}]"
        if type(entry) is not dict:
            raise _err(_OBJECT, epath)
        for k, v in entry.items():
            if k == "group":
                if type(v) is not dict or v.get("objectType") != "Group":
                    raise _err("must be a Group (objectType 'Group')", epath, k)
                _group(v, f"{epath}.group")
            elif k == "relevantTypes":
                _relevant_types(v, epath)
            elif k != "objectType":
                raise _unknown(k, epath)
        if entry.get("objectType") != "contextGroup":
            raise _err("objectType must be 'contextGroup'", epath, "objectType")
        if "group" not in entry:
            raise _err("a contextGroup requires group", epath)


def _attachments(value: object, path: str) -> None:
    if type(value) is not list:
        raise _err("must be an array of Attachments", path)
    for i, attachment in enumerate(value):
        apath = f"{path}[{i}]"
        if type(attachment) is not dict:
            raise _err(_OBJECT, apath)
        for k, v in attachment.items():
            if k == "usageType" or k == "fileUrl":
                if type(v) is not str or (v not in _IRIS and not _iri_new(v)):
                    raise _err(_IRI_MSG, apath, k)
            elif k == "display" or k == "description":
                _language_map(v, apath, k)
            elif k == "contentType" or k == "sha2":
                if type(v) is not str:
                    raise _err(_STRING, apath, k)
            elif k == "length":
                if type(v) is not int or v < 0:
                    raise _err("must be a non-negative integer", apath, k)
            else:
                raise _unknown(k, apath)
        for key in _ATTACHMENT_REQUIRED:
            if key not in attachment:
                raise _err(f"an Attachment requires {key}", apath)


def _authority(authority: object, path: str) -> None:
    """An Agent, or (OAuth) an anonymous Group of exactly two Agents."""
    if type(authority) is not dict:
        raise _err(_OBJECT, path)
    object_type = authority.get("objectType", "Agent")
    if object_type == "Agent":
        _agent(authority, path)
        return
    if object_type != "Group":
        raise _err("objectType must be 'Agent' or 'Group'", path, "objectType")
    for ifi in ("mbox", "mbox_sha1sum", "openid", "account"):
        if ifi in authority:
            raise _err("an authority Group must be anonymous (OAuth consumer and user)", path, ifi)
    if _group(authority, path) != 2:
        raise _err("an authority Group must have exactly two members", path, "member")


def _core(stmt: dict[str, Any], path: str, version: str, in_substatement: bool) -> None:
    """What a statement and a SubStatement share: actor, verb, object, result, context, timestamp."""
    if "actor" not in stmt or "verb" not in stmt or "object" not in stmt:
        missing = next(k for k in ("actor", "verb", "object") if k not in stmt)
        raise _err(f"{missing} is required", path)
    paths = _CHILD_PATHS.get(path) or _child_paths(path)
    _actor(stmt["actor"], paths[0])
    verb_id = _verb(stmt["verb"], paths[1])
    object_type = _object(stmt["object"], paths[2], version, in_substatement)
    if verb_id == VOIDED and not in_substatement and object_type != "StatementRef":
        raise _err("a voiding statement's object must be a StatementRef", path, "object")
    if "result" in stmt:
        _result(stmt["result"], paths[3])
    if "context" in stmt:
        _context(stmt["context"], paths[4], version, object_type)
    if "timestamp" in stmt:
        timestamp = stmt["timestamp"]
        # 2.0 clients send "timestamp": null for "none"; the store then sets it to stored.
        if not (timestamp is None and version == V2) and not is_timestamp(timestamp, version):
            raise _err(_timestamp_message(version), path, "timestamp")
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
        raise _err(_OBJECT, path)
    if not _STATEMENT_KEYS.issuperset(obj):
        raise _unknown(next(k for k in obj if k not in _STATEMENT_KEYS), path)
    if "id" in obj:
        sid = obj["id"]
        if type(sid) is not str or _UUID.match(sid) is None:
            raise _err(_UUID_MSG, path, "id")
    _core(obj, path, version, False)
    if "stored" in obj and not is_timestamp(obj["stored"], version):
        raise _err(_timestamp_message(version), path, "stored")
    if "authority" in obj:
        _authority(obj["authority"], f"{path}.authority")
    if "version" in obj:
        stated = obj["version"]
        pattern = _V2_VERSION if version == V2 else _V1_VERSION
        if type(stated) is not str or pattern.match(stated) is None:
            raise _err("must be 1.0.x or 2.0.x" if version == V2 else "must be 1.0.x", path, "version")


def validate_statement_batch(body: object, version: str) -> list[dict[str, Any]]:
    """A POST/PUT body: one statement object or an array of them; returns the statements as a list.

    Refuses the whole batch (StatementError) on the first invalid statement, or on a statement id
    used twice in it (the spec's batch is all or nothing). An empty array is returned as is.
    """
    if type(body) is dict:
        validate_statement(body, version)
        return [body]
    if type(body) is not list:
        raise _err("must be a statement object or an array of statements", "statements")
    seen: set[str] = set()
    for i, stmt in enumerate(body):
        try:
            validate_statement(stmt, version)
        except StatementError as exc:
            raise _rebased(exc, "statement", f"statements[{i}]") from None
        sid = stmt.get("id")
        if sid is not None:
            key = sid.lower()
            if key in seen:
                raise _err(f"statement id {sid} is used more than once in the batch", f"statements[{i}]", "id")
            seen.add(key)
    return body


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


def utc_timestamp(value: str) -> str:
    """A valid timestamp in UTC, `YYYY-MM-DDTHH:MM:SS.fffZ` (up to 6 fraction digits if sent).

    Milliseconds are always written (the spec's minimum precision); finer fractions are kept to
    the microsecond and truncated beyond it.
    """
    parsed = parse_timestamp(value)
    m = _TS_PARSE.match(value)
    digits = len(m.group(7) or "") if m is not None else 0
    text = parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + max(3, min(digits, 6))] + "Z"


def _normalize_context(context: object) -> None:
    if type(context) is not dict:
        return
    activities = context.get("contextActivities")
    if type(activities) is not dict:
        return
    for key, entry in activities.items():
        if type(entry) is dict:
            activities[key] = [entry]
