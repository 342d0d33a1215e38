"""Shared helpers for the benchmark scripts: apps wired to a fake Slack API, timing, summaries, Markdown tables.

The scripts are meant for a shared, noisy machine, so every figure is a ratio of configurations measured side by
side in one run, interleaved in small blocks, reported as a median with the min-max over rounds. Nothing here
asserts on time: the scripts print what they measured and exit 0 (they exit non-zero only if data went missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest

# Imported up front, as a bot using AsyncApp does: slack_tasklog then sees Bolt's async side loaded when a
# TaskLog hands out its middleware, and AsyncApp runs it as an AsyncMiddleware (no per-request argument injection).
from slack_bolt.async_app import AsyncApp
from slack_tasklog.testing import (
    SIGNING_SECRET,
    FakeSlackAPI,
    app_mention,
    async_signed_request,
    event_body,
    signed_request,
)

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest

__all__ = [
    "Summary",
    "async_mention_requests",
    "build_app",
    "build_async_app",
    "environment_lines",
    "fresh_dir",
    "markdown_table",
    "mention_requests",
    "parse_args",
    "quiet_gc",
    "source_fingerprint",
    "sqlite_plans",
    "summarize",
    "supports_journal",
]

#: The text every benchmark mention carries; the middleware strips the leading ``<@UBOT>``.
MENTION_TEXT = "research quantum computing and write a short summary"


# -- apps -------------------------------------------------------------------------------------------------------


def build_app(api: FakeSlackAPI, *, process_before_response: bool, middleware: Any = None) -> App:
    """A Bolt ``App`` talking to ``api``, with a no-op ``app_mention`` listener and optionally one global middleware.

    The app verifies signatures (the default), so build requests with :func:`mention_requests`.
    """
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=process_before_response)

    @app.event("app_mention")
    def on_mention() -> None:
        return None

    if middleware is not None:
        app.use(middleware)
    return app


def build_async_app(api: FakeSlackAPI, *, process_before_response: bool, middleware: Any = None) -> AsyncApp:
    """The ``AsyncApp`` twin of :func:`build_app` (``client=api.async_client()``)."""
    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        client=api.async_client(),
        process_before_response=process_before_response,
    )

    @app.event("app_mention")
    async def on_mention() -> None:
        return None

    if middleware is not None:
        app.use(middleware)
    return app


def mention_requests(count: int) -> list[BoltRequest]:
    """``count`` signed requests, each an app mention with a fresh unique ts (so each one opens a new task)."""
    return [signed_request(event_body(app_mention(MENTION_TEXT))) for _ in range(count)]


def async_mention_requests(count: int) -> list[AsyncBoltRequest]:
    """Like :func:`mention_requests`, for ``AsyncApp.async_dispatch``."""
    return [async_signed_request(event_body(app_mention(MENTION_TEXT))) for _ in range(count)]


# -- timing -----------------------------------------------------------------------------------------------------

now_ns = time.perf_counter_ns


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect garbage before a timed section so that one configuration does not pay for another's garbage.

    The collector stays enabled inside: an app allocates, and so does a middleware.
    """
    gc.collect()
    yield


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    count: int

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit}"

    def span(self, digits: int = 2) -> str:
        return f"{self.low:.{digits}f}-{self.high:.{digits}f}"


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("nothing to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


# -- output -----------------------------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells[1:])
    return "\n".join(lines)


def _filesystem(path: str) -> str:
    try:
        out = subprocess.run(["df", "-PT", path], capture_output=True, text=True, check=True, timeout=5).stdout
        return out.splitlines()[1].split()[1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def environment_lines(command: Sequence[str] | None = None) -> list[str]:
    """Where and when the figures were measured, as Markdown bullet lines."""
    from importlib.metadata import version

    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    temp = tempfile.gettempdir()
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("slack-tasklog", "slack_bolt", "slack_sdk", "SQLAlchemy")
    )
    cmd = " ".join(command if command is not None else [".venv/bin/python", *sys.argv])
    return [
        f"- date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- code: {source_fingerprint()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load} (1/5/15 min)",
        f"- Python {platform.python_version()}; {versions}; SQLite {__import__('sqlite3').sqlite_version}",
        f"- temp dir {temp} on {_filesystem(temp)}",
        f"- command: `{cmd}`",
    ]


def source_fingerprint() -> str:
    """The commit, and a hash of the package's source as it is on disk (it may hold uncommitted changes)."""
    import hashlib

    import slack_tasklog

    package = Path(slack_tasklog.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        head = subprocess.run(
            ["git", "-C", str(package), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"slack_tasklog imported from {package} (not a git checkout); source sha256 {digest.hexdigest()[:12]}"
    state = "with uncommitted changes in slack_tasklog/" if dirty else "clean"
    return f"commit {head[:60]!r} ({state}); source sha256 {digest.hexdigest()[:12]}"


def supports_journal() -> bool:
    """Whether this version of ``TaskLog`` has the ``journal=`` option (the write-ahead journal)."""
    import inspect

    from slack_tasklog import TaskLog

    return "journal" in inspect.signature(TaskLog).parameters


def parse_args(description: str, configure: Callable[[argparse.ArgumentParser], None] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test; figures are noisier)")
    if configure is not None:
        configure(parser)
    return parser.parse_args()


@contextlib.contextmanager
def fresh_dir(prefix: str) -> Iterator[Path]:
    """A fresh temporary directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_plans(engine: Any, run: Callable[[Any], object]) -> list[str]:
    """SQLite's ``EXPLAIN QUERY PLAN`` of every SELECT that ``run(connection)`` sends, in order."""
    from sqlalchemy import event

    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            run(conn)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    lines = []
    with engine.connect() as conn:
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT"):
                lines += [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    return lines
