"""Opaque keyset cursors: a page continues after the last row it showed, however rows are added."""

from __future__ import annotations

import base64
import binascii

from bot.api._problems import ApiError

__all__ = ["cursor_of", "next_cursor"]

_PREFIX = "after:"


def next_cursor(after: int | None) -> str | None:
    """The cursor of the next page (None: this was the last one)."""
    if after is None:
        return None
    return base64.urlsafe_b64encode(f"{_PREFIX}{after}".encode()).decode()


def cursor_of(cursor: str | None) -> int | None:
    """The position a cursor continues after. Raises a 400 problem for one we did not make."""
    if cursor is None:
        return None
    invalid = ApiError(
        400, "validation_failed", "not a cursor this API returned", errors={"cursor": "invalid"}
    )
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    digits = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not digits.isdigit() or int(digits) < 1:
        raise invalid
    return int(digits)
