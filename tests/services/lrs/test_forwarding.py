"""Forwarding statements to an external LRS (appliance.services.lrs.forwarding), against a real HTTP LRS stand-in
on 127.0.0.1: order, batches, backoff, rejections, filters, the log, and the management routes."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.errors import NotFound, ValidationFailed
from appliance.faces.app import build_scheduler
from appliance.instance import Instance
from appliance.services.delivery import outbound
from appliance.services.lrs import forwarding, forwarding_log, forwarding_targets, statements
from appliance.services.tenancy.tenants import Tenant, create_tenant, get_tenant
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import assert_error

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
LOOPBACK_ALLOW = ("127.0.0.1/32",)
AUTHORITY = {"objectType": "Agent", "account": {"homePage": "urn:test", "name": "loader"}}
FWD = "/api/v1/xapi/forwarding"


# -- an LRS stand-in -----------------------------------------------------------------------------------------


@dataclass
class Post:
    """One POST the stand-in received and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def statements(self) -> list[dict[str, Any]]:
        return json.loads(self.body)

    @property
    def ids(self) -> list[str]:
        return [s["id"] for s in self.statements]


@dataclass
class FakeLrs:
    """An HTTP server on 127.0.0.1 taking `POST /xapi/statements`; `respond(n, statements)` picks the status.

    `stop()` closes the port (connection refused) until `start()` opens the same port again.
    """

    respond: Callable[[int, list[dict[str, Any]]], int] = lambda n, batch: 200
    port: int = 0
    posts: list[Post] = field(default_factory=list)
    last_headers: dict[str, str] = field(default_factory=dict)  # of the request being answered
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/xapi/"

    def start(self) -> FakeLrs:
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                batch = json.loads(body) if headers.get("content-type") == "application/json" else []
                with lrs._lock:
                    lrs.last_headers = headers
                    status = 404 if self.path != "/xapi/statements" else lrs.respond(len(lrs.posts) + 1, batch)
                    lrs.posts.append(Post(headers, body, status))
                answer = json.dumps([s["id"] for s in batch] if status == 200 else {"error": "no"}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted_ids(self) -> list[str]:
        return [i for p in self.posts if p.status == 200 for i in p.ids]


@pytest.fixture
def fake_lrs() -> Iterator[FakeLrs]:
    server = FakeLrs().start()
    yield server
    server.stop()


@pytest.fixture
def config(config: Config) -> Config:
    """The stand-in listens on 127.0.0.1: the allow-list admits it (without it, the guard refuses it)."""
    return dataclasses.replace(config, outbound_allow=LOOPBACK_ALLOW, xapi_forward_batch_size=100)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def world(config: Config, clock: FixedClock) -> Iterator[World]:
    inst = Instance(config, clock)
    yield World(inst, clock, create_tenant(inst, "Acme"))
    inst.close()


@dataclass
class World:
    """An instance on a fixed clock, one tenant, and its scheduler, run by `pump`."""

    inst: Instance
    clock: FixedClock
    tenant: Tenant

    def __post_init__(self) -> None:
        self.scheduler = build_scheduler(self.inst)

    def pump(self, seconds: float = 0.0) -> None:
        """Move the clock on, then run the sweeps and every due job until nothing is due."""
        self.clock.advance(seconds)
        asyncio.run(self.scheduler.drain())

    def store(self, batch: list[dict[str, Any]]) -> list[str]:
        now = self.clock.now()
        return self.inst.tenant_db(self.tenant.id).write_sync(
            lambda c: statements.insert_statements(
                c, batch, stored=now, authority=AUTHORITY, credential_id=None, version="1.0.3"
            )
        )

    def target(self, lrs: FakeLrs, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("username", "key")
        kwargs.setdefault("password", "secret")
        return forwarding_targets.create_target(self.inst, self.tenant, endpoint=lrs.endpoint, **kwargs)

    def show(self, target_id: str) -> dict[str, Any]:
        return forwarding_targets.get_target(self.inst, self.tenant, target_id)

    def log(self, target_id: str, **kwargs: Any) -> list[dict[str, Any]]:
        return forwarding_log.list_log(self.inst, self.tenant, target_id, limit=500, **kwargs)["data"]


def statement(n: int, verb: str = COMPLETED, activity: str | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{n}@example.org"},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": activity or f"https://courses.example.org/c/{n}"},
    }


# -- pure parts ------------------------------------------------------------------------------------------------


def test_retry_delay_doubles_to_the_cap_with_jitter() -> None:
    rng = random.Random(7)
    delays = [forwarding.retry_delay(n, 300.0, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        base = min(300.0, 2.0 * 2 ** (n - 1))
        assert 0.8 * base <= delay <= 1.2 * base
    assert max(delays) <= 360.0
    assert forwarding.retry_delay(10_000, 300.0) <= 360.0  # no overflow however long it failed


def test_filters() -> None:
    both = forwarding_targets.Filters((COMPLETED,), ("https://courses.example.org/",))
    assert both.admits(statement(1))
    assert not both.admits(statement(1, verb=EXPERIENCED))
    assert not both.admits(statement(1, activity="https://other.example.org/x"))
    agent_object = {**statement(1), "object": {"objectType": "Agent", "mbox": "mailto:a@example.org"}}
    assert not both.admits(agent_object)
    voiding = {
        **statement(1, verb=forwarding_targets.VOIDED),
        "object": {"objectType": "StatementRef", "id": str(uuid.uuid4())},
    }
    assert both.admits(voiding)
    assert forwarding_targets.Filters().admits(agent_object)
    no_type = {**statement(1), "object": {"id": "https://courses.example.org/c/9"}}  # Activity by default
    assert forwarding_targets.Filters((), ("https://courses.example.org/",)).admits(no_type)


def test_outgoing_drops_stored_and_a_foreign_version() -> None:
    stored = {**statement(1), "stored": "2026-01-01T00:00:00.000Z", "version": "2.0.0", "authority": AUTHORITY}
    to_1 = forwarding.outgoing(stored, "1.0.3")
    assert "stored" not in to_1 and "version" not in to_1 and to_1["authority"] == AUTHORITY
    assert forwarding.outgoing(stored, "2.0.0")["version"] == "2.0.0"
    assert "stored" in stored  # the stored statement itself is not changed


def test_attachments_travel_in_multipart_mixed() -> None:
    body, content_type = forwarding.encode_body([statement(1)], [("abc123", "text/plain", b"hello")])
    assert content_type.startswith('multipart/mixed; boundary="xapi-forward-')
    boundary = content_type.split('boundary="', 1)[1].rstrip('"').encode()
    parts = body.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    assert b"Content-Type: application/json\r\n\r\n[" in parts[1]
    assert b"X-Experience-API-Hash: abc123\r\n" in parts[2] and parts[2].endswith(b"\r\n\r\nhello\r\n")
    assert forwarding.encode_body([statement(1)], [])[1] == "application/json"
    hashes = forwarding._attachment_hashes(
        [
            {"attachments": [{"sha2": "a"}, {"sha2": "b", "fileUrl": "https://x/b"}]},
            {"attachments": [{"sha2": "a"}]},
        ]
    )
    assert hashes == ["a"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/xapi/",
        "http://127.0.0.1:8080/xapi/",
        "http://localhost/xapi/",
        "ftp://lrs.example.org/",
        "https://lrs.example.org/xapi/?x=1",
        "lrs.example.org/xapi/",
    ],
)
def test_endpoints_that_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        forwarding_targets.check_endpoint(url, outbound.Policy())
    assert caught.value.details["errors"][0]["field"] == "endpoint"


def test_endpoint_gets_its_trailing_slash() -> None:
    assert forwarding_targets.check_endpoint("https://lrs.example.org/xapi", outbound.Policy()).endswith("/xapi/")


# -- delivery ------------------------------------------------------------------------------------------------


def test_statements_arrive_in_order_in_batches_with_the_headers(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs, version="1.0.3")
    ids = world.store([statement(n) for n in range(120)]) + world.store([statement(n) for n in range(120, 250)])
    assert world.show(target["id"])["pending_statements"] == 250
    world.pump()
    assert [len(p.ids) for p in fake_lrs.posts] == [100, 100, 50]
    assert fake_lrs.accepted_ids() == ids
    first = fake_lrs.posts[0]
    assert first.headers["x-experience-api-version"] == "1.0.3"
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"key:secret").decode()
    assert first.headers["content-type"] == "application/json"
    assert all("stored" not in s and s["authority"] == AUTHORITY for s in first.statements)
    shown = world.show(target["id"])
    assert shown["pending_statements"] == 0 and shown["forwarded_count"] == 250 and shown["status"] == "active"
    assert shown["last_status_code"] == 200 and shown["last_forwarded_at"] is not None
    entries = world.log(target["id"])
    assert [e["outcome"] for e in entries] == ["delivered"] * 3
    assert [e["statement_count"] for e in reversed(entries)] == [100, 100, 50]
    assert entries[-1]["statement_ids"] == ids[:100] and entries[0]["last_seq"] == shown["cursor_seq"]

    more = world.store([statement(999)])
    world.pump(1.0)
    assert fake_lrs.accepted_ids() == ids + more  # the next statement follows, and nothing is sent twice


def test_a_target_that_fails_is_retried_with_backoff_and_loses_nothing(world: World, fake_lrs: FakeLrs) -> None:
    fake_lrs.respond = lambda n, batch: 503 if n <= 3 else 200
    target = world.target(fake_lrs)
    ids = world.store([statement(n) for n in range(5)])
    world.pump()
    assert len(fake_lrs.posts) == 1  # the retry is not due yet: the clock has not moved
    shown = world.show(target["id"])
    assert shown["status"] == "retrying" and shown["failed_attempts"] == 1 and shown["cursor_seq"] == 0
    assert shown["last_error"] == "HTTP 503" and shown["next_retry_at"] is not None
    world.pump(1.0)
    assert len(fake_lrs.posts) == 1  # 2 s x jitter 0.8-1.2: not yet after 1 s
    world.pump(1.5)
    assert len(fake_lrs.posts) == 2
    world.pump(5.0)
    world.pump(10.0)
    assert [p.status for p in fake_lrs.posts] == [503, 503, 503, 200]
    assert fake_lrs.accepted_ids() == ids
    shown = world.show(target["id"])
    assert shown["status"] == "active" and shown["failed_attempts"] == 0 and shown["last_error"] is None
    entries = world.log(target["id"])
    assert [(e["outcome"], e["attempt"]) for e in entries] == [
        ("delivered", 4),
        ("failed", 3),
        ("failed", 2),
        ("failed", 1),
    ]
    assert world.log(target["id"], outcome="failed")[0]["status_code"] == 503


def test_a_target_that_is_down_then_back_gets_everything_once(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs)
    first = world.store([statement(n) for n in range(3)])
    world.pump()
    fake_lrs.stop()
    later = world.store([statement(n) for n in range(3, 6)])
    world.pump(1.0)
    failed = world.log(target["id"], outcome="failed")
    assert failed and failed[0]["error"] == "could not connect to the endpoint" and failed[0]["status_code"] is None
    for _ in range(3):
        world.pump(30.0)  # still down: more attempts, further apart
    attempts = world.show(target["id"])["failed_attempts"]
    assert attempts >= 3
    fake_lrs.start()  # the same port again
    world.pump(400.0)
    assert fake_lrs.accepted_ids() == first + later
    assert world.show(target["id"])["pending_statements"] == 0


def test_a_refused_statement_is_recorded_and_passed_over(world: World, fake_lrs: FakeLrs) -> None:
    poison: set[str] = set()
    fake_lrs.respond = lambda n, batch: 400 if any(s["id"] in poison for s in batch) else 200
    target = world.target(fake_lrs)
    ids = world.store([statement(n) for n in range(6)])
    poison.add(ids[2])
    world.pump()
    assert fake_lrs.accepted_ids() == [i for i in ids if i != ids[2]]  # in order, one at a time after the 400
    shown = world.show(target["id"])
    assert shown["rejected_count"] == 1 and shown["forwarded_count"] == 5 and shown["pending_statements"] == 0
    rejected = world.log(target["id"], outcome="rejected")
    assert len(rejected) == 1 and rejected[0]["statement_ids"] == [ids[2]] and rejected[0]["status_code"] == 400
    assert rejected[0]["response_body"] == '{"error": "no"}'
    assert shown["status"] == "active"


def test_a_conflict_on_one_statement_does_not_block_the_rest(world: World, fake_lrs: FakeLrs) -> None:
    fake_lrs.respond = lambda n, batch: (
        409
        if len(batch) == 1 and batch[0]["verb"]["id"] == EXPERIENCED
        else (409 if any(s["verb"]["id"] == EXPERIENCED for s in batch) else 200)
    )
    target = world.target(fake_lrs)
    ids = world.store([statement(0), statement(1, verb=EXPERIENCED), statement(2)])
    world.pump()
    assert fake_lrs.accepted_ids() == [ids[0], ids[2]]
    assert world.show(target["id"])["rejected_count"] == 1


def test_a_target_that_refuses_everything_is_not_passed_statements_by_mistake(world: World, fake_lrs: FakeLrs) -> None:
    """A 2.0-only LRS sent 1.0.3 answers 400 to every statement: a misconfiguration, so nothing is passed over."""
    fake_lrs.respond = lambda n, batch: 200 if fake_lrs.last_headers["x-experience-api-version"] == "2.0.0" else 400
    target = world.target(fake_lrs, version="1.0.3")
    ids = world.store([statement(n) for n in range(3)])
    world.pump()
    shown = world.show(target["id"])
    assert shown["status"] == "retrying" and shown["cursor_seq"] == 0 and shown["rejected_count"] == 0
    assert "has accepted none since it was set up" in shown["last_error"] and shown["last_status_code"] == 400
    failed = world.log(target["id"], outcome="failed")
    assert failed[0]["statement_ids"] == ids and world.log(target["id"], outcome="rejected") == []
    forwarding_targets.update_target(world.inst, world.tenant, target["id"], version="2.0.0")
    world.pump()
    assert fake_lrs.accepted_ids() == ids and world.show(target["id"])["status"] == "active"


def test_a_proven_target_passes_over_a_last_refused_statement(world: World, fake_lrs: FakeLrs) -> None:
    bad: set[str] = set()
    fake_lrs.respond = lambda n, batch: 400 if any(s["id"] in bad for s in batch) else 200
    target = world.target(fake_lrs)
    good = world.store([statement(0)])
    world.pump()
    refused = world.store([statement(1), statement(2)])
    bad.update(refused)
    world.pump(1.0)
    shown = world.show(target["id"])
    assert shown["rejected_count"] == 2 and shown["pending_statements"] == 0 and shown["status"] == "active"
    assert fake_lrs.accepted_ids() == good
    assert [e["statement_ids"] for e in world.log(target["id"], outcome="rejected")] == [[refused[1]], [refused[0]]]


def test_many_refusals_in_a_row_at_a_proven_target_are_a_failure(world: World, fake_lrs: FakeLrs) -> None:
    bad: set[str] = set()
    fake_lrs.respond = lambda n, batch: 400 if any(s["id"] in bad for s in batch) else 200
    target = world.target(fake_lrs)
    world.store([statement(0)])
    world.pump()
    bad.update(world.store([statement(n) for n in range(1, 1 + forwarding.MAX_REFUSED_IN_A_ROW)]))
    world.pump(1.0)
    shown = world.show(target["id"])
    assert shown["status"] == "retrying" and shown["rejected_count"] == 0
    assert shown["pending_statements"] == forwarding.MAX_REFUSED_IN_A_ROW
    assert "accepted none of them" in shown["last_error"]
    after = world.store([statement(99)])  # a statement the target takes: the refused ones were the problem
    world.pump(5.0)
    shown = world.show(target["id"])
    assert shown["rejected_count"] == forwarding.MAX_REFUSED_IN_A_ROW and shown["pending_statements"] == 0
    assert fake_lrs.accepted_ids()[-1] == after[0]


def test_filters_pick_what_is_sent_and_the_cursor_passes_the_rest(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs, verbs=[COMPLETED], activity_prefixes=["https://courses.example.org/"])
    ids = world.store(
        [
            statement(0),
            statement(1, verb=EXPERIENCED),
            statement(2, activity="https://elsewhere.example.org/a"),
            statement(3),
        ]
    )
    world.pump()
    assert fake_lrs.accepted_ids() == [ids[0], ids[3]]
    only_filtered = world.store([statement(4, verb=EXPERIENCED)])
    world.pump(1.0)
    assert len(fake_lrs.posts) == 1  # nothing to send: no POST at all
    shown = world.show(target["id"])
    assert shown["filtered_count"] == 3 and shown["forwarded_count"] == 2 and shown["pending_statements"] == 0
    assert only_filtered[0] not in fake_lrs.accepted_ids()


def test_history_is_sent_only_when_asked(world: World, fake_lrs: FakeLrs) -> None:
    old = world.store([statement(n) for n in range(3)])
    from_now = world.target(fake_lrs)
    assert from_now["cursor_seq"] > 0 and from_now["pending_statements"] == 0
    world.pump()
    assert fake_lrs.posts == []
    other = FakeLrs().start()
    try:
        everything = world.target(other, forward_existing=True)
        assert everything["cursor_seq"] == 0 and everything["pending_statements"] == 3
        world.pump()
        assert other.accepted_ids() == old
    finally:
        other.stop()


def test_a_disabled_target_keeps_its_cursor_and_resumes(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs, enabled=False)
    ids = world.store([statement(n) for n in range(3)])
    world.pump(5.0)
    assert fake_lrs.posts == [] and world.show(target["id"])["status"] == "disabled"
    forwarding_targets.update_target(world.inst, world.tenant, target["id"], enabled=True)
    world.pump()
    assert fake_lrs.accepted_ids() == ids


def test_changing_the_credentials_makes_the_retry_due_at_once(world: World, fake_lrs: FakeLrs) -> None:
    fake_lrs.respond = lambda n, batch: 401 if n == 1 else 200
    target = world.target(fake_lrs, password="wrong")
    ids = world.store([statement(0)])
    world.pump()
    assert world.show(target["id"])["last_status_code"] == 401
    forwarding_targets.update_target(world.inst, world.tenant, target["id"], password="right")
    world.pump()  # the clock has not moved: the retry was made due by the change
    assert fake_lrs.accepted_ids() == ids
    assert fake_lrs.posts[-1].headers["authorization"] == "Basic " + base64.b64encode(b"key:right").decode()


def test_enabling_a_retrying_target_retries_it_now(world: World, fake_lrs: FakeLrs) -> None:
    fake_lrs.respond = lambda n, batch: 503 if n == 1 else 200
    target = world.target(fake_lrs)
    ids = world.store([statement(0)])
    world.pump()
    assert world.show(target["id"])["status"] == "retrying"
    forwarding_targets.update_target(world.inst, world.tenant, target["id"], enabled=True)
    world.pump()  # the clock has not moved
    assert fake_lrs.accepted_ids() == ids


def test_forwarding_survives_a_restart(config: Config, clock: FixedClock, fake_lrs: FakeLrs) -> None:
    fake_lrs.respond = lambda n, batch: 503 if n == 1 else 200
    inst = Instance(config, clock)
    tenant = create_tenant(inst, "Acme")
    first = World(inst, clock, tenant)
    target = first.target(fake_lrs)
    ids = first.store([statement(n) for n in range(3)])
    first.pump()
    inst.close()  # the process ends with the retry queued
    again = Instance(config, clock)
    try:
        second = World(again, clock, get_tenant(again, tenant.id))
        second.pump(600.0)
        assert fake_lrs.accepted_ids() == ids
        assert second.show(target["id"])["forwarded_count"] == 3
    finally:
        again.close()


def test_without_the_allow_list_the_guard_refuses_loopback(
    config: Config, clock: FixedClock, fake_lrs: FakeLrs
) -> None:
    inst = Instance(dataclasses.replace(config, outbound_allow=()), clock)
    try:
        tenant = create_tenant(inst, "Acme")
        with pytest.raises(ValidationFailed):
            forwarding_targets.create_target(inst, tenant, endpoint=fake_lrs.endpoint)
        # A name that resolves to loopback passes the store-time check; the attempt is refused.
        made = forwarding_targets.create_target(inst, tenant, endpoint=f"http://lrs.test.invalid:{fake_lrs.port}/xapi/")
        world = World(inst, clock, tenant)
        world.store([statement(0)])
        world.pump()
        failed = world.log(made["id"], outcome="failed")
        assert failed and failed[0]["error"] == outbound.NOT_PERMITTED
        assert fake_lrs.posts == []
    finally:
        inst.close()


def test_finished_forwarding_jobs_are_purged_after_an_hour(world: World, fake_lrs: FakeLrs) -> None:
    world.target(fake_lrs)
    world.store([statement(0)])
    world.pump()
    done = world.inst.registry.read_sync(
        lambda c: list(
            c.execute("SELECT count(*) FROM jobs WHERE kind = ? AND status = 'done'", (forwarding_targets.FORWARD_JOB,))
        )
    )[0][0]
    assert done >= 1
    assert forwarding.purge_jobs(world.inst) == 0  # not an hour old yet
    world.clock.advance(3601.0)
    assert forwarding.purge_jobs(world.inst) == done


def test_deleting_a_target_deletes_its_log(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs)
    world.store([statement(0)])
    world.pump()
    forwarding_targets.delete_target(world.inst, world.tenant, target["id"])
    with pytest.raises(NotFound):
        world.log(target["id"])
    count = world.inst.tenant_db(world.tenant.id).read_sync(
        lambda c: list(c.execute("SELECT count(*) FROM xapi_forwarding_log"))[0][0]
    )
    assert count == 0


# -- routes --------------------------------------------------------------------------------------------------


@pytest.fixture
def api(config: Config, clock: FixedClock) -> Iterator[TestClient]:
    with make_api(config, clock) as client:
        yield client


def test_routes_create_show_update_log_delete(api: TestClient, acme: TenantKey, fake_lrs: FakeLrs) -> None:
    body = {
        "endpoint": fake_lrs.endpoint,
        "username": "key",
        "password": "secret",
        "version": "2.0.0",
        "filters": {"verbs": [COMPLETED]},
        "name": "Company LRS",
    }
    response = api.post(FWD, json=body, headers=acme.headers)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["id"].startswith("fwd_") and made["has_password"] and "password" not in made
    assert made["filters"] == {"verbs": [COMPLETED], "activity_prefixes": []} and made["version"] == "2.0.0"
    assert "secret" not in api.get(f"{FWD}/{made['id']}", headers=acme.headers).text
    listed = api.get(FWD, headers=acme.headers).json()
    assert [t["id"] for t in listed["data"]] == [made["id"]] and listed["next_cursor"] is None
    patched = api.patch(
        f"{FWD}/{made['id']}",
        json={"enabled": False, "filters": {"activity_prefixes": ["https://c/"]}},
        headers=acme.headers,
    ).json()
    assert patched["status"] == "disabled"
    assert patched["filters"] == {"verbs": [COMPLETED], "activity_prefixes": ["https://c/"]}
    log = api.get(f"{FWD}/{made['id']}/log", headers=acme.headers).json()
    assert log == {"data": [], "next_cursor": None}
    assert api.delete(f"{FWD}/{made['id']}", headers=acme.headers).status_code == 204
    assert_error(api.get(f"{FWD}/{made['id']}", headers=acme.headers), 404, "NOT_FOUND")


def test_route_validation(api: TestClient, acme: TenantKey, fake_lrs: FakeLrs) -> None:
    for body, field_name in (
        ({"endpoint": "http://10.1.2.3/xapi/"}, "endpoint"),
        ({"endpoint": fake_lrs.endpoint, "version": "0.95"}, "version"),
        ({"endpoint": fake_lrs.endpoint, "filters": {"verbs": ["completed"]}}, "filters.verbs"),
    ):
        error = assert_error(api.post(FWD, json=body, headers=acme.headers), 422, "VALIDATION_ERROR")
        assert error["details"]["errors"][0]["field"] == field_name
    assert_error(
        api.post(FWD, json={"endpoint": fake_lrs.endpoint, "x": 1}, headers=acme.headers), 422, "VALIDATION_ERROR"
    )
    made = api.post(FWD, json={"endpoint": fake_lrs.endpoint}, headers=acme.headers).json()
    bad = api.get(f"{FWD}/{made['id']}/log", params={"outcome": "lost"}, headers=acme.headers)
    assert_error(bad, 422, "VALIDATION_ERROR")


def test_routes_never_reach_another_tenants_targets(
    api: TestClient, acme: TenantKey, globex: TenantKey, fake_lrs: FakeLrs
) -> None:
    theirs = api.post(FWD, json={"endpoint": fake_lrs.endpoint}, headers=globex.headers).json()
    assert api.get(FWD, headers=acme.headers).json()["data"] == []
    for response in (
        api.get(f"{FWD}/{theirs['id']}", headers=acme.headers),
        api.patch(f"{FWD}/{theirs['id']}", json={"enabled": False}, headers=acme.headers),
        api.delete(f"{FWD}/{theirs['id']}", headers=acme.headers),
        api.get(f"{FWD}/{theirs['id']}/log", headers=acme.headers),
    ):
        assert_error(response, 404, "NOT_FOUND")
    assert api.get(f"{FWD}/{theirs['id']}", headers=globex.headers).json()["enabled"] is True


def test_the_log_pages_newest_first(world: World, fake_lrs: FakeLrs) -> None:
    target = world.target(fake_lrs)
    for n in range(5):
        world.store([statement(n)])
        world.pump(1.0)
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = forwarding_log.list_log(world.inst, world.tenant, target["id"], limit=2, cursor=cursor)
        seen += [e["first_seq"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
