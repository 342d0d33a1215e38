"""``slack-tasklog demo``: a scripted Slack conversation through a real Bolt app, offline, then the CSV.

The demo is the smallest complete bot the package is meant for, the one from the design document: an orchestrator
that routes every mention to the most confident of three specialist agents (Grok, Writer, Builder), wired to a
``TaskLog`` with one ``app.use`` and two decorators (see :func:`build_app`). Slack's side is played by
:class:`_Conversation`: it signs each event as Slack does, dispatches it synchronously to the app, and echoes the
bot's own posts back as Slack would. The Web API is a :class:`~slack_tasklog.testing.FakeSlackAPI` on
``127.0.0.1``, so nothing leaves the machine.

The script has what a real channel has and a task log must get right: people's requests and thread replies, a Slack
retry and the ``message`` copy of every mention (written once), bots talking (never written), channel chatter, an
agent that fails, a request nobody is confident enough for, and a failed task routed again to another agent.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, Say
from slack_sdk import WebClient
from sqlalchemy import URL

from slack_tasklog.capture.rules import strip_leading_mention
from slack_tasklog.storage.models import Task
from slack_tasklog.tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, message, signed_request

__all__ = ["AGENTS", "DemoError", "DemoResult", "build_app", "evaluate", "format_summary", "run_demo"]

TEAM = "T0DEMO"
CHANNEL = "C0AGENTS"
BOT_USER = "U0ORCH"
BOT_ID = "B0ORCH"
GITHUB_BOT_ID = "B0GITHUB"
ALICE, BOB, CAROL, DAVE, ERIN = "U01ALICE", "U02BOB", "U03CAROL", "U04DAVE", "U05ERIN"

AGENTS = ("Grok", "Writer", "Builder")
#: Below this confidence nobody gets the task (the design document's "No agent confident enough").
MIN_CONFIDENCE = 50
_MAX_CONFIDENCE = 97

# Each agent's confidence: a base plus the weight of every keyword in the request. Deterministic on purpose: every
# run routes the same way and exports the same rows.
_SKILLS: dict[str, tuple[int, dict[str, int]]] = {
    "Grok": (12, {"research": 40, "compare": 25, "summarize": 20, "analyze": 30, "best practices": 15, "why": 10}),
    "Writer": (8, {"write": 45, "draft": 40, "release notes": 30, "tone": 12, "runbook": 25, "announcement": 30}),
    "Builder": (6, {"build": 35, "script": 25, "deploy": 20, "fix": 40, "test": 15, "ci": 20, "staging": 5}),
}
# How long each agent "works", in seconds: enough for an execution time, little enough for a quick demo.
_WORK_SECONDS = {"Grok": 0.045, "Writer": 0.03, "Builder": 0.06}
_ANSWERS = {
    "Grok": "Here is what I found: three patterns teams use, with sources, in the summary below.",
    "Writer": "Draft ready, have a look and tell me what to change.",
    "Builder": "Done: the fix is pushed and CI is green.",
}

# The scripted conversation spans the last twelve minutes, so the tasks sit in any "recent" window.
_SPAN_SECONDS = 720.0


class DemoError(Exception):
    """The demo could not run (a database it must not touch, a request Bolt refused, a database too slow)."""


def evaluate(agent: str, text: str) -> int:
    """``agent``'s confidence (0-100) that it can handle ``text``.

    >>> evaluate("Writer", "please draft the release notes")
    78
    """
    base, keywords = _SKILLS[agent]
    lowered = text.lower()
    score = base + sum(weight for word, weight in keywords.items() if re.search(rf"\b{re.escape(word)}\b", lowered))
    return min(score, _MAX_CONFIDENCE)


def _do_work(agent: str, text: str) -> str:
    time.sleep(_WORK_SECONDS[agent])
    if agent == "Builder" and "staging" in text.lower():
        raise TimeoutError("deploy to staging timed out after 30s waiting for the migration lock")
    return _ANSWERS[agent]


def build_app(tasklog: TaskLog, client: WebClient) -> App:
    """The orchestrator bot, written the way a real one is; the task log is the ``app.use`` and two decorators.

    Mentions are routed to the most confident agent (``check_and_assign``), whose ``process_assignment`` does the
    work; a failure is reported in the thread, where mentioning the bot again routes the task anew.
    """
    app = App(signing_secret=SIGNING_SECRET, client=client, process_before_response=True)
    app.use(tasklog.middleware)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Mapping[str, int]) -> str | None:
        """The most confident agent, or None when even the best is below ``MIN_CONFIDENCE``."""
        agent, confidence = max(evaluations.items(), key=lambda item: item[1])
        return agent if confidence >= MIN_CONFIDENCE else None

    class SpecialistAgent:
        """One specialist; ``track_outcome`` finds its name in ``self.name``."""

        def __init__(self, name: str) -> None:
            self.name = name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            """Do the work; raise when it fails."""
            return _do_work(self.name, text)

    agents = {name: SpecialistAgent(name) for name in AGENTS}

    @app.event("app_mention")
    def handle_orchestrator_mention(
        event: dict[str, Any], say: Say, request: BoltRequest, context: BoltContext
    ) -> None:
        """Ask every agent, assign the task, run it, and say how it went in the thread."""
        if request.headers.get("x-slack-retry-num"):
            return  # the first delivery was handled; the task log writes the request once either way
        thread_ts = event.get("thread_ts") or event["ts"]
        text = strip_leading_mention(event.get("text", ""), context.bot_user_id)
        evaluations = {name: evaluate(name, text) for name in AGENTS}
        assigned = check_and_assign(thread_ts, evaluations)
        if assigned is None:
            best = max(evaluations.values())
            say(
                text=f"Sorry, no agent is confident enough to take this (best: {best}%). Try rephrasing?",
                thread_ts=thread_ts,
            )
            return
        say(text=f"{assigned} is on it (confidence {evaluations[assigned]}%).", thread_ts=thread_ts)
        try:
            answer = agents[assigned].process_assignment(thread_ts, text)
        except Exception as error:
            say(
                text=f"{assigned} could not finish this: {error}. Mention me in this thread to route it again.",
                thread_ts=thread_ts,
            )
            return
        say(text=answer, thread_ts=thread_ts)

    @app.event("message")
    def ignore_messages() -> None:
        """The orchestrator acts on mentions only; the middleware has already recorded any follow-up."""

    return app


class _Conversation:
    """Slack's side: signs each event, dispatches it to the app, echoes the bot's posts, counts what it sent.

    Times are seconds into the script; each becomes a distinct Slack ``ts`` after ``start`` (Unix seconds).
    """

    def __init__(self, app: App, api: FakeSlackAPI, start: float) -> None:
        self._app = app
        self._api = api
        self._start = start
        self._last_ts = 0.0
        self._at = 0.0
        self._posts_echoed = 0
        self._mentions: dict[str, dict[str, Any]] = {}
        self.sent: Counter[str] = Counter()
        self.threads: set[str] = set()

    def _ts(self, at: float) -> str:
        # Slack's ts is unique per channel: never repeat one, even for events scripted at the same second.
        self._at = max(self._at, at)
        self._last_ts = max(self._start + self._at, self._last_ts + 0.000_001)
        return f"{self._last_ts:.6f}"

    def _dispatch(self, body: dict[str, Any], kind: str, *, retry_num: int | None = None) -> None:
        request = signed_request(body, retry_num=retry_num, retry_reason="http_timeout" if retry_num else None)
        response = self._app.dispatch(request)
        if response.status != 200:
            raise DemoError(f"Bolt answered {response.status} to a {kind} event: {response.body[:200]}")
        self.sent[kind] += 1

    def _send(self, event: dict[str, Any], kind: str) -> dict[str, Any]:
        body = event_body(event, team_id=TEAM, event_time=int(float(event["ts"])), authorizations_user_id=BOT_USER)
        self._dispatch(body, kind)
        return body

    def _echo_bot_posts(self) -> None:
        """Slack sends a ``message`` event for each of the bot's own posts (it subscribes to message.channels)."""
        posts = self._api.calls_to("chat.postMessage")
        for post in posts[self._posts_echoed :]:
            text = str(post.params.get("text", ""))
            event = message(text, user=BOT_USER, channel=CHANNEL, ts=self._ts(self._at + 1), bot_id=BOT_ID, team=TEAM)
            if post.params.get("thread_ts"):
                event["thread_ts"] = str(post.params["thread_ts"])
            self._send(event, "bot")
        self._posts_echoed = len(posts)

    def mention(self, user: str, text: str, *, at: float, thread: str | None = None) -> str:
        """A person mentions the bot (top level, or in ``thread``); Slack also sends its ``message`` copy.

        Returns the task's thread ts.
        """
        ts = self._ts(at)
        event = app_mention(text, user=user, channel=CHANNEL, ts=ts, thread_ts=thread, bot_user_id=BOT_USER, team=TEAM)
        self._mentions[ts] = self._send(event, "mention")
        self._send(message(event["text"], user=user, channel=CHANNEL, ts=ts, thread_ts=thread, team=TEAM), "copy")
        self._echo_bot_posts()
        self.threads.add(thread or ts)
        return thread or ts

    def retry(self, ts: str) -> None:
        """Slack did not see our 200 in time and delivers the mention ``ts`` again, same body and event id."""
        self._dispatch(self._mentions[ts], "retry", retry_num=1)

    def reply(self, user: str, thread: str, text: str, *, at: float) -> None:
        """A person replies in a thread."""
        self._send(message(text, user=user, channel=CHANNEL, ts=self._ts(at), thread_ts=thread, team=TEAM), "reply")

    def chatter(self, user: str, text: str, *, at: float) -> None:
        """A person talks in the channel, to nobody in particular."""
        self._send(message(text, user=user, channel=CHANNEL, ts=self._ts(at), team=TEAM), "chatter")

    def other_bot(self, text: str, *, at: float, thread: str | None = None) -> None:
        """Another app (GitHub) posts, at the top level or in a thread."""
        event = message(
            text, user="U0GITHUB", channel=CHANNEL, ts=self._ts(at), thread_ts=thread, subtype="bot_message", team=TEAM
        )
        event.update(bot_id=GITHUB_BOT_ID, username="GitHub")
        self._send(event, "bot")


