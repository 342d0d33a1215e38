"""Many rows through one statement: the writer's and the importer's batches.

A statement is compiled once per dialect and each batch goes to the driver in as few statements as the backend
allows: many rows per ``INSERT`` on SQLite, one statement over arrays on PostgreSQL, ``executemany`` elsewhere.
Values pass through the bound types' own bind processors, so they are stored exactly as SQLAlchemy would store them,
and read back the same way.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    Insert,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from slack_tasklog.storage.models import UTCDateTime

__all__ = ["Bulk", "among", "any_rows", "as_stored", "insert_ignore"]


class Bulk:
    """``statement`` for many rows at once: ``execute(conn, rows)`` with each row a mapping of bind names, or
    ``execute_tuples(conn, rows)`` with each row a tuple in the order of ``names`` (the writer's hot paths: no dict
    per row).

    ``names``: the columns an INSERT's rows carry (its binds are named after them); other statements name their
    own ``bindparam``\\ s, whose types must be given (or come from the column they are compared with)."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        names: Sequence[str] | None = None,
        *,
        order: Sequence[str] | None = None,
    ) -> None:
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
        # For execute_tuples: where each of the statement's parameters is in a row given in ``order`` (default:
        # ``names``); an INSERT's parameters follow the table's column order, not the order the columns were named in.
        given = list(order or names or keys)
        positions = [given.index(key) for key in keys]
        self._reorder: Callable[[Sequence[Any]], tuple[Any, ...]] | None = (
            None if positions == list(range(len(given))) else _getter(positions)
        )
        # PostgreSQL: the whole batch as one statement over arrays, a column each (see _arrays).
        self._arrays = _arrays(self._sql, {key: compiled.binds[key].type for key in keys}, dialect)
        # SQLite: an INSERT takes many rows per statement (see _Values).
        self._rows = _Values.of(self._sql, len(keys)) if dialect.name == "sqlite" else None

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._run(conn, [self._values(row) for row in rows])

    def execute_tuples(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Like :meth:`execute`, each row a tuple of values in the order of ``order`` or ``names``."""
        reorder = self._reorder
        self._run(conn, rows if reorder is None else [reorder(row) for row in rows])

    def _run(self, conn: Connection, params: Sequence[Any]) -> None:
        if not params:  # nothing to do; and an empty array statement would have no parameters to bind
            return
        if self._rows is not None and len(params) > 1:
            self._rows.execute(conn, params, self._processors)
            return
        if self._processors:
            processed = []
            for values in params:
                row = list(values)
                for index, processor in self._processors:
                    row[index] = processor(row[index])
                processed.append(tuple(row))
            params = processed
        if self._arrays is not None:
            sql, floats = self._arrays
            columns = [list(column) for column in zip(*params, strict=True)]
            for index in floats:  # a list mixing ints and floats is not an array psycopg can send
                columns[index] = [None if value is None else float(value) for value in columns[index]]
            conn.exec_driver_sql(sql, dict(zip(self._names, columns, strict=True)))
            return
        if not self._positional:
            params = [dict(zip(self._names, values, strict=True)) for values in params]
        conn.exec_driver_sql(self._sql, params)


_INSERT = re.compile(r"^INSERT INTO (\S+) \(([^)]*)\) VALUES \(.*?\)( ON CONFLICT .*)?$", re.DOTALL)
_UPDATE = re.compile(r"^UPDATE (\S+) SET (.*) WHERE (\S+) = %\((\w+)\)s(?:::[\w ()]+)?$", re.DOTALL)
_ASSIGNMENT = re.compile(r"(\w+)=%\((\w+)\)s(?:::[\w ()]+)?")
_SQLITE_INSERT = re.compile(r"^(INSERT INTO \S+ \([^)]*\) VALUES )(\(.*?\))((?: ON CONFLICT .*)?)$", re.DOTALL)
# Parameters a SQLite statement may take: 999 before 3.32 (2020), when the default became 32,766.
_SQLITE_PARAMETERS = 999


class _Values:
    """SQLite: an INSERT of one row (``VALUES (?, ...)``) as statements of many rows (``VALUES (?, ...), (?, ...)``).

    Why: ``sqlite3``'s ``executemany`` runs the statement once per row; a statement of many rows does the same work
    in fewer steps. Rows go in statements of ``per`` rows, the rest in statements of 32, 16, ... rows, so a table
    has a few statements, each kept in ``sqlite3``'s statement cache. It does what one statement per row does: the
    rows are inserted one after the other, and conflicts are handled alike. (UPDATEs stay a statement per row:
    ``UPDATE ... FROM (VALUES ...)`` gained nothing.)"""

    def __init__(self, sql: str, head: str, row: str, tail: str, width: int) -> None:
        self._head, self._row, self._tail = head, row, tail
        self._width = width
        self._per = 64
        while self._per > 1 and self._per * width > _SQLITE_PARAMETERS:
            self._per //= 2

    @classmethod
    def of(cls, sql: str, width: int) -> _Values | None:
        match = _SQLITE_INSERT.match(sql)
        if match is None or width == 0 or match.group(2).count("?") != width:
            return None
        head, row, tail = match.groups()
        return cls(sql, head, row, tail, width)

    def _statement(self, rows: int) -> str:
        return f"{self._head}{', '.join([self._row] * rows)}{self._tail}"

    def execute(
        self, conn: Connection, params: Sequence[Sequence[Any]], processors: Sequence[tuple[int, Callable[[Any], Any]]]
    ) -> None:
        """Insert ``params`` (rows of values not yet processed) with each column's processor applied."""
        width = self._width
        # One flat list of every value, as the statement takes them; each processor applied to its column's slice.
        values = list(itertools.chain.from_iterable(params))
        if len(values) != len(params) * width:
            raise ValueError(f"rows of {width} values expected")
        for index, processor in processors:
            values[index::width] = map(processor, values[index::width])
        per = self._per
        step = per * width
        whole = len(params) - len(params) % per
        if whole:
            chunks = [tuple(values[start : start + step]) for start in range(0, whole * width, step)]
            conn.exec_driver_sql(self._statement(per), chunks)
        start = whole
        while start < len(params):
            rows = 1 << ((len(params) - start).bit_length() - 1)
            conn.exec_driver_sql(self._statement(rows), tuple(values[start * width : (start + rows) * width]))
            start += rows


def _arrays(sql: str, types: Mapping[str, Any], dialect: Dialect) -> tuple[str, list[int]] | None:
    """PostgreSQL only: ``sql`` (an INSERT of one row, or an UPDATE of one row by key) rewritten to take every row
    at once, each parameter an array of a column's values: ``INSERT ... SELECT * FROM unnest(%(a)b::T[], ...)`` and
    ``UPDATE ... FROM unnest(...) AS v(...) WHERE key = v.key``. One statement for the batch, where psycopg's
    ``executemany`` sends one per row. Also returns the positions of floating-point columns. None if ``sql`` is not
    of those shapes.
    """
    if dialect.name != "postgresql":
        return None

    def array(name: str) -> str:
        # Without a length: an explicit cast to VARCHAR(n) cuts a longer value down silently, where storing it in
        # the column refuses it (a bad event must be refused, not stored altered).
        element = re.sub(r"\(\d+(, *\d+)?\)", "", types[name].compile(dialect=dialect))
        # %b: psycopg sends the array in binary, rather than quoting it element by element in text.
        return f"%({name})b::{element}[]"

    names = list(types)
    floats = [index for index, name in enumerate(names) if _is_float(types[name], dialect)]
    if match := _INSERT.match(sql):
        table, columns, conflict = match.groups()
        listed = [column.strip() for column in columns.split(",")]
        if sorted(listed) != sorted(names):
            return None
        arrays = ", ".join(array(name) for name in listed)
        return f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) AS v{conflict or ''}", floats
    if match := _UPDATE.match(sql):
        table, assignments, key, key_bind = match.groups()
        pairs = _ASSIGNMENT.findall(assignments)
        binds = [key_bind, *(bind for _, bind in pairs)]
        if sorted(binds) != sorted(names) or len(pairs) != len(assignments.split(", ")):
            return None
        setting = ", ".join(f"{column}=v.{bind}" for column, bind in pairs)
        arrays = ", ".join(array(bind) for bind in binds)
        return (
            f"UPDATE {table} SET {setting} FROM unnest({arrays}) AS v({', '.join(binds)}) WHERE {key} = v.{key_bind}",
            floats,
        )
    return None


