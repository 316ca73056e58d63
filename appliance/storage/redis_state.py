"""What several workers share through Redis (`redis_url`): rate-limit windows and cache invalidations.

Imported only when `redis_url` is set, so the embedded default never loads the `redis` package.

- `RedisRateLimiter` counts the same fixed one-minute windows as `appliance.services.tenancy.ratelimit.RateLimiter`, in
  one Redis key per (limit, window, key), with a Lua script: read, refuse when full (without counting),
  else INCR and PEXPIRE, atomically, in one round trip. Every worker sees the same count.
  `RedisLearnerLimits` does the same for a learner request's two windows in one call.
- `RedisAuthFailureLimiter` keeps `AuthFailureLimiter`'s failed authentications per client address
  (API keys, JWTs, LRS Basic credentials; the console's logins apart) in Redis: the failures in a
  window are one key, the block another (its value the time it ends), so an address blocked by one
  worker is refused by all, and a guesser spread over N workers gets the attempts of one.
- `publish` / `subscribe`: a pub/sub channel on which a change to a tenant (suspended, resumed, its
  session TTL…) is announced, so that every worker drops its cached copy at once rather than after the
  cache's lifetime (appliance.services.tenancy.tenants).

Redis unreachable: a learning platform should not stop learners' commits because a counter is away,
so the limits fail *open to memory*: each worker goes on counting in its own memory (the limit then
holds per worker, not for all together), logs a warning once, and tries Redis again after
`RETRY_SECONDS`. Every call has `TIMEOUT_SECONDS` socket timeouts, so no request waits longer than
that for Redis, and only one request per `RETRY_SECONDS` pays it while Redis is down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from appliance.services.tenancy.ratelimit import (
    WINDOW_SECONDS,
    AuthFailureLimiter,
    Decision,
    LearnerLimits,
    RateLimiter,
)

log = logging.getLogger("appliance.redis")

TIMEOUT_SECONDS = 0.25  # connect and read timeout of every Redis call
RETRY_SECONDS = 5.0  # after a failure, Redis is left alone this long (memory counts meanwhile)
DEFAULT_PREFIX = "scorm-appliance:"
CHANNEL = "invalidate"

# KEYS[1] the window's key; ARGV[1] the limit, ARGV[2] the key's lifetime in ms. The count after this
# request, or -1 when the window is full (a refused request is not counted, as in memory).
_TAKE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return -1 end
n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""

# The learner limits in one round trip (the commit path): KEYS the session's and the tenant's window;
# ARGV the session limit (0: not counted), the tenant cap (0: none), the lifetime in ms. 0 when admitted,
# 1 refused by the session limit (the tenant's count untouched), 2 by the tenant cap (as LearnerLimits).
_LEARNER = """
local function take(key, limit)
  if tonumber(redis.call('GET', key) or '0') >= limit then return false end
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
  return true
end
local per_session, per_tenant = tonumber(ARGV[1]), tonumber(ARGV[2])
if per_session > 0 and not take(KEYS[1], per_session) then return 1 end
if per_tenant > 0 and not take(KEYS[2], per_tenant) then return 2 end
return 0
"""

# One failed authentication: KEYS the address's failure window and its block; ARGV the limit, the window's
# lifetime in ms, the block's end (seconds, the caller's clock) and the block key's lifetime in ms. 1 when
# this failure reaches the limit and (re)starts the block, else 0. The block's value is its end, so every
# worker compares it with its own clock, as the windows are named by it.
_AUTH_FAILED = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n < tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
"""


