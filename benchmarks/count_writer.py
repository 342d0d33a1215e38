"""Instructions per unit of work, counted by callgrind: a figure that does not depend on the neighbours.

Diagnostic, like ``bench_breakdown.py`` (it reaches into package internals). On a shared machine the time of
``Store.write`` moved by a factor of two between runs of the same code, so changes were judged by the instructions
callgrind counts, which are the same on every run (within ~1%). Run it under valgrind, with instrumentation off until
the script switches it on around the measured part (it calls ``callgrind_control``)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/writer.out \\
        .venv/bin/python benchmarks/count_writer.py -n 3000
    grep totals: /tmp/writer.out      # divide by the units printed

``PYTHONHASHSEED=0``: string hashes decide how far dict lookups probe, a few thousand instructions per lifecycle
from one seed to another. What is measured (``--what``):

- ``lifecycle`` (default): N tasks captured through the middleware, N lifecycles (a round with three evaluations,
  then its outcome) recorded through the decorators into a list, then ``Store.write`` on those events in batches of
  1,000, as the background writer does, the first batch left out (schema check, caches).
- ``import``: ``Store.write`` of an Approach 1 log of N lines (``bench_import.py``'s), parsed beforehand, in the
  import's batches of 5,000 events, the first one left out (``-n 25000``: 20,000 lines counted).
- ``decorators``: the bot's side of N lifecycles, ``track_assignment`` + ``track_outcome`` recording into a list.
- ``dispatch-bare``, ``dispatch``, ``dispatch-journal``: N ``App.dispatch`` of an app mention without the middleware,
  with it (``journal=False``), with ``journal=True``; the writer thread is not started, so only the request path is
  counted.

Outside valgrind the script just prints µs per unit.

Instructions are not the whole cost of the request path: inside Bolt's dispatch, the code of every C function our
middleware calls is cold (Bolt's own ~520k instructions push it out of the first-level caches), so a call of a
function Bolt never uses costs far more than its instructions. callgrind's cache and branch model counts those
misses too; ``--estimate`` turns such a run into kcachegrind's cycle estimate (instructions + 10 per first-level
miss or mispredicted branch + 100 per last-level miss) per unit::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --instr-atstart=no \\
        --callgrind-out-file=/tmp/journal.out \\
        .venv/bin/python benchmarks/count_writer.py -n 2000 --what dispatch-journal
    .venv/bin/python benchmarks/count_writer.py --estimate /tmp/journal.out -n 2000
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_tasklog import TaskLog
from slack_tasklog.cli.importer import _batches
from slack_tasklog.testing import FakeSlackAPI

from _common import build_app, fresh_dir, mention_requests, parse_args
from bench_import import write_log
from bench_lifecycle import capture_tasks, evaluations_for, tasklog_bot

BATCH = 1_000
WHAT = ("lifecycle", "import", "decorators", "dispatch-bare", "dispatch", "dispatch-journal")


def instrument(on: bool) -> None:
    """Switch callgrind's counting on or off for this process; nothing outside valgrind (which preloads itself)."""
    if "vgpreload" in os.environ.get("LD_PRELOAD", "") and shutil.which("callgrind_control"):
        command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
        subprocess.run(command, check=False, capture_output=True)


def counted(work: Callable[[], object]) -> float:
    """Seconds ``work()`` took, counted by callgrind."""
    gc.collect()
    instrument(True)
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    instrument(False)
    return elapsed


def lifecycles(api: FakeSlackAPI, tmp: Path, n: int) -> tuple[int, float]:
    db = tmp / "tasklog.db"
    capturing = TaskLog(f"sqlite:///{db}")
    tasks = capture_tasks(api, capturing, n)
    capturing.close()
    capturing.engine.dispose()

    tasklog = TaskLog(f"sqlite:///{db}")
    events: list[Any] = []
    tasklog._record = events.append  # type: ignore[method-assign]
    check_and_assign, agents = tasklog_bot(tasklog)
    for i, (thread_ts, text) in enumerate(tasks):
        agents[check_and_assign(thread_ts, evaluations_for(i))].process_assignment(thread_ts, text)
    store = tasklog._store
    with tasklog.engine.connect() as conn:
        learned: dict[str, Any] = {}
        store._load_threads(conn, {ts for ts, _ in tasks}, learned, reload=True)
    store._remember(learned)
    store.write(events[:BATCH])

    def write() -> None:
        for start in range(BATCH, len(events), BATCH):
            store.write(events[start : start + BATCH])

    elapsed = counted(write)
    tasklog.close()  # before its folder goes: a TaskLog closed only at exit would find its file deleted, and say so
    return (len(events) - BATCH) // 2, elapsed


