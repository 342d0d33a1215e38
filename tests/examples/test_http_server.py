"""examples/http_server.py: a Bolt App behind Bolt's WSGI adapter and wsgiref, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, signed_headers
from sqlalchemy import text

from examples import http_server
from tests.conftest import query

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def url(api: FakeSlackAPI, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    server = http_server.make_http_server(http_server.build_app(tasklog, client=api.client()), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_signed_mention_over_http_is_a_task_with_its_round_and_outcome(
    url: str, api: FakeSlackAPI, tasklog: TaskLog
) -> None:
    body = event_body(app_mention("draft the release notes", user="U42", ts="1700000000.000100"))
    assert post(url, body, signed_headers(json.dumps(body))) == 200

    [reply] = api.wait_for("chat.postMessage")
    assert reply.params["thread_ts"] == "1700000000.000100"
    assert "Writer here" in reply.params["text"]
    assert query(tasklog, "SELECT thread_ts, user_id, request_text FROM tasklog_tasks") == [
        ("1700000000.000100", "U42", "draft the release notes")
    ]
    assert query(tasklog, "SELECT thread_ts, agent, confidence FROM tasklog_assignments") == [
        ("1700000000.000100", "Writer", 90)
    ]
    assert query(tasklog, "SELECT thread_ts, agent, success FROM tasklog_outcomes") == [
        ("1700000000.000100", "Writer", True)
    ]


def test_an_unsigned_request_is_refused_and_not_recorded(url: str, tasklog: TaskLog) -> None:
    body = event_body(app_mention("draft something"))
    headers = signed_headers(json.dumps(body), signing_secret="not-the-secret")
    assert post(url, body, headers) == 401
    assert tasklog.flush(10)
    with tasklog.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one() == 0
