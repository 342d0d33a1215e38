"""The ingest figure: how many task lifecycles per second a bot's own functions can record into SQLite.

A lifecycle is what the design document's bot does after a mention: ``check_and_assign(thread_ts, evaluations)``
asks three agents how confident they are and returns the most confident one, then that agent's
``process_assignment(self, thread_ts, text)`` runs. With the TaskLog both functions carry its decorators
(``@tasklog.track_assignment``, ``@tasklog.track_outcome``); the rate is N lifecycles divided by the time from the
first call until ``tasklog.flush()`` returns, so it includes writing every row (one assignment, three evaluations
and one outcome per lifecycle), not just queueing it.

The TaskLog runs with its defaults (the journal on, in versions that have it) and, when this version has a
write-ahead journal, also with ``journal=False``.
The N tasks are captured first, untimed, by dispatching N signed app mentions through a Bolt ``App`` with the
middleware, then flushed. Afterwards every row is checked: N assignments with three evaluations each and N outcomes,
all linked to their task.

For reference, in the same run: the same loop with no logging at all, and the design document's Approach 2 (the
sketch's ``TaskLogger``: connect, insert, commit, close per event; one evaluations event with a row per agent, one
outcome event; the task rows are inserted beforehand, untimed). Approach 2 waits on the disk for every commit, so it
runs on fewer lifecycles (``--reference-n``); its rate does not depend on N.
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_tasklog import TaskLog
from slack_tasklog.testing import FakeSlackAPI

from _common import (
    build_app,
    environment_lines,
    fresh_dir,
    markdown_table,
    mention_requests,
    parse_args,
    source_fingerprint,
    summarize,
    supports_journal,
)
from _reference import DesignTaskLogger

AGENTS = ("Grok", "Writer", "Builder")
CHUNK = 2_000  # signed requests built at a time while capturing tasks


def evaluations_for(i: int) -> dict[str, int]:
    return {"Grok": 40 + i % 60, "Writer": (i * 7) % 100, "Builder": (i * 13) % 100}


def pick(evaluations: dict[str, int]) -> str:
    return max(evaluations, key=evaluations.__getitem__)


# -- the three variants of the bot's code ------------------------------------------------------------------------


def tasklog_bot(tasklog: TaskLog) -> tuple[Callable[..., Any], dict[str, Any]]:
    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return pick(evaluations)

    class SpecialistAgent:
        def __init__(self, name: str) -> None:
            self.name = name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            return f"{self.name} done"

    return check_and_assign, {name: SpecialistAgent(name) for name in AGENTS}


def plain_bot() -> tuple[Callable[..., Any], dict[str, Any]]:
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return pick(evaluations)

    class SpecialistAgent:
        def __init__(self, name: str) -> None:
            self.name = name

        def process_assignment(self, thread_ts: str, text: str) -> str:
            return f"{self.name} done"

    return check_and_assign, {name: SpecialistAgent(name) for name in AGENTS}


def sketch_bot(logger: DesignTaskLogger) -> tuple[Callable[..., Any], dict[str, Any]]:
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        agent_name = pick(evaluations)
        logger.log_evaluations(thread_ts, evaluations, agent_name)
        return agent_name

    class SpecialistAgent:
        def __init__(self, name: str) -> None:
            self.name = name

        def process_assignment(self, thread_ts: str, text: str) -> str:
            start_time = time.time()
            result = f"{self.name} done"
            logger.log_outcome(thread_ts, self.name, True, time.time() - start_time, None)
            return result

    return check_and_assign, {name: SpecialistAgent(name) for name in AGENTS}


def run_lifecycles(
    check_and_assign: Callable[..., Any],
    agents: dict[str, Any],
    tasks: list[tuple[str, str]],
    finish: Callable[[], Any],
) -> tuple[float, float]:
    """Run one lifecycle per task; return (seconds until ``finish()`` returned, seconds spent in ``finish()``)."""
    work = [(thread_ts, text, evaluations_for(i)) for i, (thread_ts, text) in enumerate(tasks)]
    gc.collect()
    t0 = time.perf_counter()
    for thread_ts, text, evaluations in work:
        agent = check_and_assign(thread_ts, evaluations)
        agents[agent].process_assignment(thread_ts, text)
    t1 = time.perf_counter()
    finish()
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1


# -- one repetition of each --------------------------------------------------------------------------------------


def capture_tasks(api: FakeSlackAPI, tasklog: TaskLog, n: int) -> list[tuple[str, str]]:
    app = build_app(api, process_before_response=True, middleware=tasklog.middleware)
    tasks: list[tuple[str, str]] = []
    while len(tasks) < n:
        for req in mention_requests(min(CHUNK, n - len(tasks))):
            resp = app.dispatch(req)
            if resp.status != 200:
                raise SystemExit(f"dispatch answered {resp.status}")
            event = req.body["event"]
            tasks.append((event["ts"], event["text"]))
    if not tasklog.flush(120):
        raise SystemExit("flush after capturing timed out")
    return tasks


def check_tasklog_rows(db: Path, n: int) -> list[str]:
    """Every lifecycle complete and linked; returns the problems found."""
    return _check(db, tasklog_checks(n))


def tasklog_checks(n: int) -> dict[str, tuple[str, int]]:
    """What every lifecycle must have left in the task log's tables: (SQL returning one count, expected count)."""
    return {
        "tasks": ("SELECT count(*) FROM tasklog_tasks", n),
        "assignments": ("SELECT count(*) FROM tasklog_assignments", n),
        "assignments linked": ("SELECT count(*) FROM tasklog_assignments WHERE task_id IS NOT NULL", n),
        "tasks with one assignment": (
            "SELECT count(*) FROM (SELECT 1 FROM tasklog_assignments GROUP BY task_id HAVING count(*) = 1) AS x",
            n,
        ),
        "assignments with agent+confidence": (
            "SELECT count(*) FROM tasklog_assignments WHERE agent IS NOT NULL AND confidence IS NOT NULL",
            n,
        ),
        "evaluations": ("SELECT count(*) FROM tasklog_evaluations", 3 * n),
        "assignments with 3 evaluations": (
            "SELECT count(*) FROM (SELECT assignment_id FROM tasklog_evaluations GROUP BY assignment_id "
            "HAVING count(*) = 3) AS x",
            n,
        ),
        "outcomes": ("SELECT count(*) FROM tasklog_outcomes", n),
        "outcomes linked, successful": (
            "SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NOT NULL AND success AND agent IS NOT NULL",
            n,
        ),
        "outcome agent = assigned agent": (
            "SELECT count(*) FROM tasklog_outcomes o JOIN tasklog_assignments a ON a.task_id = o.task_id "
            "WHERE a.agent = o.agent",
            n,
        ),
    }