def _play(slack: _Conversation) -> None:
    """The scripted conversation: five requests, one of them failing and routed again, one that nobody takes."""
    research = slack.mention(
        ALICE, "can you research how other teams run on-call handoffs and summarize the best practices?", at=0
    )
    slack.retry(research)
    slack.reply(ALICE, research, "focus on teams under 20 engineers if you can", at=40)
    slack.reply(CAROL, research, "our current handoff doc is in the wiki under On-call > Handoffs", at=95)
    slack.chatter(BOB, "lunch at 12:30? :ramen:", at=120)
    notes = slack.mention(BOB, "please draft the release notes for v2.4 from the merged PRs, friendly tone", at=150)
    slack.other_bot("PR #482 merged: CSV export for the task log", thread=notes, at=170)
    slack.reply(BOB, notes, "also mention the new CSV export, people asked for it", at=200)
    importer = slack.mention(CAROL, "build a script that imports the billing CSV and deploy it to staging", at=260)
    slack.reply(CAROL, importer, "ugh, staging is frozen until Monday anyway", at=330)
    slack.mention(
        CAROL, "ok, then just write up the import steps as a runbook for on-call instead", at=345, thread=importer
    )
    weather = slack.mention(DAVE, "what's the weather going to be like for the offsite on Friday?", at=420)
    slack.reply(DAVE, weather, "never mind, found it", at=480)
    slack.other_bot("Deploy of web@4f2c1e finished on production", at=540)
    flaky = slack.mention(ERIN, "the login test is flaky in CI again, can someone fix it?", at=600)
    slack.reply(ERIN, flaky, "thanks, it's green now", at=700)


