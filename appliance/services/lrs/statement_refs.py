"""StatementRefs and voiding in the store: which id a statement refers to, the keys a referring statement
inherits from its target (recursively), and voided statements marked.

A module of its own because these are the store's only reads of other statements while writing, and
they are rare (a batch without a StatementRef costs one indexed query here).
"""

from __future__ import annotations

from typing import Any

import apsw

from appliance.services.lrs.bulk import in_chunks
from appliance.services.lrs.statement_batches import Pending
from appliance.services.lrs.statement_keys import keys_of, merge_keys

VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def target_of(statement: dict[str, Any]) -> str | None:
    """The id a statement refers to by StatementRef, else None."""
    obj = statement.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "StatementRef" and isinstance(obj.get("id"), str):
        return obj["id"].lower()
    return None


def is_voiding(statement: dict[str, Any]) -> bool:
    verb = statement.get("verb")
    return isinstance(verb, dict) and verb.get("id") == VOIDED and target_of(statement) is not None


def already_stored(conn: apsw.Connection, ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """id → (seq, voids) of the ids already stored."""
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for seq, sid, voids in conn.execute(f"SELECT seq, id, voids FROM xapi_statements WHERE id IN ({marks})", chunk):
            found[sid] = (seq, voids)
    return found


def inherit_keys(conn: apsw.Connection, fresh: list[Pending]) -> None:
    """StatementRefs match what their target matches (xAPI 1.0.3 §2.5 / 2.0 "Filter Conditions for
    StatementRefs"), recursively: a new statement referring to a stored one takes its keys, and the
    statements referring to a new one (stored before it, or later in the batch) take the new one's,
    and so on up the chain while keys are added. Referring statements are rare (voiding mostly): for
    a batch without them this is one indexed query."""
    for p in fresh:
        target = target_of(p.statement)
        if target is not None:
            found = already_stored(conn, [target]).get(target)
            if found is not None:
                merge_keys(conn, p.seq, keys_of(conn, found[0]))
    changed = [p.id for p in fresh if p.given]  # a new id: nothing stored refers to it yet
    while changed:
        referrers: list[tuple[int, str, str]] = []
        for chunk in in_chunks(changed):
            marks = ",".join("?" * len(chunk))
            referrers.extend(
                conn.execute(f"SELECT seq, id, ref FROM xapi_statements WHERE ref IN ({marks})", chunk).fetchall()
            )
        changed = []
        for seq, sid, ref in referrers:
            if merge_keys(conn, seq, keys_of(conn, already_stored(conn, [ref])[ref][0])):
                changed.append(sid)


def apply_voiding(conn: apsw.Connection, fresh: list[Pending]) -> None:
    """Voiding statements void their targets; a new statement already voided by a stored one (which
    arrived first) is stored voided."""
    targets = [t for p in fresh if is_voiding(p.statement) for t in [target_of(p.statement)] if t is not None]
    for chunk in in_chunks(targets):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"UPDATE xapi_statements SET voided = 1 WHERE id IN ({marks}) AND voids IS NULL", chunk)
    ids = [p.id for p in fresh if p.given]  # only a client's id can have been voided before it arrived
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        conn.execute(
            f"UPDATE xapi_statements SET voided = 1 WHERE voids IS NULL AND id IN "
            f"(SELECT voids FROM xapi_statements WHERE voids IN ({marks}))",
            chunk,
        )
