"""Opening a SQLite connection with the one pragma set every file uses."""

from __future__ import annotations

from pathlib import Path

import apsw

BUSY_TIMEOUT_MS = 5000


def connect(path: Path, *, readonly: bool = False) -> apsw.Connection:
    """Open `path` with busy_timeout first, then WAL, foreign keys and synchronous=NORMAL.

    These are apsw's "best practice" settings, applied here in this order rather than through
    `apsw.bestpractice.apply`, whose hooks run statements before any busy timeout is set: two processes
    opening a new file at once (the CLI creating a tenant while the server sweeps) then fail at once.
    synchronous=NORMAL in WAL mode is durable across process crashes (what a SIGKILL test checks);
    only an OS crash or power loss can lose the last transactions.
    """
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)  # double quotes are for identifiers only
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def rows(conn: apsw.Connection, sql: str, params: tuple | dict = ()) -> list[dict]:
    """Run a query and return its rows as dicts keyed by column name."""
    cursor = conn.execute(sql, params)
    try:
        names = [d[0] for d in cursor.get_description()]
    except apsw.ExecutionCompleteError:
        return []
    return [dict(zip(names, row, strict=True)) for row in cursor]


def one(conn: apsw.Connection, sql: str, params: tuple | dict = ()) -> dict | None:
    """Run a query and return its first row as a dict, or None."""
    found = rows(conn, sql, params)
    return found[0] if found else None
