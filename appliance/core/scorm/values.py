"""Checking one CMI value against its element spec (elements.py); mirrored by static/runtime/datamodel.js.

A check answers `(None, note)` when the value is accepted (the note says when a 2004 value is longer
than its SPM, which the appliance stores anyway) or `(error_key, diagnostic)` where error_key is a key
of the table's "errors" map ("type", "range", "too_long").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

Spec = Mapping[str, Any]
Table = Mapping[str, Any]
Check = tuple[str | None, str]

_OK: Check = (None, "")
LANG_PREFIX = "{lang="


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(table: Table, pattern_name: str, value: str) -> bool:
    """Whole-string match of a named table pattern (JS: `^(?:p)$`)."""
    return _compiled(table["patterns"][pattern_name]).fullmatch(value) is not None


@functools.cache
def _codes(codes: str) -> frozenset[str]:
    """The table's space-separated language codes as a set (a str caches its hash: cheap to look up)."""
    return frozenset(codes.split())


def valid_language(table: Table, tag: str) -> bool:
    """A language_type (RFC 3066): the syntax, and a primary subtag of ISO 639 (or i, x, qaa-qtz)."""
    if not matches(table, "language", tag):
        return False
    primary = tag.split("-", 1)[0].lower()
    if primary in ("i", "x") or matches(table, "language_local", primary):
        return True
    return primary in _codes(table["language_codes"])


def check_value(table: Table, spec: Spec, value: str, interaction_type: str | None = None) -> Check:
    """Check `value` for the element described by `spec`; see the module docstring for the answer."""
    if spec.get("blank") and value == "":
        return _OK
    kind = spec["kind"]
    if kind == "localized":
        ok, text = split_localized(table, value)
        if not ok:
            return "type", "invalid {lang=...} prefix"
        return _length(table, spec, text)
    too_long = _length(table, spec, value)
    if too_long[0]:
        return too_long
    result = _check_kind(table, spec, kind, value, interaction_type)
    return result if result[0] else too_long


def _check_kind(table: Table, spec: Spec, kind: str, value: str, interaction_type: str | None) -> Check:
    if kind == "string":
        return _OK
    if kind == "pattern":
        return _OK if matches(table, spec["pattern"], value) else ("type", f"not a valid {spec['pattern']} value")
    if kind == "language":
        return _OK if valid_language(table, value) else ("type", "not a language code (RFC 3066, ISO 639)")
    if kind == "number":
        if not matches(table, spec["pattern"], value):
            return "type", "not a number"
        return _range(spec, float(value))
    if kind == "vocab":
        allowed = spec.get("settable", spec["vocab"])
        return _OK if value in allowed else ("type", f"not one of: {', '.join(allowed)}")
    if kind in ("result", "nav_request"):
        if value in spec["vocab"] or matches(table, spec["pattern"], value):
            return _OK
        return "type", "not a valid token"
    if kind == "interaction":
        return _check_interaction(table, spec, value, interaction_type)
    raise ValueError(f"unknown element kind {kind!r}")


def _length(table: Table, spec: Spec, text: str) -> Check:
    """1.2: SPM is a hard limit (and max_chars bounds what has none). 2004: SPM is a minimum; store
    longer values up to max_chars."""
    spm = spec.get("spm")
    size = len(text)
    if spm is not None and table["spm_is_limit"]:
        return ("too_long", f"longer than {spm} characters") if size > spm else _OK
    if size > table["max_chars"]:
        return "too_long", f"longer than the appliance limit of {table['max_chars']} characters"
    if spm is not None and size > spm:
        return None, f"longer than the SPM of {spm} characters; stored"
    return _OK


def _range(spec: Spec, number: float) -> Check:
    low, high = spec.get("range") or (None, None)
    if (low is not None and number < low) or (high is not None and number > high):
        return "range", f"out of range [{low}, {high}]"
    return _OK


def split_localized(table: Table, value: str) -> tuple[bool, str]:
    """Split an optional {lang=xx} prefix; answers (prefix valid, text after it)."""
    if not value.startswith(LANG_PREFIX):
        return True, value
    end = value.find("}")
    if end < 0 or not valid_language(table, value[len(LANG_PREFIX) : end]):
        return False, value
    return True, value[end + 1 :]


