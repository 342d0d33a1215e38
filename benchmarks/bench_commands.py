"""The ``/tasklog`` figures: how fast a slash command is acked, and how long the stats query takes, over 1,000,000
tasks in SQLite.

The database is generated once with SQLAlchemy Core ``executemany`` and cached under ``$TMPDIR`` (keyed by the task
count and a fingerprint of the schema, so a schema change rebuilds it): 90 days of tasks ending 2026-11-01 00:00 UTC,
95% in workspace T111 and 5% in T222, six agents with their own success rates and execution-time spreads, three
evaluations a round, 2% of tasks never routed, 8% re-routed once, 5% of rounds with no agent confident enough, 3%
of assigned rounds still running.

1. **Stats query.** ``compute_stats`` for windows of 24 h, 7 d and 30 d ending 6 h before the data's end (18:00
   UTC), workspace T111: the median of ``--repeat`` runs on a warm connection, the tasks in the window, and the
   plan of the 30-day statement. Then the same with the candidate indexes of ``CANDIDATE_INDEXES`` added (and
   dropped afterwards).
2. **Ack.** A Bolt ``App`` (and an ``AsyncApp``) with ``process_before_response=True`` and ``register_commands``,
   a ``FakeSlackAPI`` behind its client. Requests are signed before the clock starts; the time of ``dispatch`` is
   the time to the ack. Commands run one after the other (each waits for its reply or upload, untimed), and once
   more while a whole-database export is being built in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.reports.stats import compute_stats
from slack_tasklog.slack.commands import CommandFlow, register_commands
from slack_tasklog.storage import summary
from slack_tasklog.storage.models import Assignment, Base, Evaluation, Outcome, Task
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, async_signed_request, signed_request, slash_command_body
from sqlalchemy import insert, text
from sqlalchemy.schema import CreateIndex, CreateTable

from _common import environment_lines, markdown_table, parse_args, sqlite_plans, summarize

UTC = timezone.utc
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=90)
ADMIN = "UADMIN"
# (name, weight, success rate, median execution time in seconds)
AGENTS = [
    ("Grok", 30, 0.90, 25.0),
    ("Writer", 25, 0.92, 12.0),
    ("Builder", 15, 0.80, 60.0),
    ("Researcher", 12, 0.85, 90.0),
    ("Coder", 10, 0.75, 45.0),
    ("Analyst", 8, 0.88, 30.0),
]
#: Indexes the stats (and export) query would use to avoid a temporary B-tree per task for the id tie-break.
CANDIDATE_INDEXES = [
    "CREATE INDEX bench_ix_assignments_task_recorded_id ON tasklog_assignments (task_id, recorded_at, id)",
    "CREATE INDEX bench_ix_outcomes_task_finished_id ON tasklog_outcomes (task_id, finished_at, id)",
]


# -- the database ---------------------------------------------------------------------------------------------------


def schema_fingerprint() -> str:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()  # type: ignore[no-untyped-call]
    parts = []
    for table in Base.metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)))
        parts.extend(str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=str))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def generate(path: Path, count: int, *, seed: int = 42, batch: int = 20_000) -> None:
    """Write ``count`` tasks with their rounds, evaluations and outcomes into a new SQLite file at ``path``."""
    tasklog = TaskLog(f"sqlite:///{path}", journal=False)
    tasklog._store.ensure_schema()
    rng = random.Random(seed)
    names = [a[0] for a in AGENTS]
    weights = [a[1] for a in AGENTS]
    profile = {a[0]: a for a in AGENTS}
    start = END - SPAN
    task_id = 0
    with tasklog.engine.begin() as conn:
        for first in range(0, count, batch):
            tasks: list[dict[str, Any]] = []
            rounds: list[dict[str, Any]] = []
            evaluations: list[dict[str, Any]] = []
            outcomes: list[dict[str, Any]] = []
            for i in range(first, min(count, first + batch)):
                task_id += 1
                requested = start + timedelta(seconds=SPAN.total_seconds() * i / count + rng.random())
                ts = f"{requested.timestamp():.6f}"
                team = "T111" if rng.random() < 0.95 else "T222"
                tasks.append(
                    {
                        "id": task_id,
                        "team_id": team,
                        "enterprise_id": None,
                        "channel_id": f"C{rng.randrange(40):03d}",
                        "thread_ts": ts,
                        "request_ts": ts,
                        "user_id": f"U{rng.randrange(500):04d}",
                        "request_text": f"please look into item {i} and report back",
                        "requested_at": requested,
                        "recorded_at": requested,
                    }
                )
                draw = rng.random()
                for k in range(0 if draw < 0.02 else 2 if draw < 0.10 else 1):
                    round_id = f"{task_id:012d}r{k}"
                    at = requested + timedelta(seconds=1 + 300 * k)
                    scores = {name: float(rng.randrange(100)) for name in rng.sample(names, 3)}
                    agent = None if rng.random() < 0.05 else rng.choices(names, weights)[0]
                    if agent is not None:
                        scores[agent] = max(scores.get(agent, 0.0), float(50 + rng.randrange(50)))
                    rounds.append(
                        {
                            "id": round_id,
                            "task_id": task_id,
                            "team_id": team,
                            "channel_id": None,
                            "thread_ts": ts,
                            "agent": agent,
                            "confidence": scores[agent] if agent else None,
                            "recorded_at": at,
                        }
                    )
                    evaluations.extend(
                        {"assignment_id": round_id, "agent": n, "confidence": c} for n, c in scores.items()
                    )
                    if agent is None:
                        outcomes.append(
                            _outcome(round_id, task_id, team, ts, agent=None, success=False, seconds=0, at=at)
                        )
                    elif rng.random() < 0.97:
                        _, _, success_rate, median = profile[agent]
                        seconds = round(rng.lognormvariate(math.log(median), 0.8), 3)
                        outcomes.append(
                            _outcome(
                                f"{task_id:012d}o{k}",
                                task_id,
                                team,
                                ts,
                                agent=agent,
                                success=rng.random() < success_rate,
                                seconds=seconds,
                                at=at,
                            )
                        )
            conn.execute(insert(Task.__table__), tasks)  # type: ignore[arg-type]
            conn.execute(insert(Assignment.__table__), rounds)  # type: ignore[arg-type]
            conn.execute(insert(Evaluation.__table__), evaluations)  # type: ignore[arg-type]
            conn.execute(insert(Outcome.__table__), outcomes)  # type: ignore[arg-type]
        # The tasks' latest rounds and the daily rollup, as the writer (and the migration) keep them.
        summary.rebuild(conn)
    tasklog.close()
    # Statistics for the planner, and the WAL folded into the file so that the cached copy is one file.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute("ANALYZE")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _outcome(
    id: str, task_id: int, team: str, ts: str, *, agent: str | None, success: bool, seconds: float, at: datetime
) -> dict[str, Any]:
    return {
        "id": id,
        "task_id": task_id,
        "team_id": team,
        "channel_id": None,
        "thread_ts": ts,
        "agent": agent,
        "success": success,
        "execution_time": seconds,
        "error_message": None if success else ("No agent confident enough" if agent is None else "RuntimeError: x"),
        "started_at": at,
        "finished_at": at + timedelta(seconds=seconds),
    }


def cached_database(count: int) -> Path:
    directory = Path(tempfile.gettempdir()) / "slack_tasklog_bench"
    directory.mkdir(exist_ok=True)
    path = directory / f"commands-{count}-{schema_fingerprint()}.db"
    if path.exists():
        print(f"Using the cached database {path}", file=sys.stderr)
        return path
    partial = path.with_suffix(f".partial-{os.getpid()}")
    print(f"Generating {count:,} tasks into {path} (once) ...", file=sys.stderr)
    started = time.perf_counter()
    generate(partial, count)
    for suffix in ("-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    partial.rename(path)
    print(f"... done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


# -- stats --------------------------------------------------------------------------------------------------------


def time_stats(tasklog: TaskLog, repeat: int) -> list[list[object]]:
    rows: list[list[object]] = []
    with tasklog.engine.connect() as conn:
        # Windows ending at 18:00 UTC, as "/tasklog stats 30d" typed then asks: whole days from the rollup and two
        # part-days from the tasks (a window from midnight to midnight would read the rollup alone).
        until = END - timedelta(hours=6)
        for label, days in (("24 h", 1), ("7 d", 7), ("30 d", 30)):
            window = {"since": until - timedelta(days=days), "until": until, "team_id": "T111"}
            stats = compute_stats(conn, **window)  # warm: SQLAlchemy's statement cache, SQLite's page cache
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                compute_stats(conn, **window)
                times.append((time.perf_counter() - started) * 1000)
            timing = summarize(times)
            rows.append([label, f"{stats.tasks:,}", f"{timing.median:.0f}", f"{timing.low:.0f} to {timing.high:.0f}"])
    return rows


def query_plan(tasklog: TaskLog) -> list[str]:
    # As time_stats asks: the rollups for the whole days, the tasks for the part-days.
    until = END - timedelta(hours=6)
    window = {"since": until - timedelta(days=30), "until": until, "team_id": "T111"}
    return sqlite_plans(tasklog.engine, lambda conn: compute_stats(conn, **window))


# -- acks ---------------------------------------------------------------------------------------------------------


def requests(text_: str, count: int, api: FakeSlackAPI, *, user: str = ADMIN, make: Callable[..., Any] = signed_request
             ) -> Iterator[tuple[str, Any]]:  # fmt: skip
    for i in range(count):
        name = f"{text_}-{i}-{time.monotonic_ns()}"
        body = slash_command_body(text_, user_id=user, response_url=api.response_url(name))
        yield name, make(body)


def wait_until(predicate: Callable[[], bool], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("no reply")
        time.sleep(0.002)


def time_acks(tasklog: TaskLog, repeat: int, export_repeat: int) -> tuple[list[list[object]], float]:
    rows: list[list[object]] = []
    with FakeSlackAPI() as api:
        app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
        register_commands(app, CommandFlow(tasklog, admins=[ADMIN], clock=lambda: END))

        def run(text_: str, count: int, done: Callable[[str], bool]) -> None:
            """``count`` commands one after the other; each one's reply is waited for (off the clock)."""
            acks, replies = [], []
            for name, request in list(requests(text_, count, api)):
                started = time.perf_counter()
                response = app.dispatch(request)
                acks.append((time.perf_counter() - started) * 1000)
                assert response.status == 200, response.body
                wait_until(lambda name=name: done(name))
                replies.append(time.perf_counter() - started)
            ack, reply = summarize(acks), summarize(replies)
            rows.append(["App", f"`{text_}`", count, f"{ack.median:.2f}", f"{ack.high:.2f}", f"{reply.median:.2f} s"])

        def uploaded_since(before: int) -> Callable[[str], bool]:
            return lambda name: len(api.uploads) > before or bool(api.responses_for(name))

        run("help", repeat, lambda name: True)
        run("stats 30d", repeat, lambda name: bool(api.responses_for(name)))
        acks, uploads = [], []
        for _ in range(export_repeat):
            before = len(api.uploads)
            name, request = next(requests("export 24h", 1, api))
            started = time.perf_counter()
            app.dispatch(request)
            acks.append((time.perf_counter() - started) * 1000)
            wait_until(lambda before=before, name=name: uploaded_since(before)(name))
            uploads.append(time.perf_counter() - started)
        rows.append(["App", "`export 24h`", export_repeat, f"{statistics.median(acks):.2f}", f"{max(acks):.2f}",
                     f"{statistics.median(uploads):.2f} s"])  # fmt: skip

        # The worst case for the ack: a whole-database export is being built (same process, same GIL) meanwhile.
        before = len(api.uploads)
        _, export_all = next(requests("export all", 1, api))
        started_export = time.perf_counter()
        app.dispatch(export_all)
        time.sleep(1.0)  # let the lazy listener get into the CSV
        busy_acks = []
        for _, request in list(requests("help", repeat, api)):
            started = time.perf_counter()
            app.dispatch(request)
            busy_acks.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
        wait_until(lambda: len(api.uploads) > before)
        full_export = time.perf_counter() - started_export
        busy = summarize(busy_acks)
        rows.append(["App", "`help` during `export all`", repeat, f"{busy.median:.2f}", f"{busy.high:.2f}", "n/a"])

        rows.append(asyncio.run(_async_acks(tasklog, api, repeat)))
    return rows, full_export


