"""Agents and Groups as a statement carries them (actor, object, authority, instructor, team, members):
only the spec's properties and the inverse functional identifier rules.

A module of its own because Agents and Groups appear in five places of a statement, and the
`agent` parameter of the resources is checked by the same rules (`validate_agent`).
"""

from __future__ import annotations

from typing import Any

from appliance.core.xapi.statement_errors import IRI_MSG, MISSING, OBJECT_MSG, STRING_MSG, error_at, unknown_property
from appliance.core.xapi.value_formats import KNOWN_IRIS, iri_new, match_mbox, match_sha1

_IFI_KEYS = frozenset({"mbox", "mbox_sha1sum", "openid", "account"})


def _ifi(key: str, value: object, path: str) -> None:
    """One inverse functional identifier's value."""
    if key == "mbox":
        if type(value) is not str or match_mbox(value) is None:
            raise error_at("must be a mailto: IRI of an email address", path, key)
    elif key == "account":
        if type(value) is not dict:
            raise error_at(OBJECT_MSG, path, key)
        apath = f"{path}.account"
        for k, v in value.items():
            if k == "homePage":
                if type(v) is not str or (v not in KNOWN_IRIS and not iri_new(v)):
                    raise error_at(IRI_MSG, apath, k)
            elif k == "name":
                if type(v) is not str:
                    raise error_at(STRING_MSG, apath, k)
            else:
                raise unknown_property(k, apath)
        if "homePage" not in value:
            raise error_at("an account requires homePage", apath)
        if "name" not in value:
            raise error_at("an account requires name", apath)
    elif key == "mbox_sha1sum":
        if type(value) is not str or match_sha1(value) is None:
            raise error_at("must be the 40 hex digits of a SHA-1 sum", path, key)
    elif type(value) is not str or (value not in KNOWN_IRIS and not iri_new(value)):  # openid
        raise error_at(IRI_MSG, path, key)


def check_agent(agent: dict[str, Any], path: str, what: str = "an Agent") -> None:
    count = 0
    for k, v in agent.items():
        if k == "objectType":
            if v != "Agent":
                raise error_at(f"objectType must be 'Agent' for {what}", path, k)
        elif k == "name":
            if type(v) is not str:
                raise error_at(STRING_MSG, path, k)
        elif k in _IFI_KEYS:
            count += 1
            _ifi(k, v, path)
        else:
            raise unknown_property(k, path)
    if count != 1:
        raise error_at("an Agent must have exactly one of mbox, mbox_sha1sum, openid, account", path)


def validate_agent(value: object, path: str = "agent", *, as_member: bool = False) -> None:
    """An Agent: only the spec's properties and exactly one inverse functional identifier."""
    if type(value) is not dict:
        raise error_at(OBJECT_MSG, path)
    check_agent(value, path, "a Group member" if as_member else "an Agent")


def check_group(group: dict[str, Any], path: str) -> int:
    """A Group (objectType already 'Group'): identified (one IFI) or anonymous (members, no IFI).

    Returns the member count (0 when absent).
    """
    count = 0
    members = MISSING
    for k, v in group.items():
        if k == "member":
            members = v
        elif k == "name":
            if type(v) is not str:
                raise error_at(STRING_MSG, path, k)
        elif k in _IFI_KEYS:
            count += 1
            _ifi(k, v, path)
        elif k != "objectType":
            raise unknown_property(k, path)
    if count > 1:
        raise error_at("a Group has at most one of mbox, mbox_sha1sum, openid, account", path)
    if members is MISSING:
        if count == 0:
            raise error_at("an anonymous Group (no IFI) requires member", path)
        return 0
    if type(members) is not list:
        raise error_at("must be an array of Agents", path, "member")
    if count == 0 and not members:
        raise error_at("an anonymous Group requires at least one member", path, "member")
    for i, member in enumerate(members):
        mpath = f"{path}.member[{i}]"
        if type(member) is not dict:
            raise error_at(OBJECT_MSG, mpath)
        check_agent(member, mpath, "a Group member")
    return len(members)


def check_actor(actor: object, path: str) -> None:
    """Agent or Group (objectType absent means Agent)."""
    if type(actor) is not dict:
        raise error_at(OBJECT_MSG, path)
    object_type = actor.get("objectType", "Agent")
    if object_type == "Agent":
        check_agent(actor, path)
    elif object_type == "Group":
        check_group(actor, path)
    else:
        raise error_at("objectType must be 'Agent' or 'Group'", path, "objectType")


def check_authority(authority: object, path: str) -> None:
    """An Agent, or (OAuth) an anonymous Group of exactly two Agents."""
    if type(authority) is not dict:
        raise error_at(OBJECT_MSG, path)
    object_type = authority.get("objectType", "Agent")
    if object_type == "Agent":
        check_agent(authority, path)
        return
    if object_type != "Group":
        raise error_at("objectType must be 'Agent' or 'Group'", path, "objectType")
    for ifi in ("mbox", "mbox_sha1sum", "openid", "account"):
        if ifi in authority:
            raise error_at("an authority Group must be anonymous (OAuth consumer and user)", path, ifi)
    if check_group(authority, path) != 2:
        raise error_at("an authority Group must have exactly two members", path, "member")
