"""Person objects for the Agents resource (xAPI 1.0.3 §2.4, 2.0 §4.1.6.3).

A Person gathers what the LRS knows of the person behind an Agent: each property is a list. The LRS
links identities only by IFI (it has no other way to know two IFIs are one person), so the Person of an
agent holds that IFI and every name the agent was given in the latest statements naming it as actor
or object, newest first, and the name of the agent asked about when it has one
(appliance.core.xapi.agents.person_object builds it). Statements are found by the statement store's own
agent keys (appliance.services.lrs.statement_keys.agent_key), so both always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import apsw
import msgspec

from appliance.core.xapi.agents import person_object
from appliance.services.lrs.statement_keys import agent_key, filter_key, key_tables

NAMES_FROM = 50  # the latest statements of the agent whose names are gathered
_decode = msgspec.json.Decoder().decode


def _named_agents(statement: Mapping[str, Any], ifi: str) -> Iterable[Mapping[str, Any]]:
    for prop in ("actor", "object"):
        candidate = statement.get(prop)
        if isinstance(candidate, Mapping):
            if agent_key(dict(candidate)) == ifi:
                yield candidate
            for member in candidate.get("member") or ():
                if isinstance(member, Mapping) and agent_key(dict(member)) == ifi:
                    yield member


def person_of(conn: apsw.Connection, agent: dict[str, Any]) -> dict[str, Any]:
    """The Person of `agent` from what the tenant's statements say of it (just `agent` when none)."""
    ifi = agent_key(agent)
    known: list[dict[str, Any]] = [agent]
    if ifi is not None:
        found: list[tuple[int, bytes]] = []
        for table in key_tables(conn):  # the key index and the recent statements' staged keys
            found.extend(
                conn.execute(
                    f"SELECT s.seq, s.body FROM {table} k JOIN xapi_statements s ON s.seq = k.seq "
                    "WHERE k.key = ? AND k.related = 0 ORDER BY k.seq DESC LIMIT ?",  # one range of the primary key
                    (filter_key("a", ifi), NAMES_FROM),
                )
            )
        found.sort(reverse=True)
        for _, body in found[:NAMES_FROM]:
            known.extend(dict(a) for a in _named_agents(_decode(body), ifi))
    return person_object(known)
