"""Instructions the SQLite writer executes per lifecycle: a count that does not depend on the neighbours.

Diagnostic, like ``bench_breakdown.py`` (it reaches into ``TaskLog._store``). On a shared machine the time of
``Store.write`` moved by a factor of two between runs of the same code, so changes to the writer were judged by the
instructions callgrind counts, which are the same on every run. Run it under valgrind, with instrumentation off until
the script switches it on around the measured writes (it calls ``callgrind_control``)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/writer.out \\
        .venv/bin/python benchmarks/count_writer.py -n 3000
    grep totals: /tmp/writer.out      # divide by the lifecycles printed

``PYTHONHASHSEED=0``: string hashes decide how far dict lookups probe, a few thousand instructions per lifecycle
from one seed to another. What is measured: N tasks captured through the middleware, N lifecycles (a round with
three evaluations, then its outcome) recorded through the decorators into a list, then ``Store.write`` on those
events in batches of 1,000, as the background writer does, the first batch left out (schema check, caches). Outside
valgrind the script just prints µs per lifecycle.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import time
from typing import Any

from _common import fresh_dir, parse_args
from bench_lifecycle import capture_tasks, evaluations_for, tasklog_bot
from slack_tasklog import TaskLog
from slack_tasklog.testing import FakeSlackAPI

BATCH = 1_000


def instrument(on: bool) -> None:
    """Switch callgrind's counting on or off for this process; nothing outside valgrind (which preloads itself)."""
    if "vgpreload" in os.environ.get("LD_PRELOAD", "") and shutil.which("callgrind_control"):
        command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
        subprocess.run(command, check=False, capture_output=True)


def main() -> None:
    def options(parser: Any) -> None:
        parser.add_argument("-n", type=int, default=3_000, help="lifecycles (default 3,000)")

    args = parse_args(__doc__.splitlines()[0], options)
    with FakeSlackAPI() as api, fresh_dir("count_writer-") as tmp:
        db = tmp / "tasklog.db"
        capturing = TaskLog(f"sqlite:///{db}")
        tasks = capture_tasks(api, capturing, args.n)
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
        gc.collect()
        instrument(True)
        started = time.perf_counter()
        for start in range(BATCH, len(events), BATCH):
            store.write(events[start : start + BATCH])
        elapsed = time.perf_counter() - started
        instrument(False)
        lifecycles = (len(events) - BATCH) // 2
        tasklog.engine.dispose()
    print(f"lifecycles written while counting: {lifecycles}; {elapsed / lifecycles * 1e6:.1f} µs per lifecycle")


if __name__ == "__main__":
    main()
