"""The bodies the player sends to the run-time (`CommitIn`, `NavigateIn`) and the limits on them.

A module of their own because every part of the run-time reads them (the commit endpoint decodes them,
commits and Terminates apply them, a worker process is handed them) and none of those parts should have
to import another to know their shape.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# A page's client id is a UUID (36 characters) or the player's fallback (under 40): room to spare, but a
# client cannot make the session row grow with it. The sequence numbers of this many pages are kept per
# session, most recently used last (see `commits.record_seq`); a seq stays a JavaScript safe integer.
MAX_CLIENT_ID_CHARS = 64
MAX_CLIENT_IDS = 16
MAX_SEQ = 2**53 - 1


class CommitIn(msgspec.Struct, forbid_unknown_fields=True):
    """A batch of SetValue changes from the browser runtime.

    `version` null means an unconditional commit (only the `pagehide` beacon sends one, since it cannot
    wait for an answer); `client_id` + `seq` make a replay harmless.
    """

    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_ID_CHARS)]
    seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
    activity: str
    changes: dict[str, str] = {}
    version: int | None = None
    terminate: bool = False
    nav_request: str | None = None
    toc_key: str | None = None  # the key of the TOC outline the player holds (it is then not sent again)


class NavigateIn(msgspec.Struct, forbid_unknown_fields=True):
    """A navigation request from the player's controls when no SCO is running."""

    request: str
    target: str | None = None
    version: int | None = None
    toc_key: str | None = None  # as in CommitIn
