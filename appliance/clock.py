"""Time, injected: the only module that reads the wall clock.

Services and the scheduler take a `Clock` so tests can drive time by hand and never sleep.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Something that says what time it is, in seconds since the epoch."""

    def now(self) -> float:
        """Return the current time as a POSIX timestamp."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Return time.time()."""
        return time.time()


class FixedClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """Return the current fixed time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += seconds


def rfc3339(ts: float | None) -> str | None:
    """Format a POSIX timestamp as the contract's RFC 3339 UTC string (seconds precision)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> float:
    """Parse an RFC 3339 / ISO 8601 timestamp with a zone into a POSIX timestamp."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a time zone (use Z for UTC)")
    return parsed.timestamp()
