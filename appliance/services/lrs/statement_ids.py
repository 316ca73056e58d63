"""Ids for statements sent without one: time-ordered UUIDs (version 7).

A module of its own because the id's shape is a storage decision (appended to the id index, not written
at random places in it) that the store and its tests share.
"""

from __future__ import annotations

import os
import time


def new_statement_id() -> str:
    """One id for a statement sent without one (`new_statement_ids`)."""
    return new_statement_ids(1)[0]


def new_statement_ids(count: int, now_ms: int | None = None) -> list[str]:
    """`count` new time-ordered UUIDs (version 7, RFC 9562: 48 bits of Unix milliseconds, then 74
    random bits), from one read of the OS's random source for all of them.

    Time-ordered, so a batch's ids go to the end of the statements' id index instead of 50 random
    places in it (a page written at each one); 74 random bits keep them unique and unguessable.
    """
    millis = (time.time_ns() // 1_000_000 if now_ms is None else now_ms) & 0xFFFF_FFFF_FFFF
    prefix = f"{millis:012x}"
    head = f"{prefix[:8]}-{prefix[8:]}-7"
    raw = os.urandom(10 * count)
    ids: list[str] = []
    for at in range(0, 10 * count, 10):
        r = raw[at : at + 10].hex()
        variant = "89ab"[int(r[3], 16) & 3]
        ids.append(f"{head}{r[:3]}-{variant}{r[4:7]}-{r[8:20]}")
    return ids
