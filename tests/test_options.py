"""Every ``TaskLog`` option is checked when the object is made: a wrong one is refused at once, naming itself."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_tasklog import TaskLog

BOOL_OPTIONS = [
    "capture_thread_replies",
    "capture_direct_messages",
    "journal_fsync",
    "store_text",
    "workspace_admins",
    "digest_csv",
    "digest_chart",
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasklog.db'}"


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("max_queue", "100", TypeError),
        ("max_queue", 0, ValueError),
        ("max_queue", True, TypeError),
        ("redact", "x", TypeError),
        ("shutdown_timeout", "10", TypeError),
        ("shutdown_timeout", float("nan"), ValueError),
        ("shutdown_timeout", -1, ValueError),
        ("capture_thread_replies", "no", TypeError),
        ("engine", "sqlite:///w.db", TypeError),
        ("retention", 90, TypeError),
        ("retention", "ninety days", ValueError),
        ("retention", "6m", ValueError),  # six minutes or six months? Neither is guessed
        ("retention", "12h", ValueError),  # under a day: a slip would delete tasks still in progress
        ("journal", 1, TypeError),
        ("unassigned_error", None, TypeError),
        ("stats_access", "all", ValueError),
        ("migrate", "yes", ValueError),
        ("admins", 5, TypeError),
        ("admins", ["U1", 2], TypeError),
        ("digest_every", None, TypeError),
        ("write_through", "yes", TypeError),
        ("feedback_emoji", ["+1"], TypeError),
        ("feedback_emoji", {"+1": "up"}, TypeError),
        ("feedback_emoji", {"": True}, TypeError),
        ("feedback_emoji", {"::skin-tone-2": False}, TypeError),
    ],
)
def test_a_wrong_option_is_refused_naming_it(url: str, option: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=option):
        TaskLog(url, **{option: value})


@settings(max_examples=60, deadline=None)
@given(
    option=st.sampled_from(BOOL_OPTIONS),
    value=st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.lists(st.booleans())),
)
def test_a_switch_takes_only_true_or_false(option: str, value: Any) -> None:
    # Refused before anything is opened, so no database is needed.
    with pytest.raises(TypeError, match=option):
        TaskLog("sqlite://", **{option: value})


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(st.text(), st.floats(), st.none(), st.integers(max_value=0)))
def test_max_queue_takes_only_a_positive_whole_number(value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_queue"):
        TaskLog("sqlite://", max_queue=value)


def test_right_options_are_taken(url: str) -> None:
    tasklog = TaskLog(
        url,
        max_queue=10,
        shutdown_timeout=1,
        redact=str.upper,
        retention="90d",
        admins="U1, U2",
        capture_thread_replies=False,
        journal=False,
        write_through=False,
    )
    try:
        assert tasklog.admins == frozenset({"U1", "U2"})
    finally:
        tasklog.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://bot:s3cr3t-pw@127.0.0.1:1/test",
        "postgresql+psycopg://bot@127.0.0.1:1/test?password=s3cr3t-pw",
        "mysql+pymysql://bot@127.0.0.1:1/test?password=s3cr3t-pw&charset=utf8mb4",
    ],
)
def test_a_password_never_shows_in_repr_or_logs(url: str, caplog: pytest.LogCaptureFixture) -> None:
    tasklog = TaskLog(url, journal=False, shutdown_timeout=0.5)

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> None:
        pass

    with caplog.at_level(logging.DEBUG, logger="slack_tasklog"):
        assert "s3cr3t-pw" not in repr(tasklog)
        process_assignment("1700000000.000100")  # the writer fails to connect and says where to
        assert not tasklog.flush(1.0)
        tasklog.close(0.5)
    assert "cannot write to" in caplog.text
    assert "s3cr3t-pw" not in caplog.text


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("not a url", "not a database URL: write sqlite:///PATH"),
        ("/tmp/tasklog.db", "not a database URL: write sqlite:///PATH"),  # a path, not a URL
        ("postgress://bot@127.0.0.1/test", "no database type 'postgress'"),
        ("postgres://bot:s3cr3t-pw@127.0.0.1/test", "use postgresql+psycopg://bot:***@127.0.0.1/test"),
    ],
)
def test_a_database_url_that_is_none_is_refused_saying_what_to_write(
    given: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="database_url") as refused:
        TaskLog(given)
    assert says in str(refused.value)
    assert "s3cr3t-pw" not in str(refused.value)
    monkeypatch.setenv("TASKLOG_DATABASE_URL", given)  # the same, from the environment, says where it came from
    with pytest.raises(ValueError, match=r"^\$TASKLOG_DATABASE_URL: "):
        TaskLog()
