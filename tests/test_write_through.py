"""``TaskLog(write_through=True)`` (FaaS): each event is committed before the recording call returns, and a database
that does not answer holds a request up once, not once per event."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest
from slack_tasklog import TaskLog


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_event_is_in_the_database_when_the_call_returns(tmp_path: Path) -> None:
    tasklog = TaskLog(f"sqlite:///{tmp_path / 'tasklog.db'}", write_through=True, journal=False)

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> None:
        pass

    try:
        for i in range(3):
            process_assignment(f"1700000000.00000{i}")
            assert tasklog.health().queued == 0, "written before the call returned"
        assert tasklog.health().written == 3
    finally:
        tasklog.close()


def test_an_unreachable_database_holds_a_request_up_once_not_per_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    tasklog = TaskLog(url, write_through=True, shutdown_timeout=0.5)

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> None:
        pass

    try:
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            started = time.monotonic()
            for i in range(5):
                process_assignment(f"1700000000.00000{i}")
            elapsed = time.monotonic() - started
        assert elapsed < 4.0, f"five events took {elapsed:.1f} s"
        assert tasklog.health().queued == 5  # kept, not dropped
        assert "later events are queued without waiting" in caplog.text
    finally:
        tasklog.close(0.5)
