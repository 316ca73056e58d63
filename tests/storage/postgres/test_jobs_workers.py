"""The job queue on the real PostgreSQL: claims with SKIP LOCKED and leases, several worker PROCESSES.

The in-process tests drive `jobs` and the `Scheduler` with a fixed clock. The process tests start real
workers (this module run with `python -m`: a `Scheduler` over a `PgStore`, the system clock, a short
lease) and a real SIGKILL; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from appliance.clock import Clock, FixedClock, SystemClock
from appliance.services.delivery import jobs
from appliance.services.delivery.jobs import Job
from appliance.services.delivery.scheduler import Scheduler
from appliance.storage.postgres.adapter import PgDatabase, PgStore
from appliance.storage.sqlite.connection import one, rows
from tests.storage.postgres.conftest import PgSchema

ROOT = Path(__file__).resolve().parents[3]
KIND = "test.work"


@dataclass
class WorkerInstance:
    """The part of an Instance the scheduler uses: the registry and the clock."""

    registry: PgDatabase
    clock: Clock


@pytest.fixture
def queue(pg_store: PgStore, admin_conn: psycopg.Connection) -> PgDatabase:
    """The registry with an empty job queue (tests of the session share the schema)."""
    admin_conn.execute("DELETE FROM jobs")
    return pg_store.registry


def add(db: PgDatabase, now: float, n: int = 1, **payload: Any) -> list[str]:
    return db.write_sync(lambda c: [jobs.enqueue(c, KIND, payload, now=now, max_attempts=3) for _ in range(n)])


def job_row(db: PgDatabase, job_id: str) -> dict[str, Any]:
    found = db.read_sync(lambda c: one(c, "SELECT * FROM jobs WHERE id = ?", (job_id,)))
    assert found is not None
    return found


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


# -- in one process ---------------------------------------------------------------------------------


def test_a_claim_skips_locked_rows_and_waits_for_no_registry_lock(queue: PgDatabase, admin_conn) -> None:
    now = 1_900_000_000.0
    held, *others = add(queue, now, 4)
    # Another transaction holds the registry's write lock and one job's row.
    admin_conn.execute("BEGIN")
    admin_conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('', 0))")
    admin_conn.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (held,))
    try:
        started = time.monotonic()
        claimed = jobs.claim(queue, now, 10, worker="w1", lease_seconds=30)
        assert time.monotonic() - started < 2.0
        assert sorted(j.id for j in claimed) == sorted(others)
        assert {(j.claimed_by, j.attempts, j.lease_lost) for j in claimed} == {("w1", 1, False)}
        # The registry's ordinary writes do wait for that lock: the claim really went past it.
        done = threading.Event()
        writer = threading.Thread(target=lambda: (queue.write_sync(lambda c: c.execute("SELECT 1")), done.set()))
        writer.start()
        assert not done.wait(0.5)
    finally:
        admin_conn.execute("COMMIT")
    writer.join(5)
    assert done.is_set()
    assert jobs.claim(queue, now, 10, worker="w2")[0].id == held
    lease = job_row(queue, others[0])
    assert (lease["status"], lease["claimed_by"], lease["lease_until"]) == ("running", "w1", now + 30)


def test_an_expired_lease_is_claimed_again_and_its_old_holder_is_fenced(queue: PgDatabase) -> None:
    now = 1_900_000_000.0
    [job_id] = add(queue, now)
    [first] = jobs.claim(queue, now, 5, worker="a", lease_seconds=10)
    assert jobs.claim(queue, now + 9, 5, worker="b", lease_seconds=10) == []  # still a's
    assert jobs.renew(queue, [first], now + 9, 10) == set()  # a's heartbeat: until now + 19
    assert jobs.claim(queue, now + 18, 5, worker="b", lease_seconds=10) == []
    [second] = jobs.claim(queue, now + 20, 5, worker="b", lease_seconds=10)
    assert (second.id, second.attempts, second.claimed_by, second.lease_lost) == (job_id, 2, "b", True)
    # a comes back (it was only slow): it can neither renew, complete nor fail what is b's now.
    assert jobs.renew(queue, [first], now + 21, 10) == {job_id}
    with pytest.raises(jobs.LeaseLost):
        jobs.complete(queue, first, now + 21)
    with pytest.raises(jobs.LeaseLost):
        jobs.fail(queue, first, now + 21, "late")
    assert job_row(queue, job_id)["claimed_by"] == "b"
    jobs.complete(queue, second, now + 22)
    found = job_row(queue, job_id)
    assert (found["status"], found["attempts"], found["claimed_by"], found["lease_until"]) == ("done", 2, None, None)


def test_requeue_at_start_leaves_other_workers_jobs_alone(queue: PgDatabase) -> None:
    now = 1_900_000_000.0
    [job_id] = add(queue, now)
    jobs.claim(queue, now, 1, worker="other", lease_seconds=60)
    assert jobs.requeue_interrupted(queue, now + 120) == 0
    assert job_row(queue, job_id)["status"] == "running"


async def test_a_job_whose_worker_was_lost_on_its_last_attempt_gives_up(queue: PgDatabase) -> None:
    clock = FixedClock(1_900_000_000.0)
    [job_id] = queue.write_sync(lambda c: [jobs.enqueue(c, KIND, {}, now=clock.now(), max_attempts=1)])
    jobs.claim(queue, clock.now(), 1, worker="killed", lease_seconds=5)
    clock.advance(6)
    ran: list[Job] = []
    gave_up: list[str] = []
    scheduler = Scheduler(WorkerInstance(queue, clock), lease_seconds=5)  # type: ignore[arg-type]
    scheduler.register(KIND, lambda _i, job: ran.append(job), lambda _i, _job, error: gave_up.append(error))
    await scheduler.drain()
    assert ran == []
    assert len(gave_up) == 1 and "lease expired" in gave_up[0]
    found = job_row(queue, job_id)
    assert (found["status"], found["attempts"]) == ("failed", 2)


async def test_the_scheduler_heartbeat_renews_its_running_jobs(queue: PgDatabase) -> None:
    clock = FixedClock(1_900_000_000.0)
    [job_id] = add(queue, clock.now())
    release = asyncio.Event()

    async def slow(_: Any, job: Job) -> None:
        await release.wait()

    scheduler = Scheduler(WorkerInstance(queue, clock), lease_seconds=10, worker_id="me")  # type: ignore[arg-type]
    scheduler.register(KIND, slow)
    assert await scheduler.tick() == 1
    clock.advance(8)
    assert await scheduler.renew() == set()
    assert job_row(queue, job_id)["lease_until"] == clock.now() + 10
    clock.advance(8)  # past the first lease, within the renewed one
    assert jobs.claim(queue, clock.now(), 5, worker="thief") == []
    release.set()
    await asyncio.gather(*scheduler._running)
    assert job_row(queue, job_id)["status"] == "done"


async def test_a_stopping_worker_releases_the_jobs_it_had_to_cut_off(queue: PgDatabase) -> None:
    clock = FixedClock(1_900_000_000.0)
    [job_id] = add(queue, clock.now())

    async def forever(_: Any, job: Job) -> None:
        await asyncio.Event().wait()

    scheduler = Scheduler(WorkerInstance(queue, clock), lease_seconds=30, poll_seconds=3600)  # type: ignore[arg-type]
    scheduler.register(KIND, forever)
    await scheduler.start()
    for _ in range(200):
        if job_row(queue, job_id)["status"] == "running":
            break
        await asyncio.sleep(0.01)
    await scheduler.stop(timeout=0)
    found = job_row(queue, job_id)
    assert (found["status"], found["attempts"], found["claimed_by"], found["run_at"]) == (
        "queued",
        1,
        None,
        clock.now(),
    )
    [again] = jobs.claim(queue, clock.now(), 1, worker="next")  # at once, not after the lease
    assert (again.id, again.attempts) == (job_id, 2)


# -- several worker processes ---------------------------------------------------------------------------


@dataclass
class Worker:
    """One worker process and the file it logs its job runs to."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[list[str]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split() for line in text.splitlines() if line.endswith(";")]

    def runs(self) -> list[list[str]]:
        return [line for line in self.lines() if line[0] == "run"]

    @property
    def ready(self) -> bool:
        return any(line[0] == "ready" for line in self.lines())


