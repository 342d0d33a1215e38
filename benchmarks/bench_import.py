"""Import rate: `slack-tasklog import` of a design-document Approach 1 log (issue 5: ≥ 50,000 lines/s, memory flat).

The log is written exactly as the design document's `log_task` sketch writes it (task_request, evaluations,
task_complete per task; one task in ten unassigned, so it has no task_complete line), then imported with the same
code path as the CLI (`import_file` into a `Store`, inside the CLI's `fewer_collections`), into a fresh SQLite
file, once in one process and once with the lines parsed by a second process (`parallel=True`, what the CLI does
for files of 16 MB or more), alternating. Peak memory is the importing process's max RSS (and the parser's),
measured at two sizes: flat means the larger import does not need more.

    .venv/bin/python benchmarks/bench_import.py            # 1,000,000 lines
    .venv/bin/python benchmarks/bench_import.py --quick    # 20,000 and 100,000 lines
    .venv/bin/python benchmarks/bench_import.py --repeat 2 # each mode twice
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

from _common import environment_lines


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
            stamps = [when, when]
            if not unassigned:
                took = 1.5 + task % 40
                entries.append(
                    {"event_type": "task_complete", "thread_ts": thread_ts, "agent": agent, "success": task % 7 != 0,
                     "execution_time": took}
                )  # fmt: skip
                # Logged when the work is done, as the sketch's log_task does: it started when the round was made.
                stamps.append(when + timedelta(seconds=took))
            for entry, stamp in zip(entries, stamps, strict=True):
                file.write(json.dumps({"timestamp": stamp.isoformat(), **entry}) + "\n")
                written += 1
            task += 1
    return written


def run_import(log: str, database: str, parallel: bool, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from slack_tasklog.cli.importer import fewer_collections, import_file
    from slack_tasklog.storage.store import Store, create_tasklog_engine

    engine = create_tasklog_engine(f"sqlite:///{database}")
    store = Store(engine, cache_size=10_000)
    store.ensure_schema()
    started = time.perf_counter()
    with fewer_collections():  # as `slack-tasklog import` runs it
        report = import_file(Path(log), store, parallel=parallel)
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if parallel else 0
    out.put((report.lines, report.events, report.skipped, elapsed, peak_kb, child_kb))


def measure(log: Path, database: Path, parallel: bool) -> tuple[int, int, int, float, int, int]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=run_import, args=(str(log), str(database), parallel, queue))
    process.start()
    result = queue.get()
    process.join()
    database.unlink()
    return result  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode, alternating")
    args = parser.parse_args()
    print("\n".join(environment_lines()))
    sizes = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tasklog-import-") as tmp:
        for size in sizes:
            log = Path(tmp) / f"task_logs-{size}.jsonl"
            write_log(log, size)
            for _ in range(args.repeat):
                for parallel in (False, True):
                    result = measure(log, Path(tmp) / "import.db", parallel)
                    rows.append((size, "parsed by a second process" if parallel else "one process", *result))
    headers = ["lines in the log", "import", "lines read", "events", "skipped", "seconds", "lines/s"]
    print("| " + " | ".join([*headers, "peak RSS (MB), importer / parser"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for size, mode, lines, events, skipped, elapsed, peak_kb, child_kb in rows:
        rate = lines / elapsed
        child = f" / {child_kb / 1024:.0f}" if child_kb else ""
        print(
            f"| {size:,} | {mode} | {lines:,} | {events:,} | {skipped} | {elapsed:.2f} | {rate:,.0f} "
            f"| {peak_kb / 1024:.0f}{child} |"
        )
    for mode in ("one process", "parsed by a second process"):
        peaks = [row[-2] for row in rows if row[1] == mode]
        print(
            f"\nPeak RSS of the importer, largest ÷ smallest import, {mode}: {max(peaks) / min(peaks):.2f} (flat: ~1)"
        )


if __name__ == "__main__":
    main()
