"""Webhooks over the real app and a real receiving HTTP server on 127.0.0.1.

The app runs on a FixedClock with its scheduler stopped: `pump` moves time on and runs every sweep and
due job, so retries hours apart take no real time. The clock starts at the real time, so the
`standardwebhooks` library (which checks the timestamp against the wall clock) verifies signatures.
The helpers here (app, clock, runtime learner) are shared by the usage, rate-limit and analytics tests.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from standardwebhooks.webhooks import Webhook

from appliance.clock import FixedClock, parse_rfc3339
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.delivery.events import emit
from appliance.storage.sqlite.connection import rows
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import assert_error, package_12, upload_ready
from tests.services.delivery.test_outbound import Listener
from tests.services.delivery.test_webhooks import Receiver

HOOKS = "/api/v1/webhooks"
SESSIONS = "/api/v1/sessions"


LOOPBACK_ALLOW = ("127.0.0.1/32",)

# -- shared helpers ----------------------------------------------------------------------------------------


@pytest.fixture
def config(config: Config) -> Config:
    """The test's receivers listen on 127.0.0.1: the allow-list admits it (off, the guard refuses it)."""
    return dataclasses.replace(config, outbound_allow=LOOPBACK_ALLOW)


@pytest.fixture
def clock() -> FixedClock:
    """A fixed clock at the real time (whole seconds), moved on only by the test."""
    return FixedClock(float(int(time.time())))


def pump(client: TestClient, clock: FixedClock, seconds: float = 1.0) -> None:
    """Move time on by `seconds`, then run the periodic sweeps and every job that is due."""
    clock.advance(seconds)
    client.blocking_portal.call(client.app.state.scheduler.drain)


def pump_for(client: TestClient, clock: FixedClock, hours: float, step: float = 600.0) -> None:
    """Pump in steps for `hours` of clock time."""
    for _ in range(int(hours * 3600 / step)):
        pump(client, clock, step)


class Learner:
    """Drives a session through the player's runtime endpoints, as player.js does."""

    def __init__(self, client: TestClient, session: dict[str, Any]) -> None:
        url = session["launch_url"]
        self.client = client
        self.path = url[url.index("/player/") :]
        self.seq = 0
        self.version: int | None = None
        self.activity: str | None = None

    def launch(self) -> Learner:
        response = self.client.post(f"{self.path}/launch")
        assert response.status_code == 200, response.text
        self.version = response.json()["version"]
        self.activity = response.json()["delivery"]["activity"]
        return self

    def commit(self, changes: dict[str, str], *, terminate: bool = False) -> dict[str, Any]:
        self.seq += 1
        body = {
            "client_id": "page-1",
            "seq": self.seq,
            "activity": self.activity,
            "version": self.version,
            "changes": changes,
            "terminate": terminate,
        }
        response = self.client.post(f"{self.path}/commit", json=body)
        assert response.status_code == 200, response.text
        self.version = response.json()["version"]
        return response.json()


