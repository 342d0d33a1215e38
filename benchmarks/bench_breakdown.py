"""Where the time goes: the figures behind the two headline benchmarks, taken apart.

Diagnostic, not a headline figure: it reaches into the package's internals (``TaskLog._record``,
``TaskLog._store``, ``capture_event``, the event records), which may change without notice.

1. Request path (``bench_dispatch``): the same sync ``App`` (``process_before_response=True``) with middlewares
   that do a growing share of what ``TaskLogMiddleware`` does — nothing (a pass-through ``Middleware``),
   ``strip_leading_mention`` alone, building a ``TaskRequested`` alone, ``capture_event`` alone, the whole
   middleware — and ``AsyncApp`` with a pass-through ``AsyncMiddleware`` subclass, a pass-through coroutine
   callable (which ``AsyncApp.use`` wraps in ``AsyncCustomMiddleware``, like the TaskLog middleware), the TaskLog
   middleware behind an ``AsyncMiddleware`` adapter, and as shipped. When the TaskLog has a write-ahead journal, also
   ``capture_event`` plus encoding the journal line, and the middleware with ``journal=False``. Interleaved
   blocks, medians of per-round differences against the bare app.
2. Ingest (``bench_lifecycle``): the decorators alone (events collected in a list, no writer), then
   ``Store.write`` alone on those events in batches of 1,000 (what the writer thread does), then the same rows
   written with plain ``sqlite3`` into the same schema with the same pragmas (the floor for this schema), once with
   the ids the package minted and once with sequential ids of the same length.
"""

from __future__ import annotations

import asyncio
import gc
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slack_bolt.middleware import Middleware
from slack_tasklog import TaskLog, capture_event, strip_leading_mention
from slack_tasklog.events import AssignmentRecorded, OutcomeRecorded, TaskRequested
from slack_tasklog.testing import FakeSlackAPI

from _common import (
    async_mention_requests,
    build_app,
    build_async_app,
    environment_lines,
    fresh_dir,
    markdown_table,
    mention_requests,
    now_ns,
    parse_args,
    source_fingerprint,
    summarize,
    supports_journal,
)
from bench_lifecycle import capture_tasks, evaluations_for, tasklog_bot

# -- 1. request path ---------------------------------------------------------------------------------------------


class PassThrough(Middleware):
    def process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
        next()
        return resp


class StripOnly(Middleware):
    def process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
        strip_leading_mention(req.body["event"]["text"], req.context.bot_user_id)
        next()
        return resp


class RecordOnly(Middleware):
    def process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
        e = req.body["event"]
        TaskRequested(
            team_id="T111",
            enterprise_id=None,
            channel_id=e["channel"],
            thread_ts=e["ts"],
            ts=e["ts"],
            user_id=e["user"],
            text=e["text"],
        )
        next()
        return resp


class CaptureOnly(Middleware):
    def process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
        c = req.context
        capture_event(req.body, team_id=c.team_id, enterprise_id=c.enterprise_id, bot_user_id=c.bot_user_id)
        next()
        return resp


class CaptureAndEncode(Middleware):
    """capture_event plus the journal line for it (``writer.records.encode_record``), not written anywhere."""

    def process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
        from slack_tasklog.writer.records import encode_record

        c = req.context
        event = capture_event(req.body, team_id=c.team_id, enterprise_id=c.enterprise_id, bot_user_id=c.bot_user_id)
        if event is not None:
            encode_record(event)
        next()
        return resp


