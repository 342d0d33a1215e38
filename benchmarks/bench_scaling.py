"""The scaling figure: does the cost per task stay flat from 10,000 to 1,000,000 tasks in the log?

For each size the cached SQLite task log of ``_dataset.py`` (90 days of tasks, so the same 24 h window holds 100x
more tasks at 1M than at 10k) is copied to ``$TMPDIR`` once, and on that copy:

- **request path**: ``--dispatches`` signed app mentions dispatched back to back through a Bolt ``App``
  (``process_before_response=True``) with ``app.use(tasklog.middleware)``, the TaskLog with its defaults (no journal),
  timed until ``tasklog.flush()`` returns: µs per dispatch (the writer's inserts into the big tables included);
- **ingest**: for those new tasks, ``bench_lifecycle.py``'s decorated ``check_and_assign`` (3 evaluations) and
  ``process_assignment``, timed until ``flush()`` returns: µs per lifecycle;
- **stats**: ``compute_stats`` all-time and for the last 24 h of the data, warm connection: µs per task counted;
- **export**: ``tasklog.export_csv`` of the whole log to a file: µs per row (first round only; repeated at small
  sizes so that each size exports about 100,000 rows in all).

Rounds visit the sizes in an order rotated each round. Each figure is a median over rounds (min-max), and the last
column divides the largest size's figure by the smallest's: 1 means flat; an O(n^2) would show as ~100 at 1M/10k.
Afterwards the new tasks, assignments and outcomes are counted in every copy; the script exits 1 if any is missing.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_tasklog import TaskLog
from slack_tasklog.reports import compute_stats
from slack_tasklog.testing import FakeSlackAPI
from sqlalchemy import text

from _common import (
    build_app,
    environment_lines,
    fresh_dir,
    markdown_table,
    mention_requests,
    parse_args,
    quiet_gc,
    source_fingerprint,
    summarize,
)
from _dataset import sqlite_dataset
from bench_commands import END
from bench_lifecycle import run_lifecycles, tasklog_bot

FIGURES = ("request path µs/dispatch", "ingest µs/lifecycle", "stats all-time µs/task", "stats 24 h µs/task",
           "export µs/row")  # fmt: skip


class Size:
    def __init__(self, count: int, tmp: Path, api: FakeSlackAPI) -> None:
        self.count = count
        self.path = tmp / f"tasks-{count}.db"
        shutil.copyfile(sqlite_dataset(count), self.path)
        self.tasklog = TaskLog(f"sqlite:///{self.path}")
        self.app = build_app(api, process_before_response=True, middleware=self.tasklog.middleware)
        for request in mention_requests(20):  # warm-up: auth.test, first-call caches
            self.app.dispatch(request)
        self.flush()
        self.added = 20

    def flush(self) -> None:
        if not self.tasklog.flush(600):
            raise SystemExit("tasklog.flush() timed out")

    def request_path(self, dispatches: int) -> tuple[float, list[tuple[str, str]]]:
        requests = mention_requests(dispatches)
        dispatch = self.app.dispatch
        with quiet_gc():
            started = time.perf_counter()
            for request in requests:
                dispatch(request)
            self.flush()
            elapsed = time.perf_counter() - started
        self.added += dispatches
        return elapsed / dispatches * 1e6, [(r.body["event"]["ts"], r.body["event"]["text"]) for r in requests]

    def ingest(self, tasks: list[tuple[str, str]]) -> float:
        check_and_assign, agents = tasklog_bot(self.tasklog)
        elapsed, _ = run_lifecycles(check_and_assign, agents, tasks, self.flush)
        return elapsed / len(tasks) * 1e6

    def stats(self) -> tuple[float, float]:
        windows = ({}, {"since": END - timedelta(days=1), "until": END})
        found = []
        with self.tasklog.engine.connect() as conn:
            for window in windows:
                compute_stats(conn, **window)  # warm
                started = time.perf_counter()
                tasks = compute_stats(conn, **window).tasks
                found.append((time.perf_counter() - started) * 1e6 / max(tasks, 1))
        return found[0], found[1]

    def export(self, dest: Path) -> float:
        repeat = max(1, 100_000 // self.count)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            rows = self.tasklog.export_csv(dest)
            times.append((time.perf_counter() - started) * 1e6 / rows)
        dest.unlink(missing_ok=True)
        return summarize(times).median

    def check(self) -> list[str]:
        """The tasks dispatched here, and a round and an outcome for each lifecycle, are all in the copy."""
        self.flush()
        with self.tasklog.engine.connect() as conn:
            tasks = conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one()
        self.tasklog.close()
        want = self.count + self.added
        return [] if tasks == want else [f"{self.count:,}: {tasks} tasks, expected {want}"]


def measure(sizes: list[int], rounds: int, dispatches: int) -> tuple[dict[str, dict[int, list[float]]], list[str]]:
    figures: dict[str, dict[int, list[float]]] = {name: defaultdict(list) for name in FIGURES}
    problems: list[str] = []
    with fresh_dir("bench_scaling-") as tmp, FakeSlackAPI() as api:
        built = {count: Size(count, tmp, api) for count in sizes}
        for r in range(rounds):
            for count in sizes[r % len(sizes) :] + sizes[: r % len(sizes)]:
                size = built[count]
                us, tasks = size.request_path(dispatches)
                figures[FIGURES[0]][count].append(us)
                figures[FIGURES[1]][count].append(size.ingest(tasks))
                all_time, day = size.stats()
                figures[FIGURES[2]][count].append(all_time)
                figures[FIGURES[3]][count].append(day)
                if r == 0:
                    figures[FIGURES[4]][count].append(size.export(tmp / "export.csv"))
                print(f"  round {r + 1}/{rounds}, {count:,} tasks: done", file=sys.stderr, flush=True)
        for size in built.values():
            problems += size.check()
    return figures, problems


def table(figures: dict[str, dict[int, list[float]]], sizes: list[int]) -> str:
    rows = []
    for name, by_size in figures.items():
        medians = {count: summarize(by_size[count]) for count in sizes}
        cells = [f"{m.median:.2f} ({m.span(2)})" if m.count > 1 else f"{m.median:.2f}" for m in medians.values()]
        ratio = medians[sizes[-1]].median / medians[sizes[0]].median
        rows.append([name, *cells, f"**{ratio:.2f}**"])
    headers = ["figure", *(f"{count:,} tasks" for count in sizes), f"ratio {sizes[-1]:,} / {sizes[0]:,}"]
    return markdown_table(headers, rows)


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("--sizes", help="comma-separated task counts (default 10000,100000,1000000; quick "
                            "10000,100000)")  # fmt: skip
        parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 2)")
        parser.add_argument("--dispatches", type=int, help="mentions (and lifecycles) per round (2000, quick 500)")

    args = parse_args(__doc__.splitlines()[0], options)
    default = "10000,100000" if args.quick else "10000,100000,1000000"
    sizes = sorted(int(s) for s in (args.sizes or default).split(","))
    rounds = args.rounds or (2 if args.quick else 3)
    dispatches = args.dispatches or (500 if args.quick else 2_000)
    env = environment_lines()
    code_before = source_fingerprint()
    figures, problems = measure(sizes, rounds, dispatches)
    print()
    print(f"## Cost per task at {', '.join(f'{c:,}' for c in sizes)} tasks (SQLite; median of {rounds} rounds)")
    print()
    print("\n".join(env))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print(f"- request path and ingest: {dispatches} mentions / lifecycles per round, until flush() returns")
    print()
    print(table(figures, sizes))
    print()
    print(f"- every dispatched task in its database: {'yes' if not problems else 'NO'}")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
