"""Query parameters of the document, Activities and Agents resources, checked as xAPI requires.

Each resource names the parameters it knows; any other (names are case-sensitive) is a 400, as is a
missing required one or a value of the wrong form: `agent` a JSON Agent with exactly one inverse
functional identifier (as appliance.core.xapi.agents parses it), `activityId` an IRI, `registration` a UUID, `since` a
timestamp.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from appliance.core.xapi.agents import parse_agent_param
from appliance.core.xapi.statement_errors import StatementError
from appliance.faces.api.xapi.messages import XapiError, XapiRequest

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


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


def agent(value: str) -> dict[str, Any]:
    """The `agent` parameter as an Agent object (appliance.core.xapi.agents.parse_agent_param), or 400."""
    try:
        return parse_agent_param(value, allow_group=False)
    except StatementError as exc:
        raise XapiError(400, f"the 'agent' parameter is not a valid Agent: {exc}", {"path": exc.path}) from None
