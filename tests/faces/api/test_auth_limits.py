"""Failed authentication per client address: the limit, the block, and who shares an address.

The test client is one address ("testclient"); the last test runs the app under a real uvicorn on
127.0.0.1 and connects from several loopback addresses, as clients on a network would.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import create_app
from appliance.services.tenancy.ratelimit import AuthFailureLimiter
from tests.conftest import TenantKey, backend_config, make_tenant_key
from tests.faces.api.conftest import make_api
from tests.faces.api.test_auth import Idp, bearer
from tests.faces.api.test_packages import assert_error

TENANT = "/api/v1/tenant"
BAD_KEY = {"Authorization": "Bearer sak_nosuchkeybody_nosuchsecret"}


def test_the_20th_failure_blocks_the_address_valid_keys_included(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    for n in range(1, 21):
        assert_error(api.get(TENANT, headers=BAD_KEY), 401, "UNAUTHORIZED")  # the 20th still gets its 401
        if n == 10:
            assert api.get(TENANT, headers=acme.headers).status_code == 200  # a success resets nothing
    blocked = api.get(TENANT, headers=acme.headers)
    body = assert_error(blocked, 429, "RATE_LIMITED")
    assert body["details"] == {"retry_after": 300, "scope": "address"}
    assert blocked.headers["Retry-After"] == "300"
    assert "RateLimit-Limit" not in blocked.headers  # no tenant was looked at
    assert_error(api.get("/api/v1/packages", headers=BAD_KEY), 429, "RATE_LIMITED")
    assert_error(api.get("/api/v1/packages"), 429, "RATE_LIMITED")
    # Learners and unauthenticated routes are not API authentication: they still work.
    assert api.get("/api/v1/health").status_code == 200
    clock.advance(299)
    assert api.get(TENANT, headers=acme.headers).headers["Retry-After"] == "1"
    clock.advance(1)
    assert api.get(TENANT, headers=acme.headers).status_code == 200


def test_bad_jwts_count_and_missing_credentials_do_not(
    api: TestClient, acme: TenantKey, tmp_path: Path, clock: FixedClock
) -> None:
    for _ in range(30):  # no credentials at all: a browser, a health probe, not a guess
        assert_error(api.get(TENANT), 401, "UNAUTHORIZED")
    assert api.get(TENANT, headers=acme.headers).status_code == 200
    forged = Idp(tmp_path).token(org_id="org_nobody")
    for _ in range(10):
        assert_error(api.get(TENANT, headers=bearer("aaa.bbb.ccc")), 401, "UNAUTHORIZED")
        assert_error(api.get(TENANT, headers=bearer(forged)), 401, "UNAUTHORIZED")
    assert_error(api.get(TENANT, headers=acme.headers), 429, "RATE_LIMITED")


def test_failures_are_counted_per_minute(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    for _ in range(19):
        api.get(TENANT, headers={"X-API-Key": "wrong"})
    clock.advance(60)  # a new minute: the count starts again
    for _ in range(19):
        api.get(TENANT, headers={"X-API-Key": "wrong"})
    assert api.get(TENANT, headers=acme.headers).status_code == 200


def test_the_limit_can_be_turned_off(config: Config, acme: TenantKey, clock: FixedClock) -> None:
    with make_api(dataclasses.replace(config, auth_failures_per_minute=0), clock) as api:
        for _ in range(50):
            assert_error(api.get(TENANT, headers=BAD_KEY), 401, "UNAUTHORIZED")
        assert api.get(TENANT, headers=acme.headers).status_code == 200


def test_blocked_addresses_are_forgotten_when_the_block_ends() -> None:
    limiter = AuthFailureLimiter(limit=1, block_seconds=10)
    for n in range(10_050):
        assert limiter.failed(f"10.0.{n // 256}.{n % 256}", 1000.0) == 10
    assert limiter.retry_after("10.0.0.0", 1005.0) == 5
    assert limiter.retry_after("10.0.0.0", 1010.0) is None
    limiter.failed("192.0.2.1", 2000.0)  # past the pruning size: the ended blocks are dropped
    assert len(limiter._blocked) == 1


# -- a real server, clients on several addresses ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, TenantKey]]:
    """The app under uvicorn on 127.0.0.1 (in a thread), 3 failures a minute per address."""
    config = backend_config(tmp_path / "data", auth_failures_per_minute=3)
    key = make_tenant_key(config, "Acme")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def client_from(address: str, url: str) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any of 127.0.0.0/8 works on loopback)."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), trust_env=False)


def test_one_address_blocked_others_not_and_forwarded_for_only_from_a_trusted_proxy(
    served: tuple[str, TenantKey],
) -> None:
    url, key = served
    with client_from("127.0.0.2", url) as guesser, client_from("127.0.0.3", url) as neighbour:
        for _ in range(3):
            assert guesser.get(TENANT, headers=BAD_KEY).status_code == 401
        assert guesser.get(TENANT, headers=key.headers).status_code == 429
        # A client cannot step around its block by claiming another address: 127.0.0.2 is no trusted proxy.
        spoofed = guesser.get(TENANT, headers={**key.headers, "X-Forwarded-For": "198.51.100.7"})
        assert spoofed.status_code == 429
        assert neighbour.get(TENANT, headers=key.headers).status_code == 200
    # A proxy on 127.0.0.1 (uvicorn's default FORWARDED_ALLOW_IPS) passes on the real client addresses.
    with client_from("127.0.0.1", url) as proxy:
        for _ in range(3):
            assert proxy.get(TENANT, headers={**BAD_KEY, "X-Forwarded-For": "198.51.100.8"}).status_code == 401
        assert proxy.get(TENANT, headers={**key.headers, "X-Forwarded-For": "198.51.100.8"}).status_code == 429
        assert proxy.get(TENANT, headers={**key.headers, "X-Forwarded-For": "198.51.100.9"}).status_code == 200
        assert proxy.get(TENANT, headers=key.headers).status_code == 200  # the proxy's own address


def test_bad_lrs_credentials_count_with_the_apis_and_the_lrs_answers_the_block(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    import base64

    basic = {
        "Authorization": "Basic " + base64.b64encode(b"nobody:guess").decode(),
        "X-Experience-API-Version": "1.0.3",
    }
    for _ in range(10):
        assert api.get("/xapi/statements", headers=basic).status_code == 401
    for _ in range(10):  # one count per address for the API's keys and the LRS's credentials
        assert_error(api.get(TENANT, headers=BAD_KEY), 401, "UNAUTHORIZED")
    assert_error(api.get(TENANT, headers=acme.headers), 429, "RATE_LIMITED")
    blocked = api.get("/xapi/statements", headers=basic)
    assert blocked.status_code == 429
    assert blocked.json() == {
        "error": "too many failed authentication attempts from this address; try again later",
        "code": "RATE_LIMITED",
        "details": {"retry_after": 300, "scope": "address"},
    }
    assert blocked.headers["Retry-After"] == "300" and blocked.headers["X-Experience-API-Version"] == "1.0.3"
    assert api.get("/xapi/about").status_code == 200  # About answers anyone, blocked or not
    clock.advance(300)
    assert api.get("/xapi/statements", headers=basic).status_code == 401
