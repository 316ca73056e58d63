"""The tenant's xAPI statements: storing (ids, stored, authority, version, voiding) and lookup keys.

Statements live in the tenant's own database (m010_xapi_statements), in arrival order (`seq`). A batch
is prepared without the database (`prepare_batch`: ids, `stored`, keys, its JSON) and written in one
transaction (`write_batch`, or `write_simple_batches` for several at once, as the LRS writer thread
does: appliance.services.lrs.bulk) with a handful of multi-row INSERTs, never one query per statement. The GET
filters read one table of keys (`xapi_statement_keys`): each statement's agents, verb, activities and
registration as 64-bit hashes (`filter_key`), with `seq`; the queries are appliance.services.lrs.statement_queries.

`stored` never decreases with `seq` (a clock stepping back is clamped to the last stored time), so
`since` and `until` are `seq` bounds.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import apsw
import msgspec

from appliance.errors import ValidationFailed, VersionConflict
from appliance.services.lrs import bulk
from appliance.services.lrs.activities import collect_definitions, merge_definition, write_definitions

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
MAX_LIMIT = 500  # statements per page when the client asks for 0 (no limit) or more than this
_encoder = msgspec.json.Encoder(order="sorted")
_plain = msgspec.json.Encoder()
_decode = msgspec.json.Decoder().decode
_msgpack = msgspec.msgpack.Encoder().encode
_unmsgpack = msgspec.msgpack.Decoder(list[tuple[int, int]]).decode


class StatementRefused(ValidationFailed):
    """A statement or batch the LRS must refuse (xAPI answers 400): duplicate ids, voiding a voiding statement."""


class StatementConflict(VersionConflict):
    """A statement id already stored with different content (xAPI answers 409)."""


# -- keys ----------------------------------------------------------------------------------------


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


def _agent_keys(agent: Any, related: int, out: dict[int, int]) -> None:
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
    _agent_keys(context.get("instructor"), 1, out)
    _agent_keys(context.get("team"), 1, out)
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
    _agent_keys(statement.get("actor"), 0, out)
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
            _agent_keys(obj, 0, out)
        elif kind == "SubStatement":
            _sub_statement_keys(obj, out)
    context = statement.get("context")
    if type(context) is dict:
        if type(context.get("registration")) is str:
            out[filter_key("r", context["registration"].lower())] = 0
        _context_keys(context, out)
    if authority_keys is None:
        _agent_keys(statement.get("authority"), 1, out)
    else:
        for key, related in authority_keys.items():
            _put(out, key, related)
    return out


def _sub_statement_keys(sub: dict[str, Any], out: dict[int, int]) -> None:
    """A SubStatement's agents and activities count for related_agents / related_activities only."""
    _agent_keys(sub.get("actor"), 1, out)
    obj = sub.get("object")
    if isinstance(obj, dict):
        kind = obj.get("objectType", "Activity")
        if kind == "Activity" and isinstance(obj.get("id"), str):
            _put(out, filter_key("c", obj["id"]), 1)
        elif kind in ("Agent", "Group"):
            _agent_keys(obj, 1, out)
    _context_keys(sub.get("context"), out)


# -- storing -------------------------------------------------------------------------------------


