"""The design document's Approach 1 and Approach 2, transcribed from its sketches, as reference points.

Source: ``task-logging-design.md`` ("Approach 1: Minimal JSON Log File" and "Approach 2: SQLite Database"). The
logging calls are kept exactly as sketched — Approach 1 opens the file for every event, Approach 2 connects,
inserts, commits and closes for every event with SQLite's defaults (rollback journal, ``synchronous=FULL``). Only
the plumbing around them is ours: a Bolt middleware (same shape as ``TaskLogMiddleware``, so the comparison is of
the logging, not of how Bolt calls a middleware), and, for the lifecycle benchmark, the two hooks the sketch leaves
as comments (``check_and_assign`` → evaluations, ``process_assignment`` → outcome), written the same way as its
``log_task``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

__all__ = [
    "DesignTaskLogger",
    "JsonLinesMiddleware",
    "SqliteSketchMiddleware",
    "mention_fields",
    "register_async_reference",
]


def mention_fields(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the design's ``handle_orchestrator_mention`` has at hand, for an ``app_mention`` event; else None."""
    if body.get("type") != "event_callback":
        return None
    event = body.get("event") or {}
    if event.get("type") != "app_mention":
        return None
    return {
        "user_id": event.get("user"),
        "request": event.get("text"),
        "channel_id": event.get("channel"),
        "thread_ts": event.get("thread_ts") or event.get("ts"),
    }


# -- Approach 1 -------------------------------------------------------------------------------------------------


def make_log_task(path: Path) -> Callable[[str, dict[str, Any]], None]:
    """The sketch's ``log_task(event_type, data)``, appending to ``path`` instead of ``task_logs.jsonl``."""

    def log_task(event_type: str, data: dict[str, Any]) -> None:
        """Append task event to log file"""
        log_entry = {
            # datetime.utcnow().isoformat(), without 3.12's deprecation warning: same string, same cost.
            "timestamp": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
            "event_type": event_type,
            **data,
        }
        with open(path, "a") as f:  # as in the sketch
            f.write(json.dumps(log_entry) + "\n")

    return log_task


class JsonLinesMiddleware(Middleware):
    """Approach 1 as a middleware: one JSON line per app mention, written on the request path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log_task = make_log_task(path)

    @property
    def name(self) -> str:
        return "reference.JsonLinesMiddleware"

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        fields = mention_fields(req.body)
        if fields is not None:
            self._log_task("task_request", fields)
        next()
        return resp

    # The same for ``AsyncApp``: the sketch's synchronous file append, on the event loop, as a bot written that way
    # would do it. Registered as a virtual ``AsyncMiddleware`` (``register_async_reference``), exactly like
    # ``TaskLogMiddleware``, so that Bolt calls both the same way and only the logging differs.
    async def async_process(
        self, *, req: Any, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        fields = mention_fields(req.body)
        if fields is not None:
            self._log_task("task_request", fields)
        await next()
        return resp


def register_async_reference() -> None:
    """Make ``JsonLinesMiddleware`` usable with ``AsyncApp.use`` (call once Bolt's async side is imported)."""
    from slack_bolt.middleware.async_middleware import AsyncMiddleware

    if not issubclass(JsonLinesMiddleware, AsyncMiddleware):
        AsyncMiddleware.register(JsonLinesMiddleware)


# -- Approach 2 -------------------------------------------------------------------------------------------------


class DesignTaskLogger:
    """The sketch's ``TaskLogger`` (``src/core/task_logger.py``), plus the two hooks it leaves out."""

    def __init__(self, db_path: str = "task_logs.db") -> None:
        self.db_path = db_path
        self._init_db()

    def _init_db(self) -> None:
        with self.get_db() as conn:
            conn.execute("""
                CREATE TABLE IF NOT EXISTS tasks (
                    id INTEGER PRIMARY KEY,
                    timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
                    user_id TEXT,
                    request TEXT,
                    channel_id TEXT,
                    thread_ts TEXT UNIQUE
                )
            """)
            conn.execute("""
                CREATE TABLE IF NOT EXISTS evaluations (
                    task_id INTEGER,
                    agent_name TEXT,
                    confidence INTEGER,
                    assigned BOOLEAN,
                    FOREIGN KEY (task_id) REFERENCES tasks(id)
                )
            """)
            conn.execute("""
                CREATE TABLE IF NOT EXISTS outcomes (
                    task_id INTEGER,
                    agent_name TEXT,
                    success BOOLEAN,
                    execution_time REAL,
                    error_message TEXT,
                    FOREIGN KEY (task_id) REFERENCES tasks(id)
                )
            """)

    @contextmanager
    def get_db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            yield conn
            conn.commit()
        finally:
            conn.close()

    def log_task(self, user_id: str, request: str, channel_id: str, thread_ts: str) -> None:
        with self.get_db() as conn:
            conn.execute(
                "INSERT INTO tasks (user_id, request, channel_id, thread_ts) VALUES (?, ?, ?, ?)",
                (user_id, request, channel_id, thread_ts),
            )

    # The sketch's "In check_and_assign after evaluations" and "process_assignment completion" hooks, written like
    # log_task: one connection and one commit per event, one evaluations row per agent.

    def log_evaluations(self, thread_ts: str, evaluations: Mapping[str, float], assigned_to: str | None) -> None:
        with self.get_db() as conn:
            for agent_name, confidence in evaluations.items():
                conn.execute(
                    "INSERT INTO evaluations (task_id, agent_name, confidence, assigned) "
                    "VALUES ((SELECT id FROM tasks WHERE thread_ts = ?), ?, ?, ?)",
                    (thread_ts, agent_name, confidence, agent_name == assigned_to),
                )

    def log_outcome(
        self, thread_ts: str, agent_name: str, success: bool, execution_time: float, error_message: str | None
    ) -> None:
        with self.get_db() as conn:
            conn.execute(
                "INSERT INTO outcomes (task_id, agent_name, success, execution_time, error_message) "
                "VALUES ((SELECT id FROM tasks WHERE thread_ts = ?), ?, ?, ?, ?)",
                (thread_ts, agent_name, success, execution_time, error_message),
            )


class SqliteSketchMiddleware(Middleware):
    """Approach 2 as a middleware: ``TaskLogger.log_task`` (connect, insert, commit, close) per app mention."""

    def __init__(self, db_path: Path) -> None:
        self.logger = DesignTaskLogger(str(db_path))

    @property
    def name(self) -> str:
        return "reference.SqliteSketchMiddleware"

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        fields = mention_fields(req.body)
        if fields is not None:
            self.logger.log_task(fields["user_id"], fields["request"], fields["channel_id"], fields["thread_ts"])
        next()
        return resp
