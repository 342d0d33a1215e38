"""Bad input gets a clear answer and costs nothing: purge and forget ask first, nothing is created by a command that
reads or erases, an export never writes over the database it reads, a mistyped URL gets one line of advice."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from slack_tasklog import TaskLog
from slack_tasklog.cli import main as cli
from slack_tasklog.cli.main import main

from tests.conftest import query
from tests.seeding import SeedTask, seed

NOW = datetime.now(timezone.utc)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    return lines[0]


@pytest.fixture
def seeded(tasklog: TaskLog, database_url: str) -> str:
    seed(
        tasklog,
        [
            SeedTask(NOW - timedelta(days=400), user_id="U1", text="ancient"),
            SeedTask(NOW - timedelta(days=100), user_id="U2", text="old"),
            SeedTask(NOW - timedelta(hours=2), user_id="U1", text="recent"),
        ],
    )
    return database_url


def task_texts(tasklog: TaskLog) -> list[str | None]:
    return [row[0] for row in query(tasklog, "SELECT request_text FROM tasklog_tasks ORDER BY requested_at")]


@pytest.fixture
def interactive(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if a person sat at a terminal (CliRunner's stdin is not one)."""
    monkeypatch.setattr(cli, "_interactive", lambda: True)


# -- durations ---------------------------------------------------------------------------------------------------


def test_purge_6m_is_refused_as_ambiguous(seeded: str, tasklog: TaskLog) -> None:
    code, _, err = run("purge", "--older-than", "6m", "--yes", "--database-url", seeded)
    assert code == 2
    assert "6m is ambiguous: write 6min for minutes or 6mo for months" in one_line(err)
    assert task_texts(tasklog) == ["ancient", "old", "recent"]


def test_months_and_years(seeded: str, tasklog: TaskLog) -> None:
    code, out, err = run("purge", "--older-than", "1y", "--yes", "--database-url", seeded)
    assert code == 0, err
    assert "older than 1y (365 days)" in out
    assert task_texts(tasklog) == ["old", "recent"]
    code, out, err = run("purge", "--older-than", "3mo", "--yes", "--database-url", seeded)
    assert (code, task_texts(tasklog)) == (0, ["recent"])


def test_a_purge_under_a_day_warns(seeded: str, tasklog: TaskLog) -> None:
    code, out, err = run("purge", "--older-than", "90min", "--yes", "--database-url", seeded)
    assert code == 0, err
    assert "Warning: 90min is under a day" in err
    assert "Deleted 3 tasks older than 90min." in out


# -- asking first --------------------------------------------------------------------------------------------------


def test_purge_says_what_it_will_delete_and_asks(seeded: str, tasklog: TaskLog, interactive: None) -> None:
    code, out, _ = run("purge", "--older-than", "30d", "--database-url", seeded, input="n\n")
    assert code == 1
    assert "This deletes 2 tasks requested before" in out
    assert "older than 30d (30 days)" in out
    assert "Delete them? [y/N]" in out
    assert task_texts(tasklog) == ["ancient", "old", "recent"]
    code, out, _ = run("purge", "--older-than", "30d", "--database-url", seeded, input="y\n")
    assert code == 0, out
    assert out.endswith("Deleted 2 tasks older than 30d.\n")
    assert task_texts(tasklog) == ["recent"]


def test_forget_says_what_it_will_erase_and_asks(seeded: str, tasklog: TaskLog, interactive: None) -> None:
    code, out, _ = run("forget", "--user", "U1", "--database-url", seeded, input="n\n")
    assert code == 1
    assert "This erases 2 texts written by U1" in out
    assert task_texts(tasklog) == ["ancient", "old", "recent"]
    code, out, _ = run("forget", "--user", "U1", "--database-url", seeded, input="y\n")
    assert code == 0
    assert "Erased 2 texts written by U1.\n" in out
    assert task_texts(tasklog) == [None, "old", None]


@pytest.mark.parametrize(
    "args", [["purge", "--older-than", "30d"], ["forget", "--user", "U1"]], ids=["purge", "forget"]
)
def test_without_a_terminal_it_needs_yes(seeded: str, tasklog: TaskLog, args: list[str]) -> None:
    code, _, err = run(*args, "--database-url", seeded, input="y\n")  # piped: nobody to ask
    assert code == 2
    assert "add --yes" in one_line(err)
    assert task_texts(tasklog) == ["ancient", "old", "recent"]

    code, out, err = run(*args, "--dry-run", "--database-url", seeded)
    assert code == 0, err
    assert "Dry run: nothing changed." in out
    assert task_texts(tasklog) == ["ancient", "old", "recent"]

    code, out, err = run(*args, "--yes", "--database-url", seeded)
    assert code == 0, err
    assert "Deleted 2 tasks older than 30d.\n" in out or "Erased 2 texts written by U1.\n" in out


@pytest.mark.backends("sqlite")
def test_a_real_pipe_without_yes_is_refused(seeded: str, tasklog: TaskLog) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "slack_tasklog.cli.main", "purge", "--older-than", "30d", "--database-url", seeded],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "add --yes" in one_line(done.stderr)
    assert task_texts(tasklog) == ["ancient", "old", "recent"]


