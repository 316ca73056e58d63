"""Reading console forms: every field is a string; blank means "not given"."""

from __future__ import annotations

from typing import Any

from litestar import Request

from appliance.errors import ValidationFailed


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The form's fields as strings (the last value of a repeated field; files are not read here)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def lines_of(text: str | None) -> list[str]:
    """A textarea's list: one entry a line (or comma-separated), blanks dropped."""
    return [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


def optional_int(value: str | None, field: str) -> int | None:
    """A whole number, or None when blank; a ValidationFailed naming `field` otherwise."""
    if value is None or not value.strip():
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise ValidationFailed(f"{field} must be a whole number", {"errors": [{"field": field}]}) from None
