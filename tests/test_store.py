"""The store's own fast paths agree with SQLAlchemy's."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.dialects import sqlite

from slack_tasklog._bulk import sqlite_utc
from slack_tasklog._models import Task


def test_sqlite_datetimes_are_stored_exactly_as_sqlalchemy_stores_them() -> None:
    dialect = sqlite.dialect()
    reference = Task.__table__.c.requested_at.type.dialect_impl(dialect).bind_processor(dialect)
    generator = random.Random(7)
    plus_two = timezone(timedelta(hours=2))
    values = [datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=plus_two)]
    for _ in range(2_000):
        seconds = generator.uniform(0, 4_000_000_000)
        values.append(datetime.fromtimestamp(seconds, timezone.utc))
        values.append(datetime.fromtimestamp(round(seconds), plus_two))
    for value in values:
        assert sqlite_utc(value) == reference(value), value
    assert sqlite_utc(None) is None


def test_every_batch_statement_goes_to_postgresql_as_one_statement_over_arrays() -> None:
    """A statement whose shape the rewrite does not know falls back to psycopg's executemany, a statement per row
    (2-3 times slower): none of the writer's may."""
    from sqlalchemy import create_engine

    from slack_tasklog import _summary
    from slack_tasklog._store import Store

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    store = Store(engine)
    statements = _summary._Statements(engine.dialect)
    bulks = {
        "tasks": store._insert_task,
        "follow-ups": store._insert_follow_up,
        "rounds": store._insert_assignment,
        "evaluations": store._insert_evaluation,
        "outcomes": store._insert_outcome,
        "summary update": statements.update,
        "daily stats": statements.upsert,
        "calibration": statements.upsert_calibration,
        "failures": statements.upsert_failures,
    }
    for name, bulk in bulks.items():
        assert bulk._arrays is not None, name
        sql, _ = bulk._arrays
        assert "unnest(" in sql, name
        assert "VARCHAR(" not in sql, name  # a cast with a length would cut long values instead of refusing them


def test_the_writer_stores_booleans_and_numbers_on_sqlite_as_sqlalchemy_does(tmp_path: Path) -> None:
    """Bulk leaves booleans and floats to sqlite3 and the column's REAL affinity: the stored values and their
    storage classes must be what SQLAlchemy's own processors would have stored."""
    from sqlalchemy import create_engine, insert, text

    from slack_tasklog._bulk import Bulk
    from slack_tasklog._models import Base, Outcome

    engine = create_engine(f"sqlite:///{tmp_path / 'types.db'}")
    Base.metadata.create_all(engine)
    table = Outcome.__table__
    names = ("id", "thread_ts", "agent", "success", "execution_time", "started_at", "finished_at")
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [("bulk-1", "1.1", "Grok", True, 2, when, when), ("bulk-2", "1.1", "Grok", False, 2.5, when, when)]
    with engine.begin() as conn:
        Bulk(insert(table), engine.dialect, names).execute_tuples(conn, rows)
        conn.execute(insert(table), [dict(zip(names, ("core" + row[0][4:], *row[1:]), strict=True)) for row in rows])
        stored = conn.execute(
            text(
                "SELECT id, typeof(success), success, typeof(execution_time), execution_time, started_at "
                "FROM tasklog_outcomes ORDER BY id"
            )
        ).all()
    by_writer = {row[0][-1]: row[1:] for row in stored if row[0].startswith("bulk")}
    by_core = {row[0][-1]: row[1:] for row in stored if row[0].startswith("core")}
    assert by_writer == by_core
    assert by_writer["1"][:4] == ("integer", 1, "real", 2.0)
