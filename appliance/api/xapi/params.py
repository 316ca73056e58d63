"""Query parameters of the document, Activities and Agents resources, checked as xAPI requires.

Each resource names the parameters it knows; any other (names are case-sensitive) is a 400, as is a
missing required one or a value of the wrong form: `agent` a JSON Agent (or identified Group) with
exactly one inverse functional identifier, `activityId` an IRI, `registration` a UUID, `since` a
timestamp.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from appliance.api.xapi.app import XapiError, XapiRequest

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def check_names(req: XapiRequest, allowed: set[str]) -> None:
    """400 for a parameter the resource does not define."""
    unknown = sorted(set(req.params) - allowed)
    if unknown:
        raise XapiError(400, f"unrecognised parameter(s): {', '.join(unknown)}", {"allowed": sorted(allowed)})


def required(req: XapiRequest, name: str) -> str:
    """A required parameter's value (400 when absent or empty)."""
    value = req.params.get(name)
    if value is None or value == "":
        raise XapiError(400, f"the {name!r} parameter is required")
    return value


def iri(name: str, value: str) -> str:
    """An IRI parameter (an absolute IRI: a scheme, then no spaces), or 400."""
    if not _IRI.match(value):
        raise XapiError(400, f"the {name!r} parameter must be an IRI", {"value": value})
    return value


def uuid(name: str, value: str | None) -> str:
    """A UUID parameter lower-cased ('' when absent), or 400."""
    if value is None:
        return ""
    if not _UUID.match(value):
        raise XapiError(400, f"the {name!r} parameter must be a UUID", {"value": value})
    return value.lower()


def timestamp(name: str, value: str | None) -> float | None:
    """A timestamp parameter as POSIX seconds (None when absent), or 400; no zone is UTC."""
    if value is None:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise XapiError(400, f"the {name!r} parameter must be an ISO 8601 timestamp", {"value": value}) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _ifi_error(message: str) -> XapiError:
    return XapiError(400, f"the 'agent' parameter is not a valid Agent: {message}")


def _check_ifi(agent: dict[str, Any], name: str) -> None:
    value = agent[name]
    if name == "mbox":
        if not isinstance(value, str) or not value.startswith("mailto:") or "@" not in value:
            raise _ifi_error("mbox must be a mailto: IRI")
    elif name == "mbox_sha1sum":
        if not isinstance(value, str) or not _SHA1.match(value):
            raise _ifi_error("mbox_sha1sum must be a SHA-1 in hex")
    elif name == "openid":
        if not isinstance(value, str) or not _IRI.match(value):
            raise _ifi_error("openid must be an IRI")
    else:
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("homePage"), str)
            or not _IRI.match(value["homePage"])
            or not isinstance(value.get("name"), str)
        ):
            raise _ifi_error("account must have a homePage IRI and a name")


def agent(value: str) -> dict[str, Any]:
    """The `agent` parameter as an Agent (or identified Group) object, or 400."""
    try:
        parsed = msgspec.json.decode(value)
    except msgspec.DecodeError:
        raise XapiError(400, "the 'agent' parameter must be a JSON Agent object") from None
    if not isinstance(parsed, dict):
        raise XapiError(400, "the 'agent' parameter must be a JSON Agent object")
    if parsed.get("objectType", "Agent") not in ("Agent", "Group"):
        raise _ifi_error("objectType must be Agent (or Group)")
    present = [name for name in IFIS if name in parsed]
    if len(present) != 1:
        raise _ifi_error("it must have exactly one of mbox, mbox_sha1sum, openid and account")
    _check_ifi(parsed, present[0])
    if "name" in parsed and not isinstance(parsed["name"], str):
        raise _ifi_error("name must be a string")
    return parsed
