"""One SQLite file's writer: inline async writes, one at a time, and a thread holding the lock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw
import pytest

from appliance.storage.sqlite.database import Database
from appliance.storage.sqlite.migrations import Migrations

schema = Migrations("test")


@schema
def m001_items(conn: apsw.Connection) -> None:
    conn.execute("CREATE TABLE items (n INTEGER PRIMARY KEY, thread INTEGER NOT NULL)")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "test.db", schema, 0.0)
    yield database
    database.close()


def insert(n: int) -> Callable[[apsw.Connection], int]:
    def txn(conn: apsw.Connection) -> int:
        conn.execute("INSERT INTO items (n, thread) VALUES (?, ?)", (n, threading.get_ident()))
        return n

    return txn


def stored(db: Database) -> list[tuple[int, int]]:
    return db.read_sync(lambda c: list(c.execute("SELECT n, thread FROM items ORDER BY n")))


async def test_async_writes_run_inline_on_the_event_loop(db: Database) -> None:
    assert await db.write(insert(1)) == 1
    assert stored(db) == [(1, threading.get_ident())]


async def test_writes_queued_behind_a_thread_run_in_order_on_the_loop_and_the_loop_stays_free(db: Database) -> None:
    """A thread holds the file's lock; the async writers queue without blocking the loop, then each runs
    on the loop thread, first come first served, after the thread's transaction."""
    holding = threading.Event()

    def slow(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO items (n, thread) VALUES (0, ?)", (threading.get_ident(),))
        holding.set()
        time.sleep(0.3)

    thread = threading.Thread(target=db.write_sync, args=(slow,))
    thread.start()
    holding.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    results = await asyncio.gather(*(db.write(insert(n)) for n in range(1, 21)))
    ticking.cancel()
    thread.join()
    assert results == list(range(1, 21))
    assert ticks >= 10, "the event loop was blocked while the thread held the lock"
    rows = stored(db)
    assert [n for n, _ in rows] == list(range(21))
    assert {t for n, t in rows if n > 0} == {threading.get_ident()}


async def test_a_failing_async_write_rolls_back_and_frees_the_writer(db: Database) -> None:
    def broken(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO items (n, thread) VALUES (5, 0)")
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        await db.write(broken)
    assert stored(db) == []
    await db.write(insert(6))
    assert db.write_sync(lambda c: 1) == 1  # the lock was released
    assert [n for n, _ in stored(db)] == [6]


async def test_writes_of_one_round_share_one_transaction(db: Database) -> None:
    """Writes that arrive together are committed together: one COMMIT for the round, not one each."""
    await db.write(insert(100))  # opens the writer connection
    commits = 0

    def count() -> bool:
        nonlocal commits
        commits += 1
        return False  # go ahead with the commit

    assert db._writer_conn is not None
    db._writer_conn.set_commit_hook(count)
    results = await asyncio.gather(*(db.write(insert(n)) for n in range(1, 31)))
    assert results == list(range(1, 31))
    assert commits == 1
    await db.write(insert(31))  # a later round is its own transaction
    assert commits == 2
    assert [n for n, _ in stored(db)] == [*range(1, 32), 100]


async def test_a_lone_write_after_a_group_waits_one_round_for_the_others(db: Database) -> None:
    """Learners answered together commit again together: the first of them to arrive does not take a
    transaction of its own while the rest are one loop round behind."""
    await db.write(insert(100))
    commits = 0

    def count() -> bool:
        nonlocal commits
        commits += 1
        return False

    assert db._writer_conn is not None
    db._writer_conn.set_commit_hook(count)
    await asyncio.gather(*(db.write(insert(n)) for n in range(1, 11)))  # a group of ten
    assert commits == 1

    async def one_round_later(n: int) -> int:
        await asyncio.sleep(0)
        return await db.write(insert(n))

    results = await asyncio.gather(db.write(insert(11)), *(one_round_later(n) for n in range(12, 21)))
    assert results == list(range(11, 21))
    assert commits == 2  # the next ten in one transaction, not 1 + 9
    await asyncio.gather(db.write(insert(21)), *(one_round_later(n) for n in range(22, 24)))
    assert commits == 3  # one write, then two: still one transaction
    await db.write(insert(24))  # alone, and nobody follows: committed after the extra round
    assert commits == 4
    assert [n for n, _ in stored(db)] == [*range(1, 25), 100]


async def test_a_failing_write_in_a_group_is_undone_alone(db: Database) -> None:
    def half_then_fail(conn: apsw.Connection) -> None:
        conn.execute("INSERT INTO items (n, thread) VALUES (50, 0)")
        raise ValueError("refused")

    outcomes = await asyncio.gather(
        db.write(insert(1)), db.write(half_then_fail), db.write(insert(2)), return_exceptions=True
    )
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], ValueError)
    assert [n for n, _ in stored(db)] == [1, 2]


async def test_a_failed_commit_fails_every_write_of_the_group(db: Database) -> None:
    await db.write(insert(100))
    assert db._writer_conn is not None
    db._writer_conn.set_commit_hook(lambda: True)  # SQLite turns the COMMIT into a rollback and an error
    outcomes = await asyncio.gather(db.write(insert(1)), db.write(insert(2)), return_exceptions=True)
    assert all(isinstance(o, apsw.Error) for o in outcomes), outcomes
    db._writer_conn.set_commit_hook(None)
    assert [n for n, _ in stored(db)] == [100]
    assert await db.write(insert(3)) == 3
