"""Many rows through one statement, handed to the driver's ``executemany`` directly.

SQLAlchemy's per-row parameter handling costs more than SQLite's own insert, and the writer runs a few such
statements per batch of thousands of events. Here a statement is compiled once per dialect, and each row is a tuple
built by ``itemgetter``, passed through the bound types' own bind processors (so values are stored exactly as
SQLAlchemy would store them, and read back the same way).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from ._models import UTCDateTime

__all__ = ["Bulk", "sqlite_utc"]


class Bulk:
    """``statement`` for many rows at once: ``execute(conn, rows)`` with each row a mapping of bind names.

    ``names``: the columns an INSERT's rows carry (its binds are named after them); other statements name their
    own ``bindparam``\\ s, whose types must be given (or come from the column they are compared with)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, names: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names) if names is not None else None)
        assert isinstance(compiled, SQLCompiler)
        self._sql = str(compiled)
        self._positional = bool(compiled.positional)
        keys = list(compiled.positiontup or ()) if self._positional else list(names or compiled.binds)
        self._names = keys
        self._values = operator.itemgetter(*keys)
        self._processors = [
            (index, processor)
            for index, key in enumerate(keys)
            if (processor := _bind_processor(compiled.binds[key].type, dialect)) is not None
        ]

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        params: list[Any] = [self._values(row) for row in rows]
        if self._processors:
            processed = []
            for values in params:
                row = list(values)
                for index, processor in self._processors:
                    row[index] = processor(row[index])
                processed.append(tuple(row))
            params = processed
        if not self._positional:
            params = [dict(zip(self._names, values, strict=True)) for values in params]
        conn.exec_driver_sql(self._sql, params)


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``type_`` goes to this dialect's driver: the type's own processor (``dialect_impl``: our
    TypeDecorator, then the dialect's), except for UTC datetimes on SQLite, where SQLAlchemy's generic formatting is
    the costliest step of a write and :func:`sqlite_utc` produces the same text several times faster."""
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_utc
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def sqlite_utc(value: datetime | None) -> str | None:
    """An aware datetime as SQLAlchemy's SQLite dialect stores a UTC ``UTCDateTime`` (test_store checks they agree)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("slack_tasklog stores timezone-aware datetimes only")
    if value.utcoffset():
        value = value.astimezone(timezone.utc)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )
