"""Two writers (two bot processes, each with its own engine) changing the same tasks at once never deadlock: every
path of a write takes its task locks in one ordered step, and nothing is lost or written twice."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

import pytest
from slack_tasklog.events import (
    AssignmentRecorded,
    Event,
    FeedbackGiven,
    MessageDeleted,
    MessageInThread,
    OutcomeRecorded,
    TaskRequested,
)
from slack_tasklog.storage.store import Store, create_tasklog_engine
from sqlalchemy import Connection, text

pytestmark = pytest.mark.backends("postgresql", "mariadb")

TASKS = 24
ROUNDS = 30
WRITERS = 2


def _thread(task: int) -> str:
    return f"{1_700_000_000 + task}.000100"


def _reply(task: int, writer: int, round_: int) -> str:
    return f"{1_700_000_000 + task}.{writer}{round_:03d}{task:02d}"


def _requests() -> list[Event]:
    return [TaskRequested("T1", None, "C1", _thread(t), _thread(t), "U0", f"do {t}") for t in range(TASKS)]


def _batch(writer: int, round_: int, generator: random.Random) -> list[Event]:
    """Rounds, outcomes, follow-ups, votes and deletions on tasks the other writer changes in the same round."""
    events: list[Event] = []
    for task in generator.sample(range(TASKS), TASKS // 2):
        thread, key = _thread(task), f"{writer}-{round_}-{task}"
        reply = _reply(task, writer, round_)
        events += [
            AssignmentRecorded(f"a{key}", thread, "C1", "T1", "Builder", 80.0, (("Builder", 80.0),), 1.7e9, ""),
            OutcomeRecorded(f"a{key}", thread, "C1", "T1", "Builder", task % 3 != 0, 0.5, "boom: quoted", 1.7e9, 1.7e9),
            MessageInThread("T1", "C1", thread, reply, f"U{writer}", "quoted"),
            FeedbackGiven("T1", "C1", thread, None, f"U{writer}{round_}", "+1", bool(round_ % 2), True, reply),
        ]
        if generator.random() < 0.5:
            events.append(MessageDeleted("T1", "C1", reply))
    generator.shuffle(events)
    return events


def test_two_writers_on_the_same_tasks_never_deadlock(database_url: str) -> None:
    engines = [create_tasklog_engine(database_url) for _ in range(WRITERS)]
    stores = [Store(engine) for engine in engines]
    try:
        stores[0].write(_requests())
        batches = [
            [_batch(writer, round_, random.Random(writer * 1_000 + round_)) for round_ in range(ROUNDS)]
            for writer in range(WRITERS)
        ]
        errors: list[BaseException] = []
        start = threading.Barrier(WRITERS)

        def run(store: Store, rounds: Sequence[list[Event]]) -> None:
            try:
                start.wait()
                for batch in rounds:
                    store.write(batch)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(stores[w], batches[w])) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        written = [event for rounds in batches for batch in rounds for event in batch]
        with engines[0].connect() as conn:

            def count(table: str) -> int:
                return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

            assert count("tasklog_outcomes") == sum(isinstance(e, OutcomeRecorded) for e in written)
            assert count("tasklog_assignments") == sum(isinstance(e, AssignmentRecorded) for e in written)
            assert count("tasklog_follow_ups") == sum(isinstance(e, MessageInThread) for e in written)
            assert count("tasklog_feedback") == sum(isinstance(e, FeedbackGiven) for e in written)
            assert count("tasklog_waiting_votes") == 0
            assert count("tasklog_follow_ups WHERE text IS NULL") == sum(isinstance(e, MessageDeleted) for e in written)
            # The summaries agree with the rows: each task counted once, its tallies those of its votes.
            assert count("tasklog_tasks WHERE stats_bucket IS NULL") == 0
            assert conn.execute(text("SELECT sum(tasks) FROM tasklog_daily_stats")).scalar_one() == TASKS
            assert conn.execute(
                text("SELECT sum(follow_ups), sum(feedback_up) + sum(feedback_down) FROM tasklog_tasks")
            ).one() == (count("tasklog_follow_ups"), count("tasklog_feedback"))
    finally:
        for engine in engines:
            engine.dispose()


def _wait_for_a_lock_wait(conn: Connection) -> None:
    """Return once another session of this server waits for a lock."""
    if conn.dialect.name == "postgresql":
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    else:
        waiting = "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%FOR UPDATE'"
    deadline = time.monotonic() + 10
    while not conn.execute(text(waiting)).scalar_one():
        assert time.monotonic() < deadline, "the write never waited for the second task"
        time.sleep(0.01)


def test_a_write_chosen_as_a_deadlocks_victim_is_written_again_whole(database_url: str) -> None:
    """Another transaction holding the batch's second task, then asking for its first: the database breaks the
    circle by rolling the write back (the smaller transaction), which the store writes again at once, all of it."""
    engine, other_engine = create_tasklog_engine(database_url), create_tasklog_engine(database_url)
    store = Store(engine)
    try:
        store.write(_requests())
        with engine.connect() as conn:
            ids = [conn.execute(text(f"SELECT id FROM tasklog_tasks WHERE thread_ts = '{_thread(t)}'")).scalar_one()
                   for t in (0, 1)]  # fmt: skip
        batch: list[Event] = []
        for task in (0, 1):
            thread = _thread(task)
            batch += [
                AssignmentRecorded(f"a{task}", thread, "C1", "T1", "Builder", 80.0, (("Builder", 80.0),), 1.7e9, ""),
                OutcomeRecorded(f"a{task}", thread, "C1", "T1", "Builder", True, 0.5, None, 1.7e9, 1.7e9),
                FeedbackGiven("T1", "C1", thread, thread, "U9", "", True, True, "1700000000.1"),
            ]
        errors: list[BaseException] = []

        def write() -> None:
            try:
                store.write(batch)
            except BaseException as error:
                errors.append(error)

        with other_engine.connect() as other, other.begin() as transaction:
            # Heavier than the write (which changed nothing before it waits): MariaDB rolls back the lighter one.
            other.execute(text("UPDATE tasklog_tasks SET follow_ups = 1 WHERE id <> :first"), {"first": ids[0]})
            writer = threading.Thread(target=write)
            writer.start()
            _wait_for_a_lock_wait(other)  # the write holds the first task and waits for the second
            other.execute(text("SELECT id FROM tasklog_tasks WHERE id = :first FOR UPDATE"), {"first": ids[0]})
            transaction.rollback()
        writer.join(30)
        assert not writer.is_alive()
        assert not errors, errors
        with engine.connect() as conn:
            for table in ("tasklog_assignments", "tasklog_outcomes", "tasklog_feedback"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 2, table
            assert conn.execute(text("SELECT sum(feedback_up), sum(follow_ups) FROM tasklog_tasks")).one() == (2, 0)
            assert conn.execute(text("SELECT sum(tasks), sum(voted) FROM tasklog_daily_stats")).one() == (TASKS, 2)
    finally:
        engine.dispose()
        other_engine.dispose()
