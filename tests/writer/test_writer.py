"""The background writer: flush, close, after-fork restart, a thread that never dies, observers after commit."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.events import Event, TaskRequested
from slack_tasklog.storage.store import Store, create_tasklog_engine
from slack_tasklog.writer.background import BackgroundWriter
from slack_tasklog.writer.journal import Journal
from sqlalchemy import Engine, text

from tests.conftest import query

# The writer's own bookkeeping, whatever the database.
sqlite_only = pytest.mark.backends("sqlite")


def request(ts: str) -> TaskRequested:
    return TaskRequested("T1", None, "C1", ts, ts, "U1", "x")


@sqlite_only
def test_flush_with_nothing_recorded(tasklog: TaskLog) -> None:
    assert tasklog.flush(0.1) is True


@sqlite_only
def test_close_is_idempotent_and_later_events_are_counted_as_dropped(tasklog: TaskLog) -> None:
    tasklog._record(request("1.000001"))
    assert tasklog.close() is True
    assert tasklog.close() is True
    tasklog._record(request("1.000002"))
    assert tasklog.health().dropped == 1
    assert tasklog.health().written == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Forking with the writer thread running is what a pre-forking server does to a bot: the point of the test.
@pytest.mark.filterwarnings("ignore:This process.*is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_writer(tasklog: TaskLog) -> None:
    tasklog._record(request("1.000001"))
    assert tasklog.flush(5)
    tasklog._record(request("1.000002"))  # may still be queued in the parent when it forks
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            tasklog._record(request("2.000001"))
            code = 0 if tasklog.flush(10) and tasklog.health().written == 1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    rows = query(tasklog, "SELECT thread_ts FROM tasklog_tasks ORDER BY thread_ts")
    assert rows == [("1.000001",), ("1.000002",), ("2.000001",)]


# -- the writer thread never dies --------------------------------------------------------------------------------


class FlakyStore(Store):
    """A real Store on a real database, whose write raises once, then whose error classification raises once (a
    bug in the sink, which escapes the writer's own handling)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.write_failures = 1
        self.classify_failures = 0

    def write(self, batch: Sequence[Event]) -> None:
        if self.write_failures:
            self.write_failures -= 1
            raise RuntimeError("injected write failure")
        super().write(batch)

    def is_transient(self, error: Exception) -> bool:
        if self.classify_failures:
            self.classify_failures -= 1
            raise RuntimeError("injected classification failure")
        return super().is_transient(error)


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[FlakyStore, BackgroundWriter]]:
    engine = create_tasklog_engine(f"sqlite:///{tmp_path / 'tasklog.db'}")
    store = FlakyStore(engine)
    writer = BackgroundWriter(store, journal=Journal(tmp_path / "journal"))
    yield store, writer
    writer.close()
    engine.dispose()


def tasks(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one())


def test_a_failing_write_is_retried_event_by_event(flaky: tuple[FlakyStore, BackgroundWriter]) -> None:
    store, writer = flaky
    for i in range(3):
        assert writer.submit(request(f"1.00000{i}"))
    assert writer.flush(10)
    assert (writer.counters.written, writer.counters.rejected, writer.counters.errors) == (3, 0, 0)
    assert tasks(store) == 3


def test_the_writer_thread_survives_an_unexpected_error(
    flaky: tuple[FlakyStore, BackgroundWriter], caplog: pytest.LogCaptureFixture
) -> None:
    store, writer = flaky
    store.classify_failures = 1
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        for i in range(3):
            assert writer.submit(request(f"1.00000{i}"))
        assert writer.flush(10)  # the batch stayed in memory, and was written after a pause
    assert writer.counters.errors == 1
    assert tasks(store) == 3
    [logged] = [r for r in caplog.records if "unexpected error in the writer thread" in r.getMessage()]
    assert logged.exc_info is not None  # with its traceback
    assert writer._thread is not None
    assert writer._thread.is_alive()
    assert writer.submit(request("2.000001"))
    assert writer.flush(10)
    assert tasks(store) == 4


def test_an_error_while_recovering_journals_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class BrokenJournal(Journal):
        def orphans(self) -> list[Path]:
            raise RuntimeError("injected recovery failure")

    engine = create_tasklog_engine(f"sqlite:///{tmp_path / 'tasklog.db'}")
    store = Store(engine)
    writer = BackgroundWriter(store, journal=BrokenJournal(tmp_path / "journal"))
    try:
        assert writer.submit(request("1.000001"))
        assert writer.flush(10)
        assert writer.counters.errors == 1
        assert tasks(store) == 1
    finally:
        writer.close()
        engine.dispose()


# -- observers ------------------------------------------------------------------------------------------------------


@sqlite_only
def test_observers_see_each_batch_once_committed_from_the_writer_thread(
    tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, int, list[Event]]] = []

    def observe(events: Sequence[Event]) -> None:
        assert not tasklog.flush(10)  # it cannot wait for the thread it runs in: False at once, not a deadlock
        with tasklog.engine.connect() as conn:  # committed already: a reader sees the batch's tasks
            committed = conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one()
        seen.append((threading.current_thread().name, committed, list(events)))

    def broken(events: Sequence[Event]) -> None:
        raise RuntimeError("injected observer failure")

    tasklog.add_observer(broken)  # logged, and neither the writer nor the next observer notices
    tasklog.add_observer(observe)
    events = [request(f"1.00000{i}") for i in range(3)]
    for event in events:
        tasklog._record(event)
    assert tasklog.flush(10)
    assert [event for _, _, batch in seen for event in batch] == events
    assert {thread for thread, _, _ in seen} == {"slack_tasklog-writer"}
    assert [committed for _, committed, _ in seen][-1] == 3
    assert all(committed >= len(batch) for _, committed, batch in seen)
    assert "an observer raised" in caplog.text
    assert tasklog.health().writer_errors == 0
