"""The per-request cost of write-through (``TaskLog(write_through=True)``, the default on AWS Lambda).

A FaaS runtime freezes the sandbox once the handler returns, so there every event a request records is committed
to the database before the recording call returns: the request pays for its own writes. This measures how much,
as the Lambda example runs: a Bolt ``App`` with ``process_before_response=True`` and ``app.use(tasklog.middleware)``,
whose ``app_mention`` listener calls a ``@tasklog.track_assignment`` ``check_and_assign`` (3 evaluations) and a
``@tasklog.track_outcome`` ``process_assignment``: three events per request (the task, the round, the outcome).

Each dispatch is a fresh signed mention (a new task), built before the clock starts; ``app.dispatch`` is what is
timed. ``write_through=True`` and ``False`` run on the same database kind side by side, interleaved in blocks of
``--block`` dispatches over rounds, in alternating order; with ``False`` the writer's work for a block is done by
``flush()`` after it, off the clock (on Lambda it would be lost: see ``tests/examples/test_aws_lambda.py``).
Databases: a SQLite file (``journal=False``, as on Lambda) and, when it answers, PostgreSQL (a scratch schema on
``$TASKLOG_BENCH_POSTGRES_URL``). Reported: median and 90th percentile ms per dispatch, and the ratio of medians.
At the end every dispatch must be a task with its round and outcome in the database (exit 1 otherwise).

    .venv/bin/python benchmarks/bench_faas.py            # -n 300 dispatches per configuration; --quick: 60
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI
from sqlalchemy import text

from _common import environment_lines, fresh_dir, markdown_table, mention_requests, now_ns, parse_args, quiet_gc
from _dataset import POSTGRES_URL, postgres_available, scratch_schema

AGENTS = ("Grok", "Writer", "Builder")


@dataclass
class Config:
    backend: str
    write_through: bool
    tasklog: TaskLog
    app: App
    ms: list[float] = field(default_factory=list)  # every timed dispatch
    dispatched: int = 0

    @property
    def name(self) -> str:
        return f"write_through={self.write_through}"


def build_app(api: FakeSlackAPI, tasklog: TaskLog) -> App:
    """The Lambda example's shape: the listener runs before the answer, and calls the two decorated functions."""
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
    app.use(tasklog.middleware)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str | None:
        agent, confidence = max(evaluations.items(), key=lambda item: item[1])
        return agent if confidence >= 50 else None

    class Agent:
        def __init__(self, name: str) -> None:
            self.name = name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            return text.upper()

    agents = {name: Agent(name) for name in AGENTS}

    @app.event("app_mention")
    def on_mention(event: dict[str, Any]) -> None:
        thread_ts = event["ts"]
        assigned = check_and_assign(thread_ts, {"Grok": 92, "Writer": 30, "Builder": 15})
        if assigned is not None:
            agents[assigned].process_assignment(thread_ts, event["text"])

    return app


def run_block(cfg: Config, count: int, *, record: bool) -> None:
    requests = mention_requests(count)
    dispatch = cfg.app.dispatch
    times: list[int] = []
    with quiet_gc():
        for request in requests:
            t0 = now_ns()
            response = dispatch(request)
            times.append(now_ns() - t0)
            if response.status != 200:
                raise SystemExit(f"{cfg.backend} {cfg.name}: dispatch answered {response.status}")
    if not cfg.tasklog.flush(60):  # off the clock: the background writer's share, for write_through=False
        raise SystemExit(f"{cfg.backend} {cfg.name}: flush() timed out")
    cfg.dispatched += count
    if record:
        cfg.ms.extend(t / 1e6 for t in times)


def check_rows(cfg: Config) -> list[str]:
    with cfg.tasklog.connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("tasklog_tasks", "tasklog_assignments", "tasklog_outcomes")
        }
    return [
        f"{cfg.backend} {cfg.name}: {table} has {count} rows for {cfg.dispatched} dispatches"
        for table, count in counts.items()
        if count != cfg.dispatched
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.contextmanager
def databases(directory: Path, *, postgres: bool) -> Iterator[dict[str, list[str]]]:
    """Per backend, one database URL per configuration (each its own file or schema, so neither sees the other's
    rows)."""
    urls = {"SQLite file": [f"sqlite:///{directory / f'tasklog-{wt}.db'}" for wt in (True, False)]}
    with contextlib.ExitStack() as stack:
        if postgres:
            urls["PostgreSQL"] = [stack.enter_context(scratch_schema(f"bench_faas_{wt}")) for wt in ("on", "off")]
        yield urls


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("-n", type=int, default=300, help="timed dispatches per configuration (default 300)"),
            p.add_argument("--block", type=int, default=20, help="dispatches per block (default 20)"),
            p.add_argument("--no-postgres", action="store_true", help="SQLite only"),
        ),
    )
    n = 60 if args.quick else args.n
    rounds = max(1, n // args.block)
    why_not = "--no-postgres" if args.no_postgres else postgres_available()
    print("# Write-through: per-request cost (`App.dispatch`, process_before_response=True, 3 events/request)\n")
    print("\n".join(environment_lines()))
    print(f"- {rounds} rounds x {args.block} dispatches per configuration, after {args.block} warm-up dispatches")
    if why_not is not None:
        print(f"- PostgreSQL not measured: {why_not}")
    else:
        print(f"- PostgreSQL: {POSTGRES_URL} (a scratch schema per configuration)")
    print()
    problems: list[str] = []
    rows: list[list[object]] = []
    with (
        FakeSlackAPI() as api,
        fresh_dir("bench_faas_") as directory,
        databases(directory, postgres=why_not is None) as urls,
    ):
        for backend, (url_on, url_off) in urls.items():
            configs = []
            for write_through, url in ((True, url_on), (False, url_off)):
                tasklog = TaskLog(url, journal=False, write_through=write_through, migrate="upgrade")
                configs.append(Config(backend, write_through, tasklog, build_app(api, tasklog)))
            for cfg in configs:
                run_block(cfg, args.block, record=False)  # warm-up: schema, connections, code paths
            for r in range(rounds):
                for cfg in configs if r % 2 == 0 else reversed(configs):
                    run_block(cfg, args.block, record=True)
            on, off = configs
            rows.append(
                [
                    backend,
                    f"{statistics.median(on.ms):.3f}",
                    f"{percentile(on.ms, 0.9):.3f}",
                    f"{statistics.median(off.ms):.3f}",
                    f"{percentile(off.ms, 0.9):.3f}",
                    f"{statistics.median(on.ms) / statistics.median(off.ms):.2f}x",
                    f"+{statistics.median(on.ms) - statistics.median(off.ms):.3f}",
                ]
            )
            for cfg in configs:
                problems.extend(check_rows(cfg))
                cfg.tasklog.close()
    headers = [
        "database",
        "write_through=True median ms",
        "p90 ms",
        "write_through=False median ms",
        "p90 ms",
        "ratio of medians",
        "added ms",
    ]
    print(markdown_table(headers, rows))
    if problems:
        print("\n" + "\n".join(f"- MISSING: {p}" for p in problems))
        return 1
    print("\nEvery dispatch is a task with its round and outcome in the database.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
