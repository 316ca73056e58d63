"""Reading the tenant's xAPI statements: the GET filters' queries, one statement, attachments, and the
statements after a `seq` (forwarding).

The store (appliance.services.lrs.statements) keeps each statement's agents, verbs, activities and
registration in one table of keys (`xapi_statement_keys`, 64-bit hashes from `filter_key`, with
`seq`), so a filter is a range scan of a primary key in `seq` order that stops at LIMIT; `stored`
never decreases with `seq`, so `since` and `until` are `seq` bounds, and a `more` page is the same
query with the bound of the first page fixed: statements arriving while a client pages are never
mixed into its pages.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from appliance.services.lrs.bulk import in_chunks
from appliance.services.lrs.statement_keys import filter_key, key_tables
from appliance.services.lrs.statements import MAX_LIMIT, WRITER_MMAP_BYTES, last_stored_ms

_decode = msgspec.json.Decoder().decode


def read_after(conn: apsw.Connection, after_seq: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """Statements in arrival order after `after_seq` (voided ones included: forwarding sends them all)."""
    return [
        (seq, _decode(body))
        for seq, body in conn.execute(
            "SELECT seq, body FROM xapi_statements WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
    ]


@dataclass
class StatementQuery:
    """A GET's filters, already checked (appliance.faces.api.xapi.statements parses the parameters).

    `agent` is an `agent_key`; `since_ms`/`until_ms` bound `stored` (exclusive/inclusive, whole
    milliseconds, floored). `upper` and `after` are a `more` cursor's: the last `seq` the first page
    could see, and the last `seq` already answered.
    """

    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_agents: bool = False
    related_activities: bool = False
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = MAX_LIMIT
    ascending: bool = False
    upper: int | None = None
    after: int | None = None


@dataclass
class StoredStatement:
    """A statement as read back: its `seq`, `stored` (milliseconds) and JSON body."""

    seq: int
    stored_ms: int
    body: bytes


@dataclass
class Page:
    """One page of a query, with what the next page's cursor needs."""

    statements: list[StoredStatement]
    upper: int  # the last seq this query (and its next pages) can see
    more: bool  # statements after this page
    consistent_through_ms: int | None  # stored of the last statement in the snapshot


def _seq_at(conn: apsw.Connection, stored_ms: int) -> int:
    """The last seq stored at or before `stored_ms` (0 when none): `stored` grows with `seq`."""
    for (seq,) in conn.execute(
        "SELECT seq FROM xapi_statements WHERE stored <= ? ORDER BY stored DESC, seq DESC LIMIT 1", (stored_ms,)
    ):
        return int(seq)
    return 0


def _filters(q: StatementQuery) -> list[tuple[int, int]]:
    """(key, highest related level admitted), the most selective kinds first (the scan's driver)."""
    found: list[tuple[int, int]] = []
    if q.registration is not None:
        found.append((filter_key("r", q.registration.lower()), 0))
    if q.activity is not None:
        found.append((filter_key("c", q.activity), 1 if q.related_activities else 0))
    if q.agent is not None:
        found.append((filter_key("a", q.agent), 1 if q.related_agents else 0))
    if q.verb is not None:
        found.append((filter_key("v", q.verb), 0))
    return found


PROBE_ROWS = 2000


def _levels(level: int) -> str:
    """The `related` values a filter admits, spelled out so the planner uses the primary key."""
    return "= 0" if level == 0 else "IN (0, 1)"


def _rows_up_to(conn: apsw.Connection, kf: tuple[int, int], low: int, high: int) -> int:
    """How many rows a filter has in the range, counted up to PROBE_ROWS: the rarest filter of a
    query drives its scan (an agent's few statements, not the many of a common verb)."""
    total = 0
    for table in key_tables(conn):
        for related in range(kf[1] + 1):
            sql = (
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE key = ? AND related = ? "
                f"AND seq > ? AND seq <= ? LIMIT {PROBE_ROWS})"
            )
            total += int(conn.execute(sql, (kf[0], related, low, high)).fetchall()[0][0])
    return total


def _bounds(conn: apsw.Connection, q: StatementQuery, upper: int) -> tuple[int, int]:
    """The query's `seq` range (low exclusive, high inclusive) from since, until and the cursor."""
    low, high = 0, upper
    if q.since_ms is not None:
        low = max(low, _seq_at(conn, q.since_ms))
    if q.until_ms is not None:
        high = min(high, _seq_at(conn, q.until_ms))
    if q.after is not None:
        if q.ascending:
            low = max(low, q.after)
        else:
            high = min(high, q.after - 1)
    return low, high


_mapped: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()


def _map(conn: apsw.Connection) -> None:
    """Memory-mapped reads on a connection that answers queries (once per connection): a page of a
    million statements' store is then read from the OS's cache in place, without a read() into this
    connection's own page cache, which any write to the file empties (a query just after a burst of
    writes otherwise reads every page it needs again)."""
    if conn not in _mapped:
        conn.execute(f"PRAGMA mmap_size={WRITER_MMAP_BYTES}")
        _mapped.add(conn)