def async_variants(tasklog: TaskLog, no_journal: TaskLog | None) -> dict[str, Any]:
    from slack_bolt.middleware.async_middleware import AsyncMiddleware

    class AsyncPassThrough(AsyncMiddleware):
        async def async_process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
            await next()
            return resp

    class CallablePassThrough:
        async def __call__(self, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
            await next()
            return resp

    shipped = tasklog.middleware

    class TaskLogAsAsyncMiddleware(AsyncMiddleware):
        async def async_process(self, *, req: Any, resp: Any, next: Callable[[], Any]) -> Any:
            return await shipped(req, resp, next)

    variants = {
        "none": None,
        "pass-through AsyncMiddleware subclass": AsyncPassThrough(),
        "pass-through coroutine callable (AsyncApp wraps it in AsyncCustomMiddleware)": CallablePassThrough(),
        "TaskLog middleware (defaults) behind an AsyncMiddleware adapter": TaskLogAsAsyncMiddleware(),
        "TaskLog middleware (defaults) as shipped (wrapped in AsyncCustomMiddleware)": shipped,
    }
    if no_journal is not None:
        variants["TaskLog middleware, journal=False, as shipped"] = no_journal.middleware
    return variants


def request_path(rounds: int, block: int) -> list[list[object]]:
    rng = random.Random(2)
    with fresh_dir("bench_breakdown-") as tmp, FakeSlackAPI() as api:
        tasklog = TaskLog(f"sqlite:///{tmp / 'tasklog.db'}")
        no_journal = TaskLog(f"sqlite:///{tmp / 'nj.db'}", journal=False) if supports_journal() else None
        sync_mw: dict[str, Any] = {
            "none": None,
            "pass-through Middleware": PassThrough(),
            "strip_leading_mention only": StripOnly(),
            "TaskRequested(...) only": RecordOnly(),
            "capture_event only (no submit)": CaptureOnly(),
            "TaskLog middleware (defaults)": tasklog.middleware,
        }
        if no_journal is not None:
            sync_mw["capture_event + encode_record (the journal line, not written)"] = CaptureAndEncode()
            sync_mw["TaskLog middleware, journal=False"] = no_journal.middleware
        loop = asyncio.new_event_loop()
        sync_apps = {k: build_app(api, process_before_response=True, middleware=m) for k, m in sync_mw.items()}

        async def make_async() -> dict[str, Any]:
            return {
                k: build_async_app(api, process_before_response=True, middleware=m)
                for k, m in async_variants(tasklog, no_journal).items()
            }

        async_apps = loop.run_until_complete(make_async())
        results: dict[tuple[str, str], list[float]] = {}

        def sync_block(app: Any, count: int) -> float:
            reqs = mention_requests(count)
            gc.collect()
            t0 = now_ns()
            for req in reqs:
                app.dispatch(req)
            return (now_ns() - t0) / count / 1000

        async def async_block(app: Any, count: int) -> float:
            reqs = async_mention_requests(count)
            gc.collect()
            t0 = now_ns()
            for req in reqs:
                await app.async_dispatch(req)
            return (now_ns() - t0) / count / 1000

        def run(kind: str, name: str, app: Any, count: int) -> float:
            us = sync_block(app, count) if kind == "App" else loop.run_until_complete(async_block(app, count))
            for log in (tasklog, no_journal):  # the writers' work stays outside every block
                if log is not None:
                    log.flush(60)
            return us

        for kind, apps in (("App", sync_apps), ("AsyncApp", async_apps)):
            for name, app in apps.items():
                run(kind, name, app, 50)
        for _ in range(rounds):
            groups = [("App", list(sync_apps.items())), ("AsyncApp", list(async_apps.items()))]
            rng.shuffle(groups)
            for kind, items in groups:
                rng.shuffle(items)
                for name, app in items:
                    results.setdefault((kind, name), []).append(run(kind, name, app, block))
        loop.close()
        tasklog.close()
        if no_journal is not None:
            no_journal.close()

    rows: list[list[object]] = []
    for (kind, name), values in results.items():
        base = results[(kind, "none")]
        med = summarize(values)
        added = summarize([a - b for a, b in zip(values, base, strict=True)])
        ratio = summarize([a / b for a, b in zip(values, base, strict=True)])
        rows.append([kind, name, f"{med.median:.1f}", f"{added.median:+.1f}", f"{ratio.median:.3f}"])
    order = {"App": 0, "AsyncApp": 1}
    rows.sort(key=lambda r: (order[str(r[0])], float(str(r[3]).replace("+", ""))))
    return rows


# -- 2. ingest ---------------------------------------------------------------------------------------------------


def _sql_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def raw_floor(db: Path, events: list[Any], batch: int, ids: Callable[[str], str]) -> tuple[float, float]:
    """Write the events' rows with plain sqlite3; return (µs per lifecycle, of which COMMIT)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        task_ids = dict(conn.execute("SELECT thread_ts, id FROM tasklog_tasks"))
        commit = 0.0
        t0 = time.perf_counter()
        for start in range(0, len(events), batch):
            a_rows, e_rows, o_rows = [], [], []
            for e in events[start : start + batch]:
                if isinstance(e, AssignmentRecorded):
                    a_rows.append(
                        (ids(e.id), task_ids[e.thread_ts], e.team_id, e.channel_id, e.thread_ts, e.agent,
                         e.confidence, _sql_time(e.recorded_at))
                    )  # fmt: skip
                    e_rows.extend((ids(e.id), agent, conf) for agent, conf in e.evaluations)
                elif isinstance(e, OutcomeRecorded):
                    o_rows.append(
                        (ids(e.id), task_ids[e.thread_ts], e.team_id, e.channel_id, e.thread_ts, e.agent, e.success,
                         e.execution_time, e.error_message, _sql_time(e.started_at), _sql_time(e.finished_at))
                    )  # fmt: skip
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR IGNORE INTO tasklog_assignments (id, task_id, team_id, channel_id, thread_ts, agent, "
                "confidence, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                a_rows,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO tasklog_evaluations (assignment_id, agent, confidence) VALUES (?, ?, ?)", e_rows
            )
            conn.executemany(
                "INSERT OR IGNORE INTO tasklog_outcomes (id, task_id, team_id, channel_id, thread_ts, agent, success, "
                "execution_time, error_message, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                o_rows,
            )
            c0 = time.perf_counter()
            conn.execute("COMMIT")
            commit += time.perf_counter() - c0
        elapsed = time.perf_counter() - t0
        lifecycles = sum(isinstance(e, AssignmentRecorded) for e in events)
        return elapsed / lifecycles * 1e6, commit / lifecycles * 1e6
    finally:
        conn.close()


def ingest(n: int, batch: int = 1_000) -> list[list[object]]:
    with FakeSlackAPI() as api, fresh_dir("bench_breakdown-") as tmp:
        db = tmp / "tasklog.db"
        tasklog = TaskLog(f"sqlite:///{db}")
        tasks = capture_tasks(api, tasklog, n)
        tasklog.close()
        tasklog.engine.dispose()  # checkpoint the WAL into the file, so that copies of it are complete
        shutil.copy(db, tmp / "random_ids.db")
        shutil.copy(db, tmp / "ordered_ids.db")

        # The decorators alone: the events they would submit are collected instead.
        events: list[Any] = []
        tasklog._record = events.append  # type: ignore[method-assign]
        check_and_assign, agents = tasklog_bot(tasklog)
        work = [(ts, text, evaluations_for(i)) for i, (ts, text) in enumerate(tasks)]
        gc.collect()
        t0 = time.perf_counter()
        for thread_ts, text, evaluations in work:
            agents[check_and_assign(thread_ts, evaluations)].process_assignment(thread_ts, text)
        producer = (time.perf_counter() - t0) / n * 1e6

        # The writer thread's work alone, with its thread cache warm as after capturing the requests.
        store = TaskLog(engine=tasklog.engine)._store
        with tasklog.engine.connect() as conn:
            learned: dict[str, Any] = {}
            store._load_threads(conn, {ts for ts, _ in tasks}, learned, reload=True)
        store._remember(learned)
        gc.collect()
        t0 = time.perf_counter()
        for start in range(0, len(events), batch):
            store.write(events[start : start + batch])
        writer = (time.perf_counter() - t0) / n * 1e6
        tasklog.engine.dispose()

        random_floor, random_commit = raw_floor(tmp / "random_ids.db", events, batch, lambda i: i)
        ordered = {e.id: f"{(1 << 124) | k:032x}" for k, e in enumerate(events)}
        ordered_floor, ordered_commit = raw_floor(tmp / "ordered_ids.db", events, batch, ordered.__getitem__)

    return [
        ["decorators only (track_assignment + track_outcome, events kept in a list)", f"{producer:.1f}", ""],
        [f"Store.write only (writer thread's work, batches of {batch} events)", f"{writer:.1f}", ""],
        [
            "plain sqlite3, same schema/pragmas/rows, ids as the package mints them (SQLite's own share)",
            f"{random_floor:.1f}",
            f"{random_commit:.1f}",
        ],
        ["plain sqlite3, same, ids replaced by sequential ones", f"{ordered_floor:.1f}", f"{ordered_commit:.1f}"],
    ]


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("--rounds", type=int, help="request-path rounds (default 30, quick 5)")
        parser.add_argument("-n", type=int, help="lifecycles for the ingest breakdown (default 20000, quick 2000)")

    args = parse_args(__doc__.splitlines()[0], options)
    rounds = args.rounds or (5 if args.quick else 30)
    n = args.n or (2_000 if args.quick else 20_000)
    env = environment_lines()
    code_before = source_fingerprint()
    print(f"# bench_breakdown: request path {rounds} rounds x 200 dispatches; ingest N = {n}", flush=True)
    path_rows = request_path(rounds, 200)
    ingest_rows = ingest(n)
    print()
    print("\n".join(env))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print()
    print("## Request path, piece by piece (µs per dispatch; differences are medians of per-round differences)")
    print()
    print(
        markdown_table(
            ["app", "middleware", "µs/dispatch (median)", "added vs none", "per-round ratio (median)"], path_rows
        )
    )
    print()
    print(f"## Ingest, piece by piece (N = {n} lifecycles of 1 assignment + 3 evaluations + 1 outcome)")
    print()
    print(markdown_table(["what", "µs per lifecycle", "of which COMMIT µs"], ingest_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
