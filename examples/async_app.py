"""A Bolt ``AsyncApp`` recording its tasks with ``slack_tasklog``, with async agents.

The same middleware object and decorators work on ``AsyncApp`` and on ``async def`` functions: outcomes are timed
across their awaits. Over Socket Mode (aiohttp) when ``$SLACK_APP_TOKEN`` is set, otherwise over HTTP with
AsyncApp's own aiohttp server at ``POST /slack/events``.

Run it::

    pip install 'slack-tasklog[async]'
    export SLACK_BOT_TOKEN=xoxb-...
    export SLACK_APP_TOKEN=xapp-...               # Socket Mode; or, for HTTP, SLACK_SIGNING_SECRET=... (and $PORT)
    export TASKLOG_DATABASE_URL=sqlite:///tasklog.db     # optional: this is the default
    python examples/async_app.py
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncSay
from slack_sdk.web.async_client import AsyncWebClient
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


def build_app(tasklog: TaskLog, client: AsyncWebClient | None = None) -> AsyncApp:
    """The bot: routes each mention to the most confident agent. ``client`` defaults to one with
    ``$SLACK_BOT_TOKEN``; HTTP requests are verified with ``$SLACK_SIGNING_SECRET``."""
    app = AsyncApp(client=client) if client is not None else AsyncApp(token=os.environ["SLACK_BOT_TOKEN"])
    app.use(tasklog.middleware)  # first, before any other middleware: it records every task request

    @tasklog.track_assignment
    async def check_and_assign(thread_ts: str, evaluations: Mapping[str, int]) -> str | None:
        agent, confidence = max(evaluations.items(), key=lambda item: item[1])
        return agent if confidence >= MIN_CONFIDENCE else None

    class Agent:
        def __init__(self, name: str) -> None:
            self.name = name  # track_outcome records the outcome under self.name

        @tasklog.track_outcome
        async def process_assignment(self, thread_ts: str, text: str) -> str:
            await asyncio.sleep(0.01)  # the agent's work: a model call, a tool, ...
            return f"{self.name} here: done with {text!r}."  # returning is success, raising failure

    agents = {name: Agent(name) for name in AGENTS}

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        thread_ts = event.get("thread_ts") or event["ts"]
        text = event.get("text", "")
        assigned = await check_and_assign(thread_ts, {name: evaluate(name, text) for name in agents})
        if assigned is None:
            await say(text="Sorry, no agent is confident enough to take this.", thread_ts=thread_ts)
            return
        await say(text=await agents[assigned].process_assignment(thread_ts, text), thread_ts=thread_ts)

    @app.event("message")
    async def on_message() -> None:
        """This bot acts on mentions; the task log has already recorded any follow-up or direct message."""

    return app


async def run_socket_mode(app: AsyncApp, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    await AsyncSocketModeHandler(app, app_token).start_async()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    tasklog = TaskLog()  # $TASKLOG_DATABASE_URL, else sqlite:///tasklog.db
    bot = build_app(tasklog)
    if "SLACK_APP_TOKEN" in os.environ:
        asyncio.run(run_socket_mode(bot, os.environ["SLACK_APP_TOKEN"]))
    else:
        bot.start(port=int(os.environ.get("PORT", "3000")), path="/slack/events")
