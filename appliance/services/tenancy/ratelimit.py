"""Request rate limits and the API request counter, in memory, without HTTP types.

`RateLimiter` is a fixed one-minute window per key (a tenant id for the API, a session id for learner
traffic): the window starts on the clock's minute, the Nth request in it passes while N <= limit, and
the answer says how many remain and how many seconds until the window resets. The embedded appliance is
one process, so memory is the right place for this; a restart starts every window afresh. With
`redis_url` set (several workers), the limiters appliance.services.tenancy.rate_limiters builds count the same windows
in Redis instead (appliance.storage.redis_state), shared by every worker.

`LearnerLimits` applies two of them to learner traffic (`/player/{token}/…`): one per session, and one
per tenant over all its sessions together, so one tenant's classes cannot take the whole server.
`AuthFailureLimiter` counts failed authentications per client address and, past its limit, refuses
that address for a while (appliance.faces.api.deps, the xAPI face, the console's login); with `redis_url`
its counts and blocks are in Redis, one for all the workers (appliance.storage.redis_state).

`RequestCounter` counts admitted API requests per tenant and usage period, and writes them to the
tenant's `usage_periods` table in batches (every `usage_flush_seconds`, every `FLUSH_EVERY` requests,
and when the server stops), not once per request. A crash loses at most the counts since the last
flush: a few seconds of requests.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict

import apsw
import msgspec

from appliance.instance import Instance
from appliance.services.tenancy.usage import period_start

log = logging.getLogger("appliance.ratelimit")

WINDOW_SECONDS = 60.0
FLUSH_EVERY = 1000  # pending requests (all tenants together) that trigger a flush before the timer does
_PRUNE_AT = 10_000  # keys held before stale windows are dropped


class Decision(msgspec.Struct, frozen=True):
    """The outcome of one request against a limit (a Struct: one is made per request)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The `RateLimit-*` response headers (draft-ietf-httpapi-ratelimit-headers, delta seconds)."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    """Fixed one-minute windows per key; thread-safe."""

    def __init__(self, window_seconds: float = WINDOW_SECONDS) -> None:
        self.window = window_seconds
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}
        self._pruned_window = 0.0

    def hit(self, key: str, limit: int, now: float) -> Decision:
        """Count one request for `key` unless its window is used up; say whether it may go ahead."""
        count = self._take(key, limit, now - (now % self.window))
        if count < 0:
            return self.refusal(limit, now)
        return Decision(True, limit, max(0, limit - count), self._reset(now))

    def admit(self, key: str, limit: int, now: float) -> bool:
        """`hit` without its Decision, for the learner hot path: True when counted, False when used up."""
        return self._take(key, limit, now - (now % self.window)) >= 0

    def refusal(self, limit: int, now: float) -> Decision:
        """The Decision of a request refused at `now`."""
        return Decision(False, limit, 0, self._reset(now))

    def _reset(self, now: float) -> int:
        """Seconds until the window that holds `now` ends (never 0: a client waiting 0 s would retry at once)."""
        return max(1, math.ceil(now - (now % self.window) + self.window - now))

    def _take(self, key: str, limit: int, start: float) -> int:
        """Count one request for `key` in the window beginning at `start`: the count after it, or -1 when full."""
        with self._lock:
            window, count = self._counts.get(key, (start, 0))
            if window != start:
                count = 0
            if count >= limit:
                self._counts[key] = (start, count)
                return -1
            count += 1
            self._counts[key] = (start, count)
            if len(self._counts) > _PRUNE_AT and self._pruned_window != start:
                # At most once a minute: drop the keys whose window is over.
                self._counts = {k: v for k, v in self._counts.items() if v[0] == start}
                self._pruned_window = start
        return count


class LearnerLimits:
    """The learner limits: `per_session` requests a minute for each session, `per_tenant` for all of a
    tenant's sessions together (0 turns that cap off). One `hit` per request: two dictionary updates
    under locks and no allocation when admitted, no database, so the commit path stays cheap.
    """

    def __init__(self, per_session: int, per_tenant: int) -> None:
        self.per_session = per_session
        self.per_tenant = per_tenant
        self.sessions = RateLimiter()
        self.tenants = RateLimiter()

    def hit(self, tenant_id: str, session_id: str | None, now: float) -> tuple[str, Decision] | None:
        """Count one request; `("session" | "tenant", refusing Decision)` when a limit is used up, else None.

        `session_id` None counts the request for the tenant only (package files, which the session limit
        leaves alone). A request the session limit refuses is not counted against the tenant.
        """
        if session_id is not None and not self.sessions.admit(session_id, self.per_session, now):
            return "session", self.sessions.refusal(self.per_session, now)
        if self.per_tenant > 0 and not self.tenants.admit(tenant_id, self.per_tenant, now):
            return "tenant", self.tenants.refusal(self.per_tenant, now)
        return None


class AuthFailureLimiter:
    """Failed authentications per client address: the `limit`-th in a minute blocks it for `block_seconds`.

    While blocked, an address is refused before its credentials are even looked at, valid ones included:
    if a valid key still got through, the difference between its answer and the refusal would tell a
    guesser that a guess was right. `limit` 0 turns the limiter off.
    """

    def __init__(self, limit: int, block_seconds: float) -> None:
        self.limit = limit
        self.block_seconds = block_seconds
        self._failures = RateLimiter()
        self._lock = threading.Lock()
        self._blocked: dict[str, float] = {}

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until a blocked address may try again, or None when it is not blocked."""
        if self.limit <= 0:
            return None
        with self._lock:
            until = self._blocked.get(address)
            if until is None:
                return None
            if until <= now:
                del self._blocked[address]
                return None
        return max(1, math.ceil(until - now))

    def failed(self, address: str, now: float) -> int | None:
        """Count one failed attempt; the seconds of the block when this one starts it, else None."""
        if self.limit <= 0:
            return None
        decision = self._failures.hit(address, self.limit, now)
        if decision.allowed and decision.remaining > 0:
            return None
        with self._lock:
            if len(self._blocked) > _PRUNE_AT:
                self._blocked = {a: u for a, u in self._blocked.items() if u > now}
            self._blocked[address] = now + self.block_seconds
        return max(1, math.ceil(self.block_seconds))


