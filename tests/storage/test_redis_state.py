"""Rate limits and cache invalidations shared through the real Redis on 127.0.0.1:6379 (appliance.storage.redis_state).

Each test has its own key prefix (`?key_prefix=` in the URL) and deletes its keys afterwards.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from appliance.config import Config
from appliance.services.tenancy.rate_limiters import api_limiter, learner_limits
from appliance.storage.redis_state import (
    RETRY_SECONDS,
    TIMEOUT_SECONDS,
    RedisRateLimiter,
    publish,
    split_url,
    subscribe,
)

REDIS = "redis://127.0.0.1:6379/0"
NOW = 1_800_000_000.0 + 10  # 10 s into a clock minute


@contextmanager
def redis_prefix_url() -> Iterator[str]:
    """A `redis_url` with a key prefix of its own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(REDIS, socket_timeout=2.0)
    try:
        yield f"{REDIS}?key_prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_prefix_url() as url:
        yield url


def closed_port_url() -> str:
    """A Redis URL on a 127.0.0.1 port nothing listens on (Redis down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0?key_prefix=down-{uuid.uuid4().hex[:8]}:"


def test_the_key_prefix_is_the_appliances_own_parameter() -> None:
    assert split_url("redis://h:1/2?key_prefix=a:") == ("redis://h:1/2", "a:")
    assert split_url("redis://h:1/2") == ("redis://h:1/2", "scorm-appliance:")


def test_without_redis_url_the_limits_stay_in_memory(tmp_path: object) -> None:
    config = Config()
    assert type(api_limiter(config)).__name__ == "RateLimiter"
    limits = learner_limits(config)
    assert type(limits.sessions).__name__ == type(limits.tenants).__name__ == "RateLimiter"


def test_two_workers_share_one_window(redis_url: str) -> None:
    first, second = RedisRateLimiter(redis_url, "api"), RedisRateLimiter(redis_url, "api")
    decisions = [(first if n % 2 else second).hit("ten_a", 10, NOW + n) for n in range(10)]
    assert [d.allowed for d in decisions] == [True] * 10
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    refused = first.hit("ten_a", 10, NOW + 11)
    assert (refused.allowed, refused.remaining, refused.reset_seconds) == (False, 0, 39)
    assert not second.hit("ten_a", 10, NOW + 12).allowed
    assert second.hit("ten_b", 10, NOW + 12).remaining == 9  # another tenant has its own window
    assert first.hit("ten_a", 10, NOW + 50).allowed  # the next minute starts afresh
    # Refused requests were not counted: the stored count is exactly the limit.
    _, prefix = split_url(redis_url)
    client = redis.Redis.from_url(REDIS)
    start = int(NOW - NOW % 60)
    assert int(client.get(f"{prefix}rl:api:{start}:ten_a") or 0) == 10
    assert 0 < client.pttl(f"{prefix}rl:api:{start}:ten_a") <= 65_000
    client.close()


def test_counts_are_atomic_across_threads(redis_url: str) -> None:
    limiters = [RedisRateLimiter(redis_url, "api") for _ in range(4)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(limiter: RedisRateLimiter) -> None:
        for _ in range(50):
            ok = limiter.admit("ten_x", 120, NOW)
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer, args=(lim,)) for lim in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(allowed) == 200 and allowed.count(True) == 120


def test_learner_limits_across_workers(redis_url: str) -> None:
    config = Config(redis_url=redis_url, learner_requests_per_minute=3, tenant_learner_requests_per_minute=5)
    one, two = learner_limits(config), learner_limits(config)
    assert type(one).__name__ == "RedisLearnerLimits"
    assert [one.hit("ten", "s1", NOW), two.hit("ten", "s1", NOW), one.hit("ten", "s1", NOW)] == [None] * 3
    scope, decision = two.hit("ten", "s1", NOW) or ("", None)
    assert scope == "session" and decision is not None and decision.limit == 3
    assert one.hit("ten", "s2", NOW) is None and two.hit("ten", None, NOW) is None  # 5 for the tenant
    refused = one.hit("ten", "s3", NOW)
    assert refused is not None and refused[0] == "tenant"


def test_redis_down_fails_open_to_memory_bounded_in_time(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(closed_port_url(), "api")
    caplog.set_level(logging.WARNING, "appliance.redis")
    started = time.monotonic()
    decisions = [limiter.hit("ten", 5, NOW) for _ in range(200)]
    elapsed = time.monotonic() - started
    # Counted in this worker's memory instead: still limited, never refused for Redis being away.
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 195
    # One call tried Redis (refused at once, at most TIMEOUT_SECONDS); the others skip it for RETRY_SECONDS.
    assert elapsed < TIMEOUT_SECONDS + 0.5
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1
    assert RETRY_SECONDS <= 10


def test_an_unroutable_redis_costs_at_most_the_timeout() -> None:
    # 10.255.255.1 is not on this host's networks: the connect stalls until the timeout, no longer.
    limiter = RedisRateLimiter("redis://10.255.255.1:6379/0", "api")
    started = time.monotonic()
    assert limiter.hit("ten", 5, NOW).allowed
    assert time.monotonic() - started < TIMEOUT_SECONDS + 0.5
    started = time.monotonic()
    assert all(limiter.hit("ten", 500, NOW).allowed for _ in range(100))  # Redis left alone meanwhile
    assert time.monotonic() - started < 0.1


def test_invalidations_reach_subscribers(redis_url: str) -> None:
    seen: list[str | None] = []
    arrived = threading.Event()

    def handler(ident: str | None) -> None:
        seen.append(ident)
        if ident is not None:
            arrived.set()

    subscribe(redis_url, "tenant", handler)
    deadline = time.monotonic() + 5
    while None not in seen and time.monotonic() < deadline:  # subscribed (its first call: forget everything)
        time.sleep(0.01)
    assert None in seen
    sent = time.monotonic()
    publish(redis_url, "tenant", "ten_changed")
    assert arrived.wait(2.0)
    assert seen[-1] == "ten_changed"
    assert time.monotonic() - sent < 1.0
    publish(closed_port_url(), "tenant", "ten_lost")  # Redis down: logged, never raised
