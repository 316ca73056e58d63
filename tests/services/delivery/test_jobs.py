"""The durable job queue and the scheduler, on a real registry database and a FixedClock: nothing sleeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import build_scheduler
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.delivery.jobs import Job, PermanentJobError
from appliance.services.delivery.scheduler import Scheduler
from appliance.services.library import package_processing, packages
from appliance.services.library.upload import StagedUpload
from appliance.services.tenancy.tenants import get_tenant
from appliance.storage.sqlite.connection import one
from tests.conftest import TenantKey
from tests.faces.api.test_packages import broken_package, package_12


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def inst(config: Config, clock: FixedClock) -> Iterator[Instance]:
    instance = Instance(config, clock)
    yield instance
    instance.close()


def add(
    inst: Instance, kind: str = "test.job", *, run_at: float | None = None, max_attempts: int = 3, **payload: Any
) -> str:
    now = inst.clock.now()
    return inst.registry.write_sync(
        lambda c: jobs.enqueue(c, kind, payload, now=now, run_at=run_at, max_attempts=max_attempts)
    )


def row(inst: Instance, job_id: str) -> dict[str, Any]:
    found = inst.registry.read_sync(lambda c: one(c, "SELECT * FROM jobs WHERE id = ?", (job_id,)))
    assert found is not None
    return found


# -- the queue -------------------------------------------------------------------------------------


def test_claim_takes_due_jobs_in_order_up_to_the_limit(inst: Instance, clock: FixedClock) -> None:
    later = add(inst, run_at=clock.now() + 60, n=0)
    first = add(inst, run_at=clock.now() - 10, n=1)
    second = add(inst, n=2)
    third = add(inst, n=3)
    assert jobs.claim(inst.registry, clock.now(), 0) == []
    claimed = jobs.claim(inst.registry, clock.now(), 2)
    assert [j.id for j in claimed] == [first, second]
    assert [j.payload for j in claimed] == [{"n": 1}, {"n": 2}]
    assert all(j.attempts == 1 and j.max_attempts == 3 and j.kind == "test.job" for j in claimed)
    assert row(inst, first)["status"] == "running"
    assert row(inst, first)["locked_at"] == clock.now()
    assert [j.id for j in jobs.claim(inst.registry, clock.now(), 10)] == [third]  # running ones are not re-claimed
    assert jobs.claim(inst.registry, clock.now(), 10) == []
    clock.advance(60)
    assert [j.id for j in jobs.claim(inst.registry, clock.now(), 10)] == [later]


def test_complete(inst: Instance, clock: FixedClock) -> None:
    job_id = add(inst)
    [job] = jobs.claim(inst.registry, clock.now(), 1)
    clock.advance(5)
    jobs.complete(inst.registry, job, clock.now())
    done = row(inst, job_id)
    assert (done["status"], done["locked_at"], done["updated_at"]) == ("done", None, clock.now())
    clock.advance(10_000)
    assert jobs.claim(inst.registry, clock.now(), 10) == []


def test_fail_retries_with_backoff_then_gives_up(inst: Instance, clock: FixedClock) -> None:
    job_id = add(inst, max_attempts=3)
    run_ats = []
    for attempt in (1, 2):
        [job] = jobs.claim(inst.registry, clock.now(), 1)
        assert job.attempts == attempt
        assert jobs.fail(inst.registry, job, clock.now(), f"boom {attempt}") is True
        queued = row(inst, job_id)
        assert (queued["status"], queued["last_error"], queued["locked_at"]) == ("queued", f"boom {attempt}", None)
        delay = queued["run_at"] - clock.now()
        base = jobs.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
        assert base / 2 <= delay <= base
        run_ats.append(delay)
        assert jobs.claim(inst.registry, clock.now() + delay - 0.001, 1) == []  # not due before its time
        clock.advance(delay)
    [job] = jobs.claim(inst.registry, clock.now(), 1)
    assert jobs.fail(inst.registry, job, clock.now(), "x" * 5000) is False
    failed = row(inst, job_id)
    assert (failed["status"], failed["attempts"], len(failed["last_error"])) == ("failed", 3, 2000)
    clock.advance(100_000)
    assert jobs.claim(inst.registry, clock.now(), 1) == []


def test_permanent_failure_does_not_retry(inst: Instance, clock: FixedClock) -> None:
    job_id = add(inst, max_attempts=5)
    [job] = jobs.claim(inst.registry, clock.now(), 1)
    assert jobs.fail(inst.registry, job, clock.now(), "bad input", permanent=True) is False
    assert row(inst, job_id)["status"] == "failed"


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(7)
    for attempt in range(1, 20):
        base = min(jobs.BACKOFF_MAX_SECONDS, jobs.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        assert base / 2 <= jobs.backoff_seconds(attempt, rng) <= base
    assert jobs.backoff_seconds(40, rng) <= jobs.BACKOFF_MAX_SECONDS
    assert len({jobs.backoff_seconds(3, rng) for _ in range(20)}) > 1


def test_requeue_interrupted(inst: Instance, clock: FixedClock) -> None:
    running = add(inst)
    done = add(inst)
    failed = add(inst, max_attempts=1)
    queued = add(inst, run_at=clock.now() + 3600)
    claimed = {j.id: j for j in jobs.claim(inst.registry, clock.now(), 3)}
    jobs.complete(inst.registry, claimed[done], clock.now())
    jobs.fail(inst.registry, claimed[failed], clock.now(), "no")
    clock.advance(30)
    assert jobs.requeue_interrupted(inst.registry, clock.now()) == 1
    back = row(inst, running)
    assert (back["status"], back["run_at"], back["locked_at"], back["attempts"]) == ("queued", clock.now(), None, 1)
    assert [row(inst, j)["status"] for j in (done, failed, queued)] == ["done", "failed", "queued"]
    assert row(inst, queued)["run_at"] == clock.now() - 30 + 3600
    assert jobs.requeue_interrupted(inst.registry, clock.now()) == 0


def test_unique_enqueue_and_pending_keys(inst: Instance, clock: FixedClock) -> None:
    first = add(inst, key="a")
    assert add(inst, key="b") != first
    now = clock.now()
    again = inst.registry.write_sync(lambda c: jobs.enqueue(c, "test.job", {"key": "a"}, now=now, unique=True))
    assert again == first
    other_kind = inst.registry.write_sync(lambda c: jobs.enqueue(c, "other", {"key": "a"}, now=now, unique=True))
    assert other_kind != first
    assert jobs.pending_keys(inst.registry, "test.job") == {"a", "b"}
    for job in jobs.claim(inst.registry, now, 10):
        if job.kind == "test.job" and job.payload["key"] == "a":
            assert (
                inst.registry.write_sync(lambda c: jobs.enqueue(c, "test.job", {"key": "a"}, now=now, unique=True))
                == first
            )
            jobs.complete(inst.registry, job, now)
    assert jobs.pending_keys(inst.registry, "test.job") == {"b"}
    fresh = inst.registry.write_sync(lambda c: jobs.enqueue(c, "test.job", {"key": "a"}, now=now, unique=True))
    assert fresh != first


def test_purge_and_list(inst: Instance, clock: FixedClock) -> None:
    old_done, old_failed = add(inst), add(inst, max_attempts=1)
    claimed = {j.id: j for j in jobs.claim(inst.registry, clock.now(), 2)}
    jobs.complete(inst.registry, claimed[old_done], clock.now())
    jobs.fail(inst.registry, claimed[old_failed], clock.now(), "kept for inspection")
    clock.advance(100)
    recent = add(inst)
    [job] = jobs.claim(inst.registry, clock.now(), 1)
    jobs.complete(inst.registry, job, clock.now())
    assert jobs.purge_finished(inst.registry, before=clock.now() - 50) == 1
    assert {j["id"] for j in jobs.list_jobs(inst.registry)} == {old_failed, recent}
    assert [j["id"] for j in jobs.list_jobs(inst.registry, status="failed")] == [old_failed]


def test_a_claim_is_leased_and_renewed_and_on_sqlite_an_expired_lease_is_not_taken(
    inst: Instance, clock: FixedClock
) -> None:
    job_id = add(inst)
    [job] = jobs.claim(inst.registry, clock.now(), 1, worker="w1", lease_seconds=30)
    assert not jobs.shared(inst.registry)
    assert (job.claimed_by, job.lease_lost) == ("w1", False)
    assert (row(inst, job_id)["claimed_by"], row(inst, job_id)["lease_until"]) == ("w1", clock.now() + 30)
    clock.advance(20)
    assert jobs.renew(inst.registry, [job], clock.now(), 30) == set()
    assert row(inst, job_id)["lease_until"] == clock.now() + 30
    clock.advance(3600)
    # One process works an SQLite queue: a running job stays its own until it ends or the process restarts.
    assert jobs.claim(inst.registry, clock.now(), 1, worker="w2") == []
    jobs.complete(inst.registry, job, clock.now())
    assert (row(inst, job_id)["status"], row(inst, job_id)["claimed_by"], row(inst, job_id)["lease_until"]) == (
        "done",
        None,
        None,
    )


def test_a_job_claimed_again_is_no_longer_its_old_holders(inst: Instance, clock: FixedClock) -> None:
    job_id = add(inst)
    [old] = jobs.claim(inst.registry, clock.now(), 1, worker="before-restart")
    jobs.requeue_interrupted(inst.registry, clock.now())
    [new] = jobs.claim(inst.registry, clock.now(), 1, worker="after-restart")
    assert jobs.renew(inst.registry, [old, new], clock.now()) == {job_id}
    with pytest.raises(jobs.LeaseLost):
        jobs.complete(inst.registry, old, clock.now())
    with pytest.raises(jobs.LeaseLost):
        jobs.fail(inst.registry, old, clock.now(), "late")
    assert (row(inst, job_id)["status"], row(inst, job_id)["claimed_by"]) == ("running", "after-restart")
    jobs.complete(inst.registry, new, clock.now())
    assert row(inst, job_id)["status"] == "done"


async def test_the_scheduler_claims_as_its_worker_and_renews_running_leases(inst: Instance, clock: FixedClock) -> None:
    release = asyncio.Event()

    async def slow(_: Instance, job: Job) -> None:
        await release.wait()

    scheduler = Scheduler(inst, lease_seconds=10, worker_id="me")
    scheduler.register("slow", slow)
    job_id = add(inst, "slow")
    assert await scheduler.renew() == set()  # nothing running: nothing to renew
    await scheduler.tick()
    assert (row(inst, job_id)["claimed_by"], row(inst, job_id)["lease_until"]) == ("me", clock.now() + 10)
    clock.advance(7)
    assert await scheduler.renew() == set()
    assert row(inst, job_id)["lease_until"] == clock.now() + 10
    release.set()
    await scheduler.drain()
    assert row(inst, job_id)["status"] == "done"
    assert await scheduler.renew() == set()


# -- the scheduler ---------------------------------------------------------------------------------


async def test_scheduler_runs_sync_and_async_handlers(inst: Instance) -> None:
    seen: list[tuple[str, Any]] = []

    def sync_handler(_: Instance, job: Job) -> None:
        seen.append(("sync", job.payload["n"]))

    async def async_handler(_: Instance, job: Job) -> None:
        seen.append(("async", job.payload["n"]))

    scheduler = Scheduler(inst, concurrency=2)
    scheduler.register("sync", sync_handler)
    scheduler.register("async", async_handler)
    ids = [add(inst, "sync", n=1), add(inst, "async", n=2), add(inst, "sync", n=3)]
    await scheduler.drain()
    assert sorted(seen) == [("async", 2), ("sync", 1), ("sync", 3)]
    assert [row(inst, i)["status"] for i in ids] == ["done"] * 3
    assert await scheduler.tick() == 0


async def test_scheduler_retries_on_the_clock_then_gives_up(inst: Instance, clock: FixedClock) -> None:
    calls: list[int] = []
    gave_up: list[tuple[str, int, str]] = []

    def flaky(_: Instance, job: Job) -> None:
        calls.append(job.attempts)
        raise RuntimeError(f"attempt {job.attempts} failed")

    def give_up(_: Instance, job: Job, error: str) -> None:
        gave_up.append((job.id, job.attempts, error))

    scheduler = Scheduler(inst)
    scheduler.register("flaky", flaky, give_up)
    job_id = add(inst, "flaky", max_attempts=3)
    await scheduler.drain()
    assert calls == [1]  # the retry is not due yet: drain returns rather than waiting
    assert row(inst, job_id)["status"] == "queued"
    clock.advance(jobs.BACKOFF_BASE_SECONDS)  # attempt 1's backoff is at most the base
    await scheduler.drain()
    assert calls == [1, 2]
    assert gave_up == []
    clock.advance(2 * jobs.BACKOFF_BASE_SECONDS)
    await scheduler.drain()
    assert calls == [1, 2, 3]
    assert gave_up == [(job_id, 3, "RuntimeError: attempt 3 failed")]
    assert row(inst, job_id)["status"] == "failed"
    clock.advance(100_000)
    await scheduler.drain()
    assert calls == [1, 2, 3]
    assert len(gave_up) == 1


async def test_permanent_errors_and_unknown_kinds_give_up_at_once(inst: Instance) -> None:
    gave_up: list[str] = []

    def refuse(_: Instance, job: Job) -> None:
        raise PermanentJobError("cannot ever work")

    scheduler = Scheduler(inst)
    scheduler.register("refuse", refuse, lambda _i, job, error: gave_up.append(error))
    refused = add(inst, "refuse", max_attempts=5)
    unknown = add(inst, "nobody.handles.this", max_attempts=5)
    await scheduler.drain()
    assert gave_up == ["PermanentJobError: cannot ever work"]
    assert row(inst, refused)["status"] == "failed" and row(inst, refused)["attempts"] == 1
    assert row(inst, unknown)["status"] == "failed"
    assert "no handler" in row(inst, unknown)["last_error"]


async def test_a_failing_give_up_handler_is_logged_not_raised(inst: Instance, caplog: pytest.LogCaptureFixture) -> None:
    def fail(_: Instance, job: Job) -> None:
        raise PermanentJobError("no")

    def broken_give_up(_: Instance, job: Job, error: str) -> None:
        raise ValueError("give-up broke")

    scheduler = Scheduler(inst)
    scheduler.register("fail", fail, broken_give_up)
    job_id = add(inst, "fail")
    await scheduler.drain()
    assert row(inst, job_id)["status"] == "failed"
    assert "give-up handler failed" in caplog.text


async def test_concurrency_limit(inst: Instance) -> None:
    release = asyncio.Event()
    active = 0
    peak = 0
    finished = 0

    async def slow(_: Instance, job: Job) -> None:
        nonlocal active, peak, finished
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1
        finished += 1

    scheduler = Scheduler(inst, concurrency=2)
    scheduler.register("slow", slow)
    for n in range(5):
        add(inst, "slow", n=n)
    assert await scheduler.tick() == 2
    assert await scheduler.tick() == 0  # both slots busy
    for _ in range(3):
        await asyncio.sleep(0)  # let the two started tasks reach their wait (no time passes)
    assert (active, peak) == (2, 2)
    release.set()
    await scheduler.drain()
    assert (finished, peak) == (5, 2)
    assert len(jobs.list_jobs(inst.registry, status="done")) == 5


async def test_periodic_sweeps_follow_the_clock(inst: Instance, clock: FixedClock) -> None:
    runs: list[float] = []
    scheduler = Scheduler(inst)
    scheduler.every("sweep", 60.0, lambda i: runs.append(i.clock.now()))
    start = clock.now()
    await scheduler.tick()
    await scheduler.tick()
    assert runs == [start]  # first tick runs it, a second at the same time does not
    clock.advance(59)
    await scheduler.tick()
    assert runs == [start]
    clock.advance(1)
    await scheduler.tick()
    assert runs == [start, start + 60]
    clock.advance(600)
    await scheduler.tick()
    assert runs == [start, start + 60, start + 660]  # missed periods do not pile up


async def test_start_requeues_jobs_a_dead_process_left_running(inst: Instance) -> None:
    ran: list[int] = []
    job_id = add(inst, "work")
    jobs.claim(inst.registry, inst.clock.now(), 1)  # the "previous process" claimed it and died
    scheduler = Scheduler(inst, poll_seconds=3600)
    scheduler.register("work", lambda _i, job: ran.append(job.attempts))
    await scheduler.start()
    try:
        assert row(inst, job_id)["status"] in ("queued", "running", "done")
        await scheduler.drain()
    finally:
        await scheduler.stop()
    assert ran == [2]
    assert row(inst, job_id)["status"] == "done"


async def test_stop_waits_for_running_jobs_and_refuses_new_work(inst: Instance) -> None:
    release = asyncio.Event()
    ran: list[int] = []

    async def slow(_: Instance, job: Job) -> None:
        await release.wait()
        ran.append(job.payload["n"])

    scheduler = Scheduler(inst, concurrency=1, poll_seconds=3600)
    scheduler.register("slow", slow)
    first = add(inst, "slow", n=1)
    second = add(inst, "slow", n=2)
    await scheduler.start()
    for _ in range(20):
        await asyncio.sleep(0)
        if row(inst, first)["status"] == "running":
            break
    stopping = asyncio.create_task(scheduler.stop(timeout=30))
    await asyncio.sleep(0)
    release.set()
    await stopping
    assert ran == [1]
    assert (row(inst, first)["status"], row(inst, second)["status"]) == ("done", "queued")
    assert await scheduler.tick() == 0  # closed: claims nothing


async def test_stop_timeout_cancels_and_the_job_is_recovered_later(inst: Instance) -> None:
    async def forever(_: Instance, job: Job) -> None:
        await asyncio.Event().wait()

    scheduler = Scheduler(inst, concurrency=1, poll_seconds=3600)
    scheduler.register("forever", forever)
    job_id = add(inst, "forever")
    await scheduler.tick()
    await scheduler.stop(timeout=0)
    assert row(inst, job_id)["status"] == "running"
    assert jobs.requeue_interrupted(inst.registry, inst.clock.now()) == 1


# -- package processing as jobs --------------------------------------------------------------------


def stage(inst: Instance, data: bytes) -> StagedUpload:
    path = inst.data.tmp / "staged.zip"
    path.write_bytes(data)
    return StagedUpload(path=path, size=len(data), sha256="0" * 64)


def version_status(inst: Instance, tenant_id: str, package_id: str, version: int = 1) -> dict[str, Any]:
    found = inst.tenant_db(tenant_id).read_sync(
        lambda c: one(c, "SELECT * FROM package_versions WHERE package_id = ? AND version = ?", (package_id, version))
    )
    assert found is not None
    return found


def leftovers(root: Path, tenant_id: str) -> list[str]:
    tenant_dir = root / "tenants" / tenant_id
    found = [str(p.relative_to(tenant_dir)) for p in tenant_dir.rglob("*") if p.is_file()]
    return [name for name in found if not name.startswith("tenant.db")] + [str(p) for p in (root / "tmp").rglob("*")]


async def test_processing_that_keeps_crashing_ends_failed_not_processing(
    inst: Instance, acme: TenantKey, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: Any) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(package_processing, "analyse", crash)
    tenant = get_tenant(inst, acme.tenant_id)
    pkg = packages.create_version(inst, tenant, stage(inst, package_12()))
    scheduler = build_scheduler(inst)
    for _ in range(inst.config.job_max_attempts):
        await scheduler.drain()
        clock.advance(jobs.BACKOFF_MAX_SECONDS)
    found = version_status(inst, acme.tenant_id, pkg["id"])
    assert found["status"] == "failed"
    assert '"INTERNAL_ERROR"' in found["error"]
    assert leftovers(inst.config.data_dir, acme.tenant_id) == []
    [job] = jobs.list_jobs(inst.registry)
    assert (job["status"], job["attempts"]) == ("failed", inst.config.job_max_attempts)


async def test_a_version_without_a_job_is_found_by_the_recovery_sweep(
    inst: Instance, acme: TenantKey, clock: FixedClock
) -> None:
    tenant = get_tenant(inst, acme.tenant_id)
    pkg = packages.create_version(inst, tenant, stage(inst, package_12()))
    # As if the process died between committing the version and enqueuing its job.
    inst.registry.write_sync(lambda c: c.execute("DELETE FROM jobs"))
    assert packages.recover_processing(inst) == 1
    assert packages.recover_processing(inst) == 0  # its job is pending now: not enqueued twice
    scheduler = build_scheduler(inst)
    await scheduler.drain()
    assert version_status(inst, acme.tenant_id, pkg["id"])["status"] == "ready"
    assert packages.recover_processing(inst) == 0


async def test_a_job_rerun_after_its_version_finished_cleans_up(inst: Instance, acme: TenantKey) -> None:
    tenant = get_tenant(inst, acme.tenant_id)
    pkg = packages.create_version(inst, tenant, stage(inst, broken_package()))
    scheduler = build_scheduler(inst)
    await scheduler.drain()
    assert version_status(inst, acme.tenant_id, pkg["id"])["status"] == "failed"
    # A crash after the commit but before the ZIP was removed: a rerun removes it and changes nothing.
    zip_path = packages.upload_path(inst, acme.tenant_id, pkg["id"], 1)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    zip_path.write_bytes(b"left over")
    [job] = jobs.list_jobs(inst.registry)
    packages.process_version(
        inst,
        Job(
            job["id"],
            packages.PROCESS_JOB,
            acme.tenant_id,
            {"tenant_id": acme.tenant_id, "package_id": pkg["id"], "version": 1, "key": "k"},
            2,
            5,
        ),
    )
    assert not zip_path.exists()
    assert version_status(inst, acme.tenant_id, pkg["id"])["status"] == "failed"


def test_the_lease_is_a_setting_the_scheduler_uses(config: Config, clock: FixedClock) -> None:
    assert Config().job_lease_seconds == jobs.LEASE_SECONDS == 60.0
    tuned = config.with_overrides({"job_lease_seconds": "7.5"})
    inst = Instance(tuned, clock)
    try:
        assert build_scheduler(inst).lease_seconds == 7.5
    finally:
        inst.close()
    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match="job_lease_seconds must be more than 0"):
            config.with_overrides({"job_lease_seconds": bad})
