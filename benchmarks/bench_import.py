"""Import rate: `slack-tasklog import` of a design-document Approach 1 log (issue 5: ≥ 50,000 lines/s, memory flat).

The log is written exactly as the design document's `log_task` sketch writes it (task_request, evaluations,
task_complete per task; one task in ten unassigned, so it has no task_complete line), then imported with the same
code path as the CLI (`import_jsonl` into a `Store`), into a fresh SQLite file. Peak memory is the child process's
max RSS, measured at two sizes: flat means the larger import does not need more.

    .venv/bin/python benchmarks/bench_import.py            # 1,000,000 lines
    .venv/bin/python benchmarks/bench_import.py --quick    # 100,000 lines
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


def write_log(path: Path, lines: int) -> int:
    start = datetime(2024, 1, 1)
    written = 0
    with path.open("w") as file:
        task = 0
        while written < lines:
            when = start + timedelta(seconds=task)
            thread_ts = f"{1_704_067_200 + task}.000100"
            evaluations = {"Grok": (task * 7) % 100, "Writer": (task * 13) % 100, "Builder": (task * 17) % 100}
            agent, confidence = max(evaluations.items(), key=lambda item: item[1])
            unassigned = task % 10 == 0
            entries = [
                {"event_type": "task_request", "user_id": f"U{task % 500:05d}", "request": f"please do task {task}",
                 "channel_id": "C1", "thread_ts": thread_ts},
                {"event_type": "evaluations", "thread_ts": thread_ts, "evaluations": evaluations,
                 "assigned_to": None if unassigned else agent, "max_confidence": 0 if unassigned else confidence},
            ]  # fmt: skip
            if not unassigned:
                entries.append(
                    {"event_type": "task_complete", "thread_ts": thread_ts, "agent": agent, "success": task % 7 != 0,
                     "execution_time": 1.5 + task % 40}
                )  # fmt: skip
            for entry in entries:
                file.write(json.dumps({"timestamp": when.isoformat(), **entry}) + "\n")
                written += 1
            task += 1
    return written


def run_import(log: str, database: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from slack_tasklog._import import import_jsonl
    from slack_tasklog._store import Store, create_tasklog_engine

    engine = create_tasklog_engine(f"sqlite:///{database}")
    store = Store(engine, cache_size=10_000)
    store.ensure_schema()
    started = time.perf_counter()
    with open(log, "rb") as file:
        report = import_jsonl(file, store)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((report.lines, report.events, report.skipped, elapsed, peak_kb))


def measure(lines: int, directory: Path) -> tuple[int, int, int, float, int]:
    log = directory / f"task_logs-{lines}.jsonl"
    write_log(log, lines)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=run_import, args=(str(log), str(directory / f"import-{lines}.db"), queue))
    process.start()
    result = queue.get()
    process.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
    with tempfile.TemporaryDirectory(prefix="tasklog-import-") as tmp:
        rows = [(size, *measure(size, Path(tmp))) for size in sizes]
    print("| lines in the log | lines read | events | skipped | seconds | lines/s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for size, lines, events, skipped, elapsed, peak_kb in rows:
        rate = lines / elapsed
        print(f"| {size:,} | {lines:,} | {events:,} | {skipped} | {elapsed:.2f} | {rate:,.0f} | {peak_kb / 1024:.0f} |")
    small, large = rows[0][-1], rows[-1][-1]
    print(f"\nPeak RSS, largest ÷ smallest import: {large / small:.2f} (flat memory: close to 1)")


if __name__ == "__main__":
    main()
