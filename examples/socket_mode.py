"""A Bolt ``App`` over Socket Mode, recording its tasks with ``slack_tasklog``.

Shows the whole wiring: ``tasklog.middleware`` registered first, ``@tasklog.track_assignment`` on the bot's
``check_and_assign`` and ``@tasklog.track_outcome`` on each agent's ``process_assignment``. Mention the bot with
"research ..." or "write ..." and the agent it routes to answers in the thread.

Run it (the Slack app from ``manifest.yml``, with an app-level token that has ``connections:write``)::

    pip install slack-tasklog
    export SLACK_BOT_TOKEN=xoxb-... SLACK_APP_TOKEN=xapp-...
    export TASKLOG_DATABASE_URL=sqlite:///tasklog.db     # optional: this is the default
    python examples/socket_mode.py

Then ``slack-tasklog stats`` or ``slack-tasklog export -o tasks.csv`` read what it recorded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from slack_bolt import App, Say
from slack_bolt.adapter.socket_mode import SocketModeHandler
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
    ``$SLACK_BOT_TOKEN``."""
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


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    tasklog = TaskLog()  # $TASKLOG_DATABASE_URL, else sqlite:///tasklog.db
    SocketModeHandler(build_app(tasklog), os.environ["SLACK_APP_TOKEN"]).start()