async def _async_acks(tasklog: TaskLog, api: FakeSlackAPI, repeat: int) -> list[object]:
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(signing_secret=SIGNING_SECRET, client=api.async_client(), process_before_response=True)
    register_commands(app, CommandFlow(tasklog, admins=[ADMIN], clock=lambda: END))
    acks, replies = [], []
    for name, request in list(requests("stats 30d", repeat, api, make=async_signed_request)):
        started = time.perf_counter()
        response = await app.async_dispatch(request)
        acks.append((time.perf_counter() - started) * 1000)
        assert response.status == 200
        while not api.responses_for(name):
            await asyncio.sleep(0.002)
        replies.append(time.perf_counter() - started)
    ack, reply = summarize(acks), summarize(replies)
    return ["AsyncApp", "`stats 30d`", repeat, f"{ack.median:.2f}", f"{ack.high:.2f}", f"{reply.median:.2f} s"]


# -- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    def configure(parser: Any) -> None:
        parser.add_argument("-n", "--tasks", type=int, default=None, help="tasks in the database (1,000,000)")
        parser.add_argument("--repeat", type=int, default=None, help="runs per figure (15; --quick: 5)")
        parser.add_argument("--no-candidates", action="store_true", help="skip the candidate-index comparison")

    args = parse_args(__doc__.splitlines()[0], configure)
    count = args.tasks or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (5 if args.quick else 15)
    path = cached_database(count)
    tasklog = TaskLog(f"sqlite:///{path}", journal=False)

    print(f"# /tasklog over {count:,} tasks in SQLite\n")
    print("\n".join(environment_lines()))
    print(f"- database: {path.name}, {path.stat().st_size / 1e6:,.0f} MB\n")

    print("## Stats query (`compute_stats`, workspace T111, windows ending 6 h before the data's end)\n")
    headers = ["window", "tasks in window", "median ms", "range ms"]
    print(markdown_table(headers, time_stats(tasklog, repeat)))
    print("\nPlans of the statements of the 30-day window:\n")
    print("\n".join(f"    {line}" for line in query_plan(tasklog)))
    if not args.no_candidates:
        with tasklog.engine.begin() as conn:
            for ddl in CANDIDATE_INDEXES:
                conn.execute(text(ddl))
        try:
            print("\nWith the candidate indexes (task_id, recorded_at, id) and (task_id, finished_at, id):\n")
            print(markdown_table(headers, time_stats(tasklog, repeat)))
        finally:
            with tasklog.engine.begin() as conn:
                for ddl in CANDIDATE_INDEXES:
                    conn.execute(text("DROP INDEX " + ddl.split()[2]))

    print("\n## Slash command to ack (`process_before_response=True`)\n")
    rows, full_export = time_acks(tasklog, repeat, export_repeat=3 if args.quick else 5)
    headers = ["app", "command", "runs", "ack median ms", "ack max ms", "reply/upload median"]
    print(markdown_table(headers, rows))
    print(f"\nThe background `export all` ({count:,} tasks) took {full_export:.0f} s to upload.")
    tasklog.close()


if __name__ == "__main__":
    main()
