"""Agents as the LRS indexes and matches them: canonical IFI keys, the `agent` parameter, Person objects.

An Agent is identified by its one inverse functional identifier (IFI); two Agent objects with the
same IFI are the same Agent whatever their names say. `agent_ifi` turns that IFI into one string the
store indexes and compares (statements' actor/object/authority/context agents, the `agent` filter,
the State and Agent Profile documents' keys).
"""

from __future__ import annotations

import json
from typing import Any

from appliance.core.xapi.agent_validation import validate_agent
from appliance.core.xapi.statement_errors import StatementError

__all__ = ["agent_ifi", "agent_ifis", "parse_agent_param", "person_object"]


def agent_ifi(agent: dict[str, Any]) -> str:
    """The canonical key of an Agent's (or identified Group's) IFI, e.g. `mbox:mailto:a@example.com`.

    `mailto:`'s scheme is lower-cased (schemes are case-insensitive), an mbox_sha1sum's hex digits
    too; openid and account are kept as sent (IRIs compare as strings). An account is
    `account:<homePage> <name>` (a homePage holds no space). Raises StatementError for an object
    with no IFI (an anonymous Group: see `agent_ifis`).
    """
    mbox = agent.get("mbox")
    if mbox is not None:
        return "mbox:mailto:" + mbox[7:] if mbox[:7].lower() == "mailto:" else "mbox:" + mbox
    sha = agent.get("mbox_sha1sum")
    if sha is not None:
        return "mbox_sha1sum:" + sha.lower()
    openid = agent.get("openid")
    if openid is not None:
        return "openid:" + openid
    account = agent.get("account")
    if account is not None:
        return f"account:{account.get('homePage')} {account.get('name')}"
    raise StatementError("has no inverse functional identifier (mbox, mbox_sha1sum, openid, account)", "agent")


def agent_ifis(agent: dict[str, Any]) -> list[str]:
    """The keys an actor matches by: its own IFI, or an anonymous Group's members' IFIs.

    An identified Group's members' keys follow its own, for the filters that look inside Groups
    (`related_agents` matches an Agent that is a member of a Group in the statement).
    """
    keys: list[str] = []
    if any(k in agent for k in ("mbox", "mbox_sha1sum", "openid", "account")):
        keys.append(agent_ifi(agent))
    for member in agent.get("member") or ():
        if type(member) is dict:
            key = agent_ifi(member)
            if key not in keys:
                keys.append(key)
    return keys


def parse_agent_param(text: str, *, allow_group: bool = True, name: str = "agent") -> dict[str, Any]:
    """The `agent` query/document parameter: a JSON Agent (or identified Group) with exactly one IFI.

    Raises StatementError (the LRS answers 400) for text that is not JSON, not an object, or not a
    valid Agent. The Statement resource's filter takes identified Groups too; the document
    resources (State, Agent Profile) pass allow_group=False.
    """
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StatementError("must be a JSON Agent object", name) from exc
    if type(value) is not dict:
        raise StatementError("must be a JSON Agent object", name)
    if value.get("objectType") == "Group" and allow_group:
        agent = {k: v for k, v in value.items() if k != "member" and k != "objectType"}
        for i, member in enumerate(value.get("member") or ()):
            validate_agent(member, f"{name}.member[{i}]", as_member=True)
        validate_agent(agent, name)
        return value
    validate_agent(value, name)
    return value


def person_object(agents: list[dict[str, Any]]) -> dict[str, Any]:
    """The Agents resource's Person: every name and IFI the LRS knows for one person, as arrays.

    `agents` are the Agent objects the LRS holds for the person (at least the one asked about);
    each value appears once, in first-seen order; an array with no value is left out.
    """
    person: dict[str, Any] = {"objectType": "Person"}
    fields: dict[str, list[Any]] = {"name": [], "mbox": [], "mbox_sha1sum": [], "openid": [], "account": []}
    for agent in agents:
        for key, values in fields.items():
            value = agent.get(key)
            if value is not None and value not in values:
                values.append(value)
    for key, values in fields.items():
        if values:
            person[key] = values
    return person