# -- nothing created -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["forget", "--user", "U1", "--yes"],
        ["purge", "--older-than", "30d", "--yes"],
        ["stats"],
        ["export"],
        ["chart"],
        ["db", "current"],
    ],
    ids=lambda args: args[0] if args[0] != "db" else "db-current",
)
def test_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "typo" / "tasklog.db"
    code, out, err = run(*args, "--database-url", f"sqlite:///{missing}")
    assert code == 1, out + err
    assert str(missing) in one_line(err)
    assert not missing.parent.exists()


def test_db_upgrade_creates_a_file_but_no_folders(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    code, _, err = run("db", "upgrade", "--database-url", f"sqlite:///{missing}")
    assert code == 1
    assert f"no folder {missing.parent}" in one_line(err)
    assert not (tmp_path / "nonexistent").exists()
    code, _, err = run("db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 0, err
    assert (tmp_path / "new.db").exists()


# -- never writing over the database -------------------------------------------------------------------------------


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
@pytest.mark.parametrize("command", ["export", "chart"])
def test_output_over_the_database_is_refused(
    seeded: str, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch, command: str, suffix: str
) -> None:
    database = Path(seeded.removeprefix("sqlite:///"))
    size = database.stat().st_size
    monkeypatch.chdir(database.parent)
    code, _, err = run(command, "-o", f"./{database.name}{suffix}", "--database-url", seeded)
    assert code == 2
    assert "is the task log's database" in one_line(err)
    assert database.stat().st_size == size
    assert task_texts(tasklog) == ["ancient", "old", "recent"]


@pytest.mark.backends("sqlite")
def test_output_over_the_database_through_a_relative_url_and_a_link(
    seeded: str, tasklog: TaskLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Path(seeded.removeprefix("sqlite:///"))
    (tmp_path / "link.db").symlink_to(database)
    monkeypatch.chdir(database.parent)
    code, _, err = run("export", "-o", str(tmp_path / "link.db"), "--database-url", f"sqlite:///{database.name}")
    assert code == 2, err
    assert task_texts(tasklog) == ["ancient", "old", "recent"]


# -- URLs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("garbage", "not a database URL: write sqlite:///PATH, postgresql+psycopg://"),
        ("postgres://bot:secret@db.example/app", "use postgresql+psycopg://bot:***@db.example/app"),
        ("postgres+psycopg://bot@db.example/app", "use postgresql+psycopg://bot@db.example/app"),
        ("http://example.com/", "no database type 'http'"),
    ],
)
@pytest.mark.parametrize("command", [["stats"], ["purge", "--older-than", "1d", "--yes"], ["db", "upgrade"]])
def test_url_mistakes_get_one_line_of_advice(url: str, advice: str, command: list[str]) -> None:
    code, _, err = run(*command, "--database-url", url)
    assert code == 2
    line = one_line(err)
    assert advice in line
    assert "secret" not in line


@pytest.mark.backends("sqlite")
def test_a_read_only_database_is_called_read_only(seeded: str, tasklog: TaskLog) -> None:
    database = seeded.removeprefix("sqlite:///")
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"
    code, out, err = run("forget", "--user", "U1", "--yes", "--database-url", read_only)
    assert code == 1, out
    assert "is read-only" in one_line(err)
    code, out, err = run("stats", "--database-url", read_only)
    assert code == 0, err  # reading is fine


@pytest.mark.backends("sqlite")
@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="root with setpriv only")
def test_a_read_only_file_is_called_read_only(seeded: str, tasklog: TaskLog) -> None:
    """As root (CI containers), drop the capability that writes anyway, as an ordinary user would be refused."""
    tasklog.close()
    database = Path(seeded.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.chmod(0o444)
    database.parent.chmod(0o555)
    drop = "-dac_override,-dac_read_search"
    done = {}
    try:
        for command in (["purge", "--older-than", "1d", "--yes"], ["stats"]):
            done[command[0]] = subprocess.run(
                ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--", sys.executable, "-m",
                 "slack_tasklog.cli.main", *command, "--database-url", seeded],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
    finally:
        database.parent.chmod(0o755)
        for path in database.parent.glob(database.name + "*"):
            path.chmod(0o644)
    for command, result in done.items():
        assert result.returncode == 1, (command, result.stdout + result.stderr)
        line = one_line(result.stderr)
        assert "is read-only here" in line
        assert "unreachable" not in line


def test_an_old_schema_is_one_line_for_a_reader(empty_database_url: str) -> None:
    from slack_tasklog.storage.migrate import upgrade
    from slack_tasklog.storage.store import create_tasklog_engine

    engine = create_tasklog_engine(empty_database_url)
    try:
        upgrade(engine, "0001")
    finally:
        engine.dispose()
    for command in (["stats"], ["export"], ["purge", "--older-than", "1d", "--yes"]):
        code, _, err = run(*command, "--database-url", empty_database_url)
        assert code == 1
        line = one_line(err)
        assert "slack-tasklog db upgrade" in line
        assert "retried" not in line


def test_usage_errors_are_one_line(seeded: str) -> None:
    code, _, err = run("stats", "banana", "--database-url", seeded)
    assert code == 2
    assert "'banana' is not a window" in one_line(err)
    code, _, err = run("forget", "--database-url", seeded)
    assert code == 2
    assert "Missing option '--user'" in one_line(err)


def test_the_module_runs_as_a_script() -> None:
    # The subprocess tests above run `python -m slack_tasklog.cli.main`.
    done = subprocess.run(
        [sys.executable, "-m", "slack_tasklog.cli.main", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("slack-tasklog ")
