"""Exponential backoff with jitter, shared by the outbound deliveries (webhooks, LRS forwarding)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, factor: float, cap: float, rng: random.Random | None = None) -> float:
    """`base` × `factor`^(attempt - 1) seconds, at most `cap`, times a jitter of 0.8-1.2, so receivers that
    failed together are not retried together (webhook deliveries, LRS forwarding in appliance.services.lrs)."""
    delay = min(cap, base * factor ** min(attempt - 1, 60))
    return delay * (0.8 + 0.4 * (rng or random).random())