def stored_text(ts: float) -> str:
    """`stored` as the statement carries it: RFC 3339 UTC with milliseconds (the precision kept)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_FINE_SECONDS = re.compile(r"(\d)\.(\d{2})\d+S$")


ASSIGNED_VERSION = 1  # `assigned` bits: what the LRS added to the statement it received
ASSIGNED_TIMESTAMP = 2
_LRS_SET = ("stored", "authority")


def comparable(statement: dict[str, Any]) -> bytes:
    """A statement as received, in the form two statements with one id are compared in: keys in
    order, `stored` and `authority` left out (the LRS sets them), a result's duration to the
    hundredth of a second (xAPI 2.0 §4.2.7: finer precision is not part of a comparison)."""
    statement = {k: v for k, v in statement.items() if k not in _LRS_SET}
    result = statement.get("result")
    if isinstance(result, dict) and isinstance(result.get("duration"), str) and "." in result["duration"]:
        coarse = _FINE_SECONDS.sub(r"\1.\2S", result["duration"])
        statement["result"] = {**result, "duration": coarse}
    return _encoder.encode(statement)


def _as_received(body: bytes, assigned: int) -> dict[str, Any]:
    """A stored statement without what the LRS added to it."""
    statement = _decode(body)
    if assigned & ASSIGNED_VERSION:
        statement.pop("version", None)
    if assigned & ASSIGNED_TIMESTAMP:
        statement.pop("timestamp", None)
    return statement


def last_stored_ms(conn: apsw.Connection) -> int | None:
    """`stored` (milliseconds) of the last statement, None when there is none."""
    for (stored,) in conn.execute("SELECT stored FROM xapi_statements ORDER BY seq DESC LIMIT 1"):
        return int(stored)
    return None


def _target(statement: dict[str, Any]) -> str | None:
    """The id a statement refers to by StatementRef, else None."""
    obj = statement.get("object")
    if isinstance(obj, dict) and obj.get("objectType") == "StatementRef" and isinstance(obj.get("id"), str):
        return obj["id"].lower()
    return None


def _is_voiding(statement: dict[str, Any]) -> bool:
    verb = statement.get("verb")
    return isinstance(verb, dict) and verb.get("id") == VOIDED and _target(statement) is not None


def in_chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _existing(conn: apsw.Connection, ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """id → (seq, voids) of the ids already stored."""
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for seq, sid, voids in conn.execute(f"SELECT seq, id, voids FROM xapi_statements WHERE id IN ({marks})", chunk):
            found[sid] = (seq, voids)
    return found


def _stored_as_received(conn: apsw.Connection, ids: list[str]) -> dict[str, bytes]:
    """id → `comparable` form of the ids already stored (the rare path: a client's id sent again)."""
    found: dict[str, bytes] = {}
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for sid, body, assigned in conn.execute(
            f"SELECT id, body, assigned FROM xapi_statements WHERE id IN ({marks})", chunk
        ):
            found[sid] = comparable(_as_received(body, assigned))
    return found


@dataclass
class _Pending:
    """One statement of a batch on its way into the tables."""

    id: str
    statement: dict[str, Any]
    given: bool  # the client chose the id (else it is new: nothing stored can refer to it or share it)
    assigned: int = 0  # ASSIGNED_* bits
    keys: dict[int, int] = field(default_factory=dict)
    seq: int = 0
    target: str | None = None  # the id its StatementRef object names
    voiding: bool = False
    body: bytes = b""  # the statement as stored (JSON), with its `stored`
    packed_keys: bytes = b""  # `keys` as the row keeps them


@dataclass
class Batch:
    """A request's statements prepared for storing: ids, `stored`, authority, keys and JSON bodies
    made without the database (`prepare_batch`), so the transaction (`write_batch`) is SQL.

    `simple`: no id of the client's, no StatementRef, no attachment — nothing stored can conflict
    with, void, refer to or be referred to by these statements, so batches like it are written
    together in one set of inserts (`write_simple_batches`).
    """

    pending: list[_Pending]
    stored_ms: int
    authority: dict[str, Any]
    credential_id: str | None
    attachments: dict[str, tuple[str, bytes]]
    definitions: dict[str, dict[str, Any]]
    simple: bool

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.pending]


def insert_statements(
    conn: apsw.Connection,
    statements: list[dict[str, Any]],
    *,
    stored: float,
    authority: dict[str, Any],
    credential_id: str | None,
    version: str,
    attachments: dict[str, tuple[str, bytes]] | None = None,
) -> list[str]:
    """Store validated, normalised statements inside the caller's open tenant write transaction.

    `prepare_batch` and `write_batch` in one: see them. Returns the statements' ids in order.
    """
    batch = prepare_batch(
        statements,
        stored=stored,
        authority=authority,
        credential_id=credential_id,
        version=version,
        attachments=attachments,
    )
    return write_batch(conn, batch)


def prepare_batch(
    statements: list[dict[str, Any]],
    *,
    stored: float,
    authority: dict[str, Any],
    credential_id: str | None,
    version: str,
    attachments: dict[str, tuple[str, bytes]] | None = None,
) -> Batch:
    """Everything of storing that needs no database, for validated, normalised statements.

    Assigns missing ids (a batch repeating an id raises StatementRefused), `stored` (the request's
    time: `write_batch` moves it later if the last stored statement is later), `authority` (the
    credential's: the LRS overwrites what a client sent, as xAPI recommends), `version` when absent,
    `timestamp` = `stored` when absent; computes the lookup keys and encodes each statement once.
    `attachments` (sha2 → (content type, bytes)) are the raw parts sent alongside.
    """
    pending = _prepare(statements)
    stored_ms = math.floor(stored * 1000)
    stored_at = stored_text(stored_ms / 1000)
    default_version = "2.0.0" if version.startswith("2.") else "1.0.0"
    authority_keys: dict[int, int] = {}
    _agent_keys(authority, 1, authority_keys)
    simple = not attachments
    for p in pending:
        s = p.statement
        s["stored"] = stored_at
        s["authority"] = authority
        if "version" not in s:
            s["version"] = default_version
            p.assigned |= ASSIGNED_VERSION
        if "timestamp" not in s:
            s["timestamp"] = stored_at
            p.assigned |= ASSIGNED_TIMESTAMP
        p.target = _target(s)
        p.voiding = p.target is not None and _is_voiding(s)
        simple = simple and not p.given and p.target is None
        p.keys = statement_keys(s, authority_keys)
        p.packed_keys = _pack_keys(p.keys)
        p.body = _plain.encode(s)
    definitions = collect_definitions(p.statement for p in pending)
    return Batch(pending, stored_ms, authority, credential_id, attachments or {}, definitions, simple)


