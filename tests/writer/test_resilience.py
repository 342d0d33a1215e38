"""The host app never breaks: a database that is down at start, comes back later, or never does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.testing import app_mention, event_body, signed_request

from tests.conftest import TcpForwarder, free_port, postgres_url, query

ROOT = "1700000000.000100"


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_database_down_at_start_the_app_keeps_serving(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture, journal: bool
) -> None:
    # Nothing listens on this port: every connection is refused.
    tasklog = TaskLog(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", journal=journal)
    app = make_app(tasklog)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        started = time.perf_counter()
        for i in range(20):
            ts = f"1700000000.0001{i:02d}"
            assert app.dispatch(signed_request(event_body(app_mention("still here?", ts=ts)))).status == 200
            assert check_and_assign(ts, {"Grok": 90}) == "Grok"
        elapsed = time.perf_counter() - started
        assert tasklog.flush(timeout=1.5) is False  # nothing can be written
        assert tasklog.close(timeout=0.5) is False
    # Dispatches never waited on the database (a connect attempt alone would be visible here).
    assert elapsed < 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "slack_tasklog"]
    assert any("cannot write to postgresql+psycopg://postgres@127.0.0.1" in m for m in warnings), warnings
    if journal:
        assert any("40 events left in the journal" in m for m in warnings), warnings
        assert (tasklog.health().left_in_journal, tasklog.health().lost_at_shutdown) == (40, 0)
    else:
        assert any("40 events were not written" in m for m in warnings), warnings
        assert (tasklog.health().left_in_journal, tasklog.health().lost_at_shutdown) == (0, 40)
    # Said once per outage, not once per event or per retry.
    assert sum("cannot write" in m for m in warnings) == 1


def test_events_wait_for_a_database_that_comes_back(make_app: Callable[..., App], postgres_schema: str) -> None:
    forwarder = TcpForwarder(free_port(), ("127.0.0.1", 5432))
    tasklog = TaskLog(postgres_url(postgres_schema, port=forwarder.port))
    try:
        app = make_app(tasklog)
        for i in range(10):
            ts = f"1700000000.0001{i:02d}"
            assert app.dispatch(signed_request(event_body(app_mention("queued", ts=ts)))).status == 200
        assert tasklog.flush(timeout=0.3) is False
        forwarder.start()
        assert tasklog.flush(timeout=20) is True
        assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(10,)]
        assert tasklog.health().retried >= 1
        assert tasklog.health().dropped == 0
    finally:
        tasklog.close(timeout=2)
        forwarder.stop()


def test_a_full_queue_drops_and_counts_never_blocks(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    tasklog = TaskLog(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", max_queue=5, journal=False)
    app = make_app(tasklog)
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        for i in range(50):
            ts = f"1700000000.0001{i:02d}"
            assert app.dispatch(signed_request(event_body(app_mention("flood", ts=ts)))).status == 200
    tasklog.close(timeout=0.2)
    assert tasklog.health().dropped >= 40
    drop_lines = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert 1 <= len(drop_lines) <= 2, "drops are reported once a minute, not per event"


def test_a_bad_event_is_skipped_not_retried_forever(tasklog: TaskLog, caplog: pytest.LogCaptureFixture) -> None:
    from slack_tasklog.events import OutcomeRecorded, TaskRequested

    good = TaskRequested("T1", None, "C1", ROOT, ROOT, "U1", "fine")
    # A NOT NULL column left empty: the database refuses this one event, whatever happens.
    bad = OutcomeRecorded("o1", None, None, None, "Grok", True, 1.0, None, 0.0, 1.0)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        tasklog._record(bad)
        tasklog._record(good)
        assert tasklog.flush(10)
    assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [("fine",)]
    assert tasklog.health().rejected == 1
    assert any("refused one event (OutcomeRecorded" in r.getMessage() for r in caplog.records)