def _check_interaction(table: Table, spec: Spec, value: str, interaction_type: str | None) -> Check:
    formats = table["interaction_types"].get(interaction_type or "")
    if formats is None:
        return "type", "the interaction type is not set"
    problem = interaction_problem(table, formats[spec["role"]], value)
    return ("type", f"not a valid {interaction_type} {spec['role']}: {problem}") if problem else _OK


def interaction_problem(table: Table, fmt: Spec, value: str) -> str:
    """Why `value` does not fit an interaction format from cmi_types.INTERACTION_TYPES ("" if it fits)."""
    if fmt["form"] == "vocab":
        return "" if value in fmt["values"] else "not one of " + ", ".join(fmt["values"])
    rest = value
    if fmt.get("delimiters"):
        rest, problem = _strip_delimiters(rest, fmt["delimiters"])
        if problem:
            return problem
    if fmt["form"] == "single":
        items = [rest]
    else:
        items = [] if rest == "" else rest.split("[,]")
        if len(items) < fmt.get("min", 0):
            return f"needs at least {fmt['min']} item(s)"
        if fmt.get("unique") and len(set(items)) != len(items):
            return "items must be unique"
    for item in items:
        problem = _item_problem(table, fmt["item"], item)
        if problem:
            return problem
    return ""


def _strip_delimiters(value: str, allowed: list[str]) -> tuple[str, str]:
    """Remove leading {case_matters=..}/{order_matters=..}; anything else starting with "{" is data."""
    seen: set[str] = set()
    while value.startswith("{"):
        name = next((n for n in allowed if value.startswith("{" + n + "=")), None)
        if name is None:
            break
        end = value.find("}")
        flag = value[len(name) + 2 : end] if end >= 0 else ""
        if flag not in ("true", "false") or name in seen:
            return value, f"bad {{{name}=...}} delimiter"
        seen.add(name)
        value = value[end + 1 :]
    return value, ""


def _item_problem(table: Table, item_kind: str, item: str) -> str:
    if item_kind == "short_identifier":
        return "" if matches(table, "short_identifier", item) else f"bad identifier {item!r}"
    if item_kind == "localized":
        return "" if split_localized(table, item)[0] else "bad {lang=...} prefix"
    if item_kind == "real":
        return "" if matches(table, "decimal", item) else "not a number"
    if item_kind == "range":
        return _range_problem(table, item)
    if item_kind in ("pair", "step", "step_pattern"):
        return _pair_problem(table, item_kind, item)
    return ""


def _pair_problem(table: Table, item_kind: str, item: str) -> str:
    parts = item.split("[.]")
    if len(parts) != 2:
        return f"{item!r} must be two parts joined by [.]"
    left, right = parts
    if item_kind == "pair":
        ok = matches(table, "short_identifier", left) and matches(table, "short_identifier", right)
        return "" if ok else f"bad pair {item!r}"
    if left == "" and right == "":
        return "a step needs a name or an answer"
    if left != "" and not matches(table, "short_identifier", left):
        return f"bad step name {left!r}"
    if item_kind == "step_pattern" and "[:]" in right:
        return _range_problem(table, right)
    return ""


def _range_problem(table: Table, item: str) -> str:
    """A numeric value, or min[:]max with either bound optional and min <= max."""
    if "[:]" not in item:
        return "" if matches(table, "decimal", item) else "not a number"
    bounds = item.split("[:]")
    if len(bounds) != 2 or any(b != "" and not matches(table, "decimal", b) for b in bounds):
        return f"bad range {item!r}"
    low, high = bounds
    if low != "" and high != "" and float(low) > float(high):
        return "range minimum is above its maximum"
    return ""


def evaluated_status(spec: Spec, cmi: Mapping[str, str]) -> str | None:
    """The 2004 completion/success evaluation (rte-rules.md 5.2), or None when no threshold is defined.

    With a threshold (completion_threshold / scaled_passing_score) the measure decides; an unset
    measure gives "unknown". Without one the SCO-set value stands, so the caller uses it.
    """
    rule = spec.get("computed")
    if not rule or rule["threshold"] not in cmi:
        return None
    measure = cmi.get(rule["measure"])
    if measure is None or measure == "":
        return "unknown"
    return rule["above"] if float(measure) >= float(cmi[rule["threshold"]]) else rule["below"]