@dataclass(frozen=True)
class DemoResult:
    """What a demo run sent and what the task log made of it (the exported rows of this run's tasks)."""

    csv_path: Path
    database: str
    sent: Counter[str]
    rows: list[dict[str, str]]
    exported: int
    seconds: float


def run_demo(directory: Path, *, database_url: str | None = None) -> DemoResult:
    """Play the scripted conversation into a task log and export it to ``directory/tasks.csv``.

    The task log is ``database_url`` when given (added to, never cleared), else ``directory/tasklog.db``,
    recreated on each run so that runs are alike.
    """
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    if database_url is None:
        database_path = directory / "tasklog.db"
        _remove_demo_database(database_path)
        database = str(database_path)
        # Quoted by URL: a directory name with "?" or "#" must not become a query string.
        tasklog = TaskLog(URL.create("sqlite", database=database).render_as_string(), shutdown_timeout=5.0)
    else:
        tasklog = TaskLog(database_url, shutdown_timeout=5.0)
        database = tasklog.engine.url.render_as_string(hide_password=True)
    try:
        with tasklog.engine.connect():
            pass  # fail now, in one line, rather than after the conversation with a queue of unwritten events
        start = time.time() - _SPAN_SECONDS
        with FakeSlackAPI(team_id=TEAM, bot_user_id=BOT_USER, bot_id=BOT_ID, bot_user_name="orchestrator") as api:
            slack = _Conversation(build_app(tasklog, api.client(token="xoxb-demo")), api, start)
            _play(slack)
        if not tasklog.flush(timeout=10.0):
            raise DemoError(f"{database} did not take the demo's events within 10 s")
        csv_path = directory / "tasks.csv"
        exported = tasklog.export_csv(csv_path, since=datetime.fromtimestamp(start, timezone.utc), team_id=TEAM)
        health = tasklog.health()
        if health.rejected or health.dropped:
            raise DemoError(f"the task log lost events: {health}")
    finally:
        tasklog.close()
        tasklog.engine.dispose()  # close() leaves the engine's connections open; the next run deletes the file
    with csv_path.open(encoding="utf-8", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["thread_ts"] in slack.threads]
    return DemoResult(csv_path, database, slack.sent, rows, exported, time.perf_counter() - started)


