"""examples/async_app.py: an AsyncApp with async agents, over Socket Mode (aiohttp) against a websocket peer, and
over HTTP with AsyncApp's own aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, signed_headers

from examples import async_app
from tests.conftest import query
from tests.examples.slack_side import SocketModePeer

pytestmark = pytest.mark.backends("sqlite")

ROOT = "1700000000.000100"


def assert_recorded(tasklog: TaskLog, agent: str, text: str) -> None:
    assert query(tasklog, "SELECT thread_ts, user_id, request_text FROM tasklog_tasks") == [(ROOT, "U123", text)]
    assert query(tasklog, "SELECT thread_ts, agent, confidence FROM tasklog_assignments") == [(ROOT, agent, 90)]
    [(thread_ts, outcome_agent, success, execution_time)] = query(
        tasklog, "SELECT thread_ts, agent, success, execution_time FROM tasklog_outcomes"
    )
    assert (thread_ts, outcome_agent, success) == (ROOT, agent, True)
    assert execution_time >= 0.01  # timed across the agent's await


@pytest.fixture
def peer(api: FakeSlackAPI) -> Iterator[SocketModePeer]:
    with SocketModePeer() as peer:
        api.socket_mode_url = peer.url
        yield peer


async def test_a_mention_over_async_socket_mode_is_a_task_with_its_round_and_outcome(
    api: FakeSlackAPI, peer: SocketModePeer, tasklog: TaskLog
) -> None:
    app = async_app.build_app(tasklog, client=api.async_client())
    handler = AsyncSocketModeHandler(app, "xapp-test")
    await handler.connect_async()
    try:
        envelope_id = await asyncio.to_thread(
            peer.send_event, event_body(app_mention("compare two vector databases", ts=ROOT))
        )
        assert await asyncio.to_thread(peer.wait_ack, envelope_id) == {"envelope_id": envelope_id}
        [reply] = await asyncio.to_thread(api.wait_for, "chat.postMessage")
    finally:
        await handler.close_async()
    assert reply.params["thread_ts"] == ROOT
    assert "Researcher here" in reply.params["text"]
    assert_recorded(tasklog, "Researcher", "compare two vector databases")


@pytest.fixture
async def http_url(api: FakeSlackAPI, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    app = async_app.build_app(tasklog, client=api.async_client())
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/slack/events"
    finally:
        await runner.cleanup()


async def test_a_signed_mention_over_async_http_is_a_task_with_its_round_and_outcome(
    http_url: str, api: FakeSlackAPI, tasklog: TaskLog
) -> None:
    raw = json.dumps(event_body(app_mention("write the announcement", ts=ROOT)))
    async with aiohttp.ClientSession() as session, session.post(http_url, data=raw, headers=signed_headers(raw)) as r:
        assert r.status == 200
    [reply] = await asyncio.to_thread(api.wait_for, "chat.postMessage")
    assert reply.params["thread_ts"] == ROOT
    assert "Writer here" in reply.params["text"]
    assert_recorded(tasklog, "Writer", "write the announcement")
