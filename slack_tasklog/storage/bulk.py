"""Many rows through one statement, handed to the driver's ``executemany`` directly.

SQLAlchemy's per-row parameter handling costs more than SQLite's own insert, and the writer runs a few such
statements per batch of thousands of events. Here a statement is compiled once per dialect, and each row is a tuple
built by ``itemgetter``, passed through the bound types' own bind processors (so values are stored exactly as
SQLAlchemy would store them, and read back the same way).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Dialect,
    Float,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from slack_tasklog.storage.models import UTCDateTime

__all__ = ["Bulk", "among", "register_sqlite_adapters", "sqlite_utc"]


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
_chain = itertools.chain.from_iterable


class _Values:
    """SQLite: an INSERT of one row (``VALUES (?, ...)``) as statements of many rows (``VALUES (?, ...), (?, ...)``).

    Why: ``sqlite3``'s ``executemany`` steps, resets and halts the statement once per row, and releases and takes
    the GIL around each: with 64 rows a statement an insert costs 30% less per row (4.3 µs against 3.0, measured on
    the rounds' table). Rows go in statements of ``per`` rows, the rest in statements of 32, 16, ... rows, so a
    table has a few statements, each prepared once and kept in ``sqlite3``'s statement cache. It does what one
    statement per row does: the rows are inserted one after the other, and conflicts are handled alike.

    Not for the writer's UPDATEs: ``UPDATE ... FROM (VALUES ...)`` materializes the values first and cost more
    instructions than a statement per row (callgrind: +5k per lifecycle)."""

    def __init__(self, sql: str, head: str, row: str, tail: str, width: int) -> None:
        self._head, self._row, self._tail = head, row, tail
        self._width = width
        self._per = 64
        while self._per > 1 and self._per * width > _SQLITE_PARAMETERS:
            self._per //= 2
        self._sql: dict[int, str] = {1: sql}

    @classmethod
    def of(cls, sql: str, width: int) -> _Values | None:
        match = _SQLITE_INSERT.match(sql)
        if match is None or width == 0 or match.group(2).count("?") != width:
            return None
        head, row, tail = match.groups()
        return cls(sql, head, row, tail, width)

    def _statement(self, rows: int) -> str:
        sql = self._sql.get(rows)
        if sql is None:
            sql = self._sql[rows] = f"{self._head}{', '.join([self._row] * rows)}{self._tail}"
        return sql

    def execute(
        self, conn: Connection, params: Sequence[Sequence[Any]], processors: Sequence[tuple[int, Callable[[Any], Any]]]
    ) -> None:
        """Insert ``params`` (rows of values not yet processed) with each column's processor applied."""
        width = self._width
        # One list of every value, processed a column at a time (a slice of the list): no loop per row in Python.
        values = list(_chain(params))
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
    ``UPDATE ... FROM unnest(...) AS v(...) WHERE key = v.key``. One statement for the batch: psycopg's
    ``executemany`` sends a statement per row and spent more of the writer's time than PostgreSQL itself (10 µs a
    row, measured). Also returns the positions of floating-point columns. None if ``sql`` is not of those shapes.
    """
    if dialect.name != "postgresql":
        return None

    def array(name: str) -> str:
        # Without a length: an explicit cast to VARCHAR(n) cuts a longer value down silently, where storing it in
        # the column refuses it (a bad event must be refused, not stored altered).
        element = re.sub(r"\(\d+(, *\d+)?\)", "", types[name].compile(dialect=dialect))
        # %b: psycopg sends the array in binary; in text it quotes element by element (2-8 times slower, measured).
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
    TypeDecorator, then the dialect's), except for UTC datetimes on SQLite, where SQLAlchemy's generic formatting is
    the costliest step of a write and :func:`sqlite_utc` produces the same text several times faster, and for
    booleans and floats on SQLite, which it stores as they come: ``sqlite3`` stores True as 1, and a column of
    REAL affinity turns an integer into a real itself (a call per value saved; test_store checks the rows match)."""
    if dialect.name == "sqlite":
        if isinstance(type_, UTCDateTime):
            return sqlite_utc
        if isinstance(type_.dialect_impl(dialect), Boolean | Float):
            return None
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, UTCDateTime):
        return _taking_seconds(processor)
    return processor


