"""The issue's yardstick, measured on the same machine in the same run: a bare Litestar route under
uvicorn (uvloop, httptools) that does one SQLite write per request and answers JSON.

Served with `uvicorn bench._reference:app`; the SQLite file is `$BENCH_REFERENCE_DB`.
"""

from __future__ import annotations

import os
import time

import apsw
from litestar import Litestar, post

_conn: apsw.Connection | None = None


def _db() -> apsw.Connection:
    global _conn
    if _conn is None:
        _conn = apsw.Connection(os.environ["BENCH_REFERENCE_DB"])
        _conn.execute("PRAGMA journal_mode=WAL")
        _conn.execute("PRAGMA synchronous=NORMAL")
        _conn.execute("CREATE TABLE IF NOT EXISTS hits (id TEXT PRIMARY KEY, n INTEGER, at REAL)")
    return _conn


@post("/write/{key:str}", status_code=200)
async def write(key: str, data: dict[str, str]) -> dict[str, int]:
    """One upsert in its own transaction."""
    conn = _db()
    conn.execute(
        "INSERT INTO hits (id, n, at) VALUES (?, 1, ?) ON CONFLICT (id) DO UPDATE SET n = n + 1, at = excluded.at",
        (key, time.time()),
    )
    return {"ok": 1}


app = Litestar([write], logging_config=None)
