"""The stats figure: ``compute_stats`` all-time and over the last 24 hours, on a task log of 1,000,000 tasks.

The task log is the cached SQLite one of ``_dataset.py`` (90 days ending 2026-11-01 00:00 UTC, 95% in workspace
T111; see ``bench_commands.py``); ``--postgres`` adds its PostgreSQL copy. Queries, each on one warm connection
(SQLAlchemy's statement cache and the database's page cache warmed by one untimed run):

- all-time, every workspace (``compute_stats(conn)``), and all-time for workspace T111 (what ``/tasklog stats all``
  runs: a Slack command always passes its workspace);
- the last 24 hours of the data, every workspace and T111.

Each repetition runs every query once, in an order rotated each repetition; the figure is the median (min-max) in
ms. The task counts found must match a plain ``count(*)``, or the script exits 1. The plan of the all-time statement
is printed (SQLite's ``EXPLAIN QUERY PLAN``) for where the time goes.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from typing import Any

from slack_tasklog.reports import compute_stats
from sqlalchemy import Connection, create_engine, text

from _common import environment_lines, markdown_table, parse_args, source_fingerprint, sqlite_plans, summarize
from _dataset import POSTGRES_URL, postgres_available, postgres_dataset, sqlite_dataset
from bench_commands import END

#: name -> (compute_stats keyword arguments, the count(*) that must agree, target ms on SQLite or None)
QUERIES: dict[str, tuple[dict[str, Any], str, float | None]] = {
    "all-time": ({}, "SELECT count(*) FROM tasklog_tasks", 250.0),
    "all-time, T111": ({"team_id": "T111"}, "SELECT count(*) FROM tasklog_tasks WHERE team_id = 'T111'", None),
    "24 h": (
        {"since": END - timedelta(days=1), "until": END},
        "SELECT count(*) FROM tasklog_tasks WHERE requested_at >= :since AND requested_at < :until",
        50.0,
    ),
    # What "/tasklog stats 24h" asks at 06:00 UTC: two part-days, read from the tasks.
    "24 h to 06:00": (
        {"since": END - timedelta(days=1, hours=6), "until": END - timedelta(hours=6)},
        "SELECT count(*) FROM tasklog_tasks WHERE requested_at >= :since AND requested_at < :until",
        50.0,
    ),
    "24 h, T111": (
        {"since": END - timedelta(days=1), "until": END, "team_id": "T111"},
        "SELECT count(*) FROM tasklog_tasks WHERE requested_at >= :since AND requested_at < :until "
        "AND team_id = 'T111'",
        None,
    ),
}


def expected_count(conn: Connection, sql: str, kwargs: dict[str, Any], sqlite: bool) -> int:
    params: dict[str, Any] = {}
    for key in ("since", "until"):
        if key in kwargs:
            value: datetime = kwargs[key]
            # SQLite stores the UTC datetime as text (the column type's format); PostgreSQL compares timestamps.
            params[key] = value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else value
    return int(conn.execute(text(sql), params).scalar_one())


def measure(
    url: str, repeat: int, queries: tuple[str, ...] = tuple(QUERIES)
) -> tuple[dict[str, list[float]], dict[str, int], list[str]]:
    """Each of ``queries`` ``repeat`` times on one warm connection; returns ms per run, tasks found, and problems."""
    engine = create_engine(url)
    sqlite = url.startswith("sqlite")
    times: dict[str, list[float]] = {name: [] for name in queries}
    found: dict[str, int] = {}
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            for name in queries:
                kwargs, sql, _ = QUERIES[name]
                found[name] = compute_stats(conn, **kwargs).tasks  # warm-up, untimed
                want = expected_count(conn, sql, kwargs, sqlite)
                if found[name] != want:
                    problems.append(f"{name}: compute_stats counted {found[name]} tasks, count(*) {want}")
            names = list(queries)
            for rep in range(repeat):
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    started = time.perf_counter()
                    compute_stats(conn, **QUERIES[name][0])
                    times[name].append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return times, found, problems


def sqlite_plan(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        # The last 24 h from a moment that is not midnight: the rollups for whole days, the tasks for part-days.
        window = {"since": END - timedelta(days=1, hours=6), "until": END}
        return sqlite_plans(engine, lambda conn: compute_stats(conn, **window))
    finally:
        engine.dispose()


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("-n", "--tasks", type=int, help="tasks in the database (default 1000000, quick 100000)")
        parser.add_argument("--repeat", type=int, help="runs per query (default 5, quick 3)")
        parser.add_argument("--postgres", action="store_true", help="also the PostgreSQL copy")

    args = parse_args(__doc__.splitlines()[0], options)
    count = args.tasks or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 5)
    urls = {"SQLite": f"sqlite:///{sqlite_dataset(count)}"}
    if args.postgres:
        why_not = postgres_available()
        if why_not is None:
            urls["PostgreSQL"] = postgres_dataset(count)
        else:
            print(f"- PostgreSQL at {POSTGRES_URL} does not answer ({why_not}): SQLite only", file=sys.stderr)
    env = environment_lines()
    code_before = source_fingerprint()
    rows: list[list[object]] = []
    problems: list[str] = []
    for backend, url in urls.items():
        times, found, trouble = measure(url, repeat)
        problems += [f"{backend}: {p}" for p in trouble]
        for name, values in times.items():
            s = summarize(values)
            target = QUERIES[name][2] if backend == "SQLite" else None
            verdict = (
                "" if target is None else (f"<= {target:.0f}: " + ("met" if s.median <= target else "**not met**"))
            )
            rows.append([backend, name, f"{found[name]:,}", f"**{s.median:.1f}** ({s.span(1)})",
                         f"{s.median * 1000 / max(found[name], 1):.2f}", verdict])  # fmt: skip
    print()
    print(f"## compute_stats over {count:,} tasks ({repeat} runs per query, interleaved, warm connection)")
    print()
    print("\n".join(env))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print()
    headers = ["database", "window", "tasks in window", "ms, median (min-max)", "µs per task", "target ms"]
    print(markdown_table(headers, rows))
    print()
    print("Plans of the statements of a 24 h window from 18:00 (SQLite):")
    print()
    print("\n".join(f"    {line}" for line in sqlite_plan(urls["SQLite"])))
    print()
    print(f"- task counts agree with count(*): {'yes' if not problems else 'NO'}")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
