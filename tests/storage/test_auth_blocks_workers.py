"""Two real `scorm-appliance serve` workers on one data directory and the real Redis on 127.0.0.1:6379:
failed authentications spread over both are blocked at the count of one worker — API keys, JWTs and
LRS Basic credentials together, console logins apart — and with Redis down each worker blocks in its
own memory, never answering 500.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.config import Config
from appliance.faces.console.auth import ADDRESS_FAILURES_PER_MINUTE
from appliance.instance import Instance
from appliance.services.tenancy import admins
from tests.e2e.conftest import ServerProcess
from tests.storage.test_ratelimit_redis import clear_of_minute_end
from tests.storage.test_redis_state import closed_port_url, redis_prefix_url

LIMIT = 6  # auth_failures_per_minute of the workers
TENANT = "/api/v1/tenant"
STATEMENTS = "/xapi/statements"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Pair:
    """Two servers on one data directory with the same `redis_url`, tenant Acme's key and a console admin."""

    def __init__(self, data_dir: Path, redis_url: str) -> None:
        env = {"SCORM_APPLIANCE_REDIS_URL": redis_url, "SCORM_APPLIANCE_AUTH_FAILURES_PER_MINUTE": str(LIMIT)}
        self.a = ServerProcess(data_dir, env=env)
        self.b = ServerProcess(data_dir, env=env)
        self.a.cli("tenants", "create", "Acme")
        self.key = self.a.cli("keys", "create", "--tenant", "Acme")["key"]
        inst = Instance(Config(data_dir=data_dir))
        try:
            admins.create_admin(inst, "root", PASSWORD)
        finally:
            inst.close()
        self.a.start()
        self.b.start()
        self.http_a, self.http_b = self.a.client(), self.b.client()

    def close(self) -> None:
        self.http_a.close()
        self.http_b.close()
        self.a.close()
        self.b.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with redis_prefix_url() as url:
        found = Pair(tmp_path / "data", url)
        try:
            yield found
        finally:
            found.close()


def bad_key(http: httpx.Client) -> httpx.Response:
    return http.get(TENANT, headers={"Authorization": "Bearer sak_not-a-key-of-anyone"})


def bad_jwt(http: httpx.Client) -> httpx.Response:
    return http.get(TENANT, headers={"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"})


def bad_basic(http: httpx.Client) -> httpx.Response:
    basic = base64.b64encode(b"nobody:guess").decode()
    return http.get(STATEMENTS, headers={"Authorization": f"Basic {basic}", "X-Experience-API-Version": "1.0.3"})


def good(http: httpx.Client, key: str) -> httpx.Response:
    return http.get(TENANT, headers={"Authorization": f"Bearer {key}"})


def login(http: httpx.Client, password: str, username: str = "root") -> httpx.Response:
    """A console login through the form (its double-submit token); guesses name nobody, so that the
    account's own lockout (5 in a row) stays out of the way of the address's count."""
    form = http.get("/admin/login")
    assert form.status_code == 200, form.text
    token = _CSRF.search(form.text)
    assert token is not None
    return http.post("/admin/login", data={"csrf_token": token.group(1), "username": username, "password": password})


def assert_address_blocked(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["code"] == "RATE_LIMITED" and body["details"]["scope"] == "address", body
    assert 1 <= int(answer.headers["Retry-After"]) <= 300


def test_failed_authentications_over_two_workers_are_blocked_at_one_workers_count(pair: Pair) -> None:
    clear_of_minute_end()
    tries = [bad_key, bad_jwt, bad_basic]
    answers = [tries[n % 3]((pair.http_a, pair.http_b)[n % 2]) for n in range(LIMIT)]
    assert [r.status_code for r in answers] == [401] * LIMIT, [r.text for r in answers]
    for http in (pair.http_a, pair.http_b):  # the block holds on both workers, valid credentials included
        assert_address_blocked(good(http, pair.key))
        assert_address_blocked(bad_basic(http))  # the LRS too (its 429 in the contract's format)
        assert bad_basic(http).headers["X-Experience-API-Version"] == "1.0.3"


def test_console_logins_over_two_workers_are_blocked_at_one_workers_count(pair: Pair) -> None:
    clear_of_minute_end()
    answers = [
        login((pair.http_a, pair.http_b)[n % 2], "wrong-wrong-wrong", "nobody")
        for n in range(ADDRESS_FAILURES_PER_MINUTE)
    ]
    assert [r.status_code for r in answers] == [401] * ADDRESS_FAILURES_PER_MINUTE
    for http in (pair.http_a, pair.http_b):
        blocked = login(http, PASSWORD)
        assert blocked.status_code == 429, blocked.text
    # The console's logins count apart from the API's keys: the API still answers this address.
    assert good(pair.http_a, pair.key).status_code == 200


def test_with_redis_down_each_worker_blocks_in_its_own_memory(tmp_path: Path) -> None:
    found = Pair(tmp_path / "data", closed_port_url())
    try:
        clear_of_minute_end()
        assert [bad_key(found.http_a).status_code for _ in range(LIMIT)] == [401] * LIMIT
        assert_address_blocked(good(found.http_a, found.key))
        assert good(found.http_b, found.key).status_code == 200  # B counted none of A's failures
        assert [bad_basic(found.http_b).status_code for _ in range(LIMIT)] == [401] * LIMIT
        assert_address_blocked(good(found.http_b, found.key))
        answers = [login(found.http_a, "wrong-wrong-wrong", "nobody") for _ in range(ADDRESS_FAILURES_PER_MINUTE)]
        assert [r.status_code for r in answers] == [401] * ADDRESS_FAILURES_PER_MINUTE
        assert login(found.http_a, PASSWORD).status_code == 429
        signed_in = login(found.http_b, PASSWORD)  # the other worker counted none of them: signed in
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin", signed_in.text
    finally:
        found.close()
