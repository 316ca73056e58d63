"""CMI value types shared by the server and the browser: regexes, interaction formats, error codes.

Everything here is plain JSON-serialisable data. `elements.datamodel_table()` ships it to the browser,
where `static/runtime/datamodel.js` interprets it with the same algorithm as `datamodel.py`, so a value
the server rejects is rejected by the player too.

Regex convention: the patterns are written in the common subset of Python `re` and JavaScript RegExp
(no `\\d`/`\\s`/`\\w`, whose Unicode meaning differs; explicit ASCII classes instead; no lookbehind;
no length quantifiers over free text, because JavaScript counts UTF-16 units). They are stored
*unanchored*: Python applies them with `re.fullmatch`, JavaScript with `new RegExp("^(?:" + p + ")$")`.
Lengths (SPM) are checked in code, counting code points on both sides.
"""

from __future__ import annotations

from typing import Any

_WS = "[ \\t\\n\\r\\f\\v]"
_NWS = "[^ \\t\\n\\r\\f\\v]"
_URN = "[uU][rR][nN]:"

# Unanchored patterns (see module docstring).
PATTERNS: dict[str, str] = {
    # CMIDecimal (1.2) and real(10,7) (2004): optional minus, digits with optional point.
    "decimal": "-?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)",
    "sinteger": "-?[0-9]+",
    # CMIIdentifier (1.2): printable ASCII, not blank (as Moodle/scorm-again accept; strict spec is narrower).
    "identifier12": "[ -~]*[!-~][ -~]*",
    # CMITimespan HHHH:MM:SS.SS and CMITime HH:MM:SS.SS (1.2).
    "timespan12": "[0-9]{2,4}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]{1,2})?",
    "time12": "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,2})?",
    # long/short_identifier_type (2004): not blank; a URN when it starts with "urn:".
    "identifier": f"{_URN}[A-Za-z0-9][A-Za-z0-9-]{{0,31}}:{_NWS}+|(?!{_URN}){_WS}*{_NWS}[\\s\\S]*",
    # language_type (RFC 3066).
    "language": "(?:[a-zA-Z]{2,3}|[iIxX])(?:-[a-zA-Z0-9]{1,8})*",
    # time(second,10,0): YYYY[-MM[-DD[Thh[:mm[:ss[.s[s]][TZD]]]]]], years 1970-2038.
    "timestamp": (
        "(?:19[7-9][0-9]|20[0-2][0-9]|203[0-8])"
        "(?:-(?:0[1-9]|1[0-2])"
        "(?:-(?:0[1-9]|[12][0-9]|3[01])"
        "(?:T(?:[01][0-9]|2[0-3])"
        "(?::[0-5][0-9]"
        "(?::[0-5][0-9](?:\\.[0-9]{1,2})?(?:Z|[+-](?:[01][0-9]|2[0-3])(?::[0-5][0-9])?)?"
        ")?)?)?)?)?"
    ),
    # timeinterval(second,10,2): P[nY][nM][nD][T[nH][nM][n[.n[n]]S]], at least one component.
    "duration": (
        "P(?!$)(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?"
        "(?:T(?=[0-9])(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\\.[0-9]{1,2})?S)?)?"
    ),
    # adl.nav.request with a target: {target=ID}choice (and {target=ID}jump in 4th Edition).
    "nav_target": "\\{target=[^}]+\\}(?:choice|jump)",
    "nav_target_3rd": "\\{target=[^}]+\\}choice",
    # adl.nav.request_valid.choice.{target=ID}: the part after the element name.
    "target_suffix": "\\{target=[^}]+\\}",
    # An array index path segment.
    "index": "0|[1-9][0-9]*",
}

