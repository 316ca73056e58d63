"""Request rate limits and the API request counter, in memory, without HTTP types.

`RateLimiter` is a fixed one-minute window per key (a tenant id for the API, a session id for learner
traffic): the window starts on the clock's minute, the Nth request in it passes while N <= limit, and
the answer says how many remain and how many seconds until the window resets. The appliance is one
process, so memory is the right place for this; a restart starts every window afresh.

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
from appliance.usage import period_start

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
        start = now - (now % self.window)
        reset = max(1, math.ceil(start + self.window - now))
        with self._lock:
            window, count = self._counts.get(key, (start, 0))
            if window != start:
                count = 0
            if count >= limit:
                self._counts[key] = (start, count)
                return Decision(False, limit, 0, reset)
            count += 1
            self._counts[key] = (start, count)
            if len(self._counts) > _PRUNE_AT and self._pruned_window != start:
                # At most once a minute: drop the keys whose window is over.
                self._counts = {k: v for k, v in self._counts.items() if v[0] == start}
                self._pruned_window = start
        return Decision(True, limit, max(0, limit - count), reset)


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
            if not inst.data.tenant_db(tenant_id).exists():
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
