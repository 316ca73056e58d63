"""xAPI versions: which the LRS speaks, and the `X-Experience-API-Version` header's negotiation."""

from __future__ import annotations

import re

V1 = "1.0.3"
V2 = "2.0.0"
SUPPORTED = (V1, V2)
# What the About resource lists: every 1.0.x the LRS answers as 1.0.3, and 2.0.0.
ABOUT_VERSIONS = ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0")

_V1 = re.compile(r"^1\.0(\.[0-9]+)?$")
_V2 = re.compile(r"^2\.0(\.[0-9]+)?$")


def negotiate(header: str | None) -> str | None:
    """The version to answer in for a request's header: 1.0.x → 1.0.3, 2.0.x → 2.0.0, else None."""
    if header is None:
        return None
    value = header.strip()
    if _V1.match(value):
        return V1
    if _V2.match(value):
        return V2
    return None
