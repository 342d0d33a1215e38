"""The capture rules as pure decisions, then over every real Events API body from bolt-python's tests."""

from __future__ import annotations

from typing import Any

import pytest
from slack_tasklog import capture_event, strip_leading_mention
from slack_tasklog.events import MessageDeleted, MessageInThread, TaskRequested
from slack_tasklog.testing import app_mention, event_body, message

from tests.conftest import load_fixture_payloads


def capture(event: dict[str, Any], **kwargs: Any) -> TaskRequested | MessageInThread | None:
    kwargs.setdefault("bot_user_id", "UBOT")
    return capture_event(event_body(event), **kwargs)


def test_top_level_mention_opens_a_task_on_its_own_ts() -> None:
    got = capture(app_mention("research quantum computing", user="U1", channel="C9", ts="1700000000.000100"))
    assert got == TaskRequested(
        team_id="T111",
        enterprise_id=None,
        channel_id="C9",
        thread_ts="1700000000.000100",
        ts="1700000000.000100",
        user_id="U1",
        text="research quantum computing",
    )


def test_mention_inside_a_thread_is_keyed_on_the_thread_root() -> None:
    got = capture(app_mention("help", ts="1700000005.000100", thread_ts="1700000000.000100"))
    assert isinstance(got, TaskRequested)
    assert (got.thread_ts, got.ts) == ("1700000000.000100", "1700000005.000100")


def test_thread_reply_is_a_message_in_thread() -> None:
    got = capture(message("more detail", user="U2", ts="1700000009.000100", thread_ts="1700000000.000100"))
    assert got == MessageInThread(
        team_id="T111",
        channel_id="C111",
        thread_ts="1700000000.000100",
        ts="1700000009.000100",
        user_id="U2",
        text="more detail",
    )


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(message("chatter", ts="1.000001"), id="top-level chatter"),
        pytest.param(message("root", ts="1.000001", thread_ts="1.000001"), id="thread root"),
        pytest.param(message("hi", thread_ts="1.0", bot_id="B999"), id="bot reply with bot_id, no subtype"),
        pytest.param(message("hi", thread_ts="1.0", subtype="bot_message", bot_id="B9"), id="classic bot message"),
        pytest.param(message("hi", thread_ts="1.0", user="UBOT"), id="the app's own message"),
        pytest.param(message("", thread_ts="1.0", subtype="message_changed", hidden=True), id="edit"),
        pytest.param(message("", thread_ts="1.0", subtype="message_deleted", hidden=True), id="deletion"),
        pytest.param(message("joined", thread_ts="1.0", subtype="channel_join"), id="join"),
        pytest.param({**app_mention("hi from a bot"), "bot_id": "B2"}, id="mention by a bot"),
        pytest.param({"type": "reaction_added", "user": "U1", "item": {}}, id="other event"),
        pytest.param({**message("no user", thread_ts="1.0"), "user": None}, id="no user"),
    ],
)
def test_not_captured(event: dict[str, Any]) -> None:
    assert capture(event) is None


@pytest.mark.parametrize("subtype", ["thread_broadcast", "file_share", "me_message"])
def test_people_subtypes_are_follow_ups(subtype: str) -> None:
    assert isinstance(capture(message("x", thread_ts="1.0", ts="2.0", subtype=subtype)), MessageInThread)


def test_a_deletion_names_the_deleted_message() -> None:
    event = message("", ts="9.000001", subtype="message_deleted", hidden=True, deleted_ts="1.000001")
    assert capture(event) == MessageDeleted(team_id="T111", channel_id="C111", ts="1.000001")
    event = message("", ts="9.000001", subtype="message_deleted", hidden=True, previous_message={"ts": "1.000002"})
    assert capture(event) == MessageDeleted(team_id="T111", channel_id="C111", ts="1.000002")


def test_follow_ups_can_be_switched_off() -> None:
    assert capture(message("x", thread_ts="1.0", ts="2.0"), follow_ups=False) is None
    assert isinstance(capture(app_mention("x", ts="2.0", thread_ts="1.0"), follow_ups=False), TaskRequested)


def test_team_comes_from_bolt_context_first() -> None:
    got = capture(app_mention("x"), team_id="T_INSTALLED", enterprise_id="E1")
    assert isinstance(got, TaskRequested)
    assert (got.team_id, got.enterprise_id) == ("T_INSTALLED", "E1")


@pytest.mark.parametrize(
    ("text", "bot", "expected"),
    [
        ("<@UBOT> write a poem", "UBOT", "write a poem"),
        ("<@UBOT|tasklog>: write a poem ", "UBOT", "write a poem"),
        ("  <@UBOT>,   hi", "UBOT", "hi"),
        ("<@U999> <@UBOT> hi", "UBOT", "<@U999> <@UBOT> hi"),
        ("<@U999> hi", None, "hi"),
        ("no mention", "UBOT", "no mention"),
        ("hi <@UBOT>", "UBOT", "hi <@UBOT>"),
        ("<@UBOT>", "UBOT", ""),
    ],
)
def test_strip_leading_mention(text: str, bot: str | None, expected: str) -> None:
    assert strip_leading_mention(text, bot) == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "event_callback"},
        {"type": "event_callback", "event": "nope"},
        {"type": "event_callback", "event": {"type": "app_mention", "user": 5, "channel": "C", "ts": "1"}},
        {"type": "event_callback", "event": {"type": "app_mention", "user": "U", "channel": ["C"], "ts": "1"}},
        {"type": "event_callback", "event": {"type": "app_mention", "user": "U", "channel": "C", "ts": None}},
        {"type": "event_callback", "event": {"type": "app_mention", "user": "U", "channel": "C", "ts": "1", "text": 7}},
        {"type": "block_actions", "actions": []},
        {"command": "/tasklog", "text": "stats"},
    ],
)
def test_malformed_bodies_are_ignored_or_handled(body: dict[str, Any]) -> None:
    got = capture_event(body)
    assert got is None or got.text == ""


def test_every_bolt_python_fixture_payload() -> None:
    """44 real bodies: only people's app mentions are requests, only people's thread messages follow-ups."""
    decisions: dict[str, str] = {}
    for entry in load_fixture_payloads():
        body = entry["payload"]
        authorizations = body.get("authorizations") or [{}]
        got = capture_event(body, bot_user_id=authorizations[0].get("user_id"))
        key = f"{entry['source'].rsplit('/', 1)[-1]}::{entry['name']}"
        decisions[key] = type(got).__name__ if got is not None else "-"
        event = body.get("event", {})
        if got is not None:
            assert event["type"] in ("app_mention", "message")
            assert "bot_id" not in event
            assert event.get("subtype") in (None, "thread_broadcast", "file_share", "me_message", "message_deleted")
        if event.get("type") == "app_mention" and "bot_id" not in event:
            assert isinstance(got, TaskRequested), key
            assert got.text == "Hi there!"
    captured = {k: v for k, v in decisions.items() if v != "-"}
    # Four mentions open tasks; the one thread_broadcast is a reply (the only body with a thread_ts); the deletion
    # may erase a stored text; every top-level message, bot message and edit is left alone.
    assert sorted(captured.values()) == ["MessageDeleted", "MessageInThread"] + ["TaskRequested"] * 4, captured
    assert captured["test_message_thread_broadcast.py::event_payload"] == "MessageInThread"
    assert captured["test_message_deleted.py::event_payload"] == "MessageDeleted"
