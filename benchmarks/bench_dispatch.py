"""The request-path figure: what ``app.use(tasklog.middleware)`` adds to ``app.dispatch`` of an app mention.

Every configuration is one Bolt app (a no-op ``app_mention`` listener, a ``FakeSlackAPI`` behind its client), and
every dispatch is a fresh, correctly signed mention with its own ts, so each one opens a new task. Requests are
built and signed before the clock starts; ``app.dispatch`` itself (signature check included) is what is timed.

Configurations run in blocks of ``--block`` dispatches (a tenth of that for Approach 2, which waits on the disk for
every event), many rounds, so that the machine's noise falls on all of them alike: each round takes the groups
(app kind x ``process_before_response``) in a random order and runs a group's configurations back to back in a
random order, so a configuration and its baseline are measured moments apart. Per block we keep the mean time per
dispatch; per configuration we report the median over rounds, the ratio of medians against the same app without
a middleware, and the min-max of the per-round ratio.

On a shared machine those means swing by a factor of two between rounds (other tenants' bursts, CPU frequency), far
more than the 10% being measured. So we also keep each block's median dispatch (a burst inside a block moves it
little) and report the *paired* ratio: per round, a configuration's block median divided by its baseline's, measured
moments apart; the median of those over rounds. It removes what the rounds share (the machine's speed at that
minute), which the ratio of medians over all rounds keeps.

What a block does and does not contain, for the TaskLog: its background writer lingers 50 ms after the first event
before writing, and a block is shorter than that, so the clock sees the request path alone (capture and enqueue).
The writer's work for the block is then done by ``tasklog.flush()`` outside the clock, and timed separately: the
"incl. writing" column adds that time to the block, i.e. it charges the request path for all the writing as if it
were done serially (an upper bound on two cores). The "sustained" table measures the other extreme: long runs of
back-to-back dispatches while the writer works concurrently and shares the GIL, timed until ``flush()`` returns.

The TaskLog runs with its defaults (the journal on, in versions that have it) and, when this version has a
write-ahead journal (``TaskLog(journal=...)``), also with ``journal=False``, so the journal's share of the request
path shows. The design
document's Approaches 1 (a JSON line per event) and 2 (connect/insert/commit to SQLite per event) are included as
reference middlewares; they do all their work on the request path. Approach 1 runs on ``AsyncApp`` too (its
synchronous append, on the event loop); a second table divides the TaskLog's added µs by Approach 1's, per app kind
and ack mode.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_tasklog import TaskLog
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
    quiet_gc,
    source_fingerprint,
    summarize,
    supports_journal,
)
from _reference import JsonLinesMiddleware, SqliteSketchMiddleware, register_async_reference

NONE = "none"
TASKLOG = "TaskLog (defaults)"
TASKLOG_NO_JOURNAL = "TaskLog, journal=False"
JSON_LINES = "Approach 1: JSON line/event"
SQLITE_SKETCH = "Approach 2: SQLite/event"


@dataclass
class Config:
    kind: str  # "App" or "AsyncApp"
    pbr: bool
    middleware: str
    app: Any
    tasklog: TaskLog | None = None  # flushed after each block, off the clock
    block_us: list[float] = field(default_factory=list)  # mean µs per dispatch, one per round
    flush_us: list[float] = field(default_factory=list)  # flush() after the block, µs per dispatch of the block
    singles_us: list[float] = field(default_factory=list)  # every timed dispatch
    block_median_us: list[float] = field(default_factory=list)  # median single dispatch of the block, one per round
    dispatched: int = 0  # including warm-up

    @property
    def key(self) -> tuple[str, bool]:
        return (self.kind, self.pbr)


def run_sync_block(cfg: Config, count: int) -> list[int]:
    requests = mention_requests(count)
    dispatch = cfg.app.dispatch
    times: list[int] = []
    statuses: list[int] = []
    with quiet_gc():
        for req in requests:
            t0 = now_ns()
            resp = dispatch(req)
            t1 = now_ns()
            times.append(t1 - t0)
            statuses.append(resp.status)
    check_statuses(cfg, statuses)
    return times


async def run_async_block(cfg: Config, count: int) -> list[int]:
    requests = async_mention_requests(count)
    dispatch = cfg.app.async_dispatch
    times: list[int] = []
    statuses: list[int] = []
    with quiet_gc():
        for req in requests:
            t0 = now_ns()
            resp = await dispatch(req)
            t1 = now_ns()
            times.append(t1 - t0)
            statuses.append(resp.status)
    # With process_before_response=False the listeners were scheduled as tasks: let them finish, off the clock.
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    if pending:
        await asyncio.wait(pending, timeout=10)
    check_statuses(cfg, statuses)
    return times


def check_statuses(cfg: Config, statuses: list[int]) -> None:
    bad = [s for s in statuses if s != 200]
    if bad:
        raise SystemExit(f"{cfg.kind} {cfg.middleware}: {len(bad)} dispatches answered {sorted(set(bad))}, not 200")


def flush(tasklog: TaskLog) -> None:
    if not tasklog.flush(60):
        raise SystemExit("tasklog.flush() timed out")


def run_block(cfg: Config, count: int, loop: asyncio.AbstractEventLoop, *, record: bool) -> None:
    times = run_sync_block(cfg, count) if cfg.kind == "App" else loop.run_until_complete(run_async_block(cfg, count))
    cfg.dispatched += count
    flush_ns = 0
    if cfg.tasklog is not None:
        t0 = now_ns()
        flush(cfg.tasklog)
        flush_ns = now_ns() - t0
    if record:
        cfg.block_us.append(sum(times) / len(times) / 1000)
        cfg.flush_us.append(flush_ns / len(times) / 1000)
        cfg.singles_us.extend(t / 1000 for t in times)
        cfg.block_median_us.append(statistics.median(times) / 1000)


def block_size(middleware: str, block: int) -> int:
    # Approach 2 waits on the disk ~1 ms per event: a tenth of the dispatches keeps its block as short as the others.
    return max(10, block // 10) if middleware == SQLITE_SKETCH else block


def sustained(
    api: FakeSlackAPI, tasklogs: dict[str, TaskLog], rounds: int, count: int
) -> tuple[dict[str, list[float]], int]:
    """Back-to-back dispatches on the sync App (process_before_response=True), each TaskLog timed until its flush()
    returns. Returns µs per dispatch per round for each middleware, and the dispatches each TaskLog recorded."""
    apps: dict[str, Any] = {NONE: build_app(api, process_before_response=True)}
    for name, tasklog in tasklogs.items():
        apps[name] = build_app(api, process_before_response=True, middleware=tasklog.middleware)
    for app in apps.values():
        for req in mention_requests(20):
            app.dispatch(req)
    for tasklog in tasklogs.values():
        flush(tasklog)
    results: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            requests = mention_requests(count)
            dispatch = apps[name].dispatch
            with quiet_gc():
                t0 = now_ns()
                for req in requests:
                    dispatch(req)
                if name in tasklogs:
                    flush(tasklogs[name])
                elapsed = now_ns() - t0
            results[name].append(elapsed / count / 1000)
    return results, 20 + rounds * count


def count_rows(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


@dataclass
class Run:
    configs: list[Config]
    sustained_us: dict[str, list[float]]
    landed: list[tuple[str, int, int]]  # (what, rows found, rows expected)
    writer_stats: list[str]


def make_configs(
    api: FakeSlackAPI, loop: asyncio.AbstractEventLoop, middlewares: dict[str, Any], tasklogs: dict[str, TaskLog]
) -> list[Config]:
    configs: list[Config] = []

    async def make_async(pbr: bool, middleware: Callable[..., Any] | None) -> Any:
        return build_async_app(api, process_before_response=pbr, middleware=middleware)

    for pbr in (True, False):
        for name, mw in middlewares.items():
            app = build_app(api, process_before_response=pbr, middleware=mw)
            configs.append(Config("App", pbr, name, app, tasklogs.get(name)))
    register_async_reference()
    for pbr in (True, False):
        # Approach 1 on AsyncApp too (the sketch's synchronous append on the event loop); Approach 2 only on App.
        for name in (NONE, *tasklogs, JSON_LINES):
            app = loop.run_until_complete(make_async(pbr, middlewares[name]))
            configs.append(Config("AsyncApp", pbr, name, app, tasklogs.get(name)))
    return configs


def measure(args: Any, rounds: int, sustained_rounds: int, sustained_count: int) -> Run:
    rng = random.Random(args.seed)
    with fresh_dir("bench_dispatch-") as tmp, FakeSlackAPI() as api:
        dbs: dict[str, Path] = {TASKLOG: tmp / "tasklog.db"}
        tasklogs: dict[str, TaskLog] = {TASKLOG: TaskLog(f"sqlite:///{dbs[TASKLOG]}")}
        if supports_journal():
            dbs[TASKLOG_NO_JOURNAL] = tmp / "tasklog-no-journal.db"
            tasklogs[TASKLOG_NO_JOURNAL] = TaskLog(f"sqlite:///{dbs[TASKLOG_NO_JOURNAL]}", journal=False)
        middlewares: dict[str, Any] = {
            NONE: None,
            **{name: tasklog.middleware for name, tasklog in tasklogs.items()},
            JSON_LINES: JsonLinesMiddleware(tmp / "task_logs.jsonl"),
            SQLITE_SKETCH: SqliteSketchMiddleware(tmp / "task_logs.db"),
        }
        loop = asyncio.new_event_loop()
        configs = make_configs(api, loop, middlewares, tasklogs)

        # Warm-up: token check (auth.test), schema creation, first-call caches, imports.
        for cfg in configs:
            run_block(cfg, 50, loop, record=False)

        print(
            f"# bench_dispatch: {len(configs)} configurations x {rounds} rounds x {args.block} dispatches "
            f"(Approach 2: {block_size(SQLITE_SKETCH, args.block)})",
            flush=True,
        )
        # Each round runs the groups (app kind x process_before_response) in random order, and the configurations of
        # a group back to back in random order, so that a configuration and its baseline are measured moments apart.
        groups: dict[tuple[str, bool], list[Config]] = defaultdict(list)
        for cfg in configs:
            groups[cfg.key].append(cfg)
        group_list = list(groups.values())
        for r in range(rounds):
            rng.shuffle(group_list)
            for group in group_list:
                order = group[:]
                rng.shuffle(order)
                for cfg in order:
                    run_block(cfg, block_size(cfg.middleware, args.block), loop, record=True)
            if (r + 1) % 10 == 0:
                print(f"  round {r + 1}/{rounds}", file=sys.stderr, flush=True)

        sustained_us, sustained_dispatched = sustained(api, tasklogs, sustained_rounds, sustained_count)
        loop.close()

        landed: list[tuple[str, int, int]] = []
        stats: list[str] = []
        for name, tasklog in tasklogs.items():
            flush(tasklog)
            stats.append(f"{name}: {tasklog.health()}")
            tasklog.close()
            landed.append(
                (
                    f"{name}: tasks in its database",
                    count_rows(dbs[name], "SELECT count(*) FROM tasklog_tasks"),
                    sum(c.dispatched for c in configs if c.middleware == name) + sustained_dispatched,
                )
            )
        with (tmp / "task_logs.jsonl").open() as f:
            json_lines = sum(1 for _ in f)
        landed.append(
            (
                "Approach 1: lines in the file",
                json_lines,
                sum(c.dispatched for c in configs if c.middleware == JSON_LINES),
            )
        )
        landed.append(
            (
                "Approach 2: rows in the database",
                count_rows(tmp / "task_logs.db", "SELECT count(*) FROM tasks"),
                sum(c.dispatched for c in configs if c.middleware == SQLITE_SKETCH),
            )
        )
    return Run(configs, sustained_us, landed, stats)


def request_path_rows(configs: list[Config]) -> list[list[object]]:
    baselines: dict[tuple[str, bool], Config] = {c.key: c for c in configs if c.middleware == NONE}
    rows: list[list[object]] = []
    for cfg in configs:
        base = baselines[cfg.key]
        med = summarize(cfg.block_us)
        single = summarize(cfg.singles_us)
        row: list[object] = [cfg.kind, cfg.pbr, cfg.middleware, f"{med.median:.1f} ({med.span(1)})"]
        p99 = sorted(cfg.singles_us)[int(len(cfg.singles_us) * 0.99)]
        if cfg is base:
            rows.append([*row, "1 (baseline)", "", "", "", f"{single.median:.1f} / {p99:.0f}", ""])
            continue
        ratio = summarize([a / b for a, b in zip(cfg.block_us, base.block_us, strict=True)])
        paired = summarize([a / b for a, b in zip(cfg.block_median_us, base.block_median_us, strict=True)])
        added = summarize([a - b for a, b in zip(cfg.block_us, base.block_us, strict=True)])
        incl = summarize([(a + f) / b for a, f, b in zip(cfg.block_us, cfg.flush_us, base.block_us, strict=True)])
        rows.append(
            [
                *row,
                f"**{med.median / summarize(base.block_us).median:.3f}**",
                ratio.span(3),
                f"**{paired.median:.3f}** ({paired.span(3)})",
                f"{added.median:+.1f}",
                f"{single.median:.1f} / {p99:.0f}",
                f"{incl.median:.2f} ({incl.span(2)})" if cfg.tasklog is not None else "same (all on request path)",
            ]
        )
    return rows


def overhead_vs_approach1(configs: list[Config]) -> list[tuple[str, bool, str, float, float, float, Any]]:
    """Per app kind, ack mode and TaskLog variant: (kind, pbr, variant, TaskLog's added µs, Approach 1's added µs,
    their ratio, the per-round ratios' Summary). Added µs are medians over rounds of (config - bare) in that round."""
    found: list[tuple[str, bool, str, float, float, float, Any]] = []
    by_key: dict[tuple[str, bool], dict[str, Config]] = defaultdict(dict)
    for cfg in configs:
        by_key[cfg.key][cfg.middleware] = cfg
    for (kind, pbr), group in by_key.items():
        base, reference = group.get(NONE), group.get(JSON_LINES)
        if base is None or reference is None:
            continue
        ref_added = [a - b for a, b in zip(reference.block_us, base.block_us, strict=True)]
        for name in (TASKLOG, TASKLOG_NO_JOURNAL):
            cfg = group.get(name)
            if cfg is None:
                continue
            added = [a - b for a, b in zip(cfg.block_us, base.block_us, strict=True)]
            per_round = summarize([a / r for a, r in zip(added, ref_added, strict=True) if r > 0])
            ours, theirs = summarize(added).median, summarize(ref_added).median
            found.append((kind, pbr, name, ours, theirs, ours / theirs, per_round))
    return found


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("--rounds", type=int, help="rounds of blocks (default 60, quick 6)")
        parser.add_argument("--block", type=int, default=200, help="dispatches per block (default 200)")
        parser.add_argument("--seed", type=int, default=1, help="seed for the block order")

    args = parse_args(__doc__.splitlines()[0], options)
    rounds = args.rounds or (6 if args.quick else 60)
    sustained_rounds, sustained_count = (3, 1000) if args.quick else (6, 2000)
    env_before = environment_lines()
    code_before = source_fingerprint()
    run = measure(args, rounds, sustained_rounds, sustained_count)

    print()
    print("## Request path: app.dispatch of one app mention")
    print()
    print("\n".join(env_before))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print(
        f"- {rounds} rounds x {args.block} dispatches per configuration "
        f"({block_size(SQLITE_SKETCH, args.block)} for Approach 2), interleaved: groups in random order, "
        f"a group's configurations back to back in random order (seed {args.seed})"
    )
    print()
    headers = [
        "app",
        "process_before_response",
        "middleware",
        "µs/dispatch, median of rounds (min-max)",
        "ratio of medians vs none",
        "per-round ratio min-max",
        "paired: median of per-round ratios of block medians (min-max)",
        "added µs/dispatch (median)",
        "single dispatch: median / p99 µs",
        "ratio incl. writing the block (median, min-max)",
    ]
    print(markdown_table(headers, request_path_rows(run.configs)))

    print()
    print("## slack_tasklog's overhead / Approach 1's overhead (target <= 0.5 with the defaults)")
    print()
    print(
        markdown_table(
            [
                "app",
                "process_before_response",
                "TaskLog",
                "TaskLog added µs (median of rounds)",
                "Approach 1 added µs",
                "**ratio of medians**",
                "per-round ratio min-max",
            ],
            [
                [kind, pbr, name, f"{ours:+.1f}", f"{theirs:+.1f}", f"**{ratio:.2f}**", per_round.span(2)]
                for kind, pbr, name, ours, theirs, ratio, per_round in overhead_vs_approach1(run.configs)
            ],
        )
    )

    base = summarize(run.sustained_us[NONE])
    rows: list[list[object]] = [[NONE, f"{base.median:.1f} ({base.span(1)})", "1 (baseline)", ""]]
    for name, values in run.sustained_us.items():
        if name == NONE:
            continue
        med = summarize(values)
        ratio = summarize([a / b for a, b in zip(values, run.sustained_us[NONE], strict=True)])
        rows.append([name, f"{med.median:.1f} ({med.span(1)})", f"**{med.median / base.median:.3f}**", ratio.span(3)])
    print()
    print(
        f"## Sustained: {sustained_rounds} rounds x {sustained_count} back-to-back dispatches, App, "
        "process_before_response=True, each TaskLog timed until its flush() returns"
    )
    print()
    print(
        markdown_table(
            ["middleware", "µs/dispatch, median (min-max)", "ratio of medians vs none", "per-round ratio min-max"], rows
        )
    )
    print()
    print("## Every event landed")
    print()
    ok = all(found == expected for _, found, expected in run.landed)
    for what, found, expected in run.landed:
        print(f"- {what}: {found} for {expected} dispatched mentions")
    for line in run.writer_stats:
        print(f"- writer {line}")
    print(f"- {'OK' if ok else 'MISMATCH'}")
    print(f"- load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
