"""The query parameters of a listing route, one definition for every controller that pages.

The contract's cursor pagination (`limit` 1-500, default 50; `cursor` an opaque token from the last
page's `next_cursor`, appliance.pagination): a route takes `limit: PageLimit = None, cursor:
PageCursor = None`, and the OpenAPI schema shows the same bounds for all of them.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import FromQuery, QueryParameter

PageLimit = Annotated[int | None, QueryParameter(ge=1, le=500)]
PageCursor = FromQuery[str | None]
