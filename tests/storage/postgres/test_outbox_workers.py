"""The webhook outbox and xAPI forwarding on the real PostgreSQL, worked by two real worker PROCESSES.

Each worker is this module run with `python -m`: an `Instance` on the session's schema with the real
scheduler (`build_scheduler`: every job kind and sweep), the system clock and short leases, logging
each request it makes. Receivers are HTTP servers on 127.0.0.1 in the test process, recording every
request as it arrives. Every wait is bounded.
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
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.delivery import claims, webhook_attempts, webhook_deliveries, webhooks
from appliance.services.delivery.events import emit
from appliance.services.delivery.jobs import Job
from appliance.services.lrs import forwarding, forwarding_log, forwarding_targets, statements
from appliance.services.tenancy.tenants import Tenant, create_tenant
from appliance.storage.sqlite.connection import one, rows
from tests.storage.postgres.conftest import PgSchema

ROOT = Path(__file__).resolve().parents[3]
AUTHORITY = {"objectType": "Agent", "account": {"homePage": "urn:test", "name": "loader"}}


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


# -- receivers on 127.0.0.1 --------------------------------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.time() when the request arrived
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST as it arrives; `hold(n)` says whether request number n waits for `release`."""

    hold: Callable[[int], bool] = lambda n: False
    delay: float = 0.0
    arrivals: list[Arrival] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.arrivals.append(
                        Arrival(time.time(), {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    number = len(receiver.arrivals)
                if receiver.hold(number):
                    receiver.release.wait(60)
                time.sleep(receiver.delay)
                batch = json.loads(body) if isinstance(json.loads(body), list) else []
                answer = json.dumps([s["id"] for s in batch]).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker that sent it was killed

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def webhook_ids(self) -> list[str]:
        with self._lock:
            return [a.headers["webhook-id"] for a in self.arrivals]

    def statement_ids(self) -> list[str]:
        with self._lock:
            return [s["id"] for a in self.arrivals for s in json.loads(a.body)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


# -- the appliance side ------------------------------------------------------------------------------------


def base_config(pg_schema: PgSchema, data_dir: Path, **settings: Any) -> Config:
    url = f"postgresql://{pg_schema.app_role}@127.0.0.1:5432/test?connect_timeout=3"
    values = {"database": url, "database_schema": pg_schema.schema, "outbound_allow": "127.0.0.1/32", **settings}
    return Config(data_dir=data_dir).with_overrides(values)


@pytest.fixture
def inst(pg_schema: PgSchema, admin_conn: psycopg.Connection, tmp_path: Path) -> Iterator[Instance]:
    """The test's own Instance on the schema (to set up and to read rows), on an empty job queue; the
    tenants it made are deleted afterwards (their rows with them)."""
    admin_conn.execute("DELETE FROM jobs")
    found = Instance(base_config(pg_schema, tmp_path / "test-data"))
    before = {r[0] for r in admin_conn.execute("SELECT id FROM tenants").fetchall()}
    yield found
    found.close()
    for (tenant_id,) in admin_conn.execute("SELECT id FROM tenants").fetchall():
        if tenant_id not in before:
            admin_conn.execute("DELETE FROM tenants WHERE id = %s", (tenant_id,))
    admin_conn.execute("DELETE FROM jobs")


@dataclass
class Worker:
    """One worker process and the file it logs its requests to."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[list[str]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split() for line in text.splitlines() if line.endswith(";")]

    def posts(self, kind: str) -> list[list[str]]:
        return [line for line in self.lines() if line[0] == kind]

    @property
    def ready(self) -> bool:
        return any(line[0] == "ready" for line in self.lines())


@pytest.fixture
def workers(pg_schema: PgSchema, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start worker processes with `settings` (killed at the end, whatever happened)."""
    started: list[Worker] = []

    def start(name: str, **settings: Any) -> Worker:
        log = tmp_path / f"{name}.log"
        config = {
            "database": f"postgresql://{pg_schema.app_role}@127.0.0.1:5432/test?connect_timeout=3",
            "database_schema": pg_schema.schema,
            "database_pool_size": 4,
            "outbound_allow": "127.0.0.1/32",
            "job_poll_seconds": 0.05,
            "job_concurrency": 2,
            "webhook_dispatch_seconds": 0.2,
            **settings,
        }
        args = [sys.executable, "-m", __spec__.name, str(tmp_path / f"{name}-data"), json.dumps(config), str(log), name]
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
            raise AssertionError(f"worker {w.name} exited: {(w.log.parent / f'{w.name}.err').read_text()[-3000:]}")
    return all(w.ready for w in found)


def deliveries(inst: Instance, tenant: Tenant) -> list[dict[str, Any]]:
    return inst.tenant_db(tenant.id).read_sync(
        lambda c: rows(c, "SELECT * FROM webhook_deliveries ORDER BY event_seq, id")
    )


# -- webhooks ----------------------------------------------------------------------------------------------


def test_each_webhook_delivery_is_sent_once_by_one_of_two_workers_in_order_per_subject(
    inst: Instance, receiver: Receiver, workers
) -> None:
    receiver.delay = 0.02  # a receiver that takes a moment, so both workers have deliveries in flight
    pair = [workers("w1"), workers("w2")]
    wait_for(lambda: all_ready(pair), 60, "the workers start")
    tenant = create_tenant(inst, "Outbox")
    webhooks.create_webhook(inst, tenant, url=receiver.url(), events=["*"])
    subjects = [f"ses_{i}" for i in range(8)]
    n = 48  # six events for each of eight subjects, interleaved

    def add(conn: Any) -> list[str]:
        now = time.time()
        return [
            emit(conn, "session.created", {"n": i}, now=now, subject_id=subjects[i % len(subjects)]) for i in range(n)
        ]

    event_ids = inst.tenant_db(tenant.id).write_sync(add)
    wait_for(lambda: len(set(receiver.webhook_ids())) == n, 60, f"{n} webhooks received")
    time.sleep(1.5)  # time enough for a second send of any of them to arrive
    assert collections.Counter(receiver.webhook_ids()) == collections.Counter(event_ids)  # each exactly once
    found = deliveries(inst, tenant)
    assert {(d["status"], d["attempts"], d["lease_until"]) for d in found} == {("delivered", 1, None)}
    # Each subject's events arrived in the order they happened (a delivery waits for the one before).
    order = {event_id: i for i, event_id in enumerate(event_ids)}
    arrived = [json.loads(a.body) for a in receiver.arrivals]
    for subject in subjects:
        seen = [order[e["id"]] for e in arrived if e["data"]["n"] % len(subjects) == subjects.index(subject)]
        assert seen == sorted(seen), subject
    by_worker = {w.name: len(w.posts("webhook")) for w in pair}
    assert sum(by_worker.values()) == n and all(by_worker.values()), by_worker  # both took part, none twice


def test_a_delivery_of_a_killed_worker_is_sent_by_the_other_after_its_lease(
    inst: Instance, receiver: Receiver, workers
) -> None:
    lease, timeout = 1.5, 2.0  # a delivery's lease: max(1.5, 2 + 2) = 4 s from its claim
    receiver.hold = lambda number: number == 1  # the first request never gets an answer
    pair = [workers(name, job_lease_seconds=lease, webhook_timeout_seconds=timeout) for name in ("a", "b")]
    wait_for(lambda: all_ready(pair), 60, "the workers start")
    tenant = create_tenant(inst, "Killed")
    webhooks.create_webhook(inst, tenant, url=receiver.url(), events=["*"])
    [event_id] = inst.tenant_db(tenant.id).write_sync(
        lambda c: [emit(c, "session.created", {}, now=time.time(), subject_id="ses_1")]
    )
    wait_for(lambda: receiver.arrivals, 20, "a worker sends the delivery")
    [doomed] = [w for w in pair if w.posts("webhook")]  # the one whose request is out
    [survivor] = [w for w in pair if w is not doomed]
    [held] = deliveries(inst, tenant)
    assert held["status"] == "pending" and held["lease_until"] is not None
    # Leased for max(lease, timeout + 2 s), from its claim just before the request went out.
    claimed_at = held["lease_until"] - claims.lease_seconds(
        inst.config.with_overrides({"job_lease_seconds": lease}), timeout
    )
    assert receiver.arrivals[0].at - 5.0 <= claimed_at <= receiver.arrivals[0].at
    os.kill(doomed.proc.pid, signal.SIGKILL)
    doomed.proc.wait(10)
    wait_for(lambda: deliveries(inst, tenant)[0]["status"] == "delivered", 30, "the survivor delivers it")
    first, second = receiver.arrivals  # at least once: the lost attempt's request, and the survivor's
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert second.at >= held["lease_until"]  # not taken over while the lease held
    [done] = deliveries(inst, tenant)
    assert (done["attempts"], done["lease_until"]) == (1, None)
    attempts = inst.tenant_db(tenant.id).read_sync(lambda c: rows(c, "SELECT * FROM webhook_attempts"))
    assert [(a["n"], a["status_code"]) for a in attempts] == [(1, 200)]  # the lost attempt recorded nothing
    assert [line[2] for line in survivor.posts("webhook")] == [event_id]


# -- xAPI forwarding ---------------------------------------------------------------------------------------


def statement(n: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{n}@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": f"https://courses.example.org/c/{n}"},
    }


def store(inst: Instance, tenant: Tenant, batch: list[dict[str, Any]]) -> list[str]:
    return inst.tenant_db(tenant.id).write_sync(
        lambda c: statements.insert_statements(
            c, batch, stored=time.time(), authority=AUTHORITY, credential_id=None, version="1.0.3"
        )
    )


def test_forwarding_across_two_workers_sends_each_statement_once_in_order(inst: Instance, workers) -> None:
    lrs = [Receiver(delay=0.01).start() for _ in range(2)]
    try:
        pair = [workers(f"f{i}", xapi_forward_batch_size=4) for i in range(2)]
        wait_for(lambda: all_ready(pair), 60, "the workers start")
        tenant = create_tenant(inst, "Forwarder")
        m = 30
        first = store(inst, tenant, [statement(i) for i in range(m // 2)])
        targets = [
            forwarding_targets.create_target(inst, tenant, endpoint=r.url("/xapi/"), forward_existing=True) for r in lrs
        ]
        second = store(inst, tenant, [statement(i) for i in range(m // 2, m)])
        ids = first + second
        for r in lrs:
            wait_for(lambda r=r: len(r.statement_ids()) >= m, 60, f"{m} statements at a target")
        time.sleep(1.5)  # time enough for a second send to arrive
        for r in lrs:
            assert r.statement_ids() == ids  # each once, in the order they were stored
        for target in targets:
            shown = forwarding_targets.get_target(inst, tenant, target["id"])
            assert (shown["forwarded_count"], shown["pending_statements"], shown["status"]) == (m, 0, "active")
            logged = inst.tenant_db(tenant.id).read_sync(
                lambda c, t=target["id"]: rows(
                    c, "SELECT outcome, statement_ids FROM xapi_forwarding_log WHERE target_id = ? ORDER BY n", (t,)
                )
            )
            assert {e["outcome"] for e in logged} == {"delivered"}
            assert [i for e in logged for i in json.loads(e["statement_ids"])] == ids
            lease = inst.tenant_db(tenant.id).read_sync(
                lambda c, t=target["id"]: one(c, "SELECT lease_until FROM xapi_forwarding_targets WHERE id = ?", (t,))
            )
            assert lease == {"lease_until": None}
        assert sum(len(w.posts("forward")) for w in pair) == sum(len(r.arrivals) for r in lrs)
    finally:
        for r in lrs:
            r.stop()


def test_forwarding_goes_on_from_the_cursor_after_a_worker_is_killed_mid_request(inst: Instance, workers) -> None:
    lease, timeout = 1.5, 2.0
    lrs = Receiver(hold=lambda number: number == 2).start()  # the second batch's request never gets an answer
    try:
        settings = {"xapi_forward_batch_size": 5, "job_lease_seconds": lease, "xapi_forward_timeout_seconds": timeout}
        pair = [workers(name, **settings) for name in ("a", "b")]
        wait_for(lambda: all_ready(pair), 60, "the workers start")
        tenant = create_tenant(inst, "Forwarder2")
        ids = store(inst, tenant, [statement(i) for i in range(20)])
        forwarding_targets.create_target(inst, tenant, endpoint=lrs.url("/xapi/"), forward_existing=True)
        wait_for(lambda: len(lrs.arrivals) == 2, 20, "a worker sends two batches")
        [doomed] = [w for w in pair if w.posts("forward")]  # the one whose request is out
        [survivor] = [w for w in pair if w is not doomed]
        [row] = inst.tenant_db(tenant.id).read_sync(lambda c: rows(c, "SELECT * FROM xapi_forwarding_targets"))
        assert row["cursor_seq"] > 0 and row["lease_until"] is not None  # the first batch is done, the second out
        os.kill(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(10)
        wait_for(lambda: len(set(lrs.statement_ids())) == 20, 30, "every statement at the target")
        time.sleep(1.0)
        received = lrs.statement_ids()
        # The lost batch arrives again (at least once), and everything in order from the cursor on.
        assert received == ids[:10] + ids[5:]
        assert lrs.arrivals[2].at >= row["lease_until"]  # not taken over while the lease held
        [done] = inst.tenant_db(tenant.id).read_sync(lambda c: rows(c, "SELECT * FROM xapi_forwarding_targets"))
        assert (done["forwarded_count"], done["lease_until"]) == (20, None)
        assert len(survivor.posts("forward")) == 3  # the three batches from the cursor on
    finally:
        lrs.stop()


# -- in one process: the claim and its fence ----------------------------------------------------------------


def job_for(kind: str, tenant: Tenant, **payload: Any) -> Job:
    return Job(
        id="job_by_hand",
        kind=kind,
        tenant_id=tenant.id,
        payload={"tenant_id": tenant.id, **payload},
        attempts=1,
        max_attempts=5,
    )


def test_a_delivery_another_transaction_holds_is_passed_over_not_waited_for(
    inst: Instance, receiver: Receiver, admin_conn: psycopg.Connection
) -> None:
    tenant = create_tenant(inst, "Locked")
    hook = webhooks.create_webhook(inst, tenant, url=receiver.url(), events=["*"])
    delivery = webhook_deliveries.send_test(inst, tenant, hook["id"])
    job = job_for(webhook_attempts.DELIVER_JOB, tenant, delivery_id=delivery["id"])
    admin_conn.execute("BEGIN")
    admin_conn.execute("SELECT id FROM webhook_deliveries WHERE id = %s FOR UPDATE", (delivery["id"],))
    try:
        started = time.monotonic()
        webhook_attempts.deliver(inst, job)  # another worker's claim holds the row: SKIP LOCKED passes over it
        assert time.monotonic() - started < 2.0
        assert receiver.arrivals == []
    finally:
        admin_conn.execute("COMMIT")
    [row] = deliveries(inst, tenant)
    assert (row["status"], row["lease_until"]) == ("pending", None)
    webhook_attempts.deliver(inst, job)
    assert receiver.webhook_ids() == [delivery["event_id"]]
    assert deliveries(inst, tenant)[0]["status"] == "delivered"


def test_an_attempt_that_outlived_its_lease_records_nothing_over_the_new_holder(
    inst: Instance, receiver: Receiver, admin_conn: psycopg.Connection
) -> None:
    receiver.hold = lambda number: number == 1
    tenant = create_tenant(inst, "Fenced")
    hook = webhooks.create_webhook(inst, tenant, url=receiver.url(), events=["*"])
    delivery = webhook_deliveries.send_test(inst, tenant, hook["id"])
    job = job_for(webhook_attempts.DELIVER_JOB, tenant, delivery_id=delivery["id"])
    slow = threading.Thread(target=webhook_attempts.deliver, args=(inst, job))
    slow.start()
    wait_for(lambda: receiver.arrivals, 10, "the attempt is sent")
    [held] = deliveries(inst, tenant)
    # Meanwhile its lease ran out and another worker claimed the delivery (a later lease).
    admin_conn.execute(
        "UPDATE webhook_deliveries SET lease_until = %s WHERE id = %s", (held["lease_until"] + 100, delivery["id"])
    )
    receiver.release.set()
    slow.join(20)
    [after] = deliveries(inst, tenant)
    assert (after["status"], after["attempts"], after["lease_until"]) == ("pending", 0, held["lease_until"] + 100)
    assert inst.tenant_db(tenant.id).read_sync(lambda c: rows(c, "SELECT * FROM webhook_attempts")) == []


def test_a_forwarding_run_that_lost_its_lease_moves_no_cursor(
    inst: Instance, receiver: Receiver, admin_conn: psycopg.Connection
) -> None:
    receiver.hold = lambda number: number == 1
    tenant = create_tenant(inst, "FencedLrs")
    store(inst, tenant, [statement(i) for i in range(3)])
    target = forwarding_targets.create_target(inst, tenant, endpoint=receiver.url("/xapi/"), forward_existing=True)
    job = job_for(forwarding_targets.FORWARD_JOB, tenant, target_id=target["id"])
    slow = threading.Thread(target=forwarding.forward, args=(inst, job))
    slow.start()
    wait_for(lambda: receiver.arrivals, 10, "the batch is sent")
    read = lambda: inst.tenant_db(tenant.id).read_sync(  # noqa: E731
        lambda c: one(c, "SELECT * FROM xapi_forwarding_targets WHERE id = ?", (target["id"],))
    )
    held = read()["lease_until"]
    admin_conn.execute("UPDATE xapi_forwarding_targets SET lease_until = %s WHERE id = %s", (held + 100, target["id"]))
    receiver.release.set()
    slow.join(20)
    after = read()
    assert (after["cursor_seq"], after["forwarded_count"], after["lease_until"]) == (0, 0, held + 100)
    assert forwarding_log.list_log(inst, tenant, target["id"])["data"] == []


# -- the worker process ------------------------------------------------------------------------------------


def _log(path: Path, *words: object) -> None:
    with path.open("a") as f:
        f.write(" ".join(str(w) for w in words) + " ;\n")


async def _work(data_dir: Path, settings: dict[str, Any], log: Path, name: str) -> None:
    from appliance.faces.app import build_scheduler

    post_webhook, post_statements = webhook_attempts._post, forwarding._post

    def logged_webhook(inst: Instance, send: Any) -> Any:
        _log(log, "webhook", name, send.event_id, f"{time.time():.3f}")
        return post_webhook(inst, send)

    def logged_statements(inst: Instance, target: Any, body: bytes, content_type: str) -> Any:
        _log(log, "forward", name, target.id, f"{time.time():.3f}")
        return post_statements(inst, target, body, content_type)

    webhook_attempts._post = logged_webhook  # type: ignore[assignment]
    forwarding._post = logged_statements  # type: ignore[assignment]
    inst = Instance(Config(data_dir=data_dir).with_overrides(settings))
    scheduler = build_scheduler(inst)
    scheduler.worker_id = f"{name}:{os.getpid()}"
    await scheduler.start()
    _log(log, "ready", json.dumps(name))
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    data_dir_, settings_, log_, name_ = sys.argv[1:5]
    asyncio.run(_work(Path(data_dir_), json.loads(settings_), Path(log_), name_))
