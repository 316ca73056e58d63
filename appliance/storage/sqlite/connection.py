"""Opening a SQLite connection with the one pragma set every file uses."""

from __future__ import annotations

import time
import weakref
from pathlib import Path

import apsw

BUSY_TIMEOUT_MS = 5000
# SQLite's synchronous levels that a file may be opened with (docs/service.md, "Durability").
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL")


def connect(path: Path, *, readonly: bool = False, synchronous: str = "NORMAL") -> apsw.Connection:
    """Open `path` with busy_timeout first, then WAL, foreign keys and the `synchronous` level.

    These are apsw's "best practice" settings, applied here in this order rather than through
    `apsw.bestpractice.apply`, whose hooks run statements before any busy timeout is set: two processes
    opening a new file at once (the CLI creating a tenant while the server sweeps) then fail at once.
    synchronous=NORMAL in WAL mode is durable across process crashes (what a SIGKILL test checks);
    an OS crash or power loss can lose the last transactions (never corrupt the file). FULL syncs the
    WAL at every commit, so a committed transaction survives power loss too.
    """
    if synchronous not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_LEVELS}, not {synchronous!r}")
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)  # double quotes are for identifiers only
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    if not readonly:
        _set_wal(conn)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _set_wal(conn: apsw.Connection) -> None:
    """Switch to WAL. On a new file another connection may be doing the same at this moment (a
    sweep opening a tenant created a moment ago): SQLite then answers BUSY at once, without calling
    the busy handler, so wait here as the busy timeout would have."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


# Column names per connection and statement: apsw builds a fresh description (a tuple per column) on
# every call, which for the forty columns of a session row cost as much as the query. A connection is
# one file, and a statement's columns only change with its tables (migrations create, never alter).
_columns: weakref.WeakKeyDictionary[apsw.Connection, dict[tuple[str, int], list[str]]] = weakref.WeakKeyDictionary()
_COLUMNS_PER_CONNECTION = 512  # statements remembered; the rest ask apsw every time


def rows(conn: apsw.Connection, sql: str, params: tuple | dict = ()) -> list[dict]:
    """Run a query and return its rows as dicts keyed by column name."""
    cursor = conn.execute(sql, params)
    first = next(cursor, None)
    if first is None:
        return []
    known = _columns.get(conn)
    if known is None:
        known = _columns[conn] = {}
    key = (sql, len(first))
    names = known.get(key)
    if names is None:
        names = [d[0] for d in cursor.get_description()]
        if len(known) < _COLUMNS_PER_CONNECTION:
            known[key] = names
    found = [dict(zip(names, first, strict=True))]
    found.extend(dict(zip(names, row, strict=True)) for row in cursor)
    return found


def one(conn: apsw.Connection, sql: str, params: tuple | dict = ()) -> dict | None:
    """Run a query and return its first row as a dict, or None."""
    found = rows(conn, sql, params)
    return found[0] if found else None