def imported_lines(tmp: Path, n: int) -> tuple[int, float]:
    log = tmp / "task_logs.jsonl"
    write_log(log, n)
    tasklog = TaskLog(f"sqlite:///{tmp / 'tasklog.db'}")
    store = tasklog._store
    with log.open("rb") as lines:
        batches = list(_batches(lines, "T_IMPORTED", "No agent was confident enough", legacy=False))
    if len(batches) < 2:
        raise SystemExit("--what import needs more than one batch of 5,000 events: -n 10000 or more (25000 used)")
    store.write(batches[0].events)

    def write() -> None:
        for batch in batches[1:]:
            store.write(batch.events)

    elapsed = counted(write)
    tasklog.close()
    return sum(batch.lines for batch in batches[1:]), elapsed


def decorated_calls(tmp: Path, n: int) -> tuple[int, float]:
    tasklog = TaskLog(f"sqlite:///{tmp / 'tasklog.db'}")
    events: list[Any] = []
    tasklog._record = events.append  # type: ignore[method-assign]
    check_and_assign, agents = tasklog_bot(tasklog)
    work = [(f"{1_700_000_000 + i}.000100", f"request {i}", evaluations_for(i)) for i in range(n + 200)]
    for thread_ts, text, evaluations in work[:200]:
        agents[check_and_assign(thread_ts, evaluations)].process_assignment(thread_ts, text)

    def run() -> None:
        for thread_ts, text, evaluations in work[200:]:
            agents[check_and_assign(thread_ts, evaluations)].process_assignment(thread_ts, text)

    elapsed = counted(run)
    tasklog.close()
    return n, elapsed


def dispatches(api: FakeSlackAPI, tmp: Path, n: int, what: str) -> tuple[int, float]:
    tasklog = None
    if what != "dispatch-bare":
        tasklog = TaskLog(f"sqlite:///{tmp / 'tasklog.db'}", journal=what == "dispatch-journal")
        tasklog._writer._start = lambda: None  # type: ignore[method-assign] # no writer thread: the request path only
        # Nor a backlog, which a writer keeping up never has: a one-slot queue keeps the length it would.
        tasklog._writer._items = deque(maxlen=1)
    app = build_app(api, process_before_response=True, middleware=tasklog.middleware if tasklog else None)
    requests = mention_requests(n + 200)
    for request in requests[:200]:
        app.dispatch(request)

    journal = tasklog._writer.journal if tasklog is not None else None

    def run() -> None:
        for i, request in enumerate(requests[200:]):
            if journal is not None and i % 200 == 0:
                # What the writer does after each of bench_dispatch.py's blocks: the segment starts over, so the
                # appends go to pages already in memory, not ever new ones.
                journal.committed(i + 200, caught_up=True)
            app.dispatch(request)

    elapsed = counted(run)
    if tasklog is not None:
        tasklog.close(timeout=0)
    return n, elapsed


def estimate(path: str, units: int) -> str:
    """Instructions, misses and the cycle estimate per unit, from a callgrind run with --cache-sim and --branch-sim."""
    lines = Path(path).read_text().splitlines()
    names = next(line for line in lines if line.startswith("events:")).split()[1:]
    totals = dict(
        zip(names, (int(x) for x in next(x for x in lines if x.startswith("totals:")).split()[1:]), strict=True)
    )
    if "I1mr" not in totals or "Bcm" not in totals:
        raise SystemExit(f"{path}: run callgrind with --cache-sim=yes --branch-sim=yes")
    first = totals["I1mr"] + totals["D1mr"] + totals["D1mw"]
    last = totals["ILmr"] + totals["DLmr"] + totals["DLmw"]
    branches = totals["Bcm"] + totals["Bim"]
    cycles = totals["Ir"] + 10 * (first + branches) + 100 * last
    return (
        f"per unit: {totals['Ir'] / units:,.0f} instructions, {first / units:,.0f} first-level misses, "
        f"{last / units:,.1f} last-level misses, {branches / units:,.0f} mispredicted branches; "
        f"estimated cycles {cycles / units:,.0f}"
    )


def main() -> None:
    def options(parser: Any) -> None:
        parser.add_argument("-n", type=int, default=3_000, help="units: lifecycles, lines, dispatches (default 3,000)")
        parser.add_argument("--what", choices=WHAT, default="lifecycle", help="what to count (default lifecycle)")
        parser.add_argument(
            "--estimate", metavar="OUT", help="read a callgrind output file (cache and branch model on)"
        )

    args = parse_args(__doc__.splitlines()[0], options)
    if args.estimate:
        print(estimate(args.estimate, args.n))
        return
    with FakeSlackAPI() as api, fresh_dir("count_writer-") as tmp:
        if args.what == "lifecycle":
            units, elapsed = lifecycles(api, tmp, args.n)
        elif args.what == "import":
            units, elapsed = imported_lines(tmp, args.n)
        elif args.what == "decorators":
            units, elapsed = decorated_calls(tmp, args.n)
        else:
            units, elapsed = dispatches(api, tmp, args.n, args.what)
    print(f"{args.what}: {units} counted; {elapsed / units * 1e6:.1f} µs each")


if __name__ == "__main__":
    main()
