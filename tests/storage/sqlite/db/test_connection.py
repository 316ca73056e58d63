"""Opening connections: the pragmas every file gets, and WAL set up even while another opens the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
import pytest

from appliance.storage.sqlite import connection
from appliance.storage.sqlite.connection import connect


def test_a_new_file_is_opened_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    conn = connect(tmp_path / "new.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchall()[0][0] == 1
        assert conn.execute("PRAGMA synchronous").fetchall()[0][0] == 1  # NORMAL
    finally:
        conn.close()


class _BusyAtFirst:
    """Stands in for a connection whose switch to WAL meets another connection doing the same."""

    def __init__(self, busy_times: int) -> None:
        self.busy_times = busy_times
        self.calls = 0

    def execute(self, sql: str) -> Any:
        assert sql == "PRAGMA journal_mode=WAL"
        self.calls += 1
        if self.calls <= self.busy_times:
            raise apsw.BusyError("database is locked")
        return None


def test_switching_to_wal_waits_out_a_busy_answer() -> None:
    conn = _BusyAtFirst(busy_times=3)
    connection._set_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 4


def test_switching_to_wal_gives_up_after_the_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 30)
    conn = _BusyAtFirst(busy_times=10**9)
    with pytest.raises(apsw.BusyError):
        connection._set_wal(conn)  # type: ignore[arg-type]
    assert conn.calls > 1