def query_statements(conn: apsw.Connection, q: StatementQuery) -> Page:
    """One page of the statements matching `q`, voided ones left out, newest first unless ascending.

    The rarest filter drives: a range of the key table's primary key (key, related, seq) in `seq`
    order, stopped after `limit` + 1 rows — one range for a plain filter, two merged for a related_*
    one (plain rows and related rows) — and the other filters are primary-key lookups.
    """
    _map(conn)
    top = int(conn.execute("SELECT coalesce(max(seq), 0) FROM xapi_statements").fetchall()[0][0])
    consistent = last_stored_ms(conn)
    upper = min(q.upper, top) if q.upper is not None else top
    low, high = _bounds(conn, q, upper)
    limit = q.limit if 0 < q.limit <= MAX_LIMIT else MAX_LIMIT
    order = "ASC" if q.ascending else "DESC"
    filters = _filters(q)
    if len(filters) > 1:
        filters.sort(key=lambda f: _rows_up_to(conn, f, low, high))
    if not filters:
        sql = (
            "SELECT seq, stored, body FROM xapi_statements WHERE seq > ? AND seq <= ? AND voided = 0 "
            f"ORDER BY seq {order} LIMIT ?"
        )
        found = [StoredStatement(*row) for row in conn.execute(sql, (low, high, limit + 1))]
        return Page(found[:limit], upper, len(found) > limit, consistent)
    found = _matching(conn, filters, low, high, q.ascending, limit + 1)
    return Page(found[:limit], upper, len(found) > limit, consistent)


def _matching(
    conn: apsw.Connection, filters: list[tuple[int, int]], low: int, high: int, ascending: bool, want: int
) -> list[StoredStatement]:
    """Up to `want` statements matching every filter, not voided, in `seq` order.

    One filter: `_matching_one`. Several: first the `seq`s, from the key table alone: the driver's range (two merged for a related_*
    filter) with the other filters checked by primary-key lookups; then the rows of those `seq`s
    only, so a statement the other filters reject is never read. Voided statements (rare) leave a
    page short, and the next `seq`s are read until it is full or the range ends.
    """
    (key, level), rest = filters[0], filters[1:]
    if not rest:
        return _matching_one(conn, key, level, low, high, ascending, want)
    tables = key_tables(conn)
    checks = "".join(
        " AND ("
        + " OR ".join(
            f"EXISTS (SELECT 1 FROM {table} k{n} WHERE k{n}.key = ? AND k{n}.related {_levels(other)} "
            f"AND k{n}.seq = k0.seq)"
            for table in tables
        )
        + ")"
        for n, (_, other) in enumerate(rest, 1)
    )
    order = "ASC" if ascending else "DESC"
    sql = (
        "SELECT k0.seq FROM {} k0 WHERE k0.key = ? AND k0.related = ? AND k0.seq > ? "
        f"AND k0.seq <= ?{checks} ORDER BY k0.seq {order} LIMIT ?"
    )
    others = [k for k, _ in rest for _table in tables]
    found: list[StoredStatement] = []
    while len(found) < want and low < high:
        seqs: list[int] = []
        for table in tables:  # each filter's rows are in the key index or the staging table
            for related in range(level + 1):
                seqs.extend(seq for (seq,) in conn.execute(sql.format(table), [key, related, low, high, *others, want]))
        seqs.sort(reverse=not ascending)
        seqs = seqs[:want]
        if not seqs:
            break
        marks = ",".join("?" * len(seqs))
        found.extend(
            StoredStatement(*row)
            for row in conn.execute(
                f"SELECT seq, stored, body FROM xapi_statements WHERE seq IN ({marks}) AND voided = 0 "
                f"ORDER BY seq {order}",
                seqs,
            )
        )
        if len(seqs) < want:
            break
        if ascending:
            low = seqs[-1]
        else:
            high = seqs[-1] - 1
    return found[:want]


def _matching_one(
    conn: apsw.Connection, key: int, level: int, low: int, high: int, ascending: bool, want: int
) -> list[StoredStatement]:
    """One filter: its range joined with the statements' rows (every row read is answered, bar voided ones)."""
    order = "ASC" if ascending else "DESC"
    sql = (
        "SELECT s.seq, s.stored, s.body FROM {} k0 CROSS JOIN xapi_statements s "
        "ON s.seq = k0.seq WHERE k0.key = ? AND k0.related = ? AND k0.seq > ? AND k0.seq <= ? "
        f"AND s.voided = 0 ORDER BY k0.seq {order} LIMIT ?"
    )
    found: list[StoredStatement] = []
    ranges = 0
    for table in key_tables(conn):  # the key index's range and the staging table's, merged by seq
        for related in range(level + 1):
            found.extend(
                StoredStatement(*row) for row in conn.execute(sql.format(table), (key, related, low, high, want))
            )
            ranges += 1
    if ranges > 1:
        found.sort(key=lambda s: s.seq, reverse=not ascending)
    return found[:want]


def get_statement(conn: apsw.Connection, statement_id: str, *, voided: bool) -> StoredStatement | None:
    """The statement with this id: a voided one only when `voided` (voidedStatementId), else only when not."""
    for seq, stored, body in conn.execute(
        "SELECT seq, stored, body FROM xapi_statements WHERE id = ? AND voided = ?",
        (statement_id.lower(), 1 if voided else 0),
    ):
        return StoredStatement(seq, stored, body)
    return None


def attachments_of(conn: apsw.Connection, seqs: list[int]) -> dict[str, tuple[str, bytes]]:
    """sha2 → (content type, content) of the attachments these statements were stored with."""
    found: dict[str, tuple[str, bytes]] = {}
    for chunk in in_chunks(seqs):
        marks = ",".join("?" * len(chunk))
        for sha2, content_type, content in conn.execute(
            "SELECT DISTINCT a.sha2, a.content_type, a.content FROM xapi_statement_attachments l "
            f"JOIN xapi_attachments a ON a.sha2 = l.sha2 WHERE l.seq IN ({marks})",
            chunk,
        ):
            found[sha2] = (content_type, bytes(content))
    return found
