"""Failed-authentication blocks per address counted in the real Redis (127.0.0.1:6379): one count and one
block for every worker, the same answers as in memory, apart per limiter name, and Redis down."""

from __future__ import annotations

import time

import pytest

from appliance.config import Config
from appliance.services.tenancy.rate_limiters import auth_failure_limiter
from appliance.services.tenancy.ratelimit import AuthFailureLimiter
from appliance.storage.redis_state import RedisAuthFailureLimiter
from tests.storage.test_redis_state import NOW, closed_port_url, redis_url  # noqa: F401 (the fixture)

LIMIT, BLOCK = 5, 120.0


def test_without_redis_url_the_blocks_stay_in_memory() -> None:
    limiter = auth_failure_limiter(Config(), "api", LIMIT, BLOCK)
    assert type(limiter) is AuthFailureLimiter


def test_failures_on_two_workers_block_at_the_limit_of_one(redis_url: str) -> None:  # noqa: F811
    workers = [auth_failure_limiter(Config(redis_url=redis_url), "api", LIMIT, BLOCK) for _ in range(2)]
    assert all(isinstance(w, RedisAuthFailureLimiter) for w in workers)
    single = AuthFailureLimiter(LIMIT, BLOCK)
    shared_answers, single_answers = [], []
    for n in range(LIMIT):
        worker = workers[n % 2]
        shared_answers.append((worker.retry_after("10.0.0.9", NOW + n), worker.failed("10.0.0.9", NOW + n)))
        single_answers.append((single.retry_after("10.0.0.9", NOW + n), single.failed("10.0.0.9", NOW + n)))
    assert shared_answers == single_answers == [(None, None)] * (LIMIT - 1) + [(None, 120)]
    at = NOW + LIMIT
    for worker in workers:  # the block started on one worker holds on both, for what is left of it
        assert worker.retry_after("10.0.0.9", at) == single.retry_after("10.0.0.9", at) == 119
        assert worker.retry_after("10.0.0.10", at) is None  # other addresses are free
    assert workers[1].retry_after("10.0.0.9", NOW + 4 + BLOCK) is None  # over, by the caller's clock


def test_limiters_of_other_names_count_apart(redis_url: str) -> None:  # noqa: F811
    api = RedisAuthFailureLimiter(redis_url, "api", 2, BLOCK)
    console = RedisAuthFailureLimiter(redis_url, "console", 2, BLOCK)
    assert api.failed("10.0.0.9", NOW) is None
    assert console.failed("10.0.0.9", NOW) is None
    assert api.failed("10.0.0.9", NOW) == 120
    assert console.retry_after("10.0.0.9", NOW) is None
    assert api.retry_after("10.0.0.9", NOW) == 120


def test_the_count_is_per_minute_window(redis_url: str) -> None:  # noqa: F811
    limiter = RedisAuthFailureLimiter(redis_url, "api", 2, BLOCK)
    assert limiter.failed("10.0.0.9", NOW) is None
    assert limiter.failed("10.0.0.9", NOW + 60) is None  # the next minute starts afresh, as in memory
    assert limiter.retry_after("10.0.0.9", NOW + 60) is None


def test_a_zero_limit_is_off(redis_url: str) -> None:  # noqa: F811
    limiter = RedisAuthFailureLimiter(redis_url, "api", 0, BLOCK)
    assert [limiter.failed("10.0.0.9", NOW) for _ in range(5)] == [None] * 5
    assert limiter.retry_after("10.0.0.9", NOW) is None


def test_redis_down_blocks_in_memory_without_raising_or_waiting(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisAuthFailureLimiter(closed_port_url(), "api", LIMIT, BLOCK)
    started = time.monotonic()
    answers = [limiter.failed("10.0.0.9", NOW) for _ in range(LIMIT)]
    assert answers == [None] * (LIMIT - 1) + [120]
    assert limiter.retry_after("10.0.0.9", NOW + 1) == 119
    assert time.monotonic() - started < 1.0
    assert sum("Redis unreachable" in r.getMessage() for r in caplog.records) == 1


def test_a_block_made_while_redis_was_away_still_holds_when_it_is_back(redis_url: str) -> None:  # noqa: F811
    limiter = RedisAuthFailureLimiter(redis_url, "api", 1, BLOCK)
    limiter.redis._down_until = time.monotonic() + 60  # as after a failure: memory counts meanwhile
    assert limiter.failed("10.0.0.9", NOW) == 120
    limiter.redis._down_until = 0.0  # Redis is tried again, and knows nothing of that block
    assert limiter.retry_after("10.0.0.9", NOW + 10) == 110
