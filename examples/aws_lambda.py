"""A Bolt ``App`` on AWS Lambda behind API Gateway, recording its tasks with ``slack_tasklog``.

Lambda freezes the sandbox as soon as the handler returns, so Bolt runs with ``process_before_response=True`` (the
listener finishes before Slack gets its answer), and the ``TaskLog`` writes through: on Lambda
(``$AWS_LAMBDA_FUNCTION_NAME`` is set) each event is committed to the database before the call that recorded it
returns. Use a database server that outlives the sandbox, not a SQLite file on its ``/tmp``; the home directory is
read-only there, so the journal is off.

Deploy it with ``slack-tasklog[postgres]`` (and ``slack_bolt``; Lambda's runtime has ``boto3``) in the package, the
handler set to ``aws_lambda.handler``, an API Gateway route ``POST /slack/events``, and the environment::

    SLACK_BOT_TOKEN=xoxb-...  SLACK_SIGNING_SECRET=...
    TASKLOG_DATABASE_URL=postgresql+psycopg://user:password@host/db

Slack redelivers an event it got no answer to within 3 seconds, to another sandbox while the first is still at work:
the listener leaves redeliveries alone, and the task log records each message once whatever Slack redelivers.
Nothing is built at import: the app and its ``TaskLog`` are made on the first invocation and reused by the warm
sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, BoltRequest, Say
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
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
    """The bot: routes each mention to the most confident agent, all before answering Slack. ``client`` defaults to
    one with ``$SLACK_BOT_TOKEN``; requests are verified with ``$SLACK_SIGNING_SECRET``."""
    if client is not None:
        app = App(client=client, process_before_response=True)
    else:
        app = App(token=os.environ["SLACK_BOT_TOKEN"], process_before_response=True)
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
    def on_mention(event: dict[str, Any], say: Say, request: BoltRequest) -> None:
        if request.headers.get("x-slack-retry-num"):
            return  # a redelivery: the first delivery is being (or was) handled
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


def build_handler(tasklog: TaskLog | None = None, client: WebClient | None = None) -> SlackRequestHandler:
    """Bolt's Lambda adapter around :func:`build_app`; ``tasklog`` defaults to ``TaskLog(journal=False)`` on
    ``$TASKLOG_DATABASE_URL`` (write-through, since ``$AWS_LAMBDA_FUNCTION_NAME`` is set on Lambda)."""
    return SlackRequestHandler(build_app(tasklog if tasklog is not None else TaskLog(journal=False), client))


_handler: SlackRequestHandler | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: ``aws_lambda.handler``. Builds the app on the first (cold) invocation."""
    global _handler  # noqa: PLW0603 - one app per sandbox, reused while it is warm
    if _handler is None:
        _handler = build_handler()
    response: dict[str, Any] = _handler.handle(event, context)
    return response
