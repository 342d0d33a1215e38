"""The store's bulk statements store what SQLAlchemy's own statements would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from slack_tasklog.storage import summary
from slack_tasklog.storage.bulk import _bind_processor
from slack_tasklog.storage.models import Task
from sqlalchemy.dialects import postgresql, sqlite


def test_seconds_since_the_epoch_are_stored_as_their_datetime() -> None:
    """Events carry times as seconds: the writer's statements take them for datetime columns, and must store exactly
    what the datetime would have stored."""
    column_type = Task.__table__.c.requested_at.type
    generator = random.Random(11)
    seconds = [0.0, 1.0000005, 1_700_000_000.9999996, 86_399.9999995, -1.5]
    seconds += [generator.uniform(0, 4_000_000_000) for _ in range(1_000)]
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        reference = column_type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
        writer = _bind_processor(column_type, dialect)
        assert writer is not None
        for value in seconds:
            as_datetime = datetime.fromtimestamp(value, timezone.utc)
            assert writer(value) == writer(as_datetime) == reference(as_datetime), value
            elsewhere = as_datetime.astimezone(timezone(timedelta(hours=-7)))  # another zone: stored as UTC
            assert writer(elsewhere) == reference(elsewhere), value
        assert writer(None) is None


def test_every_batch_statement_goes_to_postgresql_as_one_statement_over_arrays() -> None:
    """A statement whose shape the rewrite does not know falls back to psycopg's executemany, a statement per row
    (2-3 times slower): none of the writer's may."""
    from slack_tasklog.storage.store import Store
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connects
    store = Store(engine)
    statements = summary._Statements(engine.dialect)
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
    """The stored values and their storage classes must be what SQLAlchemy's own statements store."""
    from slack_tasklog.storage.bulk import Bulk
    from slack_tasklog.storage.models import Base, Outcome
    from sqlalchemy import create_engine, insert, text

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


@pytest.mark.parametrize("count", [2, 3, 63, 64, 65, 127, 128, 200, 1_000])
def test_sqlite_inserts_of_many_rows_per_statement_do_what_a_statement_per_row_does(tmp_path: Path, count: int) -> None:
    """On SQLite, Bulk inserts 64 rows per statement, the rest in statements of 32, 16, ... rows: every row lands,
    in the order given (the tasks' ids), a row repeated in a batch is ignored as its conflict says, and an upsert
    given one key twice adds both."""
    from slack_tasklog.storage.models import Base, DailyStats
    from slack_tasklog.storage.store import Store
    from sqlalchemy import create_engine, select

    engine = create_engine(f"sqlite:///{tmp_path / 'many.db'}")
    Base.metadata.create_all(engine)
    store = Store(engine)
    statements = summary._Statements(engine.dialect)
    for bulk in (store._insert_task, store._insert_evaluation, statements.upsert):
        assert bulk._rows is not None
    threads = [f"{1_700_000_000 + i}.000100" for i in range(count)]
    tasks = [
        ("T1", None, "C1", ts, ts, "U1", f"request {ts}", 1_700_000_000.5, 1_700_000_001.0, 0, None) for ts in threads
    ]
    day = datetime(2024, 1, 1).date()
    counts = [("T1", "", day, True, "Grok", 3, 1, 1, 50.0, 1, 0, 0, 0, 10, 20, 0.5, 1, 1)] * count
    with engine.begin() as conn:
        store._insert_task.execute_tuples(conn, tasks + tasks[: count // 2])  # the repeats: ignored
        statements.upsert.execute_tuples(conn, counts)
        stored = conn.execute(select(Task.__table__.c.id, Task.__table__.c.thread_ts).order_by("id")).all()
        daily = conn.execute(select(DailyStats.__table__.c.tasks, DailyStats.__table__.c.confidence_sum)).all()
    assert [ts for _, ts in stored] == threads
    assert [task_id for task_id, _ in stored] == list(range(1, count + 1))
    assert daily == [(count, 50.0 * count)]


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:tasklog_memory?mode=memory&cache=shared&uri=true"]
)
def test_an_in_memory_sqlite_database_is_one_database_for_the_writer_and_readers(url: str) -> None:
    """Every connection to an in-memory database would be a database of its own: the writer's and a reader's must
    be the same connection, whichever way the URL says "in memory"."""
    from slack_tasklog import TaskLog
    from slack_tasklog.events import TaskRequested
    from sqlalchemy import StaticPool, func, select

    tasklog = TaskLog(url)
    try:
        assert isinstance(tasklog.engine.pool, StaticPool)
        tasklog._record(TaskRequested("T1", None, "C1", "1.000100", "1.000100", "U1", "in memory"))
        assert tasklog.flush(10)
        with tasklog.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Task)).scalar_one() == 1
    finally:
        tasklog.close()


def test_task_logs_made_on_a_hosts_sqlite_engine_add_one_listener_to_it(tmp_path: Path) -> None:
    """``TaskLog(engine=...)`` notes the file each new connection opens (to tell a replaced file apart): with one
    listener on the host's engine, however many task logs are made on it."""
    from slack_tasklog import TaskLog
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    listeners = len(engine.pool.dispatch.connect)
    for _ in range(3):
        TaskLog(engine=engine, journal=False).close()
    assert len(engine.pool.dispatch.connect) == listeners + 1
    engine.dispose()