def split_url(url: str) -> tuple[str, str]:
    """(the URL redis-py connects to, the key prefix): `key_prefix` is the appliance's own query parameter."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    prefix = query.pop("key_prefix", [DEFAULT_PREFIX])[-1]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), prefix


class SharedRedis:
    """One Redis client of the process (thread-safe pool) with short timeouts and a breaker."""

    def __init__(self, url: str) -> None:
        client_url, self.prefix = split_url(url)
        self.client = redis.Redis.from_url(
            client_url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._take = self.client.register_script(_TAKE)
        self._learner = self.client.register_script(_LEARNER)
        self._auth_failed = self.client.register_script(_AUTH_FAILED)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        """Whether to try Redis now (not within RETRY_SECONDS of a failure)."""
        return time.monotonic() >= self._down_until

    def failed(self, exc: Exception) -> None:
        """Note a failed call: Redis is left alone for RETRY_SECONDS; the first failure is logged."""
        with self._lock:
            self._down_until = time.monotonic() + RETRY_SECONDS
            first, self._down = not self._down, True
        if first:
            log.warning("Redis unreachable (%s); rate limits count in this worker's memory meanwhile", exc)

    def succeeded(self) -> None:
        """Note a call that worked; logs the recovery after a failure."""
        if self._down:
            with self._lock:
                was, self._down = self._down, False
            if was:
                log.warning("Redis reachable again; rate limits are shared by the workers again")

    def take(self, key: str, limit: int, ttl_ms: int) -> int:
        """The window count after one request for `key`, or -1 when full (raises redis errors)."""
        return int(self._take(keys=[self.prefix + key], args=[limit, ttl_ms]))

    def learner(self, session_key: str, per_session: int, tenant_key: str, per_tenant: int, ttl_ms: int) -> int:
        """`_LEARNER`'s answer for one learner request (raises redis errors)."""
        keys = [self.prefix + session_key, self.prefix + tenant_key]
        return int(self._learner(keys=keys, args=[per_session, per_tenant, ttl_ms]))

    def auth_failed(
        self, window_key: str, block_key: str, limit: int, until: float, ttl_ms: int, block_ms: int
    ) -> bool:
        """Count one failed authentication; True when it reaches `limit` and blocks until `until`."""
        keys = [self.prefix + window_key, self.prefix + block_key]
        return bool(self._auth_failed(keys=keys, args=[limit, ttl_ms, repr(until), block_ms]))

    def blocked_until(self, block_key: str) -> float | None:
        """The end of a block (the time it was set to end), or None (raises redis errors)."""
        value = self.client.get(self.prefix + block_key)
        return None if value is None else float(value)

    def ping(self) -> None:
        """One round trip (the readiness check); raises redis errors. Not counted by the breaker."""
        self.client.ping()


_shared: dict[str, SharedRedis] = {}
_shared_lock = threading.Lock()


def shared(url: str) -> SharedRedis:
    """The process's client for `url` (one pool per URL, made on first use)."""
    with _shared_lock:
        found = _shared.get(url)
        if found is None:
            found = _shared[url] = SharedRedis(url)
        return found


class RedisRateLimiter(RateLimiter):
    """`RateLimiter`'s windows counted in Redis; its own memory is the fallback while Redis is away."""

    def __init__(self, url: str, name: str, window_seconds: float = WINDOW_SECONDS) -> None:
        super().__init__(window_seconds)
        self.redis = shared(url)
        self.name = name
        self._ttl_ms = int((window_seconds + 5) * 1000)  # a little past the window: clocks differ a bit

    def _take(self, key: str, limit: int, start: float) -> int:
        if self.redis.available():
            try:
                count = self.redis.take(f"rl:{self.name}:{int(start)}:{key}", limit, self._ttl_ms)
            except redis.RedisError as exc:
                self.redis.failed(exc)
            else:
                self.redis.succeeded()
                return count
        return super()._take(key, limit, start)


class RedisLearnerLimits(LearnerLimits):
    """`LearnerLimits` counted in Redis, both windows in one script call; in memory while Redis is away."""

    def __init__(self, url: str, per_session: int, per_tenant: int) -> None:
        super().__init__(per_session, per_tenant)
        self.redis = shared(url)
        self._ttl_ms = int((WINDOW_SECONDS + 5) * 1000)

    def hit(self, tenant_id: str, session_id: str | None, now: float) -> tuple[str, Decision] | None:
        if self.redis.available():
            start = int(now - now % WINDOW_SECONDS)
            try:
                answer = self.redis.learner(
                    f"rl:session:{start}:{session_id}",
                    self.per_session if session_id is not None else 0,
                    f"rl:learners:{start}:{tenant_id}",
                    self.per_tenant,
                    self._ttl_ms,
                )
            except redis.RedisError as exc:
                self.redis.failed(exc)
            else:
                self.redis.succeeded()
                if answer == 1:
                    return "session", self.sessions.refusal(self.per_session, now)
                if answer == 2:
                    return "tenant", self.tenants.refusal(self.per_tenant, now)
                return None
        return super().hit(tenant_id, session_id, now)


