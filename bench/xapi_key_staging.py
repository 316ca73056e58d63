"""A model of the LRS writer's SQLite work: key rows into the key index at every COMMIT, or staged.

Not the product: the LRS (appliance.services.lrs.statements) puts each statement's key rows into
`xapi_statement_keys` in the COMMIT that stores it, and a COMMIT writes the last page of every
learner's, activity's and registration's range it touches, whatever it adds to it. This measures,
on a copy of one SQLite file of the same shape (statements' rows and a WITHOUT ROWID key index with
`--prefill` statements' keys, six per statement as the bench's typical statement has: learner, verb,
activity, registration, the course as parent, the authority; keys from `filter_key`), the process CPU
per statement of writing `--statements` more in transactions of 500, then a TRUNCATE checkpoint
(the checkpointer's share), either

- `index`: the key rows into the key index, in key order, in each transaction (what ships), or
- `stage`: into a small staging table of the same primary key, moved into the key index in key
  order (`INSERT … SELECT … ORDER BY`, `DELETE`) once `--merge` statements are staged,

and, for `stage`, what a merge takes (wall) and what one filter's second range (the staging table's)
adds to a query. The writer's pragmas are the product's (WAL, synchronous=NORMAL, 64 MB cache,
memory-mapped). Rows are made before the clock starts: only SQLite is measured.

    python -m bench xapi_key_staging [--prefill 300000] [--statements 100000] [--merge 5000] [--modes index,stage]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from itertools import chain
from pathlib import Path
from typing import Any

import apsw

from appliance.services.lrs.statement_keys import filter_key

LEARNERS, ACTIVITIES, REGISTRATIONS, VERBS = 1000, 500, 5, 10
GROUP = 500  # statements per transaction: ten clients' batches of 50, as the writer groups them
BODY = os.urandom(350) + b"x" * 350  # about a typical statement's JSON
SCHEMA = """
CREATE TABLE s (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stored INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX s_stored ON s(stored);
CREATE TABLE k (key INTEGER NOT NULL, related INTEGER NOT NULL, seq INTEGER NOT NULL,
                PRIMARY KEY (key, related, seq)) WITHOUT ROWID;
CREATE TABLE st (key INTEGER NOT NULL, related INTEGER NOT NULL, seq INTEGER NOT NULL,
                 PRIMARY KEY (key, related, seq)) WITHOUT ROWID;
"""
COURSE = filter_key("c", "http://example.com/course")
AUTHORITY = filter_key("a", "account:urn:scorm-appliance:lrs-credential|lrs_bench")


def keys_of(rng: random.Random) -> list[tuple[int, int]]:
    """One typical statement's six (key, related) pairs."""
    learner = rng.randrange(LEARNERS)
    return [
        (filter_key("a", f"mailto:learner{learner}@example.com"), 0),
        (filter_key("v", f"http://example.com/verbs/v{rng.randrange(VERBS)}"), 0),
        (filter_key("c", f"http://example.com/course/activity/{rng.randrange(ACTIVITIES)}"), 0),
        (filter_key("r", f"{learner}-{rng.randrange(REGISTRATIONS)}"), 0),
        (COURSE, 1),
        (AUTHORITY, 1),
    ]


def insert(conn: apsw.Connection, table: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs of up to 256 rows, as appliance.services.lrs.bulk.insert_rows."""
    for at in range(0, len(rows), 256):
        chunk = rows[at : at + 256]
        values = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
        conn.execute(f"INSERT INTO {table} VALUES {values}", list(chain.from_iterable(chunk)))


def base_file(directory: Path, prefill: int) -> Path:
    """The file with `prefill` statements and their keys (made once per size, then copied)."""
    path = directory / f"base-{prefill}.db"
    if path.exists():
        return path
    rng = random.Random(1)
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    conn.execute("BEGIN")
    keys: list[tuple[int, int, int]] = []
    for seq in range(1, prefill + 1):
        conn.execute("INSERT INTO s VALUES (?, ?, ?, ?)", (seq, f"{seq:032x}", seq // 10, BODY))
        keys.extend((key, related, seq) for key, related in keys_of(rng))
    keys.sort()
    conn.executemany("INSERT INTO k VALUES (?, ?, ?)", keys)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def run(base: Path, mode: str, total: int, merge: int) -> None:
    """One measured run on a fresh copy of `base`."""
    work = Path(tempfile.mkdtemp(prefix="keys-", dir=base.parent))
    try:
        path = work / "t.db"
        shutil.copyfile(base, path)
        conn = apsw.Connection(str(path))
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536", "mmap_size=1073741824"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA wal_autocheckpoint=16000")
        seq = conn.execute("SELECT max(seq) FROM s").fetchall()[0][0]
        rng = random.Random(2)
        groups = []
        for _ in range(total // GROUP):
            rows, keys = [], []
            for _ in range(GROUP):
                seq += 1
                rows.append((seq, f"{seq:032x}", seq // 10, BODY))
                keys.extend((key, related, seq) for key, related in keys_of(rng))
            groups.append((rows, sorted(keys)))
        merges: list[float] = []
        staged = 0
        started = time.process_time()
        for rows, keys in groups:
            conn.execute("BEGIN")
            insert(conn, "s", 4, rows)
            insert(conn, "k" if mode == "index" else "st", 3, keys)
            staged += GROUP
            if mode == "stage" and staged >= merge:
                at = time.perf_counter()
                conn.execute("INSERT INTO k SELECT key, related, seq FROM st ORDER BY key, related, seq")
                conn.execute("DELETE FROM st")
                merges.append(time.perf_counter() - at)
                staged = 0
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cpu = time.process_time() - started
        label = mode if mode == "index" else f"stage, merged every {merge:,}"
        print(f"{label}: {cpu / total * 1e6:.1f} µs of CPU per statement (load {os.getloadavg()[0]:.1f})")
        if merges:
            merges.sort()
            print(f"  a merge: median {merges[len(merges) // 2] * 1000:.0f} ms, max {merges[-1] * 1000:.0f} ms (wall)")
            staged_part(conn, rng, seq, merge // 2)
        conn.close()
    finally:
        shutil.rmtree(work)


def staged_part(conn: apsw.Connection, rng: random.Random, seq: int, count: int) -> None:
    """What a filter's second range costs with `count` statements staged (half a merge's worth)."""
    conn.execute("BEGIN")
    keys = []
    for _ in range(count):
        seq += 1
        keys.extend((key, related, seq) for key, related in keys_of(rng))
    insert(conn, "st", 3, sorted(keys))
    conn.execute("COMMIT")
    sql = "SELECT seq FROM {} WHERE key = ? AND related = 0 AND seq <= ? ORDER BY seq DESC LIMIT 500"
    for name, key in (("agent", keys[0][0]), ("verb", filter_key("v", "http://example.com/verbs/v3"))):
        best = 1e9
        for _ in range(30):
            at = time.process_time()
            found = conn.execute(sql.format("st"), (key, seq)).fetchall()
            best = min(best, time.process_time() - at)
        print(f"  GET {name}: the staging range adds {best * 1000:.3f} ms ({len(found)} of its rows)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench xapi_key_staging")
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--statements", type=int, default=50_000)
    parser.add_argument("--merge", type=int, default=5000)
    parser.add_argument("--modes", default="index,stage", help="comma-separated, run in this order")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-xapi-keys")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    base = base_file(args.dir, args.prefill)
    for mode in args.modes.split(","):
        run(base, mode, args.statements, args.merge)
    return 0
