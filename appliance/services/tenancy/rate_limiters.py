"""The rate limiters a configuration asks for: in memory (the embedded default), or counted in Redis and
shared by every worker when `redis_url` is set (appliance.storage.redis_state, which imports `redis`: only then).

Apart from appliance.services.tenancy.ratelimit so that the Redis limiters, built on its classes, do not import back.
"""

from __future__ import annotations

from appliance.config import Config
from appliance.services.tenancy.ratelimit import AuthFailureLimiter, LearnerLimits, RateLimiter


def api_limiter(config: Config) -> RateLimiter:
    """The tenants' API limiter: in memory, or in Redis shared by the workers when `redis_url` is set."""
    if not config.redis_url:
        return RateLimiter()
    from appliance.storage.redis_state import RedisRateLimiter  # the embedded default never imports redis

    return RedisRateLimiter(config.redis_url, "api")


def learner_limits(config: Config) -> LearnerLimits:
    """The learner limits of `config`, counted in Redis when `redis_url` is set (as `api_limiter`)."""
    per_session, per_tenant = config.learner_requests_per_minute, config.tenant_learner_requests_per_minute
    if not config.redis_url:
        return LearnerLimits(per_session, per_tenant)
    from appliance.storage.redis_state import RedisLearnerLimits

    return RedisLearnerLimits(config.redis_url, per_session, per_tenant)


def auth_failure_limiter(config: Config, name: str, limit: int, block_seconds: float) -> AuthFailureLimiter:
    """Failed authentications per address (`name`: "api" for keys, JWTs and LRS credentials, "console" for
    console logins): in memory, or in Redis shared by the workers when `redis_url` is set, so a guesser
    spread over N workers gets the attempts it would get against one."""
    if not config.redis_url:
        return AuthFailureLimiter(limit, block_seconds)
    from appliance.storage.redis_state import RedisAuthFailureLimiter

    return RedisAuthFailureLimiter(config.redis_url, name, limit, block_seconds)
