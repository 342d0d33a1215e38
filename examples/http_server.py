"""A Bolt ``App`` over HTTP (the Events API), served by the standard library's ``wsgiref`` through Bolt's WSGI
adapter, recording its tasks with ``slack_tasklog``. No web framework needed.

Shows the same wiring as ``socket_mode.py``: ``tasklog.middleware`` first, ``@tasklog.track_assignment`` on
``check_and_assign``, ``@tasklog.track_outcome`` on each agent's ``process_assignment``.

Run it (the Slack app from ``manifest.yml`` with ``socket_mode_enabled: false`` and its Request URL set to
``https://<your host>/slack/events``)::

    pip install slack-tasklog
    export SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=...
    export TASKLOG_DATABASE_URL=sqlite:///tasklog.db     # optional: this is the default
    python examples/http_server.py                       # listens on $PORT, default 3000

``wsgiref`` serves one request at a time: for production, give ``SlackRequestHandler(build_app(TaskLog()))`` to a
WSGI server such as gunicorn instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from slack_bolt import App, Say
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_tasklog import TaskLog

#: Each agent and the words that make it confident.
AGENTS: dict[str, tuple[str, ...]] = {
    "Researcher": ("research", "compare", "summarize"),
    "Writer": ("write", "draft", "announce"),
}
MIN_CONFIDENCE = 50


def evaluate(agent: str, text: str) -> int:
    """A toy confidence (0-100): high when the request names one of the agent's skills."""
    return 90 if any(word in text.lower() for word in AGENTS[agent]) else 20


def build_app(tasklog: TaskLog, client: WebClient | None = None) -> App:
    """The bot: routes each mention to the most confident agent. ``client`` defaults to one with
    ``$SLACK_BOT_TOKEN``; requests are verified with ``$SLACK_SIGNING_SECRET``."""
    app = App(client=client) if client is not None else App(token=os.environ["SLACK_BOT_TOKEN"])
    app.use(tasklog.middleware)  # first, before any other middleware: it records every task request

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Mapping[str, int]) -> str | None:
        agent, confidence = max(evaluations.items(), key=lambda item: item[1])
        return agent if confidence >= MIN_CONFIDENCE else None

    class Agent:
        def __init__(self, name: str) -> None:
            self.name = name  # track_outcome records the outcome under self.name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            return f"{self.name} here: done with {text!r}."  # returning is success, raising failure

    agents = {name: Agent(name) for name in AGENTS}

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], say: Say) -> None:
        thread_ts = event.get("thread_ts") or event["ts"]
        text = event.get("text", "")
        assigned = check_and_assign(thread_ts, {name: evaluate(name, text) for name in agents})
        if assigned is None:
            say(text="Sorry, no agent is confident enough to take this.", thread_ts=thread_ts)
            return
        say(text=agents[assigned].process_assignment(thread_ts, text), thread_ts=thread_ts)

    @app.event("message")
    def on_message() -> None:
        """This bot acts on mentions; the task log has already recorded any follow-up or direct message."""

    return app


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000) -> WSGIServer:
    """A ``wsgiref`` server answering Slack at ``POST /slack/events`` (``port=0``: any free port)."""
    return make_server(host, port, SlackRequestHandler(app, path="/slack/events"))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    tasklog = TaskLog()  # $TASKLOG_DATABASE_URL, else sqlite:///tasklog.db
    server = make_http_server(build_app(tasklog), port=int(os.environ.get("PORT", "3000")))
    logging.info("listening on http://%s:%d/slack/events", *server.server_address[:2])
    server.serve_forever()
