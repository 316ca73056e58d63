"""The scalar formats of xAPI values: UUIDs, IRIs, RFC 5646 language tags, ISO 8601 durations, timestamps
(1.0.3's ISO 8601 and 2.0's RFC 3339, parsed and written in UTC), language maps and extensions.

A module of its own because both the statement checks and the resources' parameters (`since`,
`registration`, `activityId`) use them; the strings that recur across statements (tags and IRIs) are
memoised here, once for all of them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from appliance.core.xapi.statement_errors import LANGMAP_MSG, STRING_MSG, error_at
from appliance.core.xapi.versions import V1, V2

# --- scalar checks --------------------------------------------------------------------------

UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# An absolute IRI: a scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )), a colon and a
# non-empty rest without the characters an IRI can never hold (whitespace, <>"{}|\^`).
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+\Z")
MBOX_PATTERN = re.compile(r"[mM][aA][iI][lL][tT][oO]:[^@\s<>\"]+@[^@\s<>\"]+\Z")
SHA1_PATTERN = re.compile(r"[0-9a-fA-F]{40}\Z")

# ISO 8601:2004 section 4.4.3.2 durations (PnYnMnDTnHnMnS, PnW; the alternative format of 4.4.3.3
# is refused). A decimal fraction is accepted on any component, as the ADL LRS does.
_N = r"\d+(?:[.,]\d+)?"
DURATION_PATTERN = re.compile(
    rf"P(?:{_N}W|(?=\d|T\d)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)\Z"
)

# Their `match`, bound once, for the other validation modules: a method called on a name a module
# imported is compiled as an attribute load (CPython 3.11 then makes a bound method on every call).
match_uuid = UUID_PATTERN.match
match_mbox = MBOX_PATTERN.match
match_sha1 = SHA1_PATTERN.match
match_duration = DURATION_PATTERN.match

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
KNOWN_TAGS: set[str] = set()
KNOWN_IRIS: set[str] = set()


def iri_new(value: object) -> bool:
    """An IRI not met before: match it and remember it (the caller checked the memo)."""
    if type(value) is not str or _IRI.match(value) is None:
        return False
    if len(KNOWN_IRIS) >= _MEMO_LIMIT:
        KNOWN_IRIS.clear()
    KNOWN_IRIS.add(value)
    return True


def tag_new(value: object) -> bool:
    if type(value) is not str or _LANGTAG.match(value) is None or not _tag_unique_subtags(value):
        return False
    if len(KNOWN_TAGS) >= _MEMO_LIMIT:
        KNOWN_TAGS.clear()
    KNOWN_TAGS.add(value)
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
    return type(value) is str and UUID_PATTERN.match(value) is not None


def is_iri(value: object) -> bool:
    """An absolute IRI (or IRL/URI): a scheme, a colon and no character an IRI cannot hold."""
    return type(value) is str and (value in KNOWN_IRIS or iri_new(value))


def is_language_tag(value: object) -> bool:
    """A well-formed RFC 5646 tag (no repeated variant or extension singleton)."""
    return type(value) is str and (value in KNOWN_TAGS or tag_new(value))


def is_duration(value: object) -> bool:
    """An ISO 8601 duration in the format of section 4.4.3.2."""
    return type(value) is str and DURATION_PATTERN.match(value) is not None


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


def check_language_map(value: object, path: str, key: str) -> None:
    if type(value) is not dict:
        raise error_at(LANGMAP_MSG, path, key)
    for tag, text in value.items():
        if tag not in KNOWN_TAGS and not tag_new(tag):
            raise error_at(f"{tag!r} is not an RFC 5646 language tag", path, key)
        if type(text) is not str:
            raise error_at(STRING_MSG, f"{path}.{key}", tag)


def check_extensions(value: object, path: str, key: str) -> None:
    if type(value) is not dict:
        raise error_at("must be an object of IRI to any JSON value", path, key)
    for name in value:
        if name not in KNOWN_IRIS and not iri_new(name):
            raise error_at(f"extension key {name!r} is not an absolute IRI", path, key)


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
