"""The migration's comparisons without a database: the table checksum, the batches, the copy order, and the
source's "is anyone using this file" check against a real SQLite connection in another process."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import apsw

from appliance.services.operations.migration_report import TableSum, row_digest
from appliance.services.operations.migration_source import open_elsewhere
from appliance.services.operations.migration_target import batches, copy_order, derived_tables
from appliance.storage.postgres.catalog import tenant_catalog

ROWS = [(1, "a", 1.5, None, b"\x00\x01"), (2, "b", 2.0, "x", b""), (3, "", -0.0, None, None)]


def _sum(rows: list[tuple]) -> TableSum:
    found = TableSum()
    for row in rows:
        found.add(row)
    return found


def test_the_checksum_ignores_row_order_and_sees_every_change() -> None:
    base = _sum(ROWS)
    shuffled = ROWS[:]
    random.Random(7).shuffle(shuffled)
    assert _sum(shuffled).checksum == base.checksum and _sum(shuffled).rows == 3
    assert _sum(ROWS[:2]).checksum != base.checksum  # a row missing
    assert _sum([*ROWS, ROWS[0]]).checksum != base.checksum  # a row twice
    changed = [ROWS[0], (2, "b", 2.0, "y", b""), ROWS[2]]
    assert _sum(changed).checksum != base.checksum
    swapped = [(1, "b", 1.5, None, b"\x00\x01"), (2, "a", 2.0, "x", b""), ROWS[2]]  # a value moved between rows
    assert _sum(swapped).checksum != base.checksum


def test_values_keep_their_kind_in_the_checksum() -> None:
    # what SQLite and PostgreSQL could return differently must not pass for equal
    assert row_digest([1]) != row_digest([1.0])
    assert row_digest(["1"]) != row_digest([1])
    assert row_digest([b"a"]) != row_digest(["a"])
    assert row_digest([None]) != row_digest([""])
    assert row_digest(["ab", "c"]) != row_digest(["a", "bc"])  # lengths are part of the encoding
    assert row_digest([0.1 + 0.2]) != row_digest([0.3])  # floats exactly
    assert row_digest([memoryview(b"xy")]) == row_digest([b"xy"])


def test_batches_are_cut_by_rows_and_by_bytes() -> None:
    rows = [(n, "x" * 10) for n in range(25)]
    assert [len(b) for b in batches(rows, 10, 1 << 20)] == [10, 10, 5]
    assert [len(b) for b in batches(rows, 100, 35)] == [4, 4, 4, 4, 4, 4, 1]
    assert list(batches([], 10, 10)) == []


def test_tables_the_triggers_fill_are_copied_after_those_that_fire_them() -> None:
    catalog = tenant_catalog()
    derived = derived_tables(catalog)
    assert derived == {"interaction_stats", "interaction_responses", "xapi_usage"}
    order = [t.name for t in copy_order(catalog)]
    assert sorted(order) == sorted(catalog.tables)
    assert set(order[-len(derived) :]) == derived
    position = {name: n for n, name in enumerate(order)}
    for table in catalog.tables.values():
        for fk in table.foreign_keys:
            assert position[fk.ref_table] < position[table.name], (table.name, fk.ref_table)


HOLD = "import sys, time, apsw; c = apsw.Connection(sys.argv[1]); c.execute('SELECT 1 FROM t').fetchall(); print('open', flush=True); time.sleep(30)"


def test_a_database_open_in_another_process_is_seen(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (a)")
    conn.close()
    assert not open_elsewhere(db)  # closed: no -shm left
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert open_elsewhere(db)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert not open_elsewhere(db)  # a killed process's lock is gone with it, even if its -shm is left


def test_the_highest_number_counts_what_autoincrement_remembers(tmp_path: Path) -> None:
    from appliance.services.operations.migration_source import highest

    catalog = tenant_catalog()
    conn = apsw.Connection(str(tmp_path / "t.db"))
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")
    conn.execute("CREATE TABLE xapi_statements (seq INTEGER PRIMARY KEY, x TEXT)")
    for _ in range(5):
        conn.execute("INSERT INTO events (x) VALUES ('e')")
        conn.execute("INSERT INTO xapi_statements (x) VALUES ('s')")
    conn.execute("DELETE FROM events WHERE seq > 3")
    conn.execute("DELETE FROM xapi_statements WHERE seq > 3")
    assert highest(conn, catalog.tables["events"]) == 5  # SQLite never gives 4 and 5 again: neither may PostgreSQL
    assert highest(conn, catalog.tables["xapi_statements"]) == 3  # no AUTOINCREMENT: SQLite would reuse 4
    assert highest(None, catalog.tables["xapi_usage"]) == 1  # a tenant without a file: its seed row
    assert highest(conn, catalog.tables["sessions"]) == 0  # no identity column
    conn.close()
