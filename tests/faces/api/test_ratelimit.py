"""Per-tenant API rate limits, and the learners' separate per-session limit, on a FixedClock."""

from __future__ import annotations

import dataclasses

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.tenancy.ratelimit import RateLimiter
from appliance.services.tenancy.tenants import set_quotas
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import assert_error, package_12, upload_ready
from tests.faces.api.test_webhooks import Learner, new_session

TENANT = "/api/v1/tenant"
START = 1_800_000_000.0 + 10  # 10 s into a clock minute: the window resets 50 s later


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def set_rate(config: Config, tenant_id: str, per_minute: int) -> None:
    inst = Instance(config)
    try:
        set_quotas(inst, tenant_id, requests_per_minute=per_minute)
    finally:
        inst.close()


def test_the_101st_request_in_a_minute_is_refused_with_429(
    api: TestClient, acme: TenantKey, globex: TenantKey, clock: FixedClock
) -> None:
    for n in range(1, 101):
        response = api.get(TENANT, headers=acme.headers)
        assert response.status_code == 200, (n, response.text)
        assert response.headers["RateLimit-Limit"] == "100"
        assert response.headers["RateLimit-Remaining"] == str(100 - n)
        assert response.headers["RateLimit-Reset"] == "50"
    clock.advance(10)
    refused = api.get(TENANT, headers=acme.headers)
    body = assert_error(refused, 429, "RATE_LIMITED")
    assert body["details"] == {"retry_after": 40, "limit": 100}
    assert refused.headers["Retry-After"] == "40"
    assert refused.headers["RateLimit-Limit"] == "100"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == "40"
    assert refused.headers["X-Request-ID"]
    # Every route of the tenant is refused, not only the one used.
    assert_error(api.get("/api/v1/packages", headers=acme.headers), 429, "RATE_LIMITED")
    # Another tenant is not affected.
    other = api.get(TENANT, headers=globex.headers)
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "99"
    # The next minute starts afresh.
    clock.advance(40)
    again = api.get(TENANT, headers=acme.headers)
    assert again.status_code == 200
    assert (again.headers["RateLimit-Remaining"], again.headers["RateLimit-Reset"]) == ("99", "60")


def test_headers_are_on_every_authenticated_response_errors_included(api: TestClient, acme: TenantKey) -> None:
    for response in (
        api.get("/api/v1/packages/pkg_missing", headers=acme.headers),  # 404
        api.post("/api/v1/sessions", json={}, headers=acme.headers),  # 422
        api.get("/api/v1/usage", headers=acme.headers),
    ):
        assert response.headers["RateLimit-Limit"] == "100", response.text
        assert "RateLimit-Remaining" in response.headers and "RateLimit-Reset" in response.headers
    # Requests without a tenant (no credentials, health) have no tenant limit to report.
    assert "RateLimit-Limit" not in api.get(TENANT).headers
    assert "RateLimit-Limit" not in api.get("/api/v1/health").headers


