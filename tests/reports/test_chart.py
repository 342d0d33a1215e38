"""Charts: the PNG itself, `slack-tasklog chart`, `/tasklog stats chart`, and the hint when matplotlib is missing."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from slack_tasklog import TaskLog
from slack_tasklog.cli.main import main
from slack_tasklog.reports.chart import _figure, render_png
from slack_tasklog.reports.stats import Stats, compute_stats
from slack_tasklog.testing import FakeSlackAPI

from tests.seeding import Round, SeedTask, seed
from tests.slack.test_commands import ADMIN, build_driver

pytestmark = pytest.mark.backends("sqlite")
NOW = datetime.now(timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def seed_month(tasklog: TaskLog) -> None:
    tasks = []
    for day in range(20):
        for i, (agent, confidence, ok) in enumerate(
            [("Grok", 92, True), ("Grok", 55, False), ("Writer", 75, True), (None, None, False)]
        ):
            at = NOW - timedelta(days=day, minutes=10 + i)
            runs = [] if agent is None else [(ok, 1.5 + i, timedelta(0), None)]
            tasks.append(SeedTask(at, rounds=[Round(agent, confidence, runs=runs)]))
    seed(tasklog, tasks)


def stats_of(tasklog: TaskLog, **kwargs: object) -> Stats:
    with tasklog.engine.connect() as conn:
        return compute_stats(conn, **kwargs)  # type: ignore[arg-type]


def test_a_chart_of_a_month_and_of_nothing(tasklog: TaskLog) -> None:
    seed_month(tasklog)
    assert png_size(render_png(stats_of(tasklog), "Task log: all time")) == (1210, 1210)
    empty = stats_of(tasklog, since=NOW + timedelta(days=1))
    assert png_size(render_png(empty, "Task log: nothing")) == (1210, 1210)


def test_the_cli_writes_the_png(tasklog: TaskLog, database_url: str, tmp_path: Path) -> None:
    seed_month(tasklog)
    target = tmp_path / "tasks.png"
    result = CliRunner().invoke(main, ["chart", "--database-url", database_url, "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {target} (80 tasks, the last 30 days).\n"
    assert png_size(target.read_bytes()) == (1210, 1210)


def test_without_matplotlib_the_cli_says_what_to_install(tasklog: TaskLog, database_url: str, tmp_path: Path) -> None:
    seed_month(tasklog)
    # A fresh interpreter in which importing matplotlib fails, as where the extra is not installed.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from slack_tasklog.cli.main import main; "
        f"main(['chart', '--database-url', {database_url!r}, '-o', {str(tmp_path / 'x.png')!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: charts need matplotlib: pip install 'slack-tasklog[charts]'"
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
async def test_tasklog_stats_chart_uploads_the_png(api: FakeSlackAPI, database_url: str, kind: str) -> None:
    tasklog = TaskLog(database_url, admins=[ADMIN])
    try:
        seed_month(tasklog)
        driver = build_driver(api, tasklog, kind)
        response = await driver.send("stats chart 30d", user="UANYONE")  # stats are open to everyone
        assert response.status == 200
        uploaded = await driver.upload()
        assert png_size(uploaded.content) == (1210, 1210)
        assert (uploaded.channel, uploaded.filename) == ("C111", f"tasklog-T111-{(NOW - timedelta(days=30)):%Y%m%d}-"
                                                                  f"{NOW:%Y%m%d}.png")  # fmt: skip
        assert uploaded.initial_comment == "Task log chart for <@UANYONE>: the last 30 days."
    finally:
        tasklog.close()


def test_agent_names_are_plain_text_not_mathtext(tasklog: TaskLog) -> None:
    """An agent named ``$\\frac{$`` (mathtext that does not parse) used to take down every chart of its workspace."""
    names = ["$\\frac{$", "$x^2$", "a\\$b", "$", "\\"]
    tasks = [
        SeedTask(
            NOW - timedelta(days=day, minutes=i),
            rounds=[Round(name, 80, runs=[(day % 2 == 0, 1.0, timedelta(0), None)])],
        )
        for day in range(3)
        for i, name in enumerate(names)
    ]
    seed(tasklog, tasks)
    assert png_size(render_png(stats_of(tasklog), "Task log: $\\frac{$ only")) == (1210, 1210)


def test_every_agent_is_in_the_legends_whatever_its_name(tasklog: TaskLog) -> None:
    """matplotlib leaves labels starting with ``_`` out of a legend it collects itself."""
    names = ["_hidden", "$x$", "Grok"]
    run = (True, 1.0, timedelta(0), None)
    seed(
        tasklog,
        [SeedTask(NOW - timedelta(minutes=i), rounds=[Round(name, 80, runs=[run])]) for i, name in enumerate(names)],
    )
    figure = _figure(stats_of(tasklog), "Task log")
    # A zero-width space keeps "_hidden" in the legend on every matplotlib version; it draws as nothing.
    legends = [[text.get_text().lstrip("\u200b") for text in axes.get_legend().get_texts()] for axes in figure.axes]
    escaped = "\\$x\\$"  # drawn as "$x$", not as math
    assert [sorted(labels) for labels in legends] == [
        ["Grok", escaped, "_hidden"], ["Grok", escaped, "_hidden"], ["Grok", escaped, "_hidden", "perfectly calibrated"]
    ]  # fmt: skip


def test_the_peoples_approval_is_in_the_calibration_legend(tasklog: TaskLog) -> None:
    run = (True, 1.0, timedelta(0), None)
    seed(
        tasklog,
        [
            SeedTask(NOW - timedelta(minutes=1), rounds=[Round("Grok", 80, runs=[run])], votes=[("U2", True, True)]),
            SeedTask(NOW - timedelta(minutes=2), rounds=[Round("Grok", 90, runs=[run])], votes=[("U2", False, True)]),
            SeedTask(NOW - timedelta(minutes=3), rounds=[Round("Writer", 90, runs=[run])]),
        ],
    )
    figure = _figure(stats_of(tasklog), "Task log")
    labels = sorted(text.get_text() for text in figure.axes[2].get_legend().get_texts())
    assert labels == ["Grok (50% approved by people, 2 voted)", "Writer", "perfectly calibrated"]
