"""Per-tenant limits: plans, parsing of sizes and rates, and the storage check before any work."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import InsufficientStorage, QuotaExceeded, ValidationFailed

GB = 1000**3
log = logging.getLogger("appliance.quotas")


@dataclass(frozen=True)
class Plan:
    """A plan's default quotas; None means unlimited."""

    storage_bytes: int | None
    requests_per_minute: int


PLANS: dict[str, Plan] = {
    "free": Plan(storage_bytes=1 * GB, requests_per_minute=100),
    "professional": Plan(storage_bytes=50 * GB, requests_per_minute=1000),
    # "custom": unlimited storage and a generous rate until an administrator sets both.
    "enterprise": Plan(storage_bytes=None, requests_per_minute=10_000),
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(min|minute|m))?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """Parse `50GB`, `512MiB`, `1000000` (bytes) or `unlimited` into bytes (None = unlimited)."""
    if text.strip().lower() in ("unlimited", "none"):
        return None
    match = _SIZE.match(text)
    if not match:
        raise ValidationFailed(f"not a size: {text!r} (use e.g. 50GB, 512MiB or unlimited)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "b").lower()])


def parse_rate(text: str) -> int:
    """Parse `1000/min` or `1000` into requests per minute."""
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValidationFailed(f"not a rate: {text!r} (use e.g. 1000/min)")
    return int(match.group(1))


def format_size(value: int | None) -> str:
    """Human form of a byte count, for CLI output."""
    if value is None:
        return "unlimited"
    for unit, size in (("TB", 1000**4), ("GB", GB), ("MB", 1000**2), ("KB", 1000)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value} B"


def check_storage(used_bytes: int, limit_bytes: int | None, incoming_bytes: int) -> None:
    """Raise QuotaExceeded when `incoming_bytes` more would cross the limit; nothing is stored first."""
    if limit_bytes is not None and used_bytes + incoming_bytes > limit_bytes:
        raise QuotaExceeded(
            "storage quota exceeded",
            {"used_bytes": used_bytes, "limit_bytes": limit_bytes, "requested_bytes": incoming_bytes},
        )


def free_disk_bytes(path: Path) -> int:
    """Free space for an unprivileged writer on the file system holding `path`."""
    return shutil.disk_usage(path).free


def check_free_space(path: Path, floor_bytes: int, incoming_bytes: int = 0) -> None:
    """Raise InsufficientStorage when writing `incoming_bytes` under `path` would leave less than
    `floor_bytes` free: the database, its WAL and the logs need room the uploads must not take."""
    free = free_disk_bytes(path)
    if free - incoming_bytes < floor_bytes:
        # The operator's log says how full the disk is; a tenant learns only that it is (no disk figures).
        log.warning(
            "refused %d bytes: %d bytes free on the disk of %s, the floor is %d (min_free_disk_bytes)",
            incoming_bytes,
            free,
            path,
            floor_bytes,
        )
        raise InsufficientStorage(
            "the server's disk is too full to store this; try again later", {"requested_bytes": incoming_bytes}
        )
