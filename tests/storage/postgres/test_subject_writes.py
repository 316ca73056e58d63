"""Writes confined to one subject (a session's commit) on the real server: the tenant's lock shared, the
subject's exclusive. Different subjects of one tenant overlap, one subject's writes and every write
without a subject still run one at a time, read-then-write loses nothing, and a deadlock between two
subjects' counters is retried."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from appliance.storage.postgres.adapter import PgStore
from tests.storage.postgres.conftest import add_tenant

TENANT = "ten_subject"


@pytest.fixture(scope="module")
def db(pg_store: PgStore):
    add_tenant(pg_store, TENANT)
    database = pg_store.tenant_db(TENANT)
    database.write_sync(
        lambda c: c.executemany(
            "INSERT OR REPLACE INTO learner_state (learner_id, kind, data, updated_at) VALUES (?, 'n', '0', 0)",
            [(name,) for name in ("x", "y", "count")],
        )
    )
    return database


def _held(db, subject: str | None) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A write (with `subject`, or tenant-wide) that holds its transaction until released."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn) -> None:
        conn.execute("SELECT 1")
        entered.set()
        assert release.wait(10)

    thread = threading.Thread(target=lambda: db.write_sync(hold, subject=subject))
    thread.start()
    assert entered.wait(10)
    return entered, release, thread


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    thread = threading.Thread(target=lambda: (fn(), done.set()))
    thread.start()
    return thread, done


def test_two_subjects_of_one_tenant_overlap(db) -> None:
    _, release, holder = _held(db, "ses_1")
    try:
        started = time.monotonic()
        db.write_sync(lambda c: c.execute("SELECT 1"), subject="ses_2")  # not held up by ses_1's open write
        assert time.monotonic() - started < 2
    finally:
        release.set()
        holder.join(10)


@pytest.mark.parametrize(
    ("first", "second"),
    [("ses_1", "ses_1"), ("ses_1", None), (None, "ses_1")],
    ids=["same", "then-tenant", "tenant-then"],
)
def test_one_subject_and_tenant_wide_writes_still_wait(db, first: str | None, second: str | None) -> None:
    _, release, holder = _held(db, first)
    waiter, done = _in_thread(lambda: db.write_sync(lambda c: c.execute("SELECT 1"), subject=second))
    try:
        assert not done.wait(0.5)  # it waits for the open write
    finally:
        release.set()
        holder.join(10)
    assert done.wait(10)
    waiter.join(10)


def test_read_then_write_on_one_subject_loses_nothing(db) -> None:
    def bump(conn) -> None:
        (value,) = conn.execute("SELECT data FROM learner_state WHERE learner_id = 'count'").fetchone()
        conn.execute("UPDATE learner_state SET data = ? WHERE learner_id = 'count'", (str(int(value) + 1),))

    async def many() -> None:
        await asyncio.gather(*(db.write(bump, subject="ses_count") for _ in range(60)))

    before = int(
        db.read_sync(lambda c: c.execute("SELECT data FROM learner_state WHERE learner_id = 'count'").fetchone()[0])
    )
    asyncio.run(many())
    after = int(
        db.read_sync(lambda c: c.execute("SELECT data FROM learner_state WHERE learner_id = 'count'").fetchone()[0])
    )
    assert after == before + 60


def test_a_deadlock_between_two_subjects_is_run_again(db) -> None:
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"a": 0, "b": 0}

    def crosswise(name: str, first: str, then: str) -> Callable:
        def txn(conn) -> None:
            attempts[name] += 1
            conn.execute("UPDATE learner_state SET updated_at = updated_at + 1 WHERE learner_id = ?", (first,))
            if attempts[name] == 1:
                barrier.wait()  # both hold their first row: each now wants the other's
            conn.execute("UPDATE learner_state SET updated_at = updated_at + 1 WHERE learner_id = ?", (then,))

        return txn

    before = dict(db.read_sync(lambda c: c.execute("SELECT learner_id, updated_at FROM learner_state").fetchall()))
    errors: list[BaseException] = []

    def run(name: str, first: str, then: str) -> None:
        try:
            db.write_sync(crosswise(name, first, then), subject=f"ses_{name}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=args) for args in (("a", "x", "y"), ("b", "y", "x"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert max(attempts.values()) >= 2  # the server's victim ran again (PostgreSQL rolled it back whole)
    after = dict(db.read_sync(lambda c: c.execute("SELECT learner_id, updated_at FROM learner_state").fetchall()))
    assert after["x"] == before["x"] + 2 and after["y"] == before["y"] + 2