def check_sketch_rows(db: Path, n: int) -> list[str]:
    expected = {
        "tasks": ("SELECT count(*) FROM tasks", n),
        "evaluations linked": ("SELECT count(*) FROM evaluations WHERE task_id IS NOT NULL", 3 * n),
        "outcomes linked": ("SELECT count(*) FROM outcomes WHERE task_id IS NOT NULL", n),
    }
    return _check(db, expected)


def _check(db: Path, expected: dict[str, tuple[str, int]]) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        problems = []
        for what, (sql, want) in expected.items():
            got = conn.execute(sql).fetchone()[0]
            if got != want:
                problems.append(f"{what}: {got}, expected {want}")
        return problems
    finally:
        conn.close()


def tasklog_rep(api: FakeSlackAPI, tmp: Path, n: int, options: dict[str, Any]) -> tuple[float, float, list[str]]:
    db = tmp / "tasklog.db"
    tasklog = TaskLog(f"sqlite:///{db}", **options)
    try:
        tasks = capture_tasks(api, tasklog, n)
        check_and_assign, agents = tasklog_bot(tasklog)

        def finish() -> None:
            if not tasklog.flush(120):
                raise SystemExit("tasklog.flush() timed out")

        elapsed, tail = run_lifecycles(check_and_assign, agents, tasks, finish)
        health = tasklog.health()
        problems = check_tasklog_rows(db, n)
        if health.dropped or health.rejected or health.lost_at_shutdown:
            problems.append(f"writer: {health}")
        return n / elapsed, tail, problems
    finally:
        tasklog.close()


def sketch_rep(tmp: Path, n: int) -> tuple[float, list[str]]:
    db = tmp / "task_logs.db"
    logger = DesignTaskLogger(str(db))
    tasks = [(f"{1_700_000_000 + i}.000100", f"request {i}") for i in range(n)]
    with logger.get_db() as conn:  # "the request is already there", untimed
        conn.executemany(
            "INSERT INTO tasks (user_id, request, channel_id, thread_ts) VALUES ('U123', ?, 'C111', ?)",
            [(text, ts) for ts, text in tasks],
        )
    check_and_assign, agents = sketch_bot(logger)
    elapsed, _ = run_lifecycles(check_and_assign, agents, tasks, lambda: None)
    return n / elapsed, check_sketch_rows(db, n)


def plain_rep(n: int) -> float:
    tasks = [(f"{1_700_000_000 + i}.000100", f"request {i}") for i in range(n)]
    check_and_assign, agents = plain_bot()
    elapsed, _ = run_lifecycles(check_and_assign, agents, tasks, lambda: None)
    return n / elapsed