def _remove_demo_database(path: Path) -> None:
    """Delete a previous run's database, refusing if it holds anything the demo did not write."""
    if path.exists() and not _is_demo_database(path):
        raise DemoError(f"{path} is not a database the demo made; it is left alone (pick another --dir)")
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _is_demo_database(path: Path) -> bool:
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                return True  # an empty file
            query = f"SELECT count(*) FROM {Task.__tablename__} WHERE team_id <> ?"
            return bool(conn.execute(query, (TEAM,)).fetchone()[0] == 0)
    except sqlite3.Error:
        return False  # not SQLite, or not a task log: someone else's file


def format_summary(result: DemoResult) -> str:
    """A few lines for people: what Slack sent, what was recorded and ignored, and where the CSV is."""
    sent, rows = result.sent, result.rows
    redeliveries = sent["retry"] + sent["copy"]
    follow_ups = sum(int(row["follow_ups"]) for row in rows)
    # Measured, not assumed: whatever was sent and is not a task or a follow-up in the CSV was ignored.
    ignored = sum(sent.values()) - len(rows) - follow_ups
    expected = redeliveries + sent["bot"] + sent["chatter"]
    assigned = Counter(row["assigned_agent"] for row in rows)
    succeeded = sum(row["success"] == "true" for row in rows)
    failed = sum(row["success"] == "false" for row in rows)
    retried = sum(int(row["attempts"]) > 1 for row in rows)
    lines = [
        f"Slack sent {sum(sent.values())} events to a real Bolt app: {sent['mention']} mentions, {sent['reply']} "
        f"thread replies, {redeliveries} redeliveries ({sent['retry']} retry, {sent['copy']} message copies of "
        f"mentions), {sent['bot']} bot messages, {sent['chatter']} channel message.",
        f"Recorded {len(rows)} tasks with {follow_ups} follow-ups; the other {ignored} events were ignored"
        + (
            f": {redeliveries} redeliveries, {sent['bot']} bot messages, {sent['chatter']} channel message."
            if ignored == expected
            else f", where {expected} were expected: look at the CSV."
        ),
        "Assigned (latest attempt): "
        + ", ".join(f"{agent} {assigned[agent]}" for agent in AGENTS)
        + f"; {assigned['']} unassigned (no agent confident enough).",
        f"Outcomes (latest attempt): {succeeded} succeeded, {failed} failed; {retried} task needed a second attempt.",
        "",
        f"CSV:      {result.csv_path} ({result.exported} rows)",
        f"Database: {result.database}",
        "Open the CSV in any spreadsheet: Excel, Numbers, LibreOffice or Google Sheets (File > Import);",
        f"from a terminal: open {result.csv_path} (macOS), xdg-open {result.csv_path} (Linux).",
        f"({result.seconds:.1f} s, offline: Slack's Web API was a stand-in on 127.0.0.1)",
    ]
    return "\n".join(lines)
