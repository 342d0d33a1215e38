"""One bad line costs that line only: it is listed with its number, every other line is imported, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from slack_tasklog import TaskLog
from slack_tasklog.cli.importer import import_file
from slack_tasklog.cli.main import main

from tests.conftest import query


def request(n: int, **fields: object) -> str:
    line = {"timestamp": "2024-01-15T10:30:00", "event_type": "task_request", "user_id": "U1", "request": f"task {n}",
            "channel_id": "C1", "thread_ts": f"1705314600.{n:06d}", **fields}  # fmt: skip
    return json.dumps(line)


def complete(n: int, execution_time: str) -> str:
    return (
        f'{{"timestamp": "2024-01-15T10:31:00", "event_type": "task_complete", "thread_ts": "1705314600.{n:06d}", '
        f'"agent": "Grok", "success": true, "execution_time": {execution_time}}}'
    )


# Each of these used to abort its whole batch (up to 5,000 good lines), without a line number, exit status 1.
BAD = {
    "lone surrogate": request(900, request="\ud800"),  # json.dumps writes it as the escape "\ud800"
    "deep nesting": '{"event_type": "evaluations", "evaluations": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "NaN": complete(1, "NaN"),
    "Infinity": complete(2, "Infinity"),
    "1e308": complete(3, "1e308"),
    "too long for the column": request(901, user_id="U" * 500),
    "NUL": request(902, request="a\u0000b"),
}


def write_log(path: Path) -> dict[int, str]:
    """Good lines around the bad ones; returns {line number: which bad line}."""
    lines, bad = [], {}
    for n in range(1, 11):
        lines.append(request(n))
    for name, line in BAD.items():
        lines.append(line)
        bad[len(lines)] = name
        lines.append(request(len(lines) + 100))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


def stored_requests(tasklog: TaskLog) -> int:
    return int(query(tasklog, "SELECT count(*) FROM tasklog_tasks")[0][0])


def test_bad_lines_are_listed_and_the_rest_imported(tmp_path: Path, tasklog: TaskLog, database_url: str) -> None:
    log = tmp_path / "task_logs.jsonl"
    bad = write_log(log)
    result = CliRunner().invoke(main, ["import", "-q", str(log), "--database-url", database_url])
    assert result.exit_code == 2, result.output
    listed = {int(line.split(":")[0].split()[1]) for line in result.stderr.splitlines() if line.startswith("  line ")}
    # NUL and an over-long id are fine for SQLite (not for PostgreSQL): every line the import refused is listed.
    may_pass = {n for n, name in bad.items() if name in ("NUL", "too long for the column")}
    assert set(bad) - may_pass <= listed <= set(bad)
    assert "Traceback" not in result.output
    # The ten first lines, the good line after each bad one, and the bad ones this backend could store.
    assert stored_requests(tasklog) == 10 + len(BAD) + len(may_pass - listed)
    assert f"{len(listed)} skipped" in result.stdout


def test_the_reasons_name_the_problem(tmp_path: Path, tasklog: TaskLog) -> None:
    log = tmp_path / "task_logs.jsonl"
    bad = write_log(log)
    report = import_file(log, tasklog._store, parallel=False)
    reasons = {bad[number]: reason for number, reason in report.problems}
    assert "surrogate" in reasons["lone surrogate"]
    assert "nested too deeply" in reasons["deep nesting"]
    for name in ("NaN", "Infinity", "1e308"):
        assert "execution_time must be" in reasons[name], reasons[name]


@pytest.mark.backends("postgresql")
def test_what_the_database_refuses_costs_that_line_only(tmp_path: Path, tasklog: TaskLog) -> None:
    log = tmp_path / "task_logs.jsonl"
    bad = write_log(log)
    for parallel in (False, True):
        report = import_file(log, tasklog._store, parallel=parallel)
        assert sorted(number for number, _ in report.problems) == sorted(bad), report.problems
        reasons = {bad[number]: reason for number, reason in report.problems}
        assert reasons["NUL"].startswith("the database refused it: ")
        assert "too long" in reasons["too long for the column"]
        assert stored_requests(tasklog) == 10 + len(BAD)