def _restamp(batch: Batch, stored_ms: int) -> None:
    """A later `stored` for the batch (the last stored statement is later than the request's time:
    the clock stepped back, or another writer stored meanwhile): set and encoded again."""
    batch.stored_ms = stored_ms
    stored_at = stored_text(stored_ms / 1000)
    for p in batch.pending:
        p.statement["stored"] = stored_at
        if p.assigned & ASSIGNED_TIMESTAMP:
            p.statement["timestamp"] = stored_at
        p.body = _plain.encode(p.statement)


def _received(p: _Pending) -> bytes:
    """The `comparable` form of a prepared statement as the client sent it."""
    statement = dict(p.statement)
    if p.assigned & ASSIGNED_VERSION:
        statement.pop("version", None)
    if p.assigned & ASSIGNED_TIMESTAMP:
        statement.pop("timestamp", None)
    return comparable(statement)


def _last(conn: apsw.Connection) -> tuple[int, int]:
    """(seq, stored ms) of the last statement stored, (0, 0) when there is none."""
    for seq, stored in conn.execute("SELECT seq, stored FROM xapi_statements ORDER BY seq DESC LIMIT 1"):
        return int(seq), int(stored)
    return 0, 0


def write_batch(conn: apsw.Connection, batch: Batch) -> list[str]:
    """Store a prepared batch inside the caller's open tenant write transaction; its ids in order.

    Applies voiding, writes the lookup keys and the activities' definitions. A statement whose id
    is already stored with the same content is not stored again; with different content the whole
    call raises StatementConflict, and voiding a voiding statement raises StatementRefused (the
    caller's transaction then rolls back: all or nothing).
    """
    _tune(conn)
    existing = _stored_as_received(conn, [p.id for p in batch.pending if p.given])
    fresh: list[_Pending] = []
    for p in batch.pending:
        known = existing.get(p.id)
        if known is None:
            fresh.append(p)
        elif known != _received(p):
            raise StatementConflict(
                f"statement {p.id} is already stored with different content", {"statement_id": p.id}
            )
    if not fresh:
        return batch.ids
    _check_voiding(conn, fresh)
    top, last_ms = _last(conn)
    if last_ms > batch.stored_ms:
        _restamp(batch, last_ms)
    for offset, p in enumerate(fresh, 1):
        p.seq = top + offset
    _write_rows(conn, fresh, batch.stored_ms, batch.credential_id)
    _inherit_keys(conn, fresh)
    _apply_voiding(conn, fresh)
    definitions = batch.definitions
    if len(fresh) < len(batch.pending):
        definitions = collect_definitions(p.statement for p in fresh)
    write_definitions(conn, definitions, batch.stored_ms / 1000)
    if batch.attachments:
        _write_attachments(conn, fresh, batch.attachments)
    return batch.ids


def write_simple_batches(conn: apsw.Connection, batches: list[Batch]) -> None:
    """Store `simple` prepared batches, in order, with one set of inserts for all of them (inside
    the caller's open write transaction): each batch its own `stored`, never before the last."""
    _tune(conn)
    top, last_ms = _last(conn)
    definitions: dict[str, dict[str, Any]] = {}
    rows: list[_Pending] = []
    stamps: list[int] = []
    for batch in batches:
        if last_ms > batch.stored_ms:
            _restamp(batch, last_ms)
        last_ms = batch.stored_ms
        for p in batch.pending:
            top += 1
            p.seq = top
            rows.append(p)
            stamps.append(batch.stored_ms)
        for aid, definition in batch.definitions.items():
            known = definitions.get(aid)
            if known is None or known == definition:  # the usual case: each batch carries the same
                definitions[aid] = definition
            else:
                definitions[aid] = merge_definition(known, definition)
    _insert_statement_rows(conn, rows, stamps, [b.credential_id for b in batches for _ in b.pending])
    write_definitions(conn, definitions, last_ms / 1000)