# Interaction value formats (SCORM 2004 RTE 4.2.9): for each interaction type, how a
# learner_response ("response") and a correct_responses.n.pattern ("pattern") are built.
# "form": "vocab" (one of values) | "single" (one item) | "list" (items joined by "[,]").
# "item": short_identifier | localized | pair | step | step_pattern | real | range | string.
# "delimiters": the {name=true|false} prefixes a pattern may start with.
_ID_LIST = {"form": "list", "item": "short_identifier", "min": 0, "unique": True}
_SEQUENCE = {"form": "list", "item": "short_identifier", "min": 1}
_TF = {"form": "vocab", "values": ["true", "false"]}
INTERACTION_TYPES: dict[str, dict[str, Any]] = {
    "true-false": {"response": _TF, "pattern": _TF, "max_patterns": 1, "spm_patterns": 1},
    "choice": {"response": _ID_LIST, "pattern": _ID_LIST, "unique_patterns": True, "spm_patterns": 10},
    "fill-in": {
        "response": {"form": "list", "item": "localized", "min": 0},
        "pattern": {"form": "list", "item": "localized", "min": 0, "delimiters": ["case_matters", "order_matters"]},
        "spm_patterns": 5,
    },
    "long-fill-in": {
        "response": {"form": "single", "item": "localized"},
        "pattern": {"form": "single", "item": "localized", "delimiters": ["case_matters"]},
        "spm_patterns": 5,
    },
    "likert": {
        "response": {"form": "single", "item": "short_identifier"},
        "pattern": {"form": "single", "item": "short_identifier"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
    "matching": {
        "response": {"form": "list", "item": "pair", "min": 0},
        "pattern": {"form": "list", "item": "pair", "min": 1},
        "spm_patterns": 5,
    },
    "performance": {
        "response": {"form": "list", "item": "step", "min": 0},
        "pattern": {"form": "list", "item": "step_pattern", "min": 1, "delimiters": ["order_matters"]},
        "spm_patterns": 5,
    },
    "sequencing": {"response": _SEQUENCE, "pattern": _SEQUENCE, "unique_patterns": True, "spm_patterns": 5},
    "numeric": {
        "response": {"form": "single", "item": "real"},
        "pattern": {"form": "single", "item": "range"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
    "other": {
        "response": {"form": "single", "item": "string"},
        "pattern": {"form": "single", "item": "string"},
        "max_patterns": 1,
        "spm_patterns": 1,
    },
}

# Which public code each internal condition maps to (errors.md).
ERRORS_12: dict[str, int] = {
    "empty_get": 201,
    "empty_set": 201,
    "undefined": 401,
    "container": 401,
    "set_keyword": 402,
    "read_only": 403,
    "write_only": 404,
    "no_children": 202,
    "no_count": 203,
    "no_version": 401,
    "get_index": 201,  # ADL 1.2 mode uses 101, Moodle 201: "argument is not a valid element"
    "set_index": 201,
    "new_record": 201,
    "dependency": 201,
    "max_records": 405,
    "not_unique": 405,
    "write_once": 405,
    "type": 405,
    "range": 405,
    "too_long": 405,
    "missing_target": 401,
    "not_initialized_value": 0,  # every readable 1.2 element has a default
}
ERRORS_2004: dict[str, int] = {
    "empty_get": 301,
    "empty_set": 351,
    "undefined": 401,
    "container": 401,
    "set_keyword": 404,
    "read_only": 404,
    "write_only": 405,
    "no_children": 301,
    "no_count": 301,
    "no_version": 301,
    "get_index": 301,
    "set_index": 351,
    "new_record": 408,
    "dependency": 408,
    "max_records": 351,
    "not_unique": 351,
    "write_once": 351,
    "type": 406,
    "range": 407,
    "too_long": 351,
    "missing_target": 301,
    "not_initialized_value": 403,
}

# Codes of the API state machine (rte-rules.md section 2), by call and state.
RTE_12: dict[str, Any] = {
    "initialize": {"running": 101},
    "terminate": {"not_initialized": 301},
    "get": {"not_initialized": 301},
    "set": {"not_initialized": 301},
    "commit": {"not_initialized": 301},
    "argument": 201,
    "commit_failure": 101,
    "terminate_failure": 101,
    "after_terminate": "not_initialized",  # 1.2 has no terminated state
}
RTE_2004: dict[str, Any] = {
    "initialize": {"running": 103, "terminated": 104},
    "terminate": {"not_initialized": 112, "terminated": 113},
    "get": {"not_initialized": 122, "terminated": 123},
    "set": {"not_initialized": 132, "terminated": 133},
    "commit": {"not_initialized": 142, "terminated": 143},
    "argument": 201,
    "commit_failure": 391,
    "terminate_failure": 391,
    "after_terminate": "terminated",
}

ERROR_STRINGS_12: dict[str, str] = {
    "0": "No error",
    "101": "General exception",
    "201": "Invalid argument error",
    "202": "Element cannot have children",
    "203": "Element not an array - cannot have count",
    "301": "Not initialized",
    "401": "Not implemented error",
    "402": "Invalid set value, element is a keyword",
    "403": "Element is read only",
    "404": "Element is write only",
    "405": "Incorrect data type",
}
ERROR_STRINGS_2004: dict[str, str] = {
    "0": "No Error",
    "101": "General Exception",
    "102": "General Initialization Failure",
    "103": "Already Initialized",
    "104": "Content Instance Terminated",
    "111": "General Termination Failure",
    "112": "Termination Before Initialization",
    "113": "Termination After Termination",
    "122": "Retrieve Data Before Initialization",
    "123": "Retrieve Data After Termination",
    "132": "Store Data Before Initialization",
    "133": "Store Data After Termination",
    "142": "Commit Before Initialization",
    "143": "Commit After Termination",
    "201": "General Argument Error",
    "301": "General Get Failure",
    "351": "General Set Failure",
    "391": "General Commit Failure",
    "401": "Undefined Data Model Element",
    "402": "Unimplemented Data Model Element",
    "403": "Data Model Element Value Not Initialized",
    "404": "Data Model Element Is Read Only",
    "405": "Data Model Element Is Write Only",
    "406": "Data Model Element Type Mismatch",
    "407": "Data Model Element Value Out Of Range",
    "408": "Data Model Dependency Not Established",
}
