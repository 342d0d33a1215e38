"""The export figure: CSV rows per second, and the exporting process's peak memory, over 1,000,000 tasks.

The task log is the cached one of ``_dataset.py`` (90 days of tasks, 1.1 rounds each with 3 evaluations, an outcome
per finished round), in SQLite and its copy in PostgreSQL. Each export runs in a fresh child process
(``multiprocessing``, spawn) that makes a ``TaskLog`` on the database (``journal=False``: a reader has nothing to
journal; ``migrate="upgrade"``, a no-op at head) and calls ``tasklog.export_csv(path)`` for the whole log to a file
in ``$TMPDIR``. Rate = rows returned ÷ the time of that call. Peak memory is the child's peak RSS (the
high-water mark of its resident set, imports included: ``VmHWM``), read in the child after the export; the child's
resident set just before the call is shown too, so the export's own share is the difference.

SQLite and PostgreSQL alternate, ``--repeat`` times each, in an order rotated each repetition. The row count must
equal the tasks in the database, every time; the script exits 1 otherwise.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from _common import environment_lines, fresh_dir, markdown_table, parse_args, source_fingerprint, summarize
from _dataset import POSTGRES_URL, postgres_available, postgres_dataset, sqlite_dataset

SPAWN = mp.get_context("spawn")


@dataclass(frozen=True)
class Export:
    rows: int
    seconds: float
    rss_before_mb: float  # resident set just before export_csv (imports, engine)
    peak_mb: float  # ru_maxrss after it
    file_mb: float


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    # Not Linux: ru_maxrss (KB on Linux, bytes on macOS; only a fallback here).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_child(url: str, dest: str, out: Any) -> None:
    from slack_tasklog import TaskLog

    tasklog = TaskLog(url, migrate="upgrade", journal=False)
    tasklog._store.ensure_schema()  # the schema check, before the clock
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    rows = tasklog.export_csv(dest)
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a spawned child's ru_maxrss (and the parent's
    # RUSAGE_CHILDREN) starts at the RSS of the process that forked it.
    peak = _status_mb("VmHWM")
    tasklog.close()
    out.put(Export(rows, seconds, before, peak, Path(dest).stat().st_size / 1e6))


def export_in_child(url: str, dest: Path) -> Export:
    out = SPAWN.Queue()
    child = SPAWN.Process(target=export_child, args=(url, str(dest), out))
    child.start()
    try:
        result: Export = out.get(timeout=1800)
    finally:
        child.join(timeout=60)
        dest.unlink(missing_ok=True)
    return result


def count_tasks(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one())
    finally:
        engine.dispose()


def databases(count: int, *, postgres: bool) -> dict[str, str]:
    found = {"SQLite": f"sqlite:///{sqlite_dataset(count)}"}
    if postgres:
        found["PostgreSQL"] = postgres_dataset(count)
    return found


def measure(count: int, repeat: int, *, postgres: bool = True) -> tuple[dict[str, list[Export]], list[str]]:
    """Export each backend's ``count``-task log ``repeat`` times, alternating; returns the exports and problems."""
    urls = databases(count, postgres=postgres)
    expected = {name: count_tasks(url) for name, url in urls.items()}
    exports: dict[str, list[Export]] = {name: [] for name in urls}
    problems: list[str] = []
    names = list(urls)
    with fresh_dir("bench_export-") as tmp:
        for rep in range(repeat):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                result = export_in_child(urls[name], tmp / "export.csv")
                exports[name].append(result)
                if result.rows != expected[name]:
                    problems.append(f"{name}: {result.rows} rows exported, {expected[name]} tasks in the database")
                print(f"  rep {rep + 1}/{repeat} {name}: {result.rows / result.seconds:,.0f} rows/s, "
                      f"peak {result.peak_mb:.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
    return exports, problems


def table(exports: dict[str, list[Export]]) -> str:
    rows = []
    for name, results in exports.items():
        rate = summarize([r.rows / r.seconds for r in results])
        peak = summarize([r.peak_mb for r in results])
        before = summarize([r.rss_before_mb for r in results])
        seconds = summarize([r.seconds for r in results])
        rows.append(
            [
                name,
                f"{results[0].rows:,}",
                f"**{rate.median:,.0f}** ({rate.low:,.0f}-{rate.high:,.0f})",
                f"{1e6 / rate.median:.1f}",
                f"{seconds.median:.1f}",
                f"**{peak.median:.0f}** ({peak.low:.0f}-{peak.high:.0f})",
                f"{before.median:.0f}",
                f"{results[0].file_mb:.0f}",
            ]
        )
    headers = ["database", "rows", "rows/s, median (min-max)", "µs per row", "s per export", "peak RSS MB",
               "RSS before the call MB", "CSV MB"]  # fmt: skip
    return markdown_table(headers, rows)


def main() -> int:
    def options(parser: Any) -> None:
        parser.add_argument("-n", "--tasks", type=int, help="tasks in the database (default 1000000, quick 10000)")
        parser.add_argument("--repeat", type=int, help="exports per database (default 2, quick 3)")
        parser.add_argument("--no-postgres", action="store_true", help="SQLite only")

    args = parse_args(__doc__.splitlines()[0], options)
    count = args.tasks or (10_000 if args.quick else 1_000_000)
    repeat = args.repeat or (3 if args.quick else 2)
    postgres = not args.no_postgres
    if postgres and (why_not := postgres_available()) is not None:
        print(f"- PostgreSQL at {POSTGRES_URL} does not answer ({why_not}): SQLite only", file=sys.stderr)
        postgres = False
    env = environment_lines()
    code_before = source_fingerprint()
    exports, problems = measure(count, repeat, postgres=postgres)
    print()
    print(f"## CSV export of {count:,} tasks (`TaskLog.export_csv` to a file, in a fresh process)")
    print()
    print("\n".join(env))
    if source_fingerprint() != code_before:
        print("- WARNING: the package's source changed during the run; these figures mix two versions")
    print()
    print(table(exports))
    print()
    print("- target (issue 6): >= 100,000 rows/s, peak RSS <= 200 MB")
    print(f"- rows = tasks in the database, every export: {'yes' if not problems else 'NO'}")
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
