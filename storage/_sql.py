"""Fixed SQL sent straight to the driver (sqlite3 or psycopg), and how values are bound.

SQLAlchemy Core compiles, processes and wraps every statement on every call (30-60 us each
here, more than SQLite needs to run it). The store's statements are written once against the
SQLModel tables instead, and bind values exactly as the Core column types would (JSON as
``dumps_json`` text, ``UTCDateTime`` as SQLAlchemy's SQLite text or an aware PostgreSQL
timestamp), so rows written either way read back the same.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

__all__ = ["Sql", "bind_when", "dumps_json", "read_when"]

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


class Sql:
    """One statement written with ``:name`` parameters, in both drivers' parameter styles.

    ``lock=True`` appends ``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
    holds the database's write lock.
    """

    __slots__ = ("lite", "pg")

    def __init__(self, text: str, *, lock: bool = False) -> None:
        self.lite = text
        self.pg = _PARAM.sub(r"%(\1)s", text) + (" FOR UPDATE" if lock else "")


def bind_when(value: datetime | None, pg: bool) -> Any:
    """A datetime as ``UTCDateTime`` binds it: aware UTC on PostgreSQL, SQLAlchemy's text on SQLite."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    if pg:
        return value
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def read_when(value: Any, pg: bool) -> datetime | None:
    """A datetime column's value as an aware UTC datetime (SQLite returns SQLAlchemy's text)."""
    if value is None:
        return None
    if pg:
        at: datetime = value.astimezone(UTC)
        return at
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # the audit chain's encoding, so a payload hashes the same before and after storage
        # (isoformat is that text, %Y's zero padding aside, at a fraction of strftime's cost)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        at = value.astimezone(UTC)
        if at.year < 1000:
            return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# one encoder for every call: json.dumps with options builds a new one each time
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def dumps_json(value: Any) -> str:
    """The JSON encoding of JSON columns (key order kept, datetimes as ISO UTC strings)."""
    return _ENCODER.encode(value)
