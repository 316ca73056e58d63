"""A statement's lookup keys: the 64-bit hashes of its agents, verb, activities and registration that the
GET filters read (`xapi_statement_keys`, and on SQLite the recent statements' in a staging table:
`insert_key_rows`), each with `related` (0: the statement's own actor, verb, object
or registration; 1: only for the related_agents / related_activities forms).

A module of its own because the same keys are made when a statement is stored, when a StatementRef
inherits its target's (appliance.services.lrs.statement_refs) and when a filter is read
(appliance.services.lrs.statement_queries, appliance.services.lrs.people): one definition keeps them in agreement.
"""

from __future__ import annotations

import functools
import hashlib
import weakref
from typing import Any

import apsw
import msgspec

from appliance.services.lrs.bulk import insert_rows

_plain = msgspec.json.Encoder()

INDEXED_KEYS = "xapi_statement_keys"
STAGED_KEYS = "xapi_statement_keys_recent"  # SQLite: recent statements' key rows, moved in key order
MERGE_STATEMENTS = 5000  # statements staged before their key rows are moved into the key index
_staged: weakref.WeakKeyDictionary[apsw.Connection, int] = weakref.WeakKeyDictionary()


_msgpack = msgspec.msgpack.Encoder().encode


_unmsgpack = msgspec.msgpack.Decoder(list[tuple[int, int]]).decode


