"""Scenario tests: signed Events API requests through a real Bolt App/AsyncApp, into a real SQLite file."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
import slack_tasklog.default
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_tasklog import TaskLog, capture_event, tasklog_middleware
from slack_tasklog.testing import (
    SIGNING_SECRET,
    FakeSlackAPI,
    app_mention,
    async_signed_request,
    event_body,
    message,
    signed_request,
)

from tests.conftest import load_fixture_payloads, query, stored_utc

# Capture rules and Bolt's behaviour, not storage: one backend says as much as three.
sqlite_only = pytest.mark.backends("sqlite")

ROOT = "1700000000.000100"


def send(app: App, event: dict[str, Any], **kwargs: Any) -> BoltResponse:
    retry_num = kwargs.pop("retry_num", None)
    return app.dispatch(signed_request(event_body(event, **kwargs), retry_num=retry_num))


def tasks(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(
        tasklog,
        "SELECT team_id, channel_id, thread_ts, request_ts, user_id, request_text FROM tasklog_tasks ORDER BY id",
    )


def follow_ups(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(
        tasklog,
        "SELECT t.thread_ts, f.ts, f.user_id, f.text FROM tasklog_follow_ups f "
        "JOIN tasklog_tasks t ON t.id = f.task_id ORDER BY f.ts",
    )


def test_a_top_level_mention_is_a_task_with_who_what_when(app: App, tasklog: TaskLog) -> None:
    response = send(app, app_mention("Research quantum computing", user="U42", channel="C7", ts=ROOT))
    assert response.status == 200
    assert tasks(tasklog) == [("T111", "C7", ROOT, ROOT, "U42", "Research quantum computing")]
    [(requested_at,)] = query(tasklog, "SELECT requested_at FROM tasklog_tasks")
    # Stored as UTC from the message ts, to the microsecond: SQLite (text) and MySQL (DATETIME(6)) keep UTC wall
    # time, PostgreSQL a timestamptz.
    assert stored_utc(requested_at) == datetime(2023, 11, 14, 22, 13, 20, 100, tzinfo=timezone.utc)


def test_requested_at_is_timezone_aware_utc(app: App, tasklog: TaskLog) -> None:
    from slack_tasklog.storage.models import Task
    from sqlalchemy import select

    send(app, app_mention("x", ts=ROOT))
    tasklog.flush(5)
    with tasklog.engine.connect() as conn:
        requested_at = conn.execute(select(Task.requested_at)).scalar_one()
    assert requested_at == datetime(2023, 11, 14, 22, 13, 20, 100, tzinfo=timezone.utc)


def test_redeliveries_are_recorded_once(app: App, tasklog: TaskLog) -> None:
    mention = app_mention("write a poem", ts=ROOT)
    body = event_body(mention, event_id="Ev1")
    assert app.dispatch(signed_request(body)).status == 200
    # An HTTP retry, a Socket Mode first delivery ("0"), and a retry with a new event_id all name the same message.
    assert app.dispatch(signed_request(body, retry_num=1, retry_reason="http_timeout")).status == 200
    assert app.dispatch(signed_request(body, retry_num=0)).status == 200
    assert app.dispatch(signed_request(event_body(mention, event_id="Ev2"), retry_num=2)).status == 200
    assert len(tasks(tasklog)) == 1
    assert follow_ups(tasklog) == []


def test_the_message_copy_of_a_top_level_mention_is_not_a_follow_up(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention("summarise this", ts=ROOT))
    send(app, message("<@UBOT> summarise this", ts=ROOT))
    assert len(tasks(tasklog)) == 1
    assert follow_ups(tasklog) == []


@pytest.mark.parametrize("message_first", [False, True])
def test_a_mention_in_a_thread_with_no_task_opens_one_whatever_copy_comes_first(
    app: App, tasklog: TaskLog, message_first: bool
) -> None:
    mention = app_mention("can you help with this?", ts="1700000005.000100", thread_ts=ROOT)
    copy = message("<@UBOT> can you help with this?", ts="1700000005.000100", thread_ts=ROOT)
    for event in [copy, mention] if message_first else [mention, copy]:
        assert send(app, event).status == 200
    assert tasks(tasklog) == [("T111", "C111", ROOT, "1700000005.000100", "U123", "can you help with this?")]
    assert follow_ups(tasklog) == []


def test_thread_replies_are_follow_ups_once_each(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention("build a landing page", ts=ROOT))
    reply = message("use our brand colours", user="U2", ts="1700000010.000100", thread_ts=ROOT)
    send(app, reply)
    send(app, reply, retry_num=1)
    send(app, message("and a contact form", user="U123", ts="1700000020.000100", thread_ts=ROOT))
    assert follow_ups(tasklog) == [
        (ROOT, "1700000010.000100", "U2", "use our brand colours"),
        (ROOT, "1700000020.000100", "U123", "and a contact form"),
    ]
    assert len(tasks(tasklog)) == 1


def test_a_second_mention_in_a_task_thread_is_a_follow_up_not_a_task(app: App, tasklog: TaskLog) -> None:
    send(app, app_mention("first ask", ts=ROOT))
    send(app, app_mention("try again please", ts="1700000030.000100", thread_ts=ROOT))
    send(app, message("<@UBOT> try again please", ts="1700000030.000100", thread_ts=ROOT))
    assert len(tasks(tasklog)) == 1
    assert follow_ups(tasklog) == [(ROOT, "1700000030.000100", "U123", "try again please")]


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(message("done!", ts="1700000040.000100", thread_ts=ROOT, bot_id="B1", user="UB1"), id="bot"),
        pytest.param(message("on it", ts="1700000040.000100", thread_ts=ROOT, user="UBOT"), id="the app"),
        pytest.param(
            message("", ts="1700000040.000100", thread_ts=ROOT, subtype="message_changed", hidden=True), id="edit"
        ),
        pytest.param(
            message("", ts="1700000040.000100", thread_ts=ROOT, subtype="message_deleted", hidden=True),
            id="deletion",
        ),
        pytest.param(message("lunch?", ts="1700000040.000100"), id="channel chatter"),
        pytest.param(message("hi", ts="1700000040.000100", thread_ts="1600000000.000100"), id="other thread"),
        pytest.param(message("hi", ts="1700000040.000100", thread_ts=ROOT, channel="C_OTHER"), id="other channel"),
    ],
)
@sqlite_only
def test_never_captured(app: App, tasklog: TaskLog, event: dict[str, Any]) -> None:
    send(app, app_mention("a task", ts=ROOT))
    send(app, event)
    assert len(tasks(tasklog)) == 1
    assert follow_ups(tasklog) == []


@sqlite_only
def test_replies_are_not_captured_when_switched_off(make_app: Callable[..., App], database_url: str) -> None:
    tasklog = TaskLog(database_url, capture_thread_replies=False)
    try:
        app = make_app(tasklog)
        send(app, app_mention("a task", ts=ROOT))
        send(app, message("more", ts="1700000050.000100", thread_ts=ROOT))
        assert len(tasks(tasklog)) == 1
        assert follow_ups(tasklog) == []
    finally:
        tasklog.close()


@sqlite_only
def test_every_message_event_no_listener_answered_gets_200_and_the_rest_keep_bolts_answer(
    app: App, tasklog: TaskLog
) -> None:
    send(app, app_mention("a task", ts=ROOT))
    # The app has no "message" listener: Bolt would answer 404, Slack would redeliver and in the end turn the
    # app's event subscriptions off.
    assert send(app, message("more", ts="1700000060.000100", thread_ts=ROOT)).status == 200
    assert len(follow_ups(tasklog)) == 1
    assert send(app, message("lunch?", ts="1700000061.000100")).status == 200  # chatter
    assert send(app, message("other", ts="1700000062.000100", thread_ts="1600000000.000100")).status == 200
    assert send(app, message("edited", ts="1700000063.000100", subtype="message_changed")).status == 200
    assert send(app, message("a bot", ts="1700000064.000100", bot_id="B1")).status == 200
    # Reactions are asked for as feedback: any of them, feedback emoji or not.
    assert send(app, {"type": "reaction_added", "user": "U1", "reaction": "eyes", "item": {}}).status == 200
    # Events the task log does not ask for keep Bolt's own answer.
    assert send(app, {"type": "pin_added", "user": "U1", "channel_id": "C1", "item": {}}).status == 404


# One kind of event each, from the middleware's point of view.
ANSWERED_EVENTS = {
    "mention": app_mention("a task", ts=ROOT),
    "follow-up": message("more", ts="1700000060.000100", thread_ts=ROOT),
    "untracked thread": message("other", ts="1700000062.000100", thread_ts="1600000000.000100"),
    "chatter": message("lunch?", ts="1700000061.000100"),
    "direct message": message("help me", channel="D111", channel_type="im", ts="1700000065.000100"),
    "bot message": message("a bot", ts="1700000064.000100", bot_id="B1"),
    "deletion": message("", ts="1700000066.000100", subtype="message_deleted", deleted_ts=ROOT),
    "edit": message("edited", ts="1700000063.000100", subtype="message_changed"),
    "reaction": {"type": "reaction_added", "user": "U1", "reaction": "+1", "item": {}},
    "pin": {"type": "pin_added", "user": "U1", "channel_id": "C111", "item": {}},
}


@sqlite_only
@pytest.mark.parametrize(
    "options",
    [{}, {"redact": lambda text: text.upper()}, {"store_text": False}, {"capture_thread_replies": False}],
    ids=["defaults", "redact", "no-text", "no-replies"],
)
def test_the_answer_slack_gets_never_depends_on_text_options(
    make_app: Callable[..., App], database_url: str, options: dict[str, Any]
) -> None:
    def answers(tasklog: TaskLog) -> dict[str, int]:
        app = make_app(tasklog, mention_listener=False)
        return {name: send(app, event).status for name, event in ANSWERED_EVENTS.items()}

    expected = {name: 404 if name in ("mention", "pin") else 200 for name in ANSWERED_EVENTS}
    tasklog = TaskLog(database_url, **options)
    try:
        assert answers(tasklog) == expected
    finally:
        tasklog.close()


@sqlite_only
def test_a_busy_channel_without_a_message_listener_is_answered_200_every_time(app: App, tasklog: TaskLog) -> None:
    statuses = []
    for i in range(1_000):
        statuses.append(send(app, message(f"chatter {i}", ts=f"1700001000.{i:06d}")).status)
        if i % 100 == 0:
            statuses.append(send(app, app_mention(f"task {i}", ts=f"1700002000.{i:06d}")).status)
    assert statuses == [200] * 1_010
    assert len(tasks(tasklog)) == 10


@sqlite_only
def test_a_direct_message_is_a_task_and_its_thread_replies_follow_ups(app: App, tasklog: TaskLog) -> None:
    dm = "1700000100.000100"
    send(app, message("summarise yesterday's incidents", channel="D111", channel_type="im", ts=dm))
    send(app, message("only the P1s", channel="D111", channel_type="im", ts="1700000101.000100", thread_ts=dm))
    assert tasks(tasklog) == [("T111", "D111", dm, dm, "U123", "summarise yesterday's incidents")]
    assert follow_ups(tasklog) == [(dm, "1700000101.000100", "U123", "only the P1s")]


@sqlite_only
def test_an_assistant_thread_first_user_message_is_the_request_later_ones_follow_ups(
    app: App, tasklog: TaskLog
) -> None:
    # Bolt's Assistant: the thread is opened by Slack (assistant_thread_started), the user writes in it.
    thread = "1700000200.000100"
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": "U123", "channel_id": "D111", "thread_ts": thread, "context": {}},
        "event_ts": thread,
    }
    send(app, started)
    first, second = "1700000201.000100", "1700000202.000100"
    send(app, message("draft a reply to the customer", channel="D111", channel_type="im", ts=first, thread_ts=thread))
    send(app, message("shorter please", channel="D111", channel_type="im", ts=second, thread_ts=thread))
    assert tasks(tasklog) == [("T111", "D111", thread, first, "U123", "draft a reply to the customer")]
    assert follow_ups(tasklog) == [(thread, second, "U123", "shorter please")]


@sqlite_only
def test_direct_messages_are_not_tasks_when_switched_off(make_app: Callable[..., App], database_url: str) -> None:
    tasklog = TaskLog(database_url, capture_direct_messages=False)
    try:
        app = make_app(tasklog)
        assert send(app, message("hi", channel="D111", channel_type="im", ts="1700000300.000100")).status == 200
        send(app, app_mention("a channel task", ts=ROOT))
        assert [row[1] for row in tasks(tasklog)] == ["C111"]
    finally:
        tasklog.close()


@sqlite_only
def test_a_mention_in_a_group_dm_is_a_task_like_in_a_channel(app: App, tasklog: TaskLog) -> None:
    root = "1700000400.000100"
    send(app, app_mention("<@UBOT> plan the offsite", channel="G111", ts=root))
    send(app, message("Friday works", channel="G111", channel_type="mpim", ts="1700000401.000100", thread_ts=root))
    send(app, message("top-level chatter", channel="G111", channel_type="mpim", ts="1700000402.000100"))
    assert [row[1:3] for row in tasks(tasklog)] == [("G111", root)]
    assert follow_ups(tasklog) == [(root, "1700000401.000100", "U123", "Friday works")]


@sqlite_only
def test_the_listener_still_runs_and_its_response_wins(make_app: Callable[..., App], tasklog: TaskLog) -> None:
    app = make_app(tasklog, mention_listener=False)
    seen: list[str] = []

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], say: Callable[..., Any]) -> None:
        seen.append(event["ts"])
        say("on it", thread_ts=event["ts"])

    assert send(app, app_mention("go", ts=ROOT)).status == 200
    assert seen == [ROOT]
    assert len(tasks(tasklog)) == 1


def test_two_workspaces_sharing_a_database_never_mix(api: FakeSlackAPI, tasklog: TaskLog) -> None:
    def authorize(team_id: str | None, enterprise_id: str | None, **_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-test", bot_id="BBOT", bot_user_id="UBOT"
        )

    app = App(signing_secret=SIGNING_SECRET, authorize=authorize, client=api.client(), process_before_response=True)
    app.use(tasklog.middleware)
    app.event("app_mention")(lambda: None)
    for team in ("T1", "T2"):
        send(app, app_mention("same ts, other workspace", ts=ROOT, team=team), team_id=team)
        send(app, message("reply", ts="1700000070.000100", thread_ts=ROOT, team=team), team_id=team)
    assert [row[0] for row in tasks(tasklog)] == ["T1", "T2"]
    rows = query(
        tasklog,
        "SELECT t.team_id, f.team_id FROM tasklog_follow_ups f JOIN tasklog_tasks t ON t.id = f.task_id",
    )
    assert sorted(rows) == [("T1", "T1"), ("T2", "T2")]


@sqlite_only
def test_a_broken_task_log_never_breaks_the_app(
    app: App, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: object) -> bool:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tasklog, "recorder", dataclasses.replace(tasklog.recorder, submit=explode))
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        for i in range(3):
            assert send(app, app_mention("go", ts=f"1700000080.00010{i}")).status == 200
    warnings = [r for r in caplog.records if r.name == "slack_tasklog"]
    assert len(warnings) == 1, "internal errors are logged once, not per event"
    assert "host app is unaffected" in warnings[0].getMessage()


@pytest.mark.parametrize("event", ["nope", ["app_mention"], None, 5])
def test_an_event_that_is_not_an_object_is_passed_over_quietly(
    tasklog: TaskLog, caplog: pytest.LogCaptureFixture, event: object
) -> None:
    # Bolt's own middlewares fail on such a body before ours runs (500), so it is handed to ours directly.
    body = {"type": "event_callback", "team_id": "T111", "event": event, "event_id": "Ev1"}
    request = BoltRequest(body=body, mode="socket_mode")
    called = []
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert tasklog.middleware.process(req=request, resp=None, next=lambda: called.append(1)) is None
    assert called == [1]
    health = tasklog.health()
    assert (health.queued, health.written, health.dropped) == (0, 0, 0)  # nothing recorded
    assert [r for r in caplog.records if r.name == "slack_tasklog"] == []


def test_every_bolt_python_fixture_payload_through_a_real_app(app: App, tasklog: TaskLog) -> None:
    expected_tasks = set()
    for entry in load_fixture_payloads():
        body = entry["payload"]
        response = app.dispatch(signed_request(body))
        assert response.status in (200, 404), (entry["name"], response.status, response.body)
        got = capture_event(body, team_id="T111", bot_user_id="UBOT")
        if got is not None and type(got).__name__ == "TaskRequested":
            expected_tasks.add((got.channel_id, got.thread_ts))
    stored = {(channel, thread) for _, channel, thread, *_ in tasks(tasklog)}
    assert stored == expected_tasks
    assert len(stored) >= 1
    assert tasklog.health().rejected == 0


@sqlite_only
async def test_async_app_captures_the_same_way(api: FakeSlackAPI, tasklog: TaskLog) -> None:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=api.async_client(), process_before_response=True)
    app.use(tasklog.middleware)
    handled: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        handled.append(event["ts"])

    async def send_async(event: dict[str, Any], **kwargs: Any) -> BoltResponse:
        return await app.async_dispatch(async_signed_request(event_body(event), **kwargs))

    assert (await send_async(app_mention("async task", ts=ROOT))).status == 200
    assert (await send_async(app_mention("async task", ts=ROOT), retry_num=1)).status == 200
    assert (await send_async(message("reply", ts="1700000090.000100", thread_ts=ROOT))).status == 200
    assert (await send_async(message("bot", ts="1700000091.000100", thread_ts=ROOT, bot_id="B1"))).status == 200
    assert handled == [ROOT, ROOT]
    assert tasks(tasklog) == [("T111", "C111", ROOT, ROOT, "U123", "async task")]
    assert follow_ups(tasklog) == [(ROOT, "1700000090.000100", "U123", "reply")]


@sqlite_only
def test_the_module_default_middleware_uses_the_environment(
    api: FakeSlackAPI, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKLOG_DATABASE_URL", database_url)
    monkeypatch.setattr(slack_tasklog.default, "_default", None)
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
    app.use(tasklog_middleware)
    app.event("app_mention")(lambda: None)
    send(app, app_mention("default", ts=ROOT))
    default = slack_tasklog.default.get_default_tasklog()
    try:
        assert str(default.engine.url) == database_url
        assert len(tasks(default)) == 1
    finally:
        default.close()
