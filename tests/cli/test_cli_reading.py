"""`slack-tasklog stats` and `slack-tasklog export`: the slash command's grammar, tables or JSON, CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from slack_tasklog import TaskLog
from slack_tasklog.cli.main import main

from tests.seeding import Round, SeedTask, seed

NOW = datetime.now(timezone.utc)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def seeded(tasklog: TaskLog, database_url: str) -> str:
    seed(
        tasklog,
        [
            SeedTask(NOW - timedelta(hours=1), text='=HYPERLINK("http://x")',
                     rounds=[Round("Grok", 92, evaluations=[("Grok", 92), ("Writer", 10)],
                                   runs=[(True, 3.0, timedelta(0), None)])],
                     votes=[("U2", True, True), ("U123", False, True)]),  # the requester's vote decides
            SeedTask(NOW - timedelta(hours=2), rounds=[Round("Grok", 60, runs=[(False, 5.0, timedelta(0), None)])],
                     votes=[("U2", True, True)]),
            SeedTask(NOW - timedelta(hours=3), rounds=[Round(None)]),
            SeedTask(NOW - timedelta(days=10), rounds=[Round("Writer", 70, runs=[(True, 1.0, timedelta(0), None)])]),
            SeedTask(NOW - timedelta(hours=1, minutes=5), team_id="T999", rounds=[Round("Writer", 70)]),
        ],
    )  # fmt: skip
    return database_url


def test_stats_for_people_and_for_scripts(seeded: str) -> None:
    code, out, _ = run("stats", "--database-url", seeded, "--team", "T111")
    assert code == 0, out
    assert out.startswith("Task log, the last 7 days: 3 tasks, 33.3% success (1 of 3 finished), 1 with no agent")
    assert "Grok" in out
    assert "Writer" not in out  # 10 days ago, and the other one is in another workspace
    assert "success by confidence" in out
    assert "People's verdict: 50.0% approved (1 of 2 voted), 1 reported successful but voted down" in out
    assert "50.0% of 2" in out  # Grok's approval, next to its reported success

    code, out, _ = run("stats", "all", "--json", "--database-url", seeded, "--team", "T111")
    assert code == 0
    data = json.loads(out)
    assert (data["tasks"], data["unassigned"], data["window"]) == (4, 1, "all time")
    assert [a["agent"] for a in data["agents"]] == ["Grok", "Writer"]
    grok = data["agents"][0]
    assert (grok["tasks"], grok["success_rate"]) == (2, 0.5)
    assert (grok["voted"], grok["approved"], grok["disagreed"], grok["approval_rate"]) == (2, 1, 1, 0.5)
    assert (data["voted"], data["approval_rate"]) == (2, 0.5)
    assert grok["median_execution_time"] == pytest.approx(4.0, rel=0.01)
    assert [band["tasks"] for band in data["calibration"]["Grok"]] == [0, 1, 0, 1]
    assert sum(day["tasks"] for day in data["days"]) == 4

    code, out, _ = run("stats", "30d", "--agent", "Writer", "--json", "--database-url", seeded)
    assert (code, json.loads(out)["tasks"]) == (0, 2)


def test_stats_show_tokens_and_cost_and_json_has_them_per_day(tasklog: TaskLog, database_url: str) -> None:
    from tests.reports.test_stats import record_usage_scenario

    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    record_usage_scenario(tasklog, day)
    code, out, _ = run("stats", "all", "--database-url", database_url)
    assert code == 0, out
    assert "1,600 tokens in, 250 out · cost 0.0075 (0.0037 a task, 0.0075 a success)" in out
    assert "cost  a task  a success" in out  # the agents' columns
    code, out, _ = run("stats", "all", "--json", "--database-url", database_url)
    data = json.loads(out)
    assert data["usage"]["input_tokens"] == 1600
    assert data["usage"]["cost_per_success"] == pytest.approx(0.0075)
    grok = next(a for a in data["agents"] if a["agent"] == "Grok")
    assert (grok["usage"]["costed"], grok["usage"]["cost_per_task"]) == (2, pytest.approx(0.00375))
    [day_grok] = [d for d in data["days"] if d["agent"] == "Grok"]
    assert (day_grok["day"], day_grok["usage"]["output_tokens"]) == (day.date().isoformat(), 200)
    assert day_grok["usage"]["cost"] == pytest.approx(0.0075)


def test_usage_errors_exit_2_and_unreadable_logs_exit_1(seeded: str, tmp_path: Path) -> None:
    code, _, err = run("stats", "banana", "--database-url", seeded)
    assert code == 2
    assert "'banana' is not a window" in err
    code, _, err = run("export", "7d", "--since", "2024-01-01", "--database-url", seeded)
    assert code == 2
    assert "not both" in err
    missing = tmp_path / "nothing-here.db"
    code, _, err = run("stats", "--database-url", f"sqlite:///{missing}")
    assert (code, err.strip()) == (1, f"Error: no task log at sqlite:///{missing}")
    assert not missing.exists()


def test_export_csv_to_a_file_and_jsonl_to_stdout(seeded: str, tmp_path: Path) -> None:
    target = tmp_path / "tasks.csv"
    code, _, err = run("export", "--team", "T111", "-o", str(target), "--database-url", seeded)
    assert code == 0, err
    assert "Exported 4 tasks (all time)" in err  # everything by default, unlike /tasklog export
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 4
    assert rows[-1]["request"].startswith("'=HYPERLINK")  # neutralised, as from Slack

    code, out, _ = run("export", "24h", "--format", "jsonl", "--agent", "Grok", "--database-url", seeded)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["assigned_agent"] for r in records] == ["Grok", "Grok"]
    [latest_round] = records[1]["rounds"]
    assert (latest_round["assigned_agent"], latest_round["evaluations"]) == ("Grok", {"Grok": 92, "Writer": 10})
    [run_] = records[1]["runs"]
    assert (run_["agent"], run_["success"], run_["execution_time"]) == ("Grok", True, 3.0)
    assert records[1]["request"] == '=HYPERLINK("http://x")'  # JSON is data, not a spreadsheet