class RedisAuthFailureLimiter(AuthFailureLimiter):
    """`AuthFailureLimiter` with its counts and blocks in Redis, shared by every worker; in memory while
    Redis is away (the blocks made meanwhile are still honoured once it is back).

    `name` keeps limiters apart that count separately (`api`: API keys, JWTs and LRS credentials;
    `console`: console logins). A blocked address costs one GET per request, a failure one script call.
    """

    def __init__(self, url: str, name: str, limit: int, block_seconds: float) -> None:
        super().__init__(limit, block_seconds)
        self.redis = shared(url)
        self.name = name
        self._ttl_ms = int((WINDOW_SECONDS + 5) * 1000)
        self._block_ms = int((block_seconds + 5) * 1000)  # past the block's end: clocks differ a bit

    def retry_after(self, address: str, now: float) -> int | None:
        if self.limit <= 0:
            return None
        local = super().retry_after(address, now)
        if not self.redis.available():
            return local
        try:
            until = self.redis.blocked_until(f"authblock:{self.name}:{address}")
        except (redis.RedisError, ValueError) as exc:
            self.redis.failed(exc)
            return local
        self.redis.succeeded()
        if until is None or until <= now:
            return local
        return max(local or 0, max(1, math.ceil(until - now)))

    def failed(self, address: str, now: float) -> int | None:
        if self.limit <= 0:
            return None
        if self.redis.available():
            start = int(now - now % WINDOW_SECONDS)
            until = now + self.block_seconds
            try:
                blocked = self.redis.auth_failed(
                    f"authfail:{self.name}:{start}:{address}",
                    f"authblock:{self.name}:{address}",
                    self.limit,
                    until,
                    self._ttl_ms,
                    self._block_ms,
                )
            except redis.RedisError as exc:
                self.redis.failed(exc)
            else:
                self.redis.succeeded()
                return max(1, math.ceil(self.block_seconds)) if blocked else None
        return super().failed(address, now)


# -- invalidations ------------------------------------------------------------------------------------

Handler = Callable[[str | None], None]  # called with the id that changed, or None: "forget everything"


def publish(url: str, kind: str, ident: str) -> None:
    """Announce that `kind` `ident` changed (e.g. "tenant", its id); never raises, a failure is logged.

    Workers that miss it (Redis away) still drop their copy within their cache's lifetime.
    """
    bus = shared(url)
    try:
        bus.client.publish(bus.prefix + CHANNEL, f"{kind}:{ident}")
    except redis.RedisError as exc:
        log.warning("could not announce the change of %s %s to the other workers: %s", kind, ident, exc)


class _Subscriber:
    """The process's listener on the invalidation channel of one URL, in a daemon thread."""

    def __init__(self, url: str) -> None:
        self.bus = shared(url)
        self.handlers: dict[str, list[Handler]] = {}
        self.thread = threading.Thread(target=self._run, name="redis-invalidations", daemon=True)
        self.thread.start()

    def _dispatch(self, kind: str, ident: str | None) -> None:
        for name, handlers in list(self.handlers.items()):
            if ident is None or name == kind:
                for handler in handlers:
                    try:
                        handler(ident)
                    except Exception:
                        log.exception("an invalidation handler failed")

    def _run(self) -> None:
        while True:
            pubsub = self.bus.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.bus.prefix + CHANNEL)
                # Whatever changed while not subscribed was missed: start from empty caches.
                self._dispatch("", None)
                while True:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        kind, _, ident = str(message["data"]).partition(":")
                        self._dispatch(kind, ident)
            except redis.RedisError as exc:
                log.warning("invalidation channel lost (%s); cached tenants expire on their own meanwhile", exc)
            finally:
                pubsub.close()
            time.sleep(RETRY_SECONDS)


_subscribers: dict[str, _Subscriber] = {}
_subscribers_lock = threading.Lock()  # not _shared_lock: a new _Subscriber takes that one


def subscribe(url: str, kind: str, handler: Handler) -> None:
    """Call `handler(id)` whenever another process (or this one) publishes a change of `kind`.

    The listener thread starts on the first call; registering the same handler again does nothing.
    """
    with _subscribers_lock:
        sub = _subscribers.get(url)
        if sub is None:
            sub = _subscribers[url] = _Subscriber(url)
        handlers = sub.handlers.setdefault(kind, [])
        if handler not in handlers:
            handlers.append(handler)
