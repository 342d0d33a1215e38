"""The upgrade figure: ``slack-tasklog db upgrade`` on a big SQLite task log made before migrations existed.

The database is made with the first schema (``migrations/_baseline.py``: the tables the create-on-first-use made,
no version table) and filled with Core ``executemany`` in realistic proportions: per task one follow-up on average,
1.25 rounds of routing (every fourth task is routed again), three evaluations per round, one outcome per round
(every tenth round assigned nobody), request texts of 40-160 characters. The file is checkpointed and closed, then
copied afresh for each repetition, and each copy is upgraded by the real command, in a subprocess, timed from
start to exit: it adopts the tables (checks them against the first schema's, stamps ``0001``) and runs ``0002``
(two nullable columns, two indexes on SQLite) and ``0003`` (each task's latest-round columns and the daily rollups,
filled from every task's rounds and outcomes: most of the time). ``slack-tasklog db current`` on the upgraded copy
is timed the same way, for the command's start-up cost alone.

Afterwards every copy must hold the same number of rows per table as before, with the same sums over a few
columns, be at head, and pass ``db check`` (Alembic's comparison with the models); the script exits 1 otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from slack_tasklog.storage.migrate import check, current, head
from slack_tasklog.storage.migrations._baseline import baseline_metadata
from sqlalchemy import Engine, create_engine, insert, text

from _common import environment_lines, fresh_dir, markdown_table, parse_args, summarize

TABLES = ("tasklog_tasks", "tasklog_follow_ups", "tasklog_assignments", "tasklog_evaluations", "tasklog_outcomes")
CLI = str(Path(sys.executable).with_name("slack-tasklog"))
AGENTS = ("Grok", "Writer", "Builder")
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
CHUNK = 20_000


def build(path: Path, tasks: int) -> dict[str, int]:
    """A pre-migration database of ``tasks`` tasks at ``path``; returns the rows written per table."""
    engine = create_engine(f"sqlite:///{path}")
    metadata = baseline_metadata()
    metadata.create_all(engine)
    t = metadata.tables
    written = dict.fromkeys(TABLES, 0)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    for first in range(0, tasks, CHUNK):
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        for i in range(first, min(first + CHUNK, tasks)):
            at = START + timedelta(seconds=30 * i)
            ts = f"{at.timestamp():.6f}"
            task_id = i + 1
            rows["tasklog_tasks"].append(
                {"id": task_id, "team_id": "T0001", "enterprise_id": None, "channel_id": f"C{i % 40:04d}",
                 "thread_ts": ts, "request_ts": ts, "user_id": f"U{i % 500:05d}",
                 "request_text": f"task {i}: research and summarise " + "x" * (i % 120), "requested_at": at,
                 "recorded_at": at + timedelta(milliseconds=40)}
            )  # fmt: skip
            for n in range((0, 1, 2)[i % 3]):  # 0, 1 or 2 follow-ups: one on average
                posted = at + timedelta(seconds=5 + n)
                rows["tasklog_follow_ups"].append(
                    {"task_id": task_id, "team_id": "T0001", "channel_id": f"C{i % 40:04d}",
                     "ts": f"{posted.timestamp():.6f}", "user_id": f"U{(i + n) % 500:05d}", "text": "more detail",
                     "posted_at": posted}
                )  # fmt: skip
            for r in range(2 if i % 4 == 0 else 1):
                round_id = f"{i:024d}r{r:07d}"
                agent = None if (i + r) % 10 == 9 else AGENTS[(i + r) % 3]
                recorded = at + timedelta(seconds=1 + 60 * r)
                rows["tasklog_assignments"].append(
                    {"id": round_id, "task_id": task_id, "team_id": "T0001", "channel_id": f"C{i % 40:04d}",
                     "thread_ts": ts, "agent": agent, "confidence": 85.0 if agent else None, "recorded_at": recorded}
                )  # fmt: skip
                rows["tasklog_evaluations"] += [
                    {"assignment_id": round_id, "agent": name, "confidence": float((i * 7 + k * 31) % 100)}
                    for k, name in enumerate(AGENTS)
                ]
                rows["tasklog_outcomes"].append(
                    {"id": round_id, "task_id": task_id, "team_id": "T0001", "channel_id": f"C{i % 40:04d}",
                     "thread_ts": ts, "agent": agent, "success": agent is not None and (i % 7 != 0),
                     "execution_time": (i % 90) / 3 if agent else 0.0,
                     "error_message": None if agent and i % 7 else "RuntimeError: model overloaded",
                     "started_at": recorded, "finished_at": recorded + timedelta(seconds=(i % 90) / 3)}
                )  # fmt: skip
        with engine.begin() as conn:
            for name in TABLES:
                if rows[name]:
                    conn.execute(insert(t[name]), rows[name])
                    written[name] += len(rows[name])
    with engine.connect() as conn:
        # Everything into the main file: each copy must be the whole database.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    engine.dispose()
    return written


def fingerprint(engine: Engine) -> dict[str, tuple[Any, ...]]:
    """Per table: its row count and sums over columns that every row contributes to."""
    sums = {
        "tasklog_tasks": "sum(id), sum(length(request_text)), sum(length(thread_ts))",
        "tasklog_follow_ups": "sum(task_id), sum(length(ts))",
        "tasklog_assignments": "sum(task_id), sum(confidence), count(agent)",
        "tasklog_evaluations": "sum(confidence), count(DISTINCT assignment_id)",
        "tasklog_outcomes": "sum(success), sum(execution_time), count(error_message)",
    }
    with engine.connect() as conn:
        return {
            name: tuple(conn.execute(text(f"SELECT count(*), {sql} FROM {name}")).one()) for name, sql in sums.items()
        }


def timed(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"`slack-tasklog {' '.join(args)}` failed: {done.stdout}{done.stderr}")
    return elapsed, done.stdout.strip()


def main() -> int:
    args = parse_args(
        __doc__.split("\n\n", 1)[0],
        lambda parser: (
            parser.add_argument(
                "-n", "--tasks", type=int, default=None, help="tasks (default 1,000,000; --quick 50,000)"
            ),
            parser.add_argument(
                "--repeat", type=int, default=None, help="upgrades of fresh copies (default 3; --quick 1)"
            ),
        ),
    )
    tasks = args.tasks or (50_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)
    print("# `slack-tasklog db upgrade` on a SQLite task log made before migrations\n")
    print("\n".join(environment_lines()))
    with fresh_dir("tasklog-bench-migrate-") as folder:
        original = folder / "original.db"
        started = time.perf_counter()
        written = build(original, tasks)
        built = time.perf_counter() - started
        size = original.stat().st_size
        engine = create_engine(f"sqlite:///{original}")
        before = fingerprint(engine)
        engine.dispose()
        print(
            f"\nBuilt {tasks:,} tasks ({sum(written.values()):,} rows, {size / 1e6:,.0f} MB) in {built:.1f} s; "
            f"upgraded {repeat} fresh cop{'y' if repeat == 1 else 'ies'} of it.\n"
        )
        upgrades: list[float] = []
        startups: list[float] = []
        ok = True
        after: dict[str, tuple[Any, ...]] = {}
        output = ""
        for n in range(repeat):
            copy = folder / f"copy-{n}.db"
            shutil.copyfile(original, copy)
            url = f"sqlite:///{copy}"
            elapsed, output = timed("db", "upgrade", "--database-url", url)
            upgrades.append(elapsed)
            startups.append(timed("db", "current", "--database-url", url)[0])
            engine = create_engine(url)
            try:
                after = fingerprint(engine)
                ok = ok and after == before and current(engine) == head() and check(engine) == head()
            finally:
                engine.dispose()
            copy.unlink()
        upgrade, startup = summarize(upgrades), summarize(startups)
        print(f"Command output: `{output}`\n")
        print(
            markdown_table(
                ["what", "median s", "min-max s"],
                [
                    ["`slack-tasklog db upgrade`, start to exit", upgrade.fmt(), upgrade.span()],
                    ["`slack-tasklog db current` (the command's start-up)", startup.fmt(), startup.span()],
                ],
            )
        )
        print()
        rows = [
            [name, f"{before[name][0]:,}", f"{after[name][0]:,}", "yes" if before[name] == after[name] else "NO"]
            for name in TABLES
        ]
        print(markdown_table(["table", "rows before", "rows after", "sums equal"], rows))
        print(f"\nAt head ({head()}) and matching the models (`db check`) after every upgrade: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
