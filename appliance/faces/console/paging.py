"""Paging the console's lists over the services' cursor pagination (the contract's `next_cursor`).

The cursors only go forward, so a page's link back is carried in its address: `?cursor=` starts the
page and `?back=` lists the cursors of the pages between the first and this one (dot-separated; a
cursor is URL-safe base64, which has no dot). "Previous" pops the last of them, or goes to the first
page when there is none. The trail keeps the last `MAX_TRAIL` cursors so an address stays short;
further back than that, "Previous" leads to the first page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar.di import NamedDependency
from litestar.params import FromQuery

PAGE_SIZE = 100  # rows on one console page
MAX_TRAIL = 40
_SEP = "."


@dataclass(frozen=True)
class Pager:
    """Where this page starts and how to get to its neighbours."""

    cursor: str | None
    back: tuple[str, ...]
    next_cursor: str | None = None
    query: tuple[tuple[str, str], ...] = ()  # the list's own filters, kept in every link
    prefix: str = ""  # of the two parameters' names, when a page has two lists (`lrs_cursor`, `lrs_back`)

    @classmethod
    def of(cls, cursor: str | None, back: str | None, prefix: str = "") -> Pager:
        """The pager of a request's `?cursor=&back=` (a trail without a cursor is ignored)."""
        trail = tuple(c for c in (back or "").split(_SEP) if c) if cursor else ()
        return cls(cursor or None, trail[-MAX_TRAIL:], prefix=prefix)

    def with_result(self, found: dict[str, Any], **query: str | None) -> Pager:
        """This pager once the service answered (its `next_cursor`), keeping the filters in `query`."""
        kept = tuple((k, v) for k, v in query.items() if v)
        return Pager(self.cursor, self.back, found.get("next_cursor"), kept, self.prefix)

    def _url(self, cursor: str | None, back: tuple[str, ...]) -> str:
        params = list(self.query)
        if cursor:
            params.append((f"{self.prefix}cursor", cursor))
            if back:
                params.append((f"{self.prefix}back", _SEP.join(back[-MAX_TRAIL:])))
        return "?" + urlencode(params)

    @property
    def first(self) -> bool:
        """Whether this is the first page."""
        return self.cursor is None

    @property
    def number(self) -> int | None:
        """The page's number (1 for the first), or None once the trail is too long to know it."""
        if self.cursor is None:
            return 1
        return None if len(self.back) >= MAX_TRAIL else len(self.back) + 2

    @property
    def next_url(self) -> str | None:
        """The next page's address, or None on the last page."""
        if not self.next_cursor:
            return None
        back = (*self.back, self.cursor) if self.cursor else ()
        return self._url(self.next_cursor, back)

    @property
    def previous_url(self) -> str | None:
        """The previous page's address, or None on the first page."""
        if self.cursor is None:
            return None
        if not self.back:
            return self._url(None, ())
        return self._url(self.back[-1], self.back[:-1])

    @property
    def first_url(self) -> str:
        """The first page's address (with the same filters)."""
        return self._url(None, ())


def provide_pager(cursor: FromQuery[str | None] = None, back: FromQuery[str | None] = None) -> Pager:
    """The `pager` dependency of a console list: where the request's `?cursor=&back=` puts it."""
    return Pager.of(cursor, back)


PagerDep = NamedDependency[Pager]  # `pager`: provide_pager
