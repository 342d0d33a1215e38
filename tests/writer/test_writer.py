"""The background writer's lifecycle: flush, close, after-fork restart."""

from __future__ import annotations

import os

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.events import TaskRequested

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
