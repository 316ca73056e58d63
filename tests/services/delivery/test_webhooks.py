"""Webhook signing, retry schedule and filters, and a real HTTP receiver that the API tests share."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from appliance.errors import ValidationFailed
from appliance.services.delivery import outbound, webhook_attempts, webhook_signing, webhooks
from appliance.services.delivery.events import EVENT_TYPES

# -- a real receiving server -------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers what `respond` says.

    `respond(request_number, event)` returns the status code (default: always 200). `stop()` closes the
    port, so deliveries fail with "connection refused" until `start()` opens the same port again.
    """

    respond: Callable[[int, dict[str, Any]], int] = lambda n, event: 200
    port: int = 0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver._seen += 1
                    number = receiver._seen
                status = receiver.respond(number, json.loads(body))  # may sleep: not under the lock
                with receiver._lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"receiver says no")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the appliance gave up waiting (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]


# -- signing -------------------------------------------------------------------------------------------------


def test_secret_has_the_standard_webhooks_form() -> None:
    secret = webhook_signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(__import__("base64").b64decode(secret.removeprefix("whsec_"))) == 32
    assert webhook_signing.new_secret() != secret


def test_signature_verifies_with_the_standardwebhooks_library() -> None:
    secret = webhook_signing.new_secret()
    body = json.dumps({"id": "evt_1", "type": "ping", "data": {"x": "ü"}}, separators=(",", ":")).encode()
    now = int(time.time())
    headers = webhook_signing.signed_headers(secret, "evt_1", now, body)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    # The library's own signature is the same string.
    assert (
        Webhook(secret).sign("evt_1", datetime.fromtimestamp(now, tz=UTC), body.decode())
        == headers["webhook-signature"]
    )


def test_a_changed_body_or_other_secret_fails_verification() -> None:
    secret = webhook_signing.new_secret()
    body = b'{"id":"evt_1"}'
    headers = webhook_signing.signed_headers(secret, "evt_1", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"id":"evt_2"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_signing.new_secret()).verify(body, headers)


# -- retries --------------------------------------------------------------------------------------------------


def test_retry_delays_grow_exponentially_with_jitter_and_span_about_a_day() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate([30, 90, 270, 810, 2430, 7290, 21870, 28800, 28800, 28800], start=1):
        delays = [webhook_attempts.retry_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0.8 * base and max(delays) <= 1.2 * base
        assert len({round(d, 6) for d in delays}) > 100  # jitter: retries of many deliveries spread out
    # Nine retries between ten attempts: about a day in all, even at the extremes of the jitter.
    total = sum(webhook_attempts.retry_delay(n, random.Random(1)) for n in range(1, 10))
    assert 20 * 3600 < total < 30 * 3600
    assert sum(webhook_attempts.RETRY_MAX_SECONDS if n > 7 else 30 * 3 ** (n - 1) for n in range(1, 10)) == 90_390


# -- filters --------------------------------------------------------------------------------------------------


def test_filters_match_exact_types_families_and_everything() -> None:
    assert webhooks.matches(["session.completed"], "session.completed")
    assert not webhooks.matches(["session.completed"], "session.created")
    assert webhooks.matches(["session.*"], "session.expired")
    assert not webhooks.matches(["session.*"], "package.ready")
    assert webhooks.matches(["*"], "quota.warning")
    assert webhooks.matches(["package.ready", "quota.*"], "quota.exceeded")


def test_filter_validation() -> None:
    assert webhooks.check_filters(["session.*", "package.ready", "session.*"]) == ["session.*", "package.ready"]
    assert webhooks.check_filters(["*"]) == ["*"]
    for bad in ([], ["session.started"], ["sessions.*"], ["session"], ["*.*"]):
        with pytest.raises(ValidationFailed) as caught:
            webhooks.check_filters(bad)
        assert caught.value.details["event_types"] == sorted(EVENT_TYPES)


def test_url_validation() -> None:
    assert webhooks.check_url(" https://example.org/hooks ") == "https://example.org/hooks"
    assert webhooks.check_url("http://93.184.215.14:8080/x") == "http://93.184.215.14:8080/x"
    for bad in ("ftp://example.org", "example.org/hook", "https://", "http:///path", "https://x/" + "a" * 3000):
        with pytest.raises(ValidationFailed):
            webhooks.check_url(bad)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]:8080/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
        "http://[fc00::1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0:8080/",
        "http://localhost:8080/",
        "https://example.org:22/",
    ],
)
def test_internal_urls_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        webhooks.check_url(url)
    assert caught.value.details["errors"][0]["field"] == "url"
    assert webhooks.check_url("http://10.0.0.1/", outbound.Policy.parse(["10.0.0.0/8"])) == "http://10.0.0.1/"


def test_receiver_helper_records_and_answers() -> None:
    receiver = Receiver(respond=lambda n, event: 500 if n == 1 else 204).start()
    try:
        with httpx.Client() as client:
            assert client.post(receiver.url, json={"type": "ping"}).status_code == 500
            assert client.post(receiver.url, json={"type": "ping"}).status_code == 204
        assert [r.status for r in receiver.received] == [500, 204]
        assert len(receiver.accepted()) == 1
    finally:
        receiver.stop()