@functools.lru_cache(maxsize=65536)
def filter_key(kind: str, value: str) -> int:
    """The 64-bit key of one filter value ("a" agent IFI, "v" verb, "c" activity, "r" registration).

    Hashing keeps the key table's rows small (three integers) whatever the IRIs' lengths; two values
    share a key with probability about n²/2⁶⁴, negligible at any tenant's size.
    """
    digest = hashlib.blake2b(f"{kind}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def agent_key(agent: dict[str, Any]) -> str | None:
    """The canonical identity of an Agent or identified Group (its IFI), None for an anonymous Group.

    The specification's four IFIs; an account is its home page and name together. Used for both the
    stored keys and the `agent` parameter, so the two always agree.
    """
    if not isinstance(agent, dict):
        return None
    if isinstance(agent.get("mbox"), str):
        return "mbox:" + agent["mbox"]
    if isinstance(agent.get("mbox_sha1sum"), str):
        return "sha1:" + agent["mbox_sha1sum"].lower()
    if isinstance(agent.get("openid"), str):
        return "openid:" + agent["openid"]
    account = agent.get("account")
    if isinstance(account, dict):
        return "account:" + _plain.encode([account.get("homePage"), account.get("name")]).decode()
    return None


def agent_keys_into(agent: Any, related: int, out: dict[int, int]) -> None:
    """An actor/object/instructor/team/authority: its IFI at `related`, a Group's members as related."""
    if not isinstance(agent, dict):
        return
    ifi = agent_key(agent)
    if ifi is not None:
        _put(out, filter_key("a", ifi), related)
    for member in agent.get("member") or ():
        ifi = agent_key(member)
        if ifi is not None:
            _put(out, filter_key("a", ifi), 1)


def _put(out: dict[int, int], key: int, related: int) -> None:
    known = out.get(key)
    if known is None or related < known:
        out[key] = related


def _context_keys(context: Any, out: dict[int, int]) -> None:
    """Context instructor, team and activities: matched only by the related_* forms of the filters."""
    if not isinstance(context, dict):
        return
    agent_keys_into(context.get("instructor"), 1, out)
    agent_keys_into(context.get("team"), 1, out)
    activities = context.get("contextActivities")
    if isinstance(activities, dict):
        for group in activities.values():
            for activity in group if isinstance(group, list) else [group]:
                if isinstance(activity, dict) and isinstance(activity.get("id"), str):
                    _put(out, filter_key("c", activity["id"]), 1)


def statement_keys(statement: dict[str, Any], authority_keys: dict[int, int] | None = None) -> dict[int, int]:
    """key → related (0 or 1) of a statement's own content (not what a StatementRef inherits).

    `authority_keys`: the keys of the statement's authority when the caller computed them once for
    the batch (every statement of a batch has the same).
    """
    out: dict[int, int] = {}
    agent_keys_into(statement.get("actor"), 0, out)
    verb = statement.get("verb")
    if type(verb) is dict and type(verb.get("id")) is str:
        out[filter_key("v", verb["id"])] = 0
    obj = statement.get("object")
    if type(obj) is dict:
        kind = obj.get("objectType", "Activity")
        if kind == "Activity":
            if type(obj.get("id")) is str:
                out[filter_key("c", obj["id"])] = 0
        elif kind in ("Agent", "Group"):
            agent_keys_into(obj, 0, out)
        elif kind == "SubStatement":
            _sub_statement_keys(obj, out)
    context = statement.get("context")
    if type(context) is dict:
        if type(context.get("registration")) is str:
            out[filter_key("r", context["registration"].lower())] = 0
        _context_keys(context, out)
    if authority_keys is None:
        agent_keys_into(statement.get("authority"), 1, out)
    else:
        for key, related in authority_keys.items():
            _put(out, key, related)
    return out


def _sub_statement_keys(sub: dict[str, Any], out: dict[int, int]) -> None:
    """A SubStatement's agents and activities count for related_agents / related_activities only."""
    agent_keys_into(sub.get("actor"), 1, out)
    obj = sub.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity" and isinstance(obj.get("id"), str):
            _put(out, filter_key("c", obj["id"]), 1)
        elif kind in ("Agent", "Group"):
            agent_keys_into(obj, 1, out)
    _context_keys(sub.get("context"), out)


def pack_keys(keys: dict[int, int]) -> bytes:
    """A statement's keys as its row keeps them (the key table has no index by `seq`)."""
    return _msgpack(list(keys.items()))


def keys_of(conn: apsw.Connection, seq: int) -> dict[int, int]:
    """key → related of a stored statement, inherited keys included."""
    found = conn.execute("SELECT keys FROM xapi_statements WHERE seq = ?", (seq,)).fetchall()
    return {key: related for key, related in _unmsgpack(found[0][0])} if found else {}


def merge_keys(conn: apsw.Connection, seq: int, keys: dict[int, int]) -> bool:
    """Add keys to a statement (a key it has keeps the lower `related`); whether anything changed."""
    have = keys_of(conn, seq)
    changed = {key: related for key, related in keys.items() if have.get(key, 2) > related}
    if not changed:
        return False
    for table in key_tables(conn):  # the row is in one of them
        conn.executemany(
            f"DELETE FROM {table} WHERE key = ? AND related = ? AND seq = ?",
            [(key, have[key], seq) for key in changed if key in have],
        )
    conn.executemany(
        "INSERT INTO xapi_statement_keys (key, related, seq) VALUES (?, ?, ?)",
        [(key, related, seq) for key, related in changed.items()],
    )
    have.update(changed)
    conn.execute("UPDATE xapi_statements SET keys = ? WHERE seq = ?", (pack_keys(have), seq))
    return True


def key_tables(conn: Any) -> tuple[str, ...]:
    """The tables a filter's key rows are in: the key index and the staging table (`insert_key_rows`),
    read in one read transaction, so together they hold every stored statement's keys once. On
    PostgreSQL the staging table holds only what a migration from SQLite brought (the migration copies
    tables as they are); it is read there too, one more range per filter."""
    return (INDEXED_KEYS, STAGED_KEYS)


def insert_key_rows(conn: Any, rows: list[tuple[int, int, int]]) -> None:
    """Store (key, related, seq) rows, sorted: on SQLite into the small staging table, moved into the
    key index in key order once MERGE_STATEMENTS statements' rows are staged.

    A COMMIT writes the last page of every learner's, activity's and registration's range of the key
    index it touches, whatever it adds there: staged, those pages are written once per merge, not
    once per transaction (the staging table is a hundred-odd pages, so its own writes are few). The
    move is one write transaction, so a reader sees each row in exactly one of the two tables. The
    count of staged statements is kept per writer connection (read from the table on its first use).
    On PostgreSQL, where several workers write at once and B-tree pages are written differently,
    the rows go into the key index directly.
    """
    if not isinstance(conn, apsw.Connection):
        insert_rows(conn, f"{INDEXED_KEYS} (key, related, seq)", 3, rows)
        return
    insert_rows(conn, f"{STAGED_KEYS} (key, related, seq)", 3, rows)
    staged = _staged.get(conn)
    if staged is None:
        staged = int(conn.execute(f"SELECT count(DISTINCT seq) FROM {STAGED_KEYS}").fetchall()[0][0])
    else:
        staged += len({seq for _, _, seq in rows})
    if staged >= MERGE_STATEMENTS:
        conn.execute(
            f"INSERT INTO {INDEXED_KEYS} (key, related, seq) "
            f"SELECT key, related, seq FROM {STAGED_KEYS} ORDER BY key, related, seq"
        )
        conn.execute(f"DELETE FROM {STAGED_KEYS}")
        staged = 0
    _staged[conn] = staged
