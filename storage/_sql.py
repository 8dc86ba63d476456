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
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from enum import Enum
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

__all__ = ["JSON", "PLAIN", "WHEN", "Rows", "Sql", "bind_when", "dumps_json", "loads_json", "read_when"]

M = TypeVar("M", bound=BaseModel)
# how a column binds and reads: as it is, as ``UTCDateTime``, as JSON text
PLAIN, WHEN, JSON = 0, 1, 2

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
    if value.tzinfo is UTC:
        return value if pg else value.replace(tzinfo=None).isoformat(" ", "microseconds")
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


# json.dumps, and JSONEncoder.encode too, build a new C encoder on every call; each database
# thread keeps one instead (its own, since the encoder's circular-reference markers are per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
_LOCAL = threading.local()


def _thread_encoder() -> tuple[Any, dict[int, Any]]:
    markers: dict[int, Any] = {}
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C encoder
        encoder = None
    else:
        encoder = c_make_encoder(
            markers, _json_default, encode_basestring, None, ":", ",", False, False, True
        )
    _LOCAL.encoder = encoder, markers
    return encoder, markers


def dumps_json(value: Any) -> str:
    """The JSON encoding of JSON columns (key order kept, datetimes as ISO UTC strings)."""
    if not value:
        # [] and {} only (an empty tuple or set still goes through the encoder)
        if value == []:
            return "[]"
        if value == {}:
            return "{}"
    try:
        encoder, markers = _LOCAL.encoder
    except AttributeError:
        encoder, markers = _thread_encoder()
    if encoder is None or isinstance(value, str):  # pragma: no cover - no C encoder
        return _ENCODER.encode(value)
    try:
        return "".join(encoder(value, 0))
    except BaseException:
        markers.clear()
        raise


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_EMPTY: dict[str, Any] = {"[]": list, "{}": dict}


def loads_json(text: str) -> Any:
    """Decode a JSON column's text (what ``dumps_json`` wrote) as ``json.loads`` would."""
    empty = _EMPTY.get(text)
    if empty is not None:
        return empty()
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)  # raises the usual JSONDecodeError
    if end != len(text):
        return json.loads(text)  # surrounding whitespace, or trailing data (raises)
    return value


class Rows(Generic[M]):
    """An engine model's columns in one table, read back: the SQL column list and how a selected
    row becomes the model. ``storage.mapping.Shape`` derives the column kinds from the SQLModel
    table classes (and writes rows too); the CLI's light read path names them itself."""

    def __init__(
        self,
        model: type[M],
        table: str,
        *,
        whens: Collection[str],
        jsons: Collection[str],
        quote: Callable[[str], str] = str,
    ) -> None:
        self.model = model
        self.table = quote(table)
        self.names: tuple[str, ...] = tuple(model.model_fields)
        self.kinds = tuple(
            (name, WHEN if name in whens else JSON if name in jsons else PLAIN) for name in self.names
        )
        self.columns = ", ".join(quote(name) for name in self.names)
        # positions of the columns a row value needs converting in (the rest pass as they are)
        self._whens = tuple(i for i, (_, kind) in enumerate(self.kinds) if kind == WHEN)
        self._jsons = tuple(i for i, (_, kind) in enumerate(self.kinds) if kind == JSON)
        self._validate = model.__pydantic_validator__.validate_python

    def load(self, row: Sequence[Any], pg: bool) -> M:
        """Validate a row selected with ``self.columns`` into the model."""
        values = list(row)
        if len(values) != len(self.names):
            raise ValueError(f"{self.table}: {len(values)} values for {len(self.names)} columns")
        for i in self._whens:
            value = values[i]
            if value is not None:
                values[i] = read_when(value, pg)
        if not pg:
            for i in self._jsons:
                value = values[i]
                if value is not None:
                    values[i] = loads_json(value)
        model: M = self._validate(dict(zip(self.names, values, strict=True)))
        return model

    def load_all(self, rows: Sequence[Sequence[Any]], pg: bool) -> list[M]:
        """``load`` of every row."""
        return [self.load(row, pg) for row in rows]

    def select(self, where: str, *, lock: bool = False) -> Sql:
        """``SELECT <columns> FROM <table> <where>``."""
        return Sql(f"SELECT {self.columns} FROM {self.table} {where}", lock=lock)