TASKLOG = "TaskLog decorators (defaults), until flush() returns"
TASKLOG_NO_JOURNAL = "TaskLog decorators, journal=False, until flush() returns"


@dataclass
class Measured:
    rates: dict[str, list[float]]
    tails: dict[str, list[float]]
    sketch_rates: list[float]
    plain_rates: list[float]
    problems: list[str]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.rates, self.tails, self.sketch_rates, self.plain_rates, self.problems))


def measure(variants: dict[str, dict[str, Any]], repeat: int, n: int, ref_n: int) -> Measured:
    rates: dict[str, list[float]] = {name: [] for name in variants}
    tails: dict[str, list[float]] = {name: [] for name in variants}
    sketch_rates: list[float] = []
    plain_rates: list[float] = []
    problems: list[str] = []
    with FakeSlackAPI() as api:
        for rep in range(repeat):
            # Rotate which goes first, so that drift in the machine's load does not favour one.
            steps: list[str] = [*variants, "sketch", "plain"]
            steps = steps[rep % len(steps) :] + steps[: rep % len(steps)]
            for step in steps:
                with fresh_dir("bench_lifecycle-") as tmp:
                    if step in variants:
                        rate, tail, found = tasklog_rep(api, tmp, n, variants[step])
                        rates[step].append(rate)
                        tails[step].append(tail)
                        problems += [f"rep {rep + 1} {step}: {p}" for p in found]
                    elif step == "sketch":
                        rate, found = sketch_rep(tmp, ref_n)
                        sketch_rates.append(rate)
                        problems += [f"rep {rep + 1} Approach 2: {p}" for p in found]
                    else:
                        plain_rates.append(plain_rep(n))
            done = ", ".join(f"{v[-1]:,.0f}/s" for v in rates.values())
            print(f"  repetition {rep + 1}/{repeat}: TaskLog {done}", file=sys.stderr, flush=True)

    return Measured(rates, tails, sketch_rates, plain_rates, problems)


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("-n", type=int, help="lifecycles per TaskLog repetition (default 20000, quick 2000)")
        parser.add_argument("--reference-n", type=int, help="lifecycles per Approach 2 repetition (default 1000)")
        parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")

    args = parse_args(__doc__.splitlines()[0], options)
    n = args.n or (2_000 if args.quick else 20_000)
    ref_n = args.reference_n or (200 if args.quick else 1_000)
    env = environment_lines()
    code_before = source_fingerprint()
    variants: dict[str, dict[str, Any]] = {TASKLOG: {}}
    if supports_journal():
        variants[TASKLOG_NO_JOURNAL] = {"journal": False}
    print(f"# bench_lifecycle: {args.repeat} repetitions, N = {n} (Approach 2: {ref_n})", flush=True)

    rates, tails, sketch_rates, plain_rates, problems = measure(variants, args.repeat, n, ref_n)

    s, p = summarize(sketch_rates), summarize(plain_rates)
    rows: list[list[object]] = []
    for name in variants:
        t = summarize(rates[name])
        rows.append(
            [
                name,
                n,
                f"**{t.median:,.0f}** ({t.low:,.0f}-{t.high:,.0f})",
                f"{1e6 / t.median:.0f}",
                f"{t.median / s.median:.0f}x",
            ]
        )
    rows.append(
        [
            "Approach 2 (design sketch: connect/insert/commit per event)",
            ref_n,
            f"{s.median:,.0f} ({s.low:,.0f}-{s.high:,.0f})",
            f"{1e6 / s.median:.0f}",
            "1x",
        ]
    )
    rows.append(
        [
            "no logging (same functions, undecorated)",
            n,
            f"{p.median:,.0f} ({p.low:,.0f}-{p.high:,.0f})",
            f"{1e6 / p.median:.1f}",
            "",
        ]
    )
    print()
    print("## Task lifecycles per second (check_and_assign with 3 evaluations + process_assignment), into SQLite")
    print()
    print("\n".join(env))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print()
    headers = [
        "variant",
        "lifecycles per repetition",
        "lifecycles/s, median (min-max)",
        "µs per lifecycle",
        "vs Approach 2",
    ]
    print(markdown_table(headers, rows))
    print()
    for name in variants:
        tail = summarize(tails[name])
        print(f"- {name}: flush() after the last call took {tail.median:.2f} s median ({tail.low:.2f}-{tail.high:.2f})")
    print("- each lifecycle writes 1 assignment + 3 evaluations + 1 outcome row")
    print(f"- rows checked after every repetition: {'all complete and linked' if not problems else 'PROBLEMS'}")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
