"""The tenant's xAPI statements: storing a batch (ids, stored, authority, version, voiding).

Statements live in the tenant's own database (m010_xapi_statements), in arrival order (`seq`). A batch
is prepared without the database (`prepare_batch`: ids, `stored`, keys, its JSON) and written in one
transaction (`write_batch`, or `write_simple_batches` for several at once, as the LRS writer thread
does: appliance.services.lrs.bulk) with a handful of multi-row INSERTs, never one query per statement. The GET
filters read one table of keys (`xapi_statement_keys`): each statement's agents, verb, activities and
registration as 64-bit hashes (`statement_keys.filter_key`), with `seq`; the queries are
appliance.services.lrs.statement_queries.

The parts of storing have modules of their own: statement_batches (the batch's shape), statement_keys,
statement_ids (time-ordered ids), statement_refs (StatementRefs and voiding) and statement_comparison
(an id sent again). `stored` never decreases with `seq` (a clock stepping back is clamped to the last
stored time), so `since` and `until` are `seq` bounds.
"""

from __future__ import annotations

import functools
import math
import weakref
from datetime import UTC, datetime
from typing import Any

import apsw
import msgspec

from appliance.errors import ValidationFailed, VersionConflict
from appliance.services.lrs import bulk
from appliance.services.lrs.activities import collect_definitions, merge_definition, write_definitions
from appliance.services.lrs.statement_batches import Batch, Pending
from appliance.services.lrs.statement_comparison import (
    ASSIGNED_TIMESTAMP,
    ASSIGNED_VERSION,
    comparable,
    stored_as_received,
)
from appliance.services.lrs.statement_ids import new_statement_ids
from appliance.services.lrs.statement_keys import agent_keys_into, insert_key_rows, pack_keys, statement_keys
from appliance.services.lrs.statement_refs import already_stored, apply_voiding, inherit_keys, is_voiding, target_of

_plain = msgspec.json.Encoder()
MAX_LIMIT = 500  # statements per page when the client asks for 0 (no limit) or more than this


class StatementRefused(ValidationFailed):
    """A statement or batch the LRS must refuse (xAPI answers 400): duplicate ids, voiding a voiding statement."""


class StatementConflict(VersionConflict):
    """A statement id already stored with different content (xAPI answers 409)."""


def stored_text(ts: float) -> str:
    """`stored` as the statement carries it: RFC 3339 UTC with milliseconds (the precision kept)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def last_stored_ms(conn: apsw.Connection) -> int | None:
    """`stored` (milliseconds) of the last statement, None when there is none."""
    for (stored,) in conn.execute("SELECT stored FROM xapi_statements ORDER BY seq DESC LIMIT 1"):
        return int(stored)
    return None


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
    agent_keys_into(authority, 1, authority_keys)
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
        p.target = target_of(s)
        p.voiding = p.target is not None and is_voiding(s)
        simple = simple and not p.given and p.target is None
        p.keys = statement_keys(s, authority_keys)
        p.packed_keys = pack_keys(p.keys)
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


def _received(p: Pending) -> bytes:
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
    existing = stored_as_received(conn, [p.id for p in batch.pending if p.given])
    fresh: list[Pending] = []
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
    inherit_keys(conn, fresh)
    apply_voiding(conn, fresh)
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
    rows: list[Pending] = []
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


def _prepare(statements: list[dict[str, Any]]) -> list[Pending]:
    """Ids assigned (lower-case UUIDs), duplicates refused."""
    pending: list[Pending] = []
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
        pending.append(Pending(sid, statement, given))
    return pending


def _check_voiding(conn: apsw.Connection, fresh: list[Pending]) -> None:
    """A voiding statement may not target a voiding statement (stored or in this batch)."""
    targets = {p.target: p.id for p in fresh if p.voiding}
    if not targets:
        return
    batch_voiding = {p.id for p in fresh if p.voiding}
    stored_voiding = {sid for sid, (_, voids) in already_stored(conn, list(targets)).items() if voids is not None}
    for target, sid in targets.items():
        if target in batch_voiding or target in stored_voiding:
            raise StatementRefused(
                f"statement {sid} voids {target}, which is itself a voiding statement",
                {"statement_id": sid, "target": target},
            )


def _write_rows(conn: apsw.Connection, fresh: list[Pending], stored_ms: int, credential_id: str | None) -> None:
    """The statements' rows (their `seq` assigned) and their own keys."""
    _insert_statement_rows(conn, fresh, [stored_ms] * len(fresh), [credential_id] * len(fresh))


def _insert_statement_rows(
    conn: apsw.Connection, fresh: list[Pending], stamps: list[int], credentials: list[str | None]
) -> None:
    """The rows of `fresh` (seq assigned) and their key rows, the key rows in key order (each
    index page visited once), both in multi-row INSERTs (appliance.services.lrs.bulk); the key rows staged on
    SQLite (statement_keys.insert_key_rows)."""
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
                p.packed_keys or pack_keys(p.keys),
                p.body,
            )
            for p, stored_ms, credential_id in zip(fresh, stamps, credentials, strict=True)
        ],
    )
    insert_key_rows(conn, sorted((key, related, p.seq) for p in fresh for key, related in p.keys.items()))
    conn.execute(  # the tenant's storage usage (appliance.services.tenancy.usage); attachments count by trigger
        "UPDATE xapi_usage SET statement_bytes = statement_bytes + ? WHERE id = 1", (sum(len(p.body) for p in fresh),)
    )


def _write_attachments(conn: apsw.Connection, fresh: list[Pending], parts: dict[str, tuple[str, bytes]]) -> None:
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
