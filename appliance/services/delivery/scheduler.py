"""The in-process scheduler: runs due jobs with a concurrency limit, and periodic sweeps.

Its single step is `tick()`, which reads the injected clock; the loop around it only waits. Tests call
`tick()`/`drain()` with a fixed clock and never sleep. Started and stopped by the app's lifespan: on
stop it refuses new work and waits (bounded) for running jobs.

Each scheduler is one worker (`worker_id`): the jobs it claims are leased to it for `lease_seconds`,
and while it is started a heartbeat renews the leases of its running jobs every third of that
(`renew()` is the heartbeat's one step). On PostgreSQL several workers' schedulers share the queue; a
job whose worker was lost is claimed by another once the lease runs out (docs/scale-out.md "Jobs").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.delivery.jobs import Job, PermanentJobError

log = logging.getLogger("appliance.scheduler")

Handler = Callable[[Instance, Job], Any]


def worker_name() -> str:
    """This process's name on the jobs it claims: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class JobKind:
    """How to run one kind of job, and what to do when it fails for good."""

    run: Handler
    on_give_up: Callable[[Instance, Job, str], Any] | None = None


@dataclass
class Periodic:
    """A sweep that runs every `interval` seconds of the injected clock."""

    name: str
    interval: float
    run: Callable[[Instance], Any]
    next_at: float = 0.0


@dataclass
class Scheduler:
    """Runs jobs from the registry queue and periodic sweeps."""

    inst: Instance
    kinds: dict[str, JobKind] = field(default_factory=dict)
    periodic: list[Periodic] = field(default_factory=list)
    concurrency: int = 2
    poll_seconds: float = 1.0
    lease_seconds: float = jobs.LEASE_SECONDS
    worker_id: str = field(default_factory=worker_name)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _held: dict[str, Job] = field(default_factory=dict)  # running jobs by id, whose leases the heartbeat renews
    _wake: asyncio.Event | None = None
    _loop_task: asyncio.Task[None] | None = None
    _heartbeat_task: asyncio.Task[None] | None = None
    _closing: bool = False

    def register(self, kind: str, run: Handler, on_give_up: Callable[[Instance, Job, str], Any] | None = None) -> None:
        """Register the handler of a job kind."""
        self.kinds[kind] = JobKind(run, on_give_up)

    def every(self, name: str, interval: float, run: Callable[[Instance], Any]) -> None:
        """Register a periodic sweep; it first runs on the first tick."""
        self.periodic.append(Periodic(name, interval, run))

    # -- one step --------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Start due periodic sweeps and claim due jobs up to the free slots; return jobs started."""
        now = self.inst.clock.now()
        for sweep in self.periodic:
            if now >= sweep.next_at:
                sweep.next_at = now + sweep.interval
                await _call(sweep.run, self.inst)
        if self._closing:
            return 0
        free = self.concurrency - len(self._running)
        claimed = await asyncio.to_thread(
            jobs.claim, self.inst.registry, now, free, worker=self.worker_id, lease_seconds=self.lease_seconds
        )
        for job in claimed:
            self._held[job.id] = job
            task = asyncio.create_task(self._run(job), name=f"job-{job.kind}-{job.id}")
            self._running.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._wake is not None:
            self._wake.set()  # a slot is free: look for more work now

    async def _run(self, job: Job) -> None:
        try:
            await self._attempt(job)
        except jobs.LeaseLost as exc:
            log.warning("job %s (%s): not recorded, another worker holds it now: %s", job.id, job.kind, exc)
        finally:
            self._held.pop(job.id, None)

    async def _attempt(self, job: Job) -> None:
        kind = self.kinds.get(job.kind)
        now = self.inst.clock.now
        try:
            if kind is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            if job.lease_lost and job.attempts > job.max_attempts:
                # Its last attempt's worker was lost (killed, perhaps by the job itself): give up.
                raise PermanentJobError(f"the worker running attempt {job.attempts - 1} was lost (lease expired)")
            await _call(kind.run, self.inst, job)
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError)
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, error)
            retry = await asyncio.to_thread(jobs.fail, self.inst.registry, job, now(), error, permanent=permanent)
            if not retry and kind is not None and kind.on_give_up is not None:
                try:
                    await _call(kind.on_give_up, self.inst, job, error)
                except Exception:
                    # Nobody awaits this task: log rather than leave an unretrieved task exception.
                    log.exception("job %s (%s): the give-up handler failed", job.id, job.kind)
        else:
            await asyncio.to_thread(jobs.complete, self.inst.registry, job, now())

    async def renew(self) -> set[str]:
        """The heartbeat's step: extend the leases of this worker's running jobs; return the ids it lost."""
        held = list(self._held.values())
        if not held:
            return set()
        lost = await asyncio.to_thread(jobs.renew, self.inst.registry, held, self.inst.clock.now(), self.lease_seconds)
        for job_id in lost:
            log.warning("job %s: lease lost to another worker while running here", job_id)
        return lost

    async def drain(self, max_rounds: int = 100) -> None:
        """Tick and wait until no job is due or running (for tests and CLI one-shots)."""
        for _ in range(max_rounds):
            started = await self.tick()
            if self._running:
                await asyncio.gather(*list(self._running), return_exceptions=True)
            elif not started:
                return

    # -- lifecycle -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for work now rather than at the next poll (e.g. just after an enqueue)."""
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        """Recover interrupted jobs and start the loop."""
        requeued = await asyncio.to_thread(jobs.requeue_interrupted, self.inst.registry, self.inst.clock.now())
        if requeued:
            log.info("requeued %d job(s) interrupted by the last shutdown", requeued)
        self._wake = asyncio.Event()
        self._loop_task = asyncio.create_task(self._loop(), name="scheduler")
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="scheduler-heartbeat")

    async def _heartbeat(self) -> None:
        """Renew the running jobs' leases every third of `lease_seconds` until stopped (also while `stop`
        waits for them), so a long job is not taken over while this worker is alive."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.renew()
            except Exception:
                log.exception("renewing job leases failed")

    async def _loop(self) -> None:
        assert self._wake is not None
        while not self._closing:
            # Clear before ticking, not after: a wake() that arrives during the tick (an upload, a
            # finished job, stop()) must not be lost, or the loop would sleep a full poll interval.
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            if self._closing:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    async def stop(self, timeout: float = 30.0) -> None:
        """Refuse new work, let running jobs finish (bounded), then stop the loop.

        A job still running at the timeout is cancelled. SQLite: its row stays `running` and the next
        start puts it back in the queue. PostgreSQL: it is released to the queue at once for another
        worker (its attempt counted). Nothing is lost either way.
        """
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._running:
            _, pending = await asyncio.wait(list(self._running), timeout=timeout)
            cut_off = list(self._held.values())
            for task in pending:
                task.cancel()
            if pending and jobs.shared(self.inst.registry):
                now = self.inst.clock.now()
                for job in cut_off:
                    await asyncio.to_thread(jobs.release, self.inst.registry, job, now)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Await an async handler; run a sync one in a worker thread so the event loop stays free."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    if isinstance(result, Awaitable):
        return await result
    return result
