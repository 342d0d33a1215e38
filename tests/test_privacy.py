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
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.cli.main import main
from slack_tasklog.events import MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.storage.erasure import forget_in_events
from slack_tasklog.testing import app_mention, event_body, message, signed_request
from slack_tasklog.values import exception_type
from slack_tasklog.writer.journal import HEADER
from slack_tasklog.writer.records import encode_record

from tests.conftest import migrate_to_head, query

ROOT = "1700000000.000100"
OTHER = "1700000050.000100"


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


def test_store_no_text_keeps_only_the_exception_type_of_a_runs_error(
    make_app: Callable[..., App], database_url: str
) -> None:
    """An exception may quote the request: with store_text=False its message goes, its type stays."""
    tasklog = TaskLog(database_url, store_text=False)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str, text: str) -> None:
        raise ValueError(f"cannot parse {text!r}")

    try:
        app = make_app(tasklog)
        send(app, app_mention("pay Bob", ts=ROOT))
        check_and_assign(ROOT, {"Grok": 90})
        with pytest.raises(ValueError, match="cannot parse"):
            process_assignment(ROOT, "pay Bob")
        assert tasklog.flush(10)
        assert query(tasklog, "SELECT success, error_message FROM tasklog_outcomes") == [(False, "ValueError")]
        assert query(tasklog, "SELECT error_message FROM tasklog_daily_failures") == [("ValueError",)]
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
    assert "still running" in result.output  # honest: it cannot reach another process's queue
    assert texts(tasklog) == (["from U1", None], [None, "U1 replies"])
    assert tasklog.forget_user("U2").total == 0  # nothing left to erase


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


# -- erasing the text everywhere it was copied ---------------------------------------------------------------------

SECRET = "ZEBRA-PLUM-4711"


def fail_quoting(tasklog: TaskLog, thread_ts: str, quote: str) -> None:
    """A round that gives the task to Grok, whose run fails with an exception quoting ``quote``."""

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok")
    def process(thread_ts: str) -> None:
        raise ValueError(f"cannot parse {quote!r}")

    check_and_assign(thread_ts, {"Grok": 90})
    with pytest.raises(ValueError, match="cannot parse"):
        process(thread_ts)


