"""examples/socket_mode.py: a Bolt App over Socket Mode (slack_sdk's built-in client), against a websocket peer
playing Slack and the fake Web API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_tasklog import TaskLog
from slack_tasklog.testing import FakeSlackAPI, app_mention, event_body

from examples import socket_mode
from tests.conftest import query
from tests.examples.slack_side import SocketModePeer

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def peer(api: FakeSlackAPI) -> Iterator[SocketModePeer]:
    with SocketModePeer() as peer:
        api.socket_mode_url = peer.url
        yield peer


@pytest.fixture
def handler(api: FakeSlackAPI, peer: SocketModePeer, tasklog: TaskLog) -> Iterator[SocketModeHandler]:
    handler = SocketModeHandler(socket_mode.build_app(tasklog, client=api.client()), "xapp-test")
    handler.connect()
    try:
        yield handler
    finally:
        peer.hang_up()
        # slack_sdk 3.38's Connection.disconnect checks its socket, then closes it, while the reader thread that
        # saw the hang-up may set it to None in between: an AttributeError in teardown that says nothing of the bot.
        with contextlib.suppress(AttributeError):
            handler.close()


def test_a_mention_over_socket_mode_is_a_task_with_its_round_and_outcome(
    api: FakeSlackAPI, peer: SocketModePeer, handler: SocketModeHandler, tasklog: TaskLog
) -> None:
    mention = app_mention("please research vector databases", ts="1700000000.000100")
    envelope_id = peer.send_event(event_body(mention))

    assert peer.wait_ack(envelope_id) == {"envelope_id": envelope_id}
    [reply] = api.wait_for("chat.postMessage")
    assert reply.params["thread_ts"] == "1700000000.000100"
    assert "Researcher here" in reply.params["text"]
    assert api.calls_to("apps.connections.open")[0].token == "xapp-test"
    assert query(tasklog, "SELECT thread_ts, user_id, request_text FROM tasklog_tasks") == [
        ("1700000000.000100", "U123", "please research vector databases")
    ]
    assert query(tasklog, "SELECT thread_ts, agent, confidence FROM tasklog_assignments") == [
        ("1700000000.000100", "Researcher", 90)
    ]
    assert query(tasklog, "SELECT thread_ts, agent, success FROM tasklog_outcomes") == [
        ("1700000000.000100", "Researcher", True)
    ]


def test_without_a_socket_mode_url_the_fake_api_refuses_to_open_a_connection(api: FakeSlackAPI) -> None:
    with pytest.raises(SlackApiError, match="socket_mode_url_not_set"):
        api.client(token="xapp-test").apps_connections_open(app_token="xapp-test")