@pytest.fixture
def workers(pg_schema: PgSchema, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes (killed at the end, whatever happened)."""
    started: list[Worker] = []

    def start(name: str, *, lease: float, mode: str = "work") -> Worker:
        log = tmp_path / f"{name}.log"
        args = [sys.executable, "-m", __spec__.name, pg_schema.app_conninfo, pg_schema.schema, str(log)]
        args += [name, str(lease), mode]
        with (tmp_path / f"{name}.err").open("wb") as err:
            proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        worker = Worker(name, proc, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(10)


def all_ready(found: list[Worker]) -> bool:
    for w in found:
        if w.proc.poll() is not None:
            raise AssertionError(f"worker {w.name} exited: {(w.log.parent / f'{w.name}.err').read_text()[-2000:]}")
    return all(w.ready for w in found)


def statuses(db: PgDatabase) -> dict[str, int]:
    found = db.read_sync(lambda c: rows(c, "SELECT status, count(*) AS n FROM jobs GROUP BY status"))
    return {r["status"]: r["n"] for r in found}


def test_three_workers_do_200_jobs_each_exactly_once(queue: PgDatabase, workers) -> None:
    crew = [workers(f"w{i}", lease=10) for i in range(3)]
    wait_for(lambda: all_ready(crew), 60, "the workers start")
    ids = add(queue, time.time(), 200, sleep=0.01)
    wait_for(lambda: statuses(queue) == {"done": 200}, 60, "200 jobs done")
    runs = [(line[1], w.name) for w in crew for line in w.runs()]
    assert collections.Counter(job_id for job_id, _ in runs) == collections.Counter(ids)  # each exactly once
    assert {r["attempts"] for r in queue.read_sync(lambda c: rows(c, "SELECT attempts FROM jobs"))} == {1}
    by_worker = collections.Counter(name for _, name in runs)
    assert len(by_worker) >= 2, by_worker  # the queue really was shared


def test_a_killed_workers_job_is_finished_by_another_after_its_lease(queue: PgDatabase, workers) -> None:
    lease = 1.5
    doomed = workers("doomed", lease=lease, mode="hang")
    wait_for(lambda: all_ready([doomed]), 60, "the first worker starts")
    [job_id] = add(queue, time.time())
    wait_for(lambda: doomed.runs(), 20, "the first worker takes the job")
    held = job_row(queue, job_id)
    assert (held["status"], held["attempts"]) == ("running", 1)
    assert held["claimed_by"].startswith("doomed")
    survivor = workers("survivor", lease=lease)
    wait_for(lambda: all_ready([survivor]), 60, "the second worker starts")
    os.kill(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait(10)
    wait_for(lambda: job_row(queue, job_id)["status"] == "done", 30, "the job done by the survivor")
    [[_, ran_id, attempt, at, _]] = survivor.runs()
    assert (ran_id, attempt) == (job_id, "2")
    assert float(at) >= held["lease_until"]  # not taken while the lease held
    assert job_row(queue, job_id)["attempts"] == 2


def test_a_long_job_keeps_its_lease_while_another_worker_waits(queue: PgDatabase, workers) -> None:
    lease = 1.0  # renewed every third of a second; the job runs 3.5 leases long
    pair = [workers("first", lease=lease), workers("second", lease=lease)]
    wait_for(lambda: all_ready(pair), 60, "the workers start")
    [job_id] = add(queue, time.time(), sleep=3.5)
    first_lease = wait_for(lambda: job_row(queue, job_id)["lease_until"], 20, "the job claimed")
    renewed = lambda: (job_row(queue, job_id)["lease_until"] or 0) > first_lease + lease  # noqa: E731
    wait_for(renewed, 5, "the lease renewed by the heartbeat")
    wait_for(lambda: job_row(queue, job_id)["status"] == "done", 30, "the long job done")
    runs = [line for w in pair for line in w.runs()]
    assert [r[1:3] for r in runs] == [[job_id, "1"]]  # one run, never taken over
    assert job_row(queue, job_id)["attempts"] == 1


# -- the worker process ----------------------------------------------------------------------------------


def _log(path: Path, *words: object) -> None:
    with path.open("a") as f:
        f.write(" ".join(str(w) for w in words) + " ;\n")


async def _work(conninfo: str, schema: str, log: Path, name: str, lease: float, mode: str) -> None:
    store = PgStore(conninfo, schema=schema, min_size=1, max_size=6)
    inst = WorkerInstance(store.registry, SystemClock())
    scheduler = Scheduler(
        inst,  # type: ignore[arg-type]
        concurrency=4,
        poll_seconds=0.05,
        lease_seconds=lease,
        worker_id=f"{name}:{os.getpid()}",
    )

    def run(_: Any, job: Job) -> None:
        _log(log, "run", job.id, job.attempts, f"{time.time():.3f}")
        if mode == "hang":
            time.sleep(3600)
        time.sleep(float(job.payload.get("sleep", 0)))

    scheduler.register(KIND, run)
    await scheduler.start()
    _log(log, "ready", json.dumps(name))
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    conninfo_, schema_, log_, name_, lease_, mode_ = sys.argv[1:7]
    asyncio.run(_work(conninfo_, schema_, Path(log_), name_, float(lease_), mode_))
