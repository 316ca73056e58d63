"""Cursor pagination as the contract gives it: `?limit=` (default 50, max 500) and an opaque `?cursor=`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from appliance.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    """Where a page starts (after `after`, a (created_at, id) key) and how many rows it holds."""

    limit: int
    after: tuple[float, str] | None


def parse_page(limit: int | None, cursor: str | None) -> Page:
    """Validate ?limit and decode ?cursor."""
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}", {"errors": [{"field": "limit", "message": "out of range"}]}
        )
    after = None
    if cursor:
        try:
            created_at, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
            after = (float(created_at), str(row_id))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed("invalid cursor", {"errors": [{"field": "cursor", "message": "invalid"}]}) from exc
    return Page(size, after)


def encode_cursor(created_at: float, row_id: str) -> str:
    """The cursor that continues after this row."""
    return base64.urlsafe_b64encode(json.dumps([created_at, row_id]).encode()).decode().rstrip("=")


def page_result(rows: list[dict[str, Any]], page: Page, shape: Any) -> dict[str, Any]:
    """`{"data": [...], "next_cursor": ...}` from rows fetched with LIMIT page.limit + 1."""
    more = len(rows) > page.limit
    kept = rows[: page.limit]
    next_cursor = encode_cursor(kept[-1]["created_at"], kept[-1]["id"]) if more and kept else None
    return {"data": [shape(r) for r in kept], "next_cursor": next_cursor}


def keyset_clause(page: Page, table: str = "") -> tuple[str, tuple[Any, ...]]:
    """The SQL condition and parameters that start a page after its cursor (`table` qualifies columns)."""
    if page.after is None:
        return "1", ()
    q = f"{table}." if table else ""
    return f"({q}created_at, {q}id) > (?, ?)", page.after
