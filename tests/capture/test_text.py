"""Texts are stored whatever Unicode they hold, the same on every backend: through a real Bolt App, and from the
bot's own code (error messages, agent names)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.capture.text import storable
from slack_tasklog.testing import app_mention, event_body, message, signed_request

from tests.conftest import query

ROOT = "1700000000.000100"

# What Slack's JSON can carry, and what is stored: "\ud800" is valid JSON, but no database encodes a lone
# surrogate; PostgreSQL refuses NUL.
TEXTS = [
    pytest.param("a lone \ud800 surrogate", "a lone \ufffd surrogate", id="lone-surrogate"),
    pytest.param("a low \udc00 one", "a low \ufffd one", id="lone-low-surrogate"),
    pytest.param("a NUL\x00 byte", "a NUL byte", id="nul"),
    pytest.param("emoji 😀 and ümlauts", "emoji 😀 and ümlauts", id="unicode"),
]


def send(app: App, event: dict[str, Any]) -> None:
    assert app.dispatch(signed_request(event_body(event))).status == 200


@pytest.mark.parametrize(("text", "stored"), TEXTS)
def test_requests_and_follow_ups_are_stored_whatever_unicode_they_hold(
    app: App, tasklog: TaskLog, text: str, stored: str
) -> None:
    send(app, app_mention(text, ts=ROOT))
    send(app, message(text, ts="1700000010.000100", thread_ts=ROOT))
    send(app, message(text, channel="D111", channel_type="im", ts="1700000020.000100"))
    rows = query(tasklog, "SELECT thread_ts, request_text FROM tasklog_tasks ORDER BY thread_ts")
    assert rows == [(ROOT, stored), ("1700000020.000100", stored)]
    assert query(tasklog, "SELECT text FROM tasklog_follow_ups") == [(stored,)]


@pytest.mark.parametrize(("text", "stored"), TEXTS)
def test_what_redact_returns_is_made_storable_too(make_app: Any, database_url: str, text: str, stored: str) -> None:
    seen: list[str] = []

    def redact(received: str) -> str:
        seen.append(received)
        return received + text  # a redact function that adds what it should not

    tasklog = TaskLog(database_url, redact=redact)
    try:
        send(make_app(tasklog), app_mention(text, ts=ROOT))
        assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [(stored + stored,)]
        assert seen == [stored]  # redact itself is given the storable text
    finally:
        tasklog.close()


@pytest.mark.backends("sqlite")
def test_a_redact_function_returning_no_text_stores_none_and_says_so(
    make_app: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    tasklog = TaskLog(database_url, redact=lambda text: 42)  # type: ignore[arg-type, return-value]
    try:
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            send(make_app(tasklog), app_mention("secret", ts=ROOT))
            send(make_app(tasklog), app_mention("secret", ts="1700000001.000100"))
        assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [(None,), (None,)]
        [warning] = [r.getMessage() for r in caplog.records if r.name == "slack_tasklog"]
        assert "returned int" in warning
    finally:
        tasklog.close()


@pytest.mark.parametrize(("text", "stored"), TEXTS)
def test_error_messages_and_agent_names_from_the_bots_code_are_stored(
    app: App, tasklog: TaskLog, text: str, stored: str
) -> None:
    send(app, app_mention("a task", ts=ROOT))

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        return f"Grok {text}"

    @tasklog.track_outcome(agent=lambda args: f"Grok {text}")
    def process_assignment(thread_ts: str) -> None:
        raise RuntimeError(text)

    check_and_assign(ROOT, {f"Grok {text}": 90, f"Writer {text}": 10})
    with pytest.raises(RuntimeError):
        process_assignment(ROOT)
    assert query(tasklog, "SELECT agent, confidence FROM tasklog_assignments") == [(f"Grok {stored}", 90.0)]
    assert sorted(query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations")) == [
        (f"Grok {stored}", 90.0),
        (f"Writer {stored}", 10.0),
    ]
    assert query(tasklog, "SELECT agent, error_message FROM tasklog_outcomes") == [
        (f"Grok {stored}", f"RuntimeError: {stored}")
    ]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain", "plain"),
        ("\x00", ""),
        ("\ud800\ud800", "\ufffd\ufffd"),
        ("\udc00x\ud800", "\ufffdx\ufffd"),
        ("\ud83d\ude00", "😀"),  # the two halves of a pair: the character they stand for
        ("a\ud83dx", "a\ufffdx"),
    ],
)
def test_storable(text: str, stored: str) -> None:
    assert storable(text) == stored
    assert storable(stored) == stored
    stored.encode("utf-8")  # no surrogate left


def test_storable_returns_the_text_itself_when_nothing_changes() -> None:
    text = "nothing to do here " * 10
    assert storable(text) is text


# Any character, surrogates included, with NULs and halves of pairs often.
_ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x00", "\ud800", "\udc00", "\ud83d", "\ude00", "é", "a"]),
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    )
)


@given(_ANY_TEXT)
def test_storable_encodes_everywhere_and_keeps_what_could_be_stored(text: str) -> None:
    stored = storable(text)
    stored.encode("utf-8")
    assert "\x00" not in stored
    if "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text):
        assert stored is text
