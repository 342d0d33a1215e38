"""Retention and privacy: redaction, no text at all, deleted messages, forgetting a user, purging old tasks."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.cli.main import main
from slack_tasklog.testing import app_mention, event_body, message, signed_request

from tests.conftest import query

ROOT = "1700000000.000100"


def send(app: App, event: dict[str, Any]) -> None:
    assert app.dispatch(signed_request(event_body(event))).status == 200


def texts(tasklog: TaskLog) -> tuple[list[Any], list[Any]]:
    return (
        [row[0] for row in query(tasklog, "SELECT request_text FROM tasklog_tasks ORDER BY id")],
        [row[0] for row in query(tasklog, "SELECT text FROM tasklog_follow_ups ORDER BY id")],
    )


def journal_bytes(tasklog: TaskLog) -> bytes:
    directory = Path(tasklog.health().journal_dir or "")
    return b"".join(path.read_bytes() for path in directory.iterdir()) if directory.exists() else b""


def test_redact_runs_before_anything_is_stored_or_journaled(make_app: Callable[..., App], database_url: str) -> None:
    emails = re.compile(r"[\w.]+@[\w.]+")
    tasklog = TaskLog(database_url, redact=lambda text: emails.sub("<email>", text), journal=True)
    try:
        app = make_app(tasklog)
        tasklog._writer._linger = 10.0  # hold the events so the journal can be read before it is trimmed
        send(app, app_mention("mail ada@example.com the report", ts=ROOT))
        send(app, message("cc bob@example.com too", ts="1700000001.000100", thread_ts=ROOT))
        journaled = journal_bytes(tasklog)
        assert b"mail" in journaled  # the events are there...
        assert b"example.com" not in journaled  # ...without what redact removed
        assert texts(tasklog) == (["mail <email> the report"], ["cc <email> too"])
    finally:
        tasklog.close()


def test_a_failing_redact_stores_no_text(
    make_app: Callable[..., App], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("regex exploded")

    tasklog = TaskLog(database_url, redact=broken)
    try:
        app = make_app(tasklog)
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            send(app, app_mention("secret stuff", ts=ROOT))
            assert texts(tasklog) == ([None], [])
        assert any("redact function raised" in r.getMessage() for r in caplog.records)
    finally:
        tasklog.close()


def test_store_no_text_at_all(make_app: Callable[..., App], database_url: str) -> None:
    tasklog = TaskLog(database_url, store_text=False)
    try:
        app = make_app(tasklog)
        send(app, app_mention("do the thing", user="U9", ts=ROOT))
        send(app, message("quickly", ts="1700000001.000100", thread_ts=ROOT))
        assert texts(tasklog) == ([None], [None])
        assert query(tasklog, "SELECT user_id FROM tasklog_tasks") == [("U9",)]
    finally:
        tasklog.close()


def deleted(ts: str, channel: str = "C111") -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": channel,
        "deleted_ts": ts,
        "previous_message": {"type": "message", "text": "gone", "user": "U123", "ts": ts},
        "ts": "1700000099.000100",
        "event_ts": "1700000099.000100",
        "channel_type": "channel",
    }


def test_a_deleted_slack_message_erases_its_stored_text(app: App, tasklog: TaskLog) -> None:
    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    send(app, app_mention("my password is hunter2", ts=ROOT))
    send(app, message("keep this", ts="1700000001.000100", thread_ts=ROOT))
    send(app, message("and delete this", ts="1700000002.000100", thread_ts=ROOT))
    check_and_assign(ROOT, {"Grok": 90})
    send(app, deleted(ROOT))
    send(app, deleted("1700000002.000100"))
    send(app, deleted("1700000003.000100", channel="C_ELSEWHERE"))  # not ours: nothing happens
    assert texts(tasklog) == ([None], ["keep this", None])
    # The numbers stay: the task, its round, who asked and when.
    assert query(tasklog, "SELECT count(*) FROM tasklog_assignments WHERE task_id IS NOT NULL") == [(1,)]
    rows = query(tasklog, "SELECT user_id, text_erased_at IS NOT NULL FROM tasklog_tasks")
    assert [(user, bool(erased)) for user, erased in rows] == [("U123", True)]
    assert tasklog.health().rejected == 0


def test_forget_a_user(app: App, tasklog: TaskLog, database_url: str) -> None:
    send(app, app_mention("from U1", user="U1", ts=ROOT))
    send(app, app_mention("from U2", user="U2", ts="1700000010.000100"))
    send(app, message("U2 replies", user="U2", ts="1700000011.000100", thread_ts=ROOT))
    send(app, message("U1 replies", user="U1", ts="1700000012.000100", thread_ts=ROOT))
    assert tasklog.flush(5)
    result = CliRunner().invoke(main, ["forget", "--user", "U2", "--database-url", database_url, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Erased 2 texts written by U2" in result.output
    assert texts(tasklog) == (["from U1", None], [None, "U1 replies"])
    assert tasklog.forget_user("U2") == 0  # nothing left to erase


def test_purge_deletes_old_tasks_with_everything_about_them(app: App, tasklog: TaskLog, database_url: str) -> None:
    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok")
    def process(thread_ts: str) -> None:
        pass

    old, new = "1500000000.000100", "4000000000.000100"  # 2017 and 2096
    for ts in (old, new):
        send(app, app_mention("a task", ts=ts))
        send(app, message("a reply", ts=ts.replace("100", "200"), thread_ts=ts))
        check_and_assign(ts, {"Grok": 90, "Writer": 10})
        process(ts)
    check_and_assign("1400000000.000100", {"Grok": 1})  # a round whose task never arrived
    assert tasklog.flush(5)
    result = CliRunner().invoke(main, ["purge", "--older-than", "365d", "--database-url", database_url, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 task older than 365d" in result.output
    counts = query(
        tasklog,
        "SELECT (SELECT count(*) FROM tasklog_tasks), (SELECT count(*) FROM tasklog_follow_ups), "
        "(SELECT count(*) FROM tasklog_assignments), (SELECT count(*) FROM tasklog_evaluations), "
        "(SELECT count(*) FROM tasklog_outcomes)",
    )
    # The 2096 task and its rows stay; the unlinked round is recent (recorded now), so it stays too.
    assert counts == [(1, 1, 2, 3, 1)]
    assert query(tasklog, "SELECT thread_ts FROM tasklog_tasks") == [(new,)]


def test_bad_purge_arguments_get_a_clear_message(database_url: str) -> None:
    result = CliRunner().invoke(main, ["purge", "--older-than", "banana", "--database-url", database_url])
    assert result.exit_code == 2
    assert "is not a duration" in result.output
    assert "Traceback" not in result.output


def test_retention_purges_from_the_writer(make_app: Callable[..., App], database_url: str) -> None:
    tasklog = TaskLog(database_url, retention="30d")
    try:
        assert tasklog._store.retention == timedelta(days=30)
        app = make_app(tasklog)
        send(app, app_mention("ancient", ts="1500000000.000100"))
        send(app, app_mention("future", ts="4000000000.000100"))
        assert tasklog.flush(5)
        tasklog._store.maintain()  # what the writer thread runs when idle
        assert texts(tasklog)[0] == ["future"]
    finally:
        tasklog.close()