def test_the_rate_set_with_the_cli_applies_at_once(
    api: TestClient, config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    assert api.get(TENANT, headers=acme.headers).headers["RateLimit-Limit"] == "100"
    set_rate(config, acme.tenant_id, 3)  # what `scorm-appliance quotas set --rate 3/min` does
    assert api.get(TENANT, headers=acme.headers).headers["RateLimit-Remaining"] == "1"
    assert api.get(TENANT, headers=acme.headers).headers["RateLimit-Remaining"] == "0"
    assert_error(api.get(TENANT, headers=acme.headers), 429, "RATE_LIMITED")
    set_rate(config, acme.tenant_id, 1000)
    raised = api.get(TENANT, headers=acme.headers)
    assert raised.status_code == 200
    assert (raised.headers["RateLimit-Limit"], raised.headers["RateLimit-Remaining"]) == ("1000", "996")


def test_learner_runtime_traffic_does_not_count_against_the_tenant(
    api: TestClient, config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    package = upload_ready(api, acme, package_12())
    session = new_session(api, acme, package["id"])
    set_rate(config, acme.tenant_id, 20)
    before = api.get(TENANT, headers=acme.headers)
    learner = Learner(api, session).launch()
    for n in range(60):  # three times the tenant's whole minute, through the player
        learner.commit({"cmi.core.lesson_location": str(n)})
        assert api.get(f"{learner.path}/state?activity={learner.activity}").status_code == 200
    assert api.get(learner.path).status_code == 200
    assert api.get(f"{learner.path}/content/index.html").status_code == 200
    after = api.get(TENANT, headers=acme.headers)
    assert after.status_code == 200
    assert int(after.headers["RateLimit-Remaining"]) == int(before.headers["RateLimit-Remaining"]) - 1


def test_learners_have_their_own_per_session_limit(config: Config, acme: TenantKey, clock: FixedClock) -> None:
    with make_api(dataclasses.replace(config, learner_requests_per_minute=5), clock) as api:
        package = upload_ready(api, acme, package_12())
        first = Learner(api, new_session(api, acme, package["id"], learner="a")).launch()
        second = Learner(api, new_session(api, acme, package["id"], learner="b")).launch()
        for _ in range(4):
            assert api.get(f"{first.path}/state?activity={first.activity}").status_code == 200
        refused = api.get(f"{first.path}/state?activity={first.activity}")
        body = assert_error(refused, 429, "RATE_LIMITED")
        assert refused.headers["Retry-After"] == str(body["details"]["retry_after"])
        assert_error(api.post(f"{first.path}/launch"), 429, "RATE_LIMITED")
        # Package files are not limited: one page of content may load hundreds of them.
        for _ in range(10):
            assert api.get(f"{first.path}/content/index.html").status_code == 200
        # Another session of the same tenant is not affected, nor is the tenant's API.
        assert api.get(f"{second.path}/state?activity={second.activity}").status_code == 200
        assert api.get(TENANT, headers=acme.headers).status_code == 200
        # A bad token is answered by the route as before (404), not counted against anything.
        assert_error(api.get("/player/not-a-token/state?activity=x"), 404, "NOT_FOUND")
        clock.advance(60)
        assert api.get(f"{first.path}/state?activity={first.activity}").status_code == 200


def test_refused_requests_are_not_counted_as_usage(api: TestClient, config: Config, acme: TenantKey) -> None:
    set_rate(config, acme.tenant_id, 2)
    statuses = [api.get(TENANT, headers=acme.headers).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    set_rate(config, acme.tenant_id, 100)
    usage = api.get("/api/v1/usage", headers=acme.headers).json()
    assert usage["api_requests"]["count"] == 3  # two before the limit, and this one


def test_limiter_windows_and_pruning() -> None:
    limiter = RateLimiter()
    now = 6_000.0 + 59.5
    assert [limiter.hit("k", 2, now).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("k", 2, now).reset_seconds == 1  # never 0: a client waiting 0 s would retry at once
    assert limiter.hit("k", 2, now + 0.5).allowed  # a new minute
    for n in range(10_050):
        limiter.hit(f"session-{n}", 600, now + 61)
    assert len(limiter._counts) <= 10_051  # stale windows are dropped as keys pile up


def test_two_workers_with_redis_share_the_tenant_limit(
    config: Config, acme: TenantKey, globex: TenantKey, clock: FixedClock
) -> None:
    from tests.storage.test_redis_state import redis_prefix_url

    with redis_prefix_url() as url:
        shared = dataclasses.replace(config, redis_url=url)
        with make_api(shared, clock) as first, make_api(shared, clock) as second:  # two Instances, one Redis
            set_rate(shared, acme.tenant_id, 10)
            answers = [(first if n % 2 else second).get(TENANT, headers=acme.headers) for n in range(10)]
            assert [r.status_code for r in answers] == [200] * 10
            assert [r.headers["RateLimit-Remaining"] for r in answers] == [str(n) for n in range(9, -1, -1)]
            for api in (first, second):
                refused = api.get(TENANT, headers=acme.headers)
                body = assert_error(refused, 429, "RATE_LIMITED")
                assert body["details"] == {"retry_after": 50, "limit": 10}
                assert refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"] == "50"
            assert second.get(TENANT, headers=globex.headers).headers["RateLimit-Remaining"] == "99"
            clock.advance(50)  # the next minute, for both
            assert first.get(TENANT, headers=acme.headers).headers["RateLimit-Remaining"] == "9"


def test_with_redis_a_suspension_reaches_the_other_instances_cache_at_once(
    config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    from appliance.services.tenancy.tenants import set_status, tenant_status
    from tests.storage.test_redis_state import redis_prefix_url

    with redis_prefix_url() as url:
        shared = dataclasses.replace(config, redis_url=url)
        worker, admin = Instance(shared, clock), Instance(shared, clock)
        try:
            assert tenant_status(worker, acme.tenant_id)[0] == "active"  # cached for 5 s on the FixedClock
            set_status(admin, acme.tenant_id, "suspended")
            assert tenant_status(worker, acme.tenant_id)[0] == "suspended"  # no clock advance needed
        finally:
            worker.close()
            admin.close()