def _taking_seconds(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """A UTC datetime column's processor that also takes seconds since the epoch, as events carry their times."""

    def process(value: Any) -> Any:
        if value is not None and not isinstance(value, datetime):
            value = _from_seconds(value, timezone.utc)
        return value if processor is None else processor(value)

    return process


_from_seconds = datetime.fromtimestamp


def sqlite_utc(value: datetime | float | None) -> str | None:
    """An aware datetime, or seconds since the epoch, as SQLAlchemy's SQLite dialect stores a UTC ``UTCDateTime``
    (test_store checks they agree). Seconds skip making a datetime only to check its zone: the writer's rows carry
    their events' times as they come.

    Seconds are formatted without a datetime: ``isoformat`` formats through C's ``vsprintf`` (6-12k instructions a
    call, measured with callgrind), where here the text of a whole second is looked up (or put together from its
    day's date and a table of two-digit numbers) and only the microseconds formatted, in this one frame (three
    times per lifecycle). They are rounded as ``fromtimestamp`` rounds them (half to even, on the same double),
    which test_store checks on thousands of values."""
    if type(value) is float:
        whole = _floor(value)  # NaN and infinities raise here, as fromtimestamp would
        if whole < 0:  # before 1970, where floor and C's modf differ: the general way
            return _from_seconds(value, timezone.utc).isoformat(" ", "microseconds")[:26]
        micro = round((value - whole) * 1e6)
        if micro >= 1_000_000:
            whole += 1
            micro -= 1_000_000
        prefix = _SECONDS.get(whole)
        if prefix is None:
            prefix = _second_text(whole)
        return f"{prefix}.{micro:06d}"
    if not isinstance(value, datetime):
        return None if value is None else sqlite_utc(float(value))
    if value.tzinfo is not timezone.utc:
        if value.tzinfo is None:
            raise ValueError("slack_tasklog stores timezone-aware datetimes only")
        value = value.astimezone(timezone.utc)
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset: C code, several times faster than formatting fields.
    return value.isoformat(" ", "microseconds")[:26]


def register_sqlite_adapters() -> None:
    """Adapters for ``None`` and ``bool`` in ``sqlite3``, each storing what ``sqlite3`` stores without one (NULL; 0
    or 1), unless the application registered its own.

    Why: ``sqlite3`` binds int, float, str and bytearray directly, and looks every other value up as an adaptable
    object. On Python 3.11 that lookup raises, formats and discards an AttributeError for each NULL and boolean
    parameter (2-3k instructions; +0.3 µs per value, measured): the writer binds several per lifecycle. With an
    adapter registered, the lookup finds it in a dict. Adapters are process-wide, hence the care not to replace one.
    """
    if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
        # {}.get returns None for None, in C: the adapter costs a dict lookup, not a Python frame.
        sqlite3.register_adapter(type(None), cast(Callable[[None], None], {}.get))
    if (bool, sqlite3.PrepareProtocol) not in sqlite3.adapters:
        sqlite3.register_adapter(bool, int)


# "YYYY-MM-DD HH:MM:SS" of the last whole seconds seen (a batch's events fall in a few of them), "YYYY-MM-DD " of
# the days seen, and "00" to "59".
_SECONDS: dict[int, str] = {}
_DAYS: dict[int, str] = {}
_TWO = [f"{number:02d}" for number in range(60)]
_floor = math.floor


def _second_text(whole: int) -> str:
    # An import meets a new second at every task: its text from the day's date, not from a datetime.
    day, second = divmod(whole, 86_400)
    date = _DAYS.get(day)
    if date is None:
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        date = _DAYS[day] = _from_seconds(day * 86_400, timezone.utc).isoformat(" ")[:11]  # raises past 9999
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    if len(_SECONDS) >= 4096:
        _SECONDS.clear()
    text = _SECONDS[whole] = f"{date}{_TWO[hour]}:{_TWO[minute]}:{_TWO[second]}"
    return text


# JSON functions are built into SQLite from 3.38 (2022); before that they may be missing.
_JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)


def among(conn: Connection, column: Any, values: Sequence[Any], *, key: bool = False) -> Any:
    """``column IN values``, in the form each backend reads fastest for the writer's lists of hundreds of ids.

    SQLite: ``IN (SELECT value FROM json_each(?))``, one parameter: SQLAlchemy's expansion of an IN list into a
    parameter per value cost more than the query (0.8 ms against 0.4 ms for 500 ids, measured). PostgreSQL, for a
    primary key (``key=True``): ``= ANY(array)``, which the server parses and plans several times faster than an IN
    list; not for other columns: with a prepared statement's generic plan PostgreSQL cannot see how many ids the
    array holds, and on a table not analyzed yet it picked a sequential scan of the rounds for it (7 times slower).
    For those, ``IN (SELECT unnest(array))``: one parameter too, planned as a semi-join whatever the plan (the same
    time as the IN list on a table of 300,000 rounds, analyzed or not; 12 µs less of the writer's time per task).
    """
    dialect = conn.dialect.name
    if dialect == "sqlite" and _JSON_EACH:
        listed = bindparam(None, json.dumps(list(values)), type_=String)
        return column.in_(select(literal_column("value")).select_from(func.json_each(listed)))
    if dialect == "postgresql":
        if key:
            return column == any_(bindparam("ids", list(values), type_=postgresql.ARRAY(BigInteger())))
        # Other columns: a semi-join with the unnested array, also one parameter, which every plan (a generic one
        # too, which cannot see the array) does by looking each value up in the column's index.
        array: Any = postgresql.ARRAY(column.type)
        return column.in_(select(func.unnest(bindparam(None, list(values), type_=array))).scalar_subquery())
    return column.in_(values)