class RequestCounter:
    """Admitted API requests per (tenant, usage period), flushed to the tenant databases in batches."""

    def __init__(self, flush_every: int = FLUSH_EVERY) -> None:
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending: defaultdict[tuple[str, float], int] = defaultdict(int)
        self._total = 0

    def add(self, tenant_id: str, now: float) -> bool:
        """Count one request; True when enough are pending that the caller should flush now."""
        with self._lock:
            self._pending[(tenant_id, period_start(now))] += 1
            self._total += 1
            return self._total >= self.flush_every

    def pending(self, tenant_id: str, period: float) -> int:
        """Requests of a tenant's period counted but not yet written."""
        with self._lock:
            return self._pending.get((tenant_id, period), 0)

    def flush(self, inst: Instance) -> int:
        """Add the pending counts to each tenant's `usage_periods`; returns the requests written.

        Counts of a tenant whose write fails are kept for the next flush; those of a deleted tenant
        are dropped.
        """
        with self._lock:
            taken, self._pending, self._total = dict(self._pending), defaultdict(int), 0
        by_tenant: defaultdict[str, list[tuple[float, int]]] = defaultdict(list)
        for (tenant_id, period), count in taken.items():
            by_tenant[tenant_id].append((period, count))
        written = 0
        for tenant_id, periods in by_tenant.items():
            if not inst.has_tenant_db(tenant_id):
                continue
            try:
                inst.tenant_db(tenant_id).write_sync(lambda c, p=periods: _add_counts(c, p))  # type: ignore[misc]
            except Exception:
                log.exception("could not record API request counts of tenant %s; keeping them", tenant_id)
                with self._lock:
                    for period, count in periods:
                        self._pending[(tenant_id, period)] += count
                        self._total += count
                continue
            written += sum(count for _, count in periods)
        return written


def _add_counts(conn: apsw.Connection, periods: list[tuple[float, int]]) -> None:
    for period, count in periods:
        conn.execute(
            "INSERT INTO usage_periods (period_start, api_requests) VALUES (?, ?) ON CONFLICT (period_start) "
            "DO UPDATE SET api_requests = api_requests + excluded.api_requests",
            (period, count),
        )