def run_queued(conn: apsw.Connection, items: list[Any]) -> list[tuple[Any, BaseException | None]]:
    """The writer thread's transaction (appliance.services.lrs.bulk.StatementWriter): queued items in order,
    each `Batch` or callable of the connection in its own savepoint (one refused is undone alone),
    consecutive simple batches written together. (result, error) per item: a batch's ids."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    at = 0
    while at < len(items):
        end = at
        while end < len(items) and isinstance(items[end], Batch) and items[end].simple:
            end += 1
        if end > at:
            group: list[Batch] = items[at:end]
            _, error = bulk.in_savepoint(conn, lambda c, g=group: write_simple_batches(c, g))
            outcomes.extend((None if error else b.ids, error) for b in group)
            at = end
            continue
        item = items[at]
        job = item if callable(item) else functools.partial(write_batch, batch=item)
        outcomes.append(bulk.in_savepoint(conn, job))
        at += 1
    return outcomes


def new_statement_id() -> str:
    """One id for a statement sent without one (`new_statement_ids`)."""
    return new_statement_ids(1)[0]


def new_statement_ids(count: int, now_ms: int | None = None) -> list[str]:
    """`count` new time-ordered UUIDs (version 7, RFC 9562: 48 bits of Unix milliseconds, then 74
    random bits), from one read of the OS's random source for all of them.

    Time-ordered, so a batch's ids go to the end of the statements' id index instead of 50 random
    places in it (a page written at each one); 74 random bits keep them unique and unguessable.
    """
    millis = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & 0xFFFF_FFFF_FFFF
    prefix = f"{millis:012x}"
    head = f"{prefix[:8]}-{prefix[8:]}-7"
    raw = os.urandom(10 * count)
    ids: list[str] = []
    for at in range(0, 10 * count, 10):
        r = raw[at : at + 10].hex()
        variant = "89ab"[int(r[3], 16) & 3]
        ids.append(f"{head}{r[:3]}-{variant}{r[4:7]}-{r[8:20]}")
    return ids


_tuned: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()
WRITER_CACHE_KIB = 65536
WRITER_MMAP_BYTES = 1 << 30


def _tune(conn: apsw.Connection) -> None:
    """The connection that writes statements, tuned once: a larger page cache (each batch touches the
    key index at every agent, verb and activity it names, pages a 2 MB default cache would read again
    and again from a large store) and reads memory-mapped (no read() per page missed). Its WAL
    checkpoints while the LRS writes: appliance.services.lrs.bulk.StatementWriter."""
    if conn not in _tuned:
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size={WRITER_MMAP_BYTES}")
        _tuned.add(conn)


def _prepare(statements: list[dict[str, Any]]) -> list[_Pending]:
    """Ids assigned (lower-case UUIDs), duplicates refused."""
    pending: list[_Pending] = []
    seen: set[str] = set()
    fresh = iter(new_statement_ids(sum(1 for s in statements if type(s.get("id")) is not str)))
    for statement in statements:
        sid = statement.get("id")
        given = type(sid) is str
        sid = sid.lower() if given else next(fresh)
        statement["id"] = sid
        if given:
            if sid in seen:
                raise StatementRefused(f"statement id {sid} appears twice in the batch", {"statement_id": sid})
            seen.add(sid)
        pending.append(_Pending(sid, statement, given))
    return pending


def _check_voiding(conn: apsw.Connection, fresh: list[_Pending]) -> None:
    """A voiding statement may not target a voiding statement (stored or in this batch)."""
    targets = {p.target: p.id for p in fresh if p.voiding}
    if not targets:
        return
    batch_voiding = {p.id for p in fresh if p.voiding}
    stored_voiding = {sid for sid, (_, voids) in _existing(conn, list(targets)).items() if voids is not None}
    for target, sid in targets.items():
        if target in batch_voiding or target in stored_voiding:
            raise StatementRefused(
                f"statement {sid} voids {target}, which is itself a voiding statement",
                {"statement_id": sid, "target": target},
            )


def _write_rows(conn: apsw.Connection, fresh: list[_Pending], stored_ms: int, credential_id: str | None) -> None:
    """The statements' rows (their `seq` assigned) and their own keys."""
    _insert_statement_rows(conn, fresh, [stored_ms] * len(fresh), [credential_id] * len(fresh))


