"""Where SQLite, PostgreSQL and MariaDB differ, pinned on all three: emoji and long texts, ids that differ only in
case, timestamps in UTC to the microsecond, numbers that stay what they were, and an insert-or-ignore that ignores
duplicates only."""

from __future__ import annotations

import csv
import io
import logging
from datetime import datetime, timezone

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.events import AssignmentRecorded, OutcomeRecorded, TaskRequested
from slack_tasklog.storage.models import Outcome, Task
from sqlalchemy import select

from tests.conftest import query, stored_utc

ROOT = "1700000000.000100"


def request(text: str | None = "x", *, channel: str = "C1", team: str = "T1", ts: str = ROOT) -> TaskRequested:
    return TaskRequested(team, None, channel, ts, ts, "U1", text)


def exported(tasklog: TaskLog) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    tasklog.export_csv(out, neutralize_formulas=False)
    return list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))


def test_emoji_and_the_longest_slack_message_round_trip(tasklog: TaskLog) -> None:
    # 4-byte characters (MySQL's "utf8" refuses them) and 40,000 characters (past MySQL's 64 kB TEXT in utf8mb4).
    text = "Résumé 🚀👩🏽‍💻 ship it — naïve " + "🙂" * 40_000
    tasklog._record(request(text))
    assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [(text,)]
    assert [row["request"] for row in exported(tasklog)] == [text]


def test_ids_and_agents_that_differ_only_in_case_stay_apart(tasklog: TaskLog) -> None:
    """Slack ids are case-sensitive strings; so are agent names. MySQL's default collations are not."""
    tasklog._record(request("upper", channel="C1"))
    tasklog._record(request("lower", channel="c1"))
    evaluations = (("Grok", 90.0), ("grok", 10.0))
    tasklog._record(AssignmentRecorded("a1", ROOT, "c1", "T1", "grok", 10.0, evaluations, 1.7e9, "-"))
    rows = query(
        tasklog,
        "SELECT t.channel_id, t.request_text, a.agent FROM tasklog_tasks t "
        "LEFT JOIN tasklog_assignments a ON a.task_id = t.id ORDER BY t.request_text",
    )
    assert rows == [("c1", "lower", "grok"), ("C1", "upper", None)]
    assert sorted(query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations")) == [
        ("Grok", 90.0),
        ("grok", 10.0),
    ]
    assert [row["assigned_agent"] for row in exported(tasklog)] == ["", "grok"]


def test_times_are_utc_to_the_microsecond_and_read_back_aware(tasklog: TaskLog) -> None:
    tasklog._record(request(ts="1700000000.123456"))
    started, finished = 1_700_000_001.000001, 1_700_000_003.654321
    tasklog._record(
        OutcomeRecorded("o1", "1700000000.123456", "C1", "T1", "Grok", True, 2.654320, None, started, finished)
    )
    [(raw,)] = query(tasklog, "SELECT requested_at FROM tasklog_tasks")
    assert stored_utc(raw) == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)
    with tasklog.engine.connect() as conn:
        requested_at = conn.execute(select(Task.requested_at)).scalar_one()
        started_at, finished_at = conn.execute(select(Outcome.started_at, Outcome.finished_at)).one()
    assert requested_at == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)
    assert requested_at.utcoffset() is not None
    assert (started_at.timestamp(), finished_at.timestamp()) == pytest.approx((started, finished), abs=1e-6)
    assert exported(tasklog)[0]["timestamp"] == "2023-11-14T22:13:20Z"


def test_postgresql_sessions_are_in_utc_whatever_the_server_zone(tasklog: TaskLog, backend: str) -> None:
    """The engine the task log makes sets its PostgreSQL sessions to UTC: times come back in UTC itself, not in the
    server's zone (often Etc/UTC or a local one), so the export and stats need not convert each one back."""
    if backend != "postgresql":
        pytest.skip("a PostgreSQL session setting")
    tasklog._record(request(ts="1700000000.123456"))
    assert tasklog.flush(10)
    with tasklog.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_setting('TimeZone')").scalar_one() == "UTC"
        requested_at = conn.execute(select(Task.requested_at)).scalar_one()
    assert requested_at.tzinfo is timezone.utc
    assert requested_at == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)
    assert exported(tasklog)[0]["timestamp"] == "2023-11-14T22:13:20Z"


def test_numbers_keep_their_precision(tasklog: TaskLog) -> None:
    # MySQL's FLOAT keeps about 7 significant digits: 0.123456789 would read back as 0.123457, 1234.56789 s as 1234.57.
    tasklog._record(request())
    evaluations = (("Grok", 0.123456789), ("Writer", 0.1))
    tasklog._record(AssignmentRecorded("a1", ROOT, None, None, "Grok", 0.123456789, evaluations, 1.7e9, "-"))
    tasklog._record(OutcomeRecorded("o1", ROOT, None, None, "Grok", False, 1234.56789, "boom", 1.7e9, 1.7e9 + 1234.6))
    assert query(tasklog, "SELECT confidence FROM tasklog_assignments") == [(0.123456789,)]
    assert sorted(query(tasklog, "SELECT confidence FROM tasklog_evaluations")) == [(0.1,), (0.123456789,)]
    assert query(tasklog, "SELECT execution_time FROM tasklog_outcomes") == [(1234.56789,)]
    [(success,)] = query(tasklog, "SELECT success FROM tasklog_outcomes")
    assert success in (False, 0)  # a boolean, or MySQL's TINYINT(1)
    row = exported(tasklog)[0]
    assert (row["confidence"], row["other_agents_confidence"], row["success"], row["execution_time"]) == (
        "0.123456789",
        "Writer:0.1",
        "false",
        "1234.568",
    )


def test_only_duplicates_are_ignored_bad_data_is_refused(tasklog: TaskLog, caplog: pytest.LogCaptureFixture) -> None:
    """MySQL's INSERT IGNORE would store a cut-down agent name instead of refusing it."""
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        tasklog._record(request())
        tasklog._record(request())  # a redelivery: ignored
        tasklog._record(AssignmentRecorded("a1", ROOT, None, None, "G" * 500, 1.0, (), 1.7e9, "-"))
        assert tasklog.flush(10)
    assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(1,)]
    if tasklog.engine.dialect.name == "sqlite":
        # SQLite does not enforce VARCHAR lengths: the whole name is kept, which loses nothing either.
        assert query(tasklog, "SELECT agent FROM tasklog_assignments") == [("G" * 500,)]
    else:
        assert query(tasklog, "SELECT count(*) FROM tasklog_assignments") == [(0,)]
        assert tasklog.health().rejected == 1