def failures(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(tasklog, "SELECT error_message, tasks FROM tasklog_daily_failures WHERE tasks > 0")


def test_forget_reduces_the_error_messages_of_their_tasks_and_moves_the_failure_rollup(
    app: App, tasklog: TaskLog
) -> None:
    send(app, app_mention(f"pay {SECRET}", user="U2", ts=ROOT))
    send(app, app_mention("from U1", user="U1", ts="1700000010.000100"))
    send(app, message(f"U2 says {SECRET}-too", user="U2", ts="1700000011.000100", thread_ts="1700000010.000100"))
    fail_quoting(tasklog, ROOT, f"pay {SECRET}")
    fail_quoting(tasklog, "1700000010.000100", f"U2 says {SECRET}-too")  # U1's task, quoting U2's follow-up
    assert tasklog.flush(5)
    assert len(failures(tasklog)) == 2

    erased = tasklog.forget_user("U2")

    assert (erased.texts, erased.error_messages, erased.failure_rows) == (2, 2, 2)
    assert query(tasklog, "SELECT error_message FROM tasklog_outcomes") == [("ValueError",), ("ValueError",)]
    # The two failed tasks are still counted, under their exception type.
    assert failures(tasklog) == [("ValueError", 2)]
    assert texts(tasklog) == ([None, "from U1"], [None])


def test_forget_keeps_the_error_messages_of_other_peoples_tasks(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention("from U1", user="U1", ts=ROOT))
    fail_quoting(tasklog, ROOT, "from U1")
    assert tasklog.flush(5)
    assert tasklog.forget_user("U2").error_messages == 0
    assert query(tasklog, "SELECT error_message FROM tasklog_outcomes") == [("ValueError: cannot parse 'from U1'",)]


def test_a_deleted_request_takes_every_error_message_of_its_task_along(app: App, tasklog: TaskLog) -> None:
    """An agent was given the request, and its error may quote any part of it (here a cut one): every error of the
    task is reduced to its type, not only those holding the whole text."""
    send(app, app_mention(f"pay {SECRET} by Friday", ts=ROOT))
    fail_quoting(tasklog, ROOT, f"pay {SECRET}"[:12])
    fail_quoting(tasklog, ROOT, "something else")
    send(app, app_mention("another task", ts=OTHER))
    fail_quoting(tasklog, OTHER, "another task")
    assert tasklog.flush(5)
    send(app, deleted(ROOT))
    rows = query(tasklog, "SELECT thread_ts, error_message FROM tasklog_outcomes ORDER BY started_at")
    assert rows == [(ROOT, "ValueError"), (ROOT, "ValueError"), (OTHER, "ValueError: cannot parse 'another task'")]
    assert all(SECRET[:4] not in message for message, _ in failures(tasklog))


def test_a_run_recorded_after_its_request_was_deleted_keeps_only_its_error_type(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention(f"pay {SECRET}", ts=ROOT))
    assert tasklog.flush(5)
    send(app, deleted(ROOT))
    assert tasklog.flush(5)
    fail_quoting(tasklog, ROOT, f"pay {SECRET}"[:10])  # the bot was still working on it
    assert query(tasklog, "SELECT error_message FROM tasklog_outcomes") == [("ValueError",)]
    assert failures(tasklog) == [("ValueError", 1)]


def test_a_deleted_follow_up_takes_the_error_messages_quoting_it_along(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention("summarise the thread", ts=ROOT))
    send(app, message(f"use {SECRET}", ts="1700000001.000100", thread_ts=ROOT))
    fail_quoting(tasklog, ROOT, f"use {SECRET}")
    fail_quoting(tasklog, ROOT, "something else")
    assert tasklog.flush(5)
    send(app, deleted("1700000001.000100"))
    rows = query(tasklog, "SELECT error_message FROM tasklog_outcomes ORDER BY started_at")
    assert rows == [("ValueError",), ("ValueError: cannot parse 'something else'",)]


def dead_bots_journal(folder: Path, *events: Any) -> None:
    """A segment as a bot killed before writing its events leaves it: nobody holds its lock."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tasklog-1-1.journal").write_bytes(HEADER + b"".join(encode_record(event) for event in events))


def dead_bot_events() -> list[Any]:
    return [
        TaskRequested("T1", None, "C1", ROOT, ROOT, "U2", f"pay {SECRET}"),
        MessageInThread("T1", "C1", ROOT, "1700000001.000100", "U2", f"{SECRET} again"),
        OutcomeRecorded("o1", ROOT, "C1", "T1", "Grok", False, 0.5, f"ValueError: cannot parse {SECRET}", 1e9, 1e9),
        TaskRequested("T1", None, "C1", "1700000010.000100", "1700000010.000100", "U1", "from U1"),
    ]


def test_forget_scrubs_a_dead_bots_journal_so_its_replay_does_not_bring_the_text_back(
    database_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    migrate_to_head(database_url)
    dead_bots_journal(journal, *dead_bot_events())
    result = CliRunner().invoke(
        main, ["forget", "--user", "U2", "--database-url", database_url, "--journal", str(journal), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "scrubbed 3 records in journals of stopped bots" in result.output
    assert SECRET.encode() not in b"".join(path.read_bytes() for path in journal.iterdir())

    tasklog = TaskLog(database_url, journal=journal)  # the next start replays the dead bot's journal
    try:
        assert texts(tasklog) == ([None, "from U1"], [None])
        assert query(tasklog, "SELECT error_message FROM tasklog_outcomes") == [("ValueError",)]
    finally:
        tasklog.close()


def test_forget_scrubs_journals_set_aside_as_unreadable(database_url: str, tmp_path: Path) -> None:
    """A file set aside as ``*.corrupt`` is kept for someone to look at, so it still holds messages: forget takes
    the person's out of what can be read, and drops any other line that names them."""
    journal = tmp_path / "journal"
    journal.mkdir()
    migrate_to_head(database_url)
    corrupt = journal / "tasklog-1-1.journal.corrupt"
    corrupt.write_bytes(
        b"not a journal of this version\n"
        + b"".join(encode_record(event) for event in dead_bot_events())
        + f'{{"kind":"TaskRequested","fields":["T1",null,"C1","U2","{SECRET} torn'.encode()
        + b"\nsome other unreadable line\n"
        + b"torn line of U20\n"
    )
    corrupt.chmod(0o644)
    result = CliRunner().invoke(
        main, ["forget", "--user", "U2", "--database-url", database_url, "--journal", str(journal), "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "scrubbed 4 records in journals of stopped bots" in result.output
    data = corrupt.read_bytes()
    assert SECRET.encode() not in data
    for kept in (b"from U1", b"some other unreadable line", b"not a journal", b"torn line of U20"):
        assert kept in data
    assert corrupt.stat().st_mode & 0o777 == 0o600


@pytest.mark.backends("sqlite")
def test_after_forget_the_text_is_nowhere_on_disk(make_app: Callable[..., App], tmp_path: Path) -> None:
    database = tmp_path / "tasklog.db"
    tasklog = TaskLog(f"sqlite:///{database}")
    try:
        app = make_app(tasklog)
        send(app, app_mention(f"pay {SECRET} " + "x" * 5000, user="U2", ts=ROOT))  # long: an overflow page too
        send(app, message(f"{SECRET} again", user="U2", ts="1700000001.000100", thread_ts=ROOT))
        for i in range(50):  # other tasks around it, so its pages are not simply dropped
            send(app, app_mention(f"task {i}", user="U1", ts=f"17000001{i:02d}.000100"))
        fail_quoting(tasklog, ROOT, f"pay {SECRET}")
        assert tasklog.flush(5)
        dead_bots_journal(Path(tasklog.health().journal_dir or ""), *dead_bot_events())
        on_disk = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
        assert SECRET.encode() in on_disk

        erased = tasklog.forget_user("U2")

        assert erased.checkpointed is True
        assert erased.journal_records == 3
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path.name
    finally:
        tasklog.close()


@pytest.mark.backends("sqlite")
def test_a_deleted_text_leaves_the_sqlite_file_and_its_wal(make_app: Callable[..., App], tmp_path: Path) -> None:
    tasklog = TaskLog(f"sqlite:///{tmp_path / 'tasklog.db'}", journal=False)
    try:
        app = make_app(tasklog)
        send(app, app_mention(f"pay {SECRET}", ts=ROOT))
        fail_quoting(tasklog, ROOT, f"pay {SECRET}")
        assert tasklog.flush(5)
        send(app, deleted(ROOT))
        assert tasklog.flush(5)
        for path in tmp_path.iterdir():
            assert SECRET.encode() not in path.read_bytes(), path.name
    finally:
        tasklog.close()


user_ids = st.sampled_from(["U1", "U2"])
texts_ = st.text(min_size=1, max_size=30)


@st.composite
def journal_events(draw: st.DrawFn) -> list[Any]:
    events: list[Any] = []
    for i in range(draw(st.integers(0, 8))):
        thread = f"17000000{draw(st.integers(0, 3)):02d}.000100"
        kind = draw(st.sampled_from(["request", "reply", "outcome"]))
        if kind == "request":
            events.append(TaskRequested("T1", None, "C1", thread, thread, draw(user_ids), draw(texts_)))
        elif kind == "reply":
            events.append(MessageInThread("T1", "C1", thread, f"1800000{i:03d}.000100", draw(user_ids), draw(texts_)))
        else:
            error = draw(st.sampled_from(["ValueError: ", "pkg.Error: ", "", "not a type "])) + draw(texts_)
            events.append(OutcomeRecorded(f"o{i}", thread, "C1", "T1", "Grok", False, 0.1, error, 1e9, 1e9))
    return events


@settings(deadline=None)
@given(events=journal_events())
def test_a_forget_leaves_nothing_of_the_person_in_a_journals_events(events: list[Any]) -> None:
    scrubbed = forget_in_events(events, "U2", None)
    theirs = {e.thread_ts for e in events if isinstance(e, TaskRequested) and e.user_id == "U2"}
    assert len(scrubbed) == len(events)
    for before, after in zip(events, scrubbed, strict=True):
        if isinstance(before, TaskRequested | MessageInThread):
            assert after.text == (None if before.user_id == "U2" else before.text)
        elif before.thread_ts in theirs:
            # Only an exception type (a Python name, never a space) is left of a message on their thread.
            assert after.error_message is None or exception_type(after.error_message) == after.error_message
        else:
            assert after == before