def _is_float(type_: Any, dialect: Dialect) -> bool:
    try:
        return type_.dialect_impl(dialect).python_type is float
    except NotImplementedError:
        return False


def _getter(indexes: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    if len(indexes) == 1:  # itemgetter of one index returns the item, not a 1-tuple
        (index,) = indexes
        return lambda row: (row[index],)
    return operator.itemgetter(*indexes)


def _bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``type_`` goes to this dialect's driver: the type's own processor (``dialect_impl``: our
    TypeDecorator, then the dialect's). UTC datetime columns also take seconds since the epoch, as events carry
    their times."""
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime):
        return _sqlite_utc
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, UTCDateTime):
        return _taking_seconds(processor)
    return processor


def _taking_seconds(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A UTC datetime column's processor that also takes seconds since the epoch."""

    def process(value: Any) -> Any:
        if value is not None and not isinstance(value, datetime):
            value = datetime.fromtimestamp(value, timezone.utc)
        return value if processor is None else processor(value)

    return process


def _sqlite_utc(value: datetime | float | None) -> str | None:
    """SQLite: a UTC ``UTCDateTime`` (or seconds since the epoch) as the text SQLAlchemy's SQLite dialect stores,
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (tests check they agree). ``isoformat`` writes it in one call, where SQLAlchemy's
    processors format it field by field, then convert the zone: three times per lifecycle, that held the writer back
    by a fifth."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, timezone.utc)
    elif value.tzinfo is None:
        raise ValueError("slack_tasklog stores timezone-aware datetimes only")
    return value.astimezone(timezone.utc).isoformat(" ", "microseconds")[:26]


def as_stored(column: Any) -> Any:
    """``column`` selected as the driver returns it, without SQLAlchemy's result processing: for the times the
    writer only compares or takes the day of, parsing a datetime per row cost it more than the rest of a row
    (text in one fixed format on SQLite, which orders as the database orders it)."""
    return type_coerce(column, String).label(column.name)


# JSON functions are built into SQLite from 3.38 (2022); before that they may be missing.
_JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)


def among(conn: Connection, column: Any, values: Sequence[Any], *, key: bool = False) -> Any:
    """``column IN values``, for the writer's lists of hundreds of ids: the list as one parameter.

    SQLAlchemy expands an IN list into a parameter per value, in Python, at every execution: for the writer's lists
    that cost more than the query. SQLite reads the list from one JSON parameter (``json_each``). PostgreSQL takes
    it as one array: for a primary key (``key=True``) ``= ANY(array)``; for other columns ``IN (SELECT
    unnest(array))``, a semi-join that every plan does through the column's index (with ``= ANY`` and a generic
    plan, which cannot see how many values the array holds, PostgreSQL may pick a sequential scan).
    """
    dialect = conn.dialect.name
    if dialect == "sqlite" and _JSON_EACH:
        listed = bindparam(None, json.dumps(list(values)), type_=String)
        return column.in_(select(literal_column("value")).select_from(func.json_each(listed)))
    if dialect == "postgresql":
        if key:
            return column == any_(bindparam("ids", list(values), type_=postgresql.ARRAY(BigInteger())))
        array: Any = postgresql.ARRAY(column.type)
        return column.in_(select(func.unnest(bindparam(None, list(values), type_=array))).scalar_subquery())
    return column.in_(values)


def any_rows(conn: Connection, table: Table) -> bool:
    """Whether ``table`` holds a row at all. The tables of what waits (replies and votes ahead of their task,
    deletions kept for a message yet to come, forgotten people) are nearly always empty: asking first spares the
    writer a lookup per key of every batch."""
    return conn.execute(select(literal_column("1")).select_from(table).limit(1)).first() is not None


def insert_ignore(table: Table, dialect: str) -> Insert:
    """An INSERT into ``table`` that skips rows whose key is already there, in the words of the ``dialect`` named
    (``conn.dialect.name``): what makes a write idempotent, whoever writes it twice.

    Example::

        conn.execute(insert_ignore(table, conn.dialect.name), [row])
    """
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        # Not INSERT IGNORE: besides duplicates it turns every error into a warning and stores the row anyway (NULL
        # in a NOT NULL column becomes '', a long name is cut). A no-op update on a duplicate key skips only those.
        key = table.primary_key.columns[0].name
        return mysql_insert(table).on_duplicate_key_update({key: table.c[key]})
    raise NotImplementedError(f"slack_tasklog does not support the {dialect!r} database yet")
