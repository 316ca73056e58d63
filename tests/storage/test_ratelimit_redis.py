"""Two real `scorm-appliance serve` workers on one data directory and the real Redis on 127.0.0.1:6379:
one tenant limit for both, revocations and suspensions seen by both, and Redis down.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.browser import wait_until
from tests.e2e.conftest import ServerProcess
from tests.faces.api.test_packages import package_12
from tests.storage.test_redis_state import closed_port_url, redis_prefix_url

TENANT = "/api/v1/tenant"
BOUND_SECONDS = 1.0  # what the test allows a change to take; the cache's own lifetime is 5 s


class Workers:
    """Two servers on one data directory, both with `redis_url`, and tenant Acme with a key."""

    def __init__(self, data_dir: Path, redis_url: str) -> None:
        env = {"SCORM_APPLIANCE_REDIS_URL": redis_url}
        self.a = ServerProcess(data_dir, env=env)
        self.b = ServerProcess(data_dir, env=env)
        self.a.cli("tenants", "create", "Acme")
        self.key = self.a.cli("keys", "create", "--tenant", "Acme")["key"]
        self.a.start()
        self.b.start()
        headers = {"Authorization": f"Bearer {self.key}"}
        self.http_a, self.http_b = self.a.client(headers=headers), self.b.client(headers=headers)

    def close(self) -> None:
        self.http_a.close()
        self.http_b.close()
        self.a.close()
        self.b.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    with redis_prefix_url() as url:
        found = Workers(tmp_path / "data", url)
        try:
            yield found
        finally:
            found.close()


def clear_of_minute_end(margin: float = 8.0) -> None:
    """Sleep past the next minute boundary if it is closer than `margin` seconds (the windows are minutes)."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.2)


def test_requests_split_across_two_workers_share_the_tenant_limit(workers: Workers) -> None:
    workers.a.cli("quotas", "set", "--tenant", "Acme", "--rate", "10/min")
    clear_of_minute_end()
    answers = [(workers.http_a if n % 2 else workers.http_b).get(TENANT) for n in range(10)]
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == [str(n) for n in range(9, -1, -1)]
    for http in (workers.http_a, workers.http_b):
        refused = http.get(TENANT)
        assert refused.status_code == 429, refused.text
        assert refused.json()["details"]["limit"] == 10
        assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_a_key_revoked_is_refused_by_both_workers_at_once(workers: Workers) -> None:
    second = workers.a.cli("keys", "create", "--tenant", "Acme")
    headers = {"Authorization": f"Bearer {second['key']}"}
    assert workers.http_b.get(TENANT, headers=headers).status_code == 200
    assert workers.http_a.get(TENANT, headers=headers).status_code == 200
    workers.a.cli("keys", "revoke", second["id"])
    revoked_at = time.monotonic()
    for http in (workers.http_b, workers.http_a):
        refused = http.get(TENANT, headers=headers)
        assert refused.status_code == 401, refused.text
        assert "revoked" in refused.json()["error"]
    assert time.monotonic() - revoked_at < BOUND_SECONDS
    assert workers.http_b.get(TENANT).status_code == 200  # the tenant's other key still works


def player_path(workers: Workers) -> str:
    """The path of a launched player page of a fresh session (a package uploaded through worker A)."""
    created = workers.http_a.post("/api/v1/packages", files={"file": ("course.zip", package_12(), "application/zip")})
    assert created.status_code == 202, created.text
    package_id = created.json()["id"]

    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = workers.http_a.get(f"/api/v1/packages/{package_id}").json()
        return body if body["status"] != "processing" else None

    assert wait_until(ready, 30.0, what="the package to be processed")["status"] == "ready"
    session = workers.http_a.post(
        "/api/v1/sessions", json={"package_id": package_id, "learner": {"id": "ada", "name": "Lovelace, Ada"}}
    )
    assert session.status_code == 201, session.text
    launch = workers.http_a.post(f"/api/v1/sessions/{session.json()['id']}/launch")
    assert launch.status_code == 200, launch.text
    return urlsplit(launch.json()["launch_url"]).path


def seconds_until(http: httpx.Client, path: str, status: int) -> float:
    """How long until `path` answers `status` (polled every 20 ms, for at most 6 s)."""
    started = time.monotonic()
    wait_until(lambda: True if http.get(path).status_code == status else None, 6.0, 0.02, f"{path} → {status}")
    return time.monotonic() - started


def test_a_suspension_reaches_the_other_workers_cache_within_the_bound(workers: Workers) -> None:
    path = player_path(workers)
    assert workers.http_b.get(path).status_code == 200  # worker B now holds the tenant's status, cached 5 s
    assert workers.http_a.get(path).status_code == 200
    workers.a.cli("tenants", "suspend", "Acme")  # another process: the CLI
    assert seconds_until(workers.http_b, path, 403) < BOUND_SECONDS
    assert workers.http_a.get(path).status_code == 403
    workers.a.cli("tenants", "resume", "Acme")
    assert seconds_until(workers.http_b, path, 200) < BOUND_SECONDS


def test_redis_down_limits_each_worker_in_memory_and_never_stalls(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"SCORM_APPLIANCE_REDIS_URL": closed_port_url()})
    try:
        server.cli("tenants", "create", "Acme")
        server.cli("quotas", "set", "--tenant", "Acme", "--rate", "5/min")  # its announcement fails, logged
        key = server.cli("keys", "create", "--tenant", "Acme")["key"]
        server.start()
        clear_of_minute_end()
        with server.client(headers={"Authorization": f"Bearer {key}"}) as http:
            started = time.monotonic()
            statuses = [http.get(TENANT).status_code for _ in range(8)]
            elapsed = time.monotonic() - started
        assert statuses == [200] * 5 + [429] * 3  # failed open to this worker's memory: still limited
        assert elapsed < 2.0
        assert server.stdout_path.read_text().count("Redis unreachable") == 1  # logged once, not per request
    finally:
        server.close()