def new_session(client: TestClient, who: TenantKey, package_id: str, learner: str = "learner-1") -> dict[str, Any]:
    response = client.post(SESSIONS, json={"package_id": package_id, "learner": {"id": learner}}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


def create_hook(client: TestClient, who: TenantKey, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = client.post(HOOKS, json={"url": url, "events": events or ["session.*"]}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: TestClient, who: TenantKey, hook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{HOOKS}/{hook_id}/deliveries", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


# -- endpoints -----------------------------------------------------------------------------------------------


def test_create_shows_the_secret_once(api: TestClient, acme: TenantKey) -> None:
    response = api.post(
        HOOKS,
        json={"url": "https://example.org/hook", "events": ["session.completed", "package.*"], "description": "LMS"},
        headers=acme.headers,
    )
    assert response.status_code == 201, response.text
    hook = response.json()
    assert hook["id"].startswith("whk_")
    assert hook["secret"].startswith("whsec_")
    assert hook["events"] == ["session.completed", "package.*"]
    assert (hook["enabled"], hook["disabled_reason"], hook["description"]) == (True, None, "LMS")
    shown = api.get(f"{HOOKS}/{hook['id']}", headers=acme.headers).json()
    assert "secret" not in shown
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    listed = api.get(HOOKS, headers=acme.headers).json()
    assert listed == {"data": [shown], "next_cursor": None}
    assert all("secret" not in h for h in listed["data"])


def test_create_validates(api: TestClient, acme: TenantKey) -> None:
    for body in (
        {"url": "ftp://example.org", "events": ["*"]},
        {"url": "https://example.org", "events": []},
        {"url": "https://example.org", "events": ["session.started"]},
        {"url": "https://example.org"},
        {"url": "https://example.org", "events": ["*"], "secret": "mine"},
    ):
        assert_error(api.post(HOOKS, json=body, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert api.get(HOOKS, headers=acme.headers).json()["data"] == []


def test_update_disable_enable_and_delete(api: TestClient, acme: TenantKey) -> None:
    hook = create_hook(api, acme, "https://example.org/a")
    path = f"{HOOKS}/{hook['id']}"
    changed = api.patch(path, json={"url": "https://example.org/b", "events": ["*"]}, headers=acme.headers).json()
    assert (changed["url"], changed["events"], changed["enabled"]) == ("https://example.org/b", ["*"], True)
    off = api.patch(path, json={"enabled": False}, headers=acme.headers).json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled by request")
    assert_error(api.post(f"{path}/test", headers=acme.headers), 422, "VALIDATION_ERROR")
    on = api.patch(path, json={"enabled": True}, headers=acme.headers).json()
    assert (on["enabled"], on["disabled_reason"]) == (True, None)
    assert_error(api.patch(path, json={"events": ["nope"]}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert api.delete(path, headers=acme.headers).status_code == 204
    assert_error(api.get(path, headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.delete(path, headers=acme.headers), 404, "NOT_FOUND")


def test_another_tenants_webhook_is_not_found(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    hook = create_hook(api, acme, "https://example.org/a")
    for method, suffix in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test"), ("GET", "/deliveries")):
        response = api.request(
            method, f"{HOOKS}/{hook['id']}{suffix}", json={} if method == "PATCH" else None, headers=globex.headers
        )
        assert_error(response, 404, "NOT_FOUND")
    assert api.get(HOOKS, headers=globex.headers).json()["data"] == []


# -- delivery ------------------------------------------------------------------------------------------------


def test_events_are_delivered_signed_per_standard_webhooks(
    api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock
) -> None:
    package = upload_ready(api, acme, package_12())
    hook = create_hook(api, acme, receiver.url, ["session.*"])
    session = new_session(api, acme, package["id"])
    pump(api, clock)
    [got] = receiver.received
    event = Webhook(hook["secret"]).verify(got.body, got.headers)  # raises unless the signature is right
    assert event == {
        "id": got.headers["webhook-id"],
        "type": "session.created",
        "created_at": event["created_at"],
        "tenant_id": acme.tenant_id,
        "data": {
            "session_id": session["id"],
            "package_id": package["id"],
            "package_version": 1,
            "learner_id": "learner-1",
        },
    }
    assert event["id"].startswith("evt_")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("scorm-appliance-webhooks/")
    [delivery] = deliveries(api, acme, hook["id"])
    assert delivery["id"].startswith("dlv_")
    assert (delivery["status"], delivery["event_id"], delivery["event_type"]) == (
        "delivered",
        event["id"],
        "session.created",
    )
    assert (delivery["attempt_count"], delivery["last_status_code"], delivery["next_retry_at"]) == (1, 200, None)
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0
    # package.ready came before the endpoint existed, and is outside its filter anyway: not sent.
    detail = api.get(f"{HOOKS}/{hook['id']}/deliveries/{delivery['id']}", headers=acme.headers).json()
    assert detail["payload"] == event


def test_results_bearing_events_carry_the_final_values(
    api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock
) -> None:
    package = upload_ready(api, acme, package_12())
    create_hook(api, acme, receiver.url, ["session.passed"])
    learner = Learner(api, new_session(api, acme, package["id"])).launch()
    learner.commit(
        {"cmi.core.lesson_status": "passed", "cmi.core.score.raw": "85", "cmi.core.session_time": "00:10:00"},
        terminate=True,
    )
    pump(api, clock)
    [got] = receiver.received
    data = got.event["data"]
    assert got.event["type"] == "session.passed"
    assert data["session"]["status"] == "passed"
    assert data["session"]["score"]["raw"] == 85
    assert data["session"]["total_time_seconds"] == 600
    assert data["session"]["completion_status"] == "completed"


def test_a_failing_receiver_that_recovers_gets_the_event_once(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    receiver = Receiver(respond=lambda n, event: 503 if n <= 2 else 200).start()
    try:
        package = upload_ready(api, acme, package_12())
        hook = create_hook(api, acme, receiver.url, ["session.created"])
        new_session(api, acme, package["id"])
        pump(api, clock)
        assert [r.status for r in receiver.received] == [503]
        [pending] = deliveries(api, acme, hook["id"])
        assert pending["status"] == "pending"
        assert pending["last_status_code"] == 503 and pending["last_error"] == "HTTP 503"
        assert pending["next_retry_at"] is not None
        assert pending["attempts"][0]["response_body"] == "receiver says no"
        pump(api, clock, 20)  # the first retry comes 24-36 s later: not yet
        assert len(receiver.received) == 1
        pump(api, clock, 20)
        assert [r.status for r in receiver.received] == [503, 503]
        pump_for(api, clock, hours=48)  # through every later retry time: nothing more is sent
        assert [r.status for r in receiver.received] == [503, 503, 200]
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message, three attempts
        assert len({r.body for r in receiver.received}) == 1
        [done] = deliveries(api, acme, hook["id"])
        assert (done["status"], done["attempt_count"]) == ("delivered", 3)
        assert [a["status_code"] for a in done["attempts"]] == [503, 503, 200]
        assert api.get(f"{HOOKS}/{hook['id']}", headers=acme.headers).json()["failing_since"] is None
    finally:
        receiver.stop()


def test_a_receiver_down_across_an_appliance_restart_still_gets_the_event(
    config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    receiver = Receiver().start()
    receiver.stop()  # the port is closed: connections are refused
    with make_api(config, clock) as first:
        package = upload_ready(first, acme, package_12())
        hook = create_hook(first, acme, receiver.url, ["session.created"])
        new_session(first, acme, package["id"])
        pump(first, clock)
        [pending] = deliveries(first, acme, hook["id"])
        assert pending["status"] == "pending" and pending["attempt_count"] == 1
        assert pending["last_status_code"] is None and pending["last_error"] == "could not connect to the endpoint"
    # The appliance is stopped; the receiver comes back; the appliance starts again.
    receiver.start()
    try:
        with make_api(config, clock) as second:
            pump(second, clock, 60)
            [got] = receiver.received
            assert got.event["type"] == "session.created"
            assert Webhook(hook["secret"]).verify(got.body, got.headers)["id"] == pending["event_id"]
            [done] = deliveries(second, acme, hook["id"])
            assert (done["status"], done["attempt_count"]) == ("delivered", 2)
            pump_for(second, clock, hours=30)
            assert len(receiver.received) == 1
    finally:
        receiver.stop()


def test_a_sessions_events_arrive_in_the_order_they_happened(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    failures = {"n": 0}

    def respond(n: int, event: dict[str, Any]) -> int:
        # The first session's `created` fails three times; everything else is accepted.
        if event["type"] == "session.created" and event["data"]["learner_id"] == "slow" and failures["n"] < 3:
            failures["n"] += 1
            return 500
        return 200

    receiver = Receiver(respond=respond).start()
    try:
        package = upload_ready(api, acme, package_12())
        create_hook(api, acme, receiver.url)
        slow = new_session(api, acme, package["id"], learner="slow")
        learner = Learner(api, slow).launch()
        learner.commit({"cmi.core.lesson_status": "passed"}, terminate=True)
        quick = new_session(api, acme, package["id"], learner="quick")
        pump(api, clock)
        # The other session's event is not held up by the first session's failing one.
        assert [(r.event["type"], r.status) for r in receiver.received] == [
            ("session.created", 500),
            ("session.created", 200),
        ]
        assert receiver.received[1].event["data"]["session_id"] == quick["id"]
        pump_for(api, clock, hours=2, step=30)
        slow_events = [
            (r.event["type"], r.status) for r in receiver.received if r.event["data"].get("session_id") == slow["id"]
        ]
        # `passed` was not even attempted until `created` had been accepted.
        assert slow_events == [
            ("session.created", 500),
            ("session.created", 500),
            ("session.created", 500),
            ("session.created", 200),
            ("session.passed", 200),
        ]
    finally:
        receiver.stop()


def test_an_endpoint_that_keeps_failing_is_disabled_and_says_why(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    state = {"up": False}
    receiver = Receiver(respond=lambda n, event: 200 if state["up"] else 500).start()
    try:
        package = upload_ready(api, acme, package_12())
        hook = create_hook(api, acme, receiver.url, ["session.created"])
        new_session(api, acme, package["id"])
        pump(api, clock)
        pump_for(api, clock, hours=19, step=300)
        assert api.get(f"{HOOKS}/{hook['id']}", headers=acme.headers).json()["enabled"] is True
        pump_for(api, clock, hours=13, step=300)
        [failed] = deliveries(api, acme, hook["id"])
        assert (failed["status"], failed["attempt_count"], failed["next_retry_at"]) == ("failed", 10, None)
        assert len(receiver.received) == 10
        first, last = failed["attempts"][0]["at"], failed["attempts"][-1]["at"]
        assert 20 * 3600 < _seconds(last) - _seconds(first) < 31 * 3600  # retried for about a day
        shown = api.get(f"{HOOKS}/{hook['id']}", headers=acme.headers).json()
        assert shown["enabled"] is False
        assert shown["disabled_reason"].startswith("disabled automatically: every delivery attempt failed")
        assert "HTTP 500" in shown["disabled_reason"]
        # A disabled endpoint gets no new deliveries.
        new_session(api, acme, package["id"], learner="another")
        pump(api, clock, 60)
        assert len(deliveries(api, acme, hook["id"])) == 1
        # Re-enabled, a manual retry delivers the failed event.
        state["up"] = True
        on = api.patch(f"{HOOKS}/{hook['id']}", json={"enabled": True}, headers=acme.headers).json()
        assert (on["enabled"], on["disabled_reason"], on["failing_since"]) == (True, None, None)
        retried = api.post(f"{HOOKS}/{hook['id']}/deliveries/{failed['id']}/retry", headers=acme.headers)
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "pending"
        pump(api, clock)
        [done] = deliveries(api, acme, hook["id"])
        assert (done["status"], done["attempt_count"]) == ("delivered", 11)
        assert receiver.received[-1].status == 200
    finally:
        receiver.stop()


def test_ping_and_manual_redelivery(api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock) -> None:
    hook = create_hook(api, acme, receiver.url, ["package.ready"])
    response = api.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["event_type"], queued["status"]) == ("ping", "pending")
    pump(api, clock)
    [ping] = receiver.received
    assert Webhook(hook["secret"]).verify(ping.body, ping.headers)["type"] == "ping"
    assert ping.event["data"] == {"webhook_id": hook["id"]}
    again = api.post(f"{HOOKS}/{hook['id']}/deliveries/{queued['id']}/retry", headers=acme.headers)
    assert again.status_code == 202
    pump(api, clock)
    assert [r.headers["webhook-id"] for r in receiver.received] == [ping.headers["webhook-id"]] * 2
    [log] = deliveries(api, acme, hook["id"])
    assert (log["status"], log["attempt_count"]) == ("delivered", 2)
    assert_error(api.post(f"{HOOKS}/{hook['id']}/deliveries/dlv_nope/retry", headers=acme.headers), 404, "NOT_FOUND")


def test_delivery_log_pages_newest_first_and_filters(
    api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock
) -> None:
    hook = create_hook(api, acme, receiver.url, ["package.ready"])
    for _ in range(3):
        api.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
        clock.advance(1)
    page = api.get(f"{HOOKS}/{hook['id']}/deliveries?limit=2", headers=acme.headers).json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = api.get(f"{HOOKS}/{hook['id']}/deliveries?limit=2&cursor={page['next_cursor']}", headers=acme.headers).json()
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    created = [d["created_at"] for d in page["data"] + rest["data"]]
    assert created == sorted(created, reverse=True)
    assert len(api.get(f"{HOOKS}/{hook['id']}/deliveries?status=pending", headers=acme.headers).json()["data"]) == 3
    pump(api, clock)
    assert api.get(f"{HOOKS}/{hook['id']}/deliveries?status=pending", headers=acme.headers).json()["data"] == []
    assert_error(api.get(f"{HOOKS}/{hook['id']}/deliveries?status=odd", headers=acme.headers), 422, "VALIDATION_ERROR")


def test_filters_and_several_endpoints(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    everything, packages_only = Receiver().start(), Receiver().start()
    try:
        create_hook(api, acme, everything.url, ["*"])
        create_hook(api, acme, packages_only.url, ["package.ready"])
        package = upload_ready(api, acme, package_12())
        new_session(api, acme, package["id"])
        pump(api, clock)
        assert [r.event["type"] for r in everything.received] == ["package.ready", "session.created"]
        assert [r.event["type"] for r in packages_only.received] == ["package.ready"]
        assert packages_only.received[0].event["data"]["package_id"] == package["id"]
    finally:
        everything.stop()
        packages_only.stop()


def test_events_are_dispatched_once_and_deleting_an_endpoint_stops_its_deliveries(
    config: Config, api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    receiver = Receiver(respond=lambda n, event: 500).start()
    try:
        package = upload_ready(api, acme, package_12())
        hook = create_hook(api, acme, receiver.url, ["session.created"])
        new_session(api, acme, package["id"])
        pump(api, clock)
        pump(api, clock)
        assert len(receiver.received) == 1
        inst = Instance(config)
        try:
            events = inst.tenant_db(acme.tenant_id).read_sync(lambda c: rows(c, "SELECT * FROM events ORDER BY seq"))
        finally:
            inst.close()
        assert all(e["dispatched_at"] is not None for e in events)
        assert api.delete(f"{HOOKS}/{hook['id']}", headers=acme.headers).status_code == 204
        pump_for(api, clock, hours=30, step=3600)
        assert len(receiver.received) == 1
    finally:
        receiver.stop()


def _seconds(stamp: str) -> float:
    return parse_rfc3339(stamp)


def test_no_event_is_sent_for_a_change_that_rolled_back(
    api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock
) -> None:
    create_hook(api, acme, receiver.url, ["*"])
    db = api.app.state.instance.tenant_db(acme.tenant_id)

    def failing_change(conn: Any) -> None:
        emit(conn, "package.ready", {"package_id": "pkg_rolled_back"}, now=clock.now(), subject_id="pkg_rolled_back")
        raise RuntimeError("the change fails after writing its event")

    with pytest.raises(RuntimeError):
        db.write_sync(failing_change)
    db.write_sync(
        lambda c: emit(c, "package.ready", {"package_id": "pkg_kept"}, now=clock.now(), subject_id="pkg_kept")
    )
    pump(api, clock)
    assert [r.event["data"]["package_id"] for r in receiver.received] == ["pkg_kept"]


def test_openapi_lists_the_webhook_routes(api: TestClient) -> None:
    paths = json.loads(api.get("/api/v1/openapi.json").text)["paths"]
    for path in (
        "/api/v1/webhooks",
        "/api/v1/webhooks/{webhook_id}",
        "/api/v1/webhooks/{webhook_id}/test",
        "/api/v1/webhooks/{webhook_id}/deliveries",
        "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    ):
        assert path in paths, path


def test_a_receiver_that_does_not_answer_in_time_counts_as_a_failure(
    config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    def slow(n: int, event: dict[str, Any]) -> int:
        if n == 1:
            time.sleep(1.0)
        return 200

    receiver = Receiver(respond=slow).start()
    try:
        with make_api(dataclasses.replace(config, webhook_timeout_seconds=0.2), clock) as api:
            hook = create_hook(api, acme, receiver.url, ["ping"])
            api.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
            pump(api, clock)
            [pending] = deliveries(api, acme, hook["id"])
            assert (pending["status"], pending["last_status_code"]) == ("pending", None)
            assert pending["last_error"] == "no answer within 0.2 s"
            pump(api, clock, 60)
            [done] = deliveries(api, acme, hook["id"])
            assert (done["status"], done["attempt_count"]) == ("delivered", 2)
    finally:
        receiver.stop()


# -- outbound guard (appliance.services.delivery.outbound) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://0x7f000001/hook",
        "http://127.0.0.2:8080/hook",  # loopback, but outside the allowed 127.0.0.1/32
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]:8080/hook",
        "https://example.org:6/hook",
        "file:///etc/passwd",
    ],
)
def test_internal_urls_are_refused_on_create_and_update(api: TestClient, acme: TenantKey, url: str) -> None:
    body = assert_error(
        api.post(HOOKS, json={"url": url, "events": ["*"]}, headers=acme.headers), 422, "VALIDATION_ERROR"
    )
    assert body["details"]["errors"][0]["field"] == "url"
    hook = create_hook(api, acme, "https://example.org/hook")
    patched = api.patch(f"{HOOKS}/{hook['id']}", json={"url": url}, headers=acme.headers)
    assert_error(patched, 422, "VALIDATION_ERROR")
    assert api.get(f"{HOOKS}/{hook['id']}", headers=acme.headers).json()["url"] == "https://example.org/hook"


def test_a_loopback_listener_is_not_read_through_a_webhook_without_the_allow_list(
    config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    """The review's reproduction: a webhook to an internal service, its test route, the delivery log."""
    internal = Listener(body=b"internal service: secret=hunter2").start()
    url = f"http://127.0.0.1:{internal.port}/admin"
    try:
        with make_api(config, clock) as allowed:  # the allow-list admits 127.0.0.1: the URL is stored
            hook = create_hook(allowed, acme, url, ["ping"])
            assert allowed.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers).status_code == 202
            pump(allowed, clock)
            [delivered] = deliveries(allowed, acme, hook["id"])
            assert delivered["attempts"][0]["response_body"] == "internal service: secret=hunter2"
            assert internal.connections == 1
        # The operator removes the entry (or a URL from before this guard is in the database).
        with make_api(dataclasses.replace(config, outbound_allow=()), clock) as refused:
            assert_error(
                refused.post(HOOKS, json={"url": url, "events": ["*"]}, headers=acme.headers), 422, "VALIDATION_ERROR"
            )
            response = refused.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
            assert response.status_code == 202, response.text
            pump(refused, clock)
            latest = deliveries(refused, acme, hook["id"])[0]
            assert internal.connections == 1  # no new connection: the guard refused before connecting
            assert (latest["status"], latest["last_status_code"]) == ("pending", None)
            assert latest["last_error"] == "the endpoint's host does not resolve to a permitted address"
            assert latest["attempts"][0]["response_body"] is None
    finally:
        internal.stop()


def test_connection_errors_do_not_act_as_a_port_scanner(
    api: TestClient, acme: TenantKey, receiver: Receiver, clock: FixedClock
) -> None:
    closed = Receiver().start()
    closed.stop()  # an admitted address with a closed port: connection refused
    not_tls = f"https://127.0.0.1:{receiver.port}/hook"  # an open port that does not speak TLS
    errors = set()
    for url in (closed.url, not_tls):
        hook = create_hook(api, acme, url, ["ping"])
        api.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
        pump(api, clock)
        [attempt] = deliveries(api, acme, hook["id"])[0]["attempts"]
        assert attempt["status_code"] is None and attempt["response_body"] is None
        errors.add(attempt["error"])
    assert errors == {"could not connect to the endpoint"}
    assert receiver.received == []


def test_the_delivery_log_keeps_a_bounded_sanitised_excerpt(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    noisy = Listener(body=b"\x1b[2Jfake log line\r\n" + b"x" * 5000).start()
    try:
        hook = create_hook(api, acme, f"http://127.0.0.1:{noisy.port}/hook", ["ping"])
        api.post(f"{HOOKS}/{hook['id']}/test", headers=acme.headers)
        pump(api, clock)
        [attempt] = deliveries(api, acme, hook["id"])[0]["attempts"]
        assert attempt["status_code"] == 200
        excerpt = attempt["response_body"]
        assert len(excerpt.encode()) <= 1024 + 2 * 2  # 1 KiB of the answer; two bytes became U+FFFD
        assert excerpt.startswith("\ufffd[2Jfake log line\ufffd\nxxx")
    finally:
        noisy.stop()