def _insert_statement_rows(
    conn: apsw.Connection, fresh: list[_Pending], stamps: list[int], credentials: list[str | None]
) -> None:
    """The rows of `fresh` (seq assigned) and their key rows, the key rows in key order (each
    index page visited once), both in multi-row INSERTs (appliance.services.lrs.bulk)."""
    bulk.insert_rows(
        conn,
        "xapi_statements (seq, id, stored, ref, voids, credential_id, assigned, keys, body)",
        9,
        [
            (
                p.seq,
                p.id,
                stored_ms,
                p.target,
                p.target if p.voiding else None,
                credential_id,
                p.assigned,
                p.packed_keys or _pack_keys(p.keys),
                p.body,
            )
            for p, stored_ms, credential_id in zip(fresh, stamps, credentials, strict=True)
        ],
    )
    bulk.insert_rows(
        conn,
        "xapi_statement_keys (key, related, seq)",
        3,
        sorted((key, related, p.seq) for p in fresh for key, related in p.keys.items()),
    )
    conn.execute(  # the tenant's storage usage (appliance.services.tenancy.usage); attachments count by trigger
        "UPDATE xapi_usage SET statement_bytes = statement_bytes + ? WHERE id = 1", (sum(len(p.body) for p in fresh),)
    )


def _pack_keys(keys: dict[int, int]) -> bytes:
    """A statement's keys as its row keeps them (the key table has no index by `seq`)."""
    return _msgpack(list(keys.items()))


def _keys_of(conn: apsw.Connection, seq: int) -> dict[int, int]:
    """key → related of a stored statement, inherited keys included."""
    found = conn.execute("SELECT keys FROM xapi_statements WHERE seq = ?", (seq,)).fetchall()
    return {key: related for key, related in _unmsgpack(found[0][0])} if found else {}


def _merge_keys(conn: apsw.Connection, seq: int, keys: dict[int, int]) -> bool:
    """Add keys to a statement (a key it has keeps the lower `related`); whether anything changed."""
    have = _keys_of(conn, seq)
    changed = {key: related for key, related in keys.items() if have.get(key, 2) > related}
    if not changed:
        return False
    conn.executemany(
        "DELETE FROM xapi_statement_keys WHERE key = ? AND related = ? AND seq = ?",
        [(key, have[key], seq) for key in changed if key in have],
    )
    conn.executemany(
        "INSERT INTO xapi_statement_keys (key, related, seq) VALUES (?, ?, ?)",
        [(key, related, seq) for key, related in changed.items()],
    )
    have.update(changed)
    conn.execute("UPDATE xapi_statements SET keys = ? WHERE seq = ?", (_pack_keys(have), seq))
    return True


def _inherit_keys(conn: apsw.Connection, fresh: list[_Pending]) -> None:
    """StatementRefs match what their target matches (xAPI 1.0.3 §2.5 / 2.0 "Filter Conditions for
    StatementRefs"), recursively: a new statement referring to a stored one takes its keys, and the
    statements referring to a new one (stored before it, or later in the batch) take the new one's,
    and so on up the chain while keys are added. Referring statements are rare (voiding mostly): for
    a batch without them this is one indexed query."""
    for p in fresh:
        target = _target(p.statement)
        if target is not None:
            found = _existing(conn, [target]).get(target)
            if found is not None:
                _merge_keys(conn, p.seq, _keys_of(conn, found[0]))
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
            if _merge_keys(conn, seq, _keys_of(conn, _existing(conn, [ref])[ref][0])):
                changed.append(sid)


def _apply_voiding(conn: apsw.Connection, fresh: list[_Pending]) -> None:
    """Voiding statements void their targets; a new statement already voided by a stored one (which
    arrived first) is stored voided."""
    targets = [t for p in fresh if _is_voiding(p.statement) for t in [_target(p.statement)] if t is not None]
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


def _write_attachments(conn: apsw.Connection, fresh: list[_Pending], parts: dict[str, tuple[str, bytes]]) -> None:
    """The raw attachments, once per hash, and which statement uses which."""
    links: list[tuple[int, str]] = []
    used: set[str] = set()
    for p in fresh:
        for attachment in p.statement.get("attachments") or ():
            sha2 = attachment.get("sha2") if isinstance(attachment, dict) else None
            if sha2 in parts:
                links.append((p.seq, sha2))
                used.add(sha2)
    conn.executemany(
        "INSERT INTO xapi_attachments (sha2, content_type, length, content) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (sha2) DO NOTHING",
        [(sha2, parts[sha2][0], len(parts[sha2][1]), parts[sha2][1]) for sha2 in sorted(used)],
    )
    conn.executemany("INSERT INTO xapi_statement_attachments (seq, sha2) VALUES (?, ?) ON CONFLICT DO NOTHING", links)
