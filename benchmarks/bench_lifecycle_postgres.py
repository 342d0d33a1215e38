"""The ingest figure for a database server: task lifecycles per second into PostgreSQL from 4 processes.

Four processes (``multiprocessing``, spawn) each make their own ``TaskLog`` on the same PostgreSQL schema, with the
defaults (no journal: it is opt-in) and ``migrate="upgrade"`` (the parent has made the schema beforehand, untimed).
Each process first captures its share of the tasks through the middleware (signed app mentions dispatched through a Bolt
``App``, untimed, flushed), then all of them wait on a barrier. Released together, each runs, per task, the
decorated ``check_and_assign(thread_ts, evaluations)`` with 3 evaluations and the decorated
``process_assignment(self, thread_ts, text)`` — ``bench_lifecycle.py``'s bot, unchanged — and then
``tasklog.flush()``. Rate = all lifecycles ÷ (the last ``flush()`` to return - the first process to start).

Reference, in the same run and the same harness: the design document's Approach 2 (the sketch's ``TaskLogger``:
connect, insert, commit, close per event, into one SQLite file) from the same number of processes, on fewer
lifecycles (``--reference-n``; its rate does not depend on N). The full run also has the TaskLog from one process,
for how the rate scales with writers.

Afterwards every row is checked (as ``bench_lifecycle.py`` does): each lifecycle's assignment, 3 evaluations and
outcome exactly once, linked to its task; the script exits 1 otherwise, or if a writer dropped or rejected events.
The schema is dropped at the end, with the TaskLogs' journal directory.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import queue
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from _common import environment_lines, fresh_dir, markdown_table, parse_args, source_fingerprint, summarize
from _dataset import POSTGRES_URL, postgres_available, scratch_schema
from bench_lifecycle import check_sketch_rows, evaluations_for, sketch_bot, tasklog_bot, tasklog_checks

SPAWN = mp.get_context("spawn")
TASKLOG = "TaskLog (defaults), PostgreSQL"
SKETCH = "Approach 2 (design sketch: SQLite connect/insert/commit per event)"


@dataclass(frozen=True)
class Job:
    where: str  # the database URL, or the SQLite file for Approach 2
    index: int
    processes: int
    n: int
    base_us: int


@dataclass
class Result:
    index: int
    started: float  # time.monotonic() when released by the barrier (system-wide clock on Linux)
    called: float  # after the last decorated call returned
    flushed: float  # after flush() returned
    problems: list[str] = field(default_factory=list)


def request_text(index: int, i: int) -> str:
    return f"research item {i} for process {index} and write a short summary"


def thread_ts(base_us: int, processes: int, index: int, i: int) -> str:
    """Distinct across processes: process ``index`` takes every ``processes``-th microsecond."""
    seconds, micros = divmod(base_us + i * processes + index, 1_000_000)
    return f"{seconds}.{micros:06d}"


def tasklog_worker(job: Job, barrier: Barrier, out: Any) -> None:
    from slack_tasklog import TaskLog
    from slack_tasklog.testing import FakeSlackAPI, app_mention, event_body, signed_request

    from _common import build_app

    url, index, processes, n, base_us = job.where, job.index, job.processes, job.n, job.base_us
    problems: list[str] = []
    tasklog = TaskLog(url, migrate="upgrade")
    try:
        tasks: list[tuple[str, str]] = []
        with FakeSlackAPI() as api:
            app = build_app(api, process_before_response=True, middleware=tasklog.middleware)
            for i in range(n):
                ts = thread_ts(base_us, processes, index, i)
                event = app_mention(request_text(index, i), ts=ts)
                response = app.dispatch(signed_request(event_body(event)))
                if response.status != 200:
                    problems.append(f"process {index}: dispatch answered {response.status}")
                    break
                tasks.append((ts, event["text"]))
        if not tasklog.flush(300):
            problems.append(f"process {index}: flush after capturing timed out")
        check_and_assign, agents = tasklog_bot(tasklog)
        started, called = timed_lifecycles(tasks, check_and_assign, agents, barrier)
        if not tasklog.flush(600):
            problems.append(f"process {index}: flush timed out")
        flushed = time.monotonic()
        stats = tasklog.health()
        if stats.dropped or stats.rejected or stats.lost_at_shutdown:
            problems.append(f"process {index}: writer {stats}")
        out.put(Result(index, started, called, flushed, problems))
    finally:
        tasklog.close()


def timed_lifecycles(
    tasks: list[tuple[str, str]], check_and_assign: Any, agents: Any, barrier: Barrier
) -> tuple[float, float]:
    """The timed part, the same for the TaskLog and the sketch: every process starts together at the barrier,
    then routes and runs each of its tasks. Returns (started, calls done) on the monotonic clock."""
    work = [(ts, text_, evaluations_for(i)) for i, (ts, text_) in enumerate(tasks)]
    gc.collect()
    barrier.wait(timeout=600)
    started = time.monotonic()
    for ts, text_, evaluations in work:
        agent = check_and_assign(ts, evaluations)
        agents[agent].process_assignment(ts, text_)
    return started, time.monotonic()


def sketch_worker(job: Job, barrier: Barrier, out: Any) -> None:
    from _reference import DesignTaskLogger

    db, index, processes, n, base_us = job.where, job.index, job.processes, job.n, job.base_us

    logger = DesignTaskLogger(db)
    tasks = [(thread_ts(base_us, processes, index, i), request_text(index, i)) for i in range(n)]
    check_and_assign, agents = sketch_bot(logger)
    started, called = timed_lifecycles(tasks, check_and_assign, agents, barrier)
    out.put(Result(index, started, called, called))


def run_processes(target: Any, where: str, processes: int, n: int, base_us: int) -> tuple[float, float, list[str]]:
    """Start ``processes`` workers, release them together; returns (rate until the last flush, rate of the calls
    alone, problems)."""
    barrier = SPAWN.Barrier(processes)
    out = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=target, args=(Job(where, index, processes, n, base_us), barrier, out))
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    results: list[Result] = []
    problems: list[str] = []
    deadline = time.monotonic() + 1200
    while len(results) < processes and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=5))
        except queue.Empty:  # see whether a worker died
            if any(w.exitcode not in (None, 0) for w in workers):
                problems.append(f"a worker died: exit codes {[w.exitcode for w in workers]}")
                break
    for worker in workers:
        worker.join(timeout=120)
        if worker.is_alive():
            worker.kill()
            problems.append("a worker did not exit")
    if len(results) < processes:
        problems.append(f"{processes - len(results)} workers reported nothing")
        return 0.0, 0.0, problems
    start = min(r.started for r in results)
    total = processes * n
    problems += [p for r in results for p in r.problems]
    return total / (max(r.flushed for r in results) - start), total / (max(r.called for r in results) - start), problems


def check_postgres(url: str, n: int) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = {what: conn.execute(text(sql)).scalar() for what, (sql, _) in tasklog_checks(n).items()}
        return [f"{what}: {found[what]}, expected {want}" for what, (_, want) in tasklog_checks(n).items()
                if found[what] != want]  # fmt: skip
    finally:
        engine.dispose()


def tasklog_rep(processes: int, n: int) -> tuple[float, float, list[str]]:
    from slack_tasklog import TaskLog

    with scratch_schema("bench_ingest") as url:
        prepare = TaskLog(url, migrate="upgrade", journal=False)
        prepare._store.ensure_schema()
        prepare.close()
        base_us = (int(time.time()) - 86_400) * 1_000_000
        rate, calls, problems = run_processes(tasklog_worker, url, processes, n, base_us)
        if not problems:
            problems = check_postgres(url, processes * n)
        return rate, calls, problems


def sketch_rep(processes: int, n: int) -> tuple[float, float, list[str]]:
    from _reference import DesignTaskLogger

    with fresh_dir("bench_lifecycle_pg-") as tmp:
        db = tmp / "task_logs.db"
        logger = DesignTaskLogger(str(db))
        base_us = (int(time.time()) - 86_400) * 1_000_000
        with logger.get_db() as conn:  # "the request is already there", untimed
            conn.executemany(
                "INSERT INTO tasks (user_id, request, channel_id, thread_ts) VALUES ('U123', ?, 'C111', ?)",
                [
                    (request_text(index, i), thread_ts(base_us, processes, index, i))
                    for index in range(processes)
                    for i in range(n)
                ],
            )
        rate, calls, problems = run_processes(sketch_worker, str(db), processes, n, base_us)
        if not problems:
            problems = check_sketch_rows(Path(db), processes * n)
        return rate, calls, problems


@dataclass
class Measured:
    rates: dict[str, list[float]]
    call_rates: dict[str, list[float]]
    lifecycles: dict[str, int]
    problems: list[str]


def measure(processes: int, n: int, ref_n: int, repeat: int, *, single: bool) -> Measured:
    """Every configuration once per repetition, in an order rotated each repetition."""
    configs: dict[str, tuple[Any, int, int]] = {f"{TASKLOG}, {processes} processes": (tasklog_rep, processes, n)}
    if single:
        configs[f"{TASKLOG}, 1 process"] = (tasklog_rep, 1, n)
    configs[f"{SKETCH}, {processes} processes"] = (sketch_rep, processes, ref_n)
    rates: dict[str, list[float]] = {name: [] for name in configs}
    call_rates: dict[str, list[float]] = {name: [] for name in configs}
    problems: list[str] = []
    names = list(configs)
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            function, procs, per_process = configs[name]
            rate, calls, found = function(procs, per_process)
            rates[name].append(rate)
            call_rates[name].append(calls)
            problems += [f"rep {rep + 1} {name}: {p}" for p in found]
            print(f"  rep {rep + 1}/{repeat} {name}: {rate:,.0f}/s", file=sys.stderr, flush=True)
    lifecycles = {name: procs * per for name, (_, procs, per) in configs.items()}
    return Measured(rates, call_rates, lifecycles, problems)


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("-n", type=int, help="lifecycles per process (default 10000, quick 1000)")
        parser.add_argument("--processes", type=int, default=4, help="writer processes (default 4)")
        parser.add_argument("--reference-n", type=int, help="Approach 2 lifecycles per process (default 250, quick 50)")
        parser.add_argument("--repeat", type=int, help="repetitions (default 3, quick 1)")

    args = parse_args(__doc__.splitlines()[0], options)
    n = args.n or (1_000 if args.quick else 10_000)
    ref_n = args.reference_n or (50 if args.quick else 250)
    repeat = args.repeat or (1 if args.quick else 3)
    why_not = postgres_available()
    if why_not is not None:
        print(f"PostgreSQL at {POSTGRES_URL} does not answer ({why_not}); nothing measured")
        return 0
    env = environment_lines()
    code_before = source_fingerprint()
    print(f"# bench_lifecycle_postgres: {args.processes} processes x {n} lifecycles, {repeat} repetitions", flush=True)
    m = measure(args.processes, n, ref_n, repeat, single=not args.quick)

    print()
    print("## Task lifecycles per second into PostgreSQL from several processes")
    print()
    print("\n".join(env))
    print(f"- PostgreSQL: {POSTGRES_URL} (a scratch schema per repetition)")
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print()
    sketch = summarize(next(v for k, v in m.rates.items() if k.startswith(SKETCH)))
    rows = []
    for name, values in m.rates.items():
        rate, calls = summarize(values), summarize(m.call_rates[name])
        rows.append(
            [
                name,
                f"{m.lifecycles[name]:,}",
                f"**{rate.median:,.0f}** ({rate.low:,.0f}-{rate.high:,.0f})",
                f"{1e6 / rate.median:.0f}",
                f"{calls.median:,.0f}",
                f"{rate.median / sketch.median:.0f}x",
            ]
        )
    headers = ["variant", "lifecycles per repetition", "lifecycles/s until the last flush, median (min-max)",
               "µs per lifecycle", "lifecycles/s of the calls alone", "vs Approach 2"]  # fmt: skip
    print(markdown_table(headers, rows))
    print()
    print("- each lifecycle writes 1 assignment + 3 evaluations + 1 outcome row; Approach 2 writes the same rows")
    verdict = "all complete, linked, none doubled" if not m.problems else "PROBLEMS"
    print(f"- rows checked after every repetition: {verdict}")
    for problem in m.problems:
        print(f"  - {problem}")
    return 1 if m.problems else 0


if __name__ == "__main__":
    sys.exit(main())
