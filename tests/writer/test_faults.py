"""Faults under a running bot, real ones: the SQLite file deleted or replaced, the database read-only at start, a
database that never comes back at shutdown, a write lock held past the timeout, a server that kills the writer's
connection. Nothing acknowledged is lost or doubled, and what could not be done is said."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.events import AssignmentRecorded, TaskRequested
from slack_tasklog.storage.store import Store, create_tasklog_engine
from slack_tasklog.testing import app_mention, event_body, signed_request
from slack_tasklog.writer.background import BackgroundWriter
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import SERVER_URLS, _admin_engine, mounted_tmpfs, query

REPO = Path(__file__).resolve().parents[2]

sqlite_only = pytest.mark.backends("sqlite")


def thread_ts(i: int) -> str:
    return f"{1_700_000_000 + i}.000100"


def mention(app: App, i: int) -> None:
    assert app.dispatch(signed_request(event_body(app_mention(f"task {i}", ts=thread_ts(i))))).status == 200


def stored_threads(db: Path) -> list[tuple[str, int]]:
    """(thread_ts, rows) of every task in the file at ``db``, read by a connection of its own."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT thread_ts, count(*) FROM tasklog_tasks GROUP BY thread_ts").fetchall()


# -- the SQLite file deleted or replaced ----------------------------------------------------------------------------


def replace_with_a_copy(db: Path) -> None:
    """Put a consistent copy of the database in its place, as a restore from backup would."""
    copy = db.with_name("copy.db")
    with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    os.replace(copy, db)


@sqlite_only
@pytest.mark.parametrize("change", ["unlink", "replace"])
@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_a_sqlite_file_deleted_or_replaced_mid_traffic_gets_every_later_event_once(
    database_url: str, make_app: Callable[..., App], caplog: pytest.LogCaptureFixture, change: str, journal: bool
) -> None:
    db = Path(make_url(database_url).database or "")
    tasklog = TaskLog(database_url, journal=journal)
    app = make_app(tasklog)
    total = 600
    changed_before = threading.Event()
    changed_at: list[int] = []

    def traffic() -> None:
        for i in range(total):
            if i == total // 3:
                changed_before.wait(10)  # the change happens with a third of the traffic sent, more to come
            mention(app, i)
            time.sleep(0.002)

    sender = threading.Thread(target=traffic)
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        sender.start()
        while tasklog.health().written < total // 4:
            time.sleep(0.005)
        db.unlink() if change == "unlink" else replace_with_a_copy(db)
        changed_at.append(total // 3)
        changed_before.set()
        sender.join(30)
        assert tasklog.close() is True
    health = tasklog.health()
    assert (health.dropped, health.left_in_journal, health.lost_at_shutdown) == (0, 0, 0)
    rows = dict(stored_threads(db))
    # Every event acknowledged after the change is in the file now at the path, once.
    assert all(rows.get(thread_ts(i)) == 1 for i in range(changed_at[0], total)), rows
    assert set(rows.values()) == {1}
    if change == "replace":
        assert len(rows) >= total // 4  # the copy's tasks are still there
    else:
        assert db.stat().st_mode & 0o777 == 0o600  # created again owner-only, like the first time
    assert any("was deleted or replaced while open" in r.getMessage() for r in caplog.records)


@sqlite_only
def test_a_sqlite_file_deleted_while_idle_is_created_again_by_migration(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(make_url(database_url).database or "")
    engine = create_tasklog_engine(database_url)
    writer = BackgroundWriter(Store(engine), maintenance_interval=0.1)
    try:
        writer.submit(TaskRequested("T1", None, "C1", thread_ts(1), thread_ts(1), "U1", "before"))
        assert writer.flush(10)
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            db.unlink()
            deadline = time.monotonic() + 10
            while not (db.exists() and _has_tasks_table(db)) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _has_tasks_table(db), "the file was not created again while the writer was idle"
        assert any("was deleted or replaced while open" in r.getMessage() for r in caplog.records)
        writer.submit(TaskRequested("T1", None, "C1", thread_ts(2), thread_ts(2), "U1", "after"))
        assert writer.flush(10)
        assert stored_threads(db) == [(thread_ts(2), 1)]
    finally:
        writer.close(5)
        engine.dispose()


@sqlite_only
def test_close_says_so_when_the_sqlite_file_was_deleted_after_the_last_write(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(make_url(database_url).database or "")
    tasklog = TaskLog(database_url)
    tasklog._record(TaskRequested("T1", None, "C1", thread_ts(1), thread_ts(1), "U1", "written, then deleted"))
    assert tasklog.flush(10)
    db.unlink()
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert tasklog.close() is True  # written: the file it went to was deleted afterwards
    assert any("was deleted or replaced after the task log last wrote to it" in r.getMessage() for r in caplog.records)
    assert not db.exists()  # said, not re-created
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        tasklog.close()  # the close at exit: said once is enough (and a file deleted after close() is no news)
    assert not [r for r in caplog.records if "deleted or replaced" in r.getMessage()]


def _has_tasks_table(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'tasklog_tasks'").fetchall())


# -- read-only at start, broken at shutdown ------------------------------------------------------------------------


@sqlite_only
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_database_read_only_at_start_recovers_once_the_permission_is_fixed(database_url: str, what: str) -> None:
    """The bot runs in a child process without the capabilities that let root ignore file modes."""
    db = Path(make_url(database_url).database or "")
    TaskLog(database_url).close()  # the database exists, at the current schema, when the bot starts
    seconds = 5.0
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-m",
         "tests.writer._read_only_bot", str(db), what, str(seconds)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["written_while_read_only"] is False
    # Fixing the permission is enough: no restart.
    assert (result["landed"], result["rows"], result["closed"], result["dropped"]) == (True, 20, True, 0), result
    # Attempts back off (0.1 s doubling, at most 30 s apart) instead of hammering the file.
    assert 1 <= result["attempts"] < 10 * seconds, result


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A disk of the test's own, to be remounted read-only: root ignores file modes, not a read-only mount."""
    with mounted_tmpfs(tmp_path / "mount", "8m") as mount:
        yield mount


def remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True, timeout=30)


@sqlite_only
def test_close_with_a_database_that_stays_broken_backs_off_returns_in_time_and_the_next_start_recovers(
    mounted: Path, tmp_path: Path, make_app: Callable[..., App]
) -> None:
    url = f"sqlite:///{mounted / 'tasklog.db'}"
    journal = tmp_path / "journal"  # on a disk that works: the database's is the one that broke
    TaskLog(url).close()
    remount(mounted, "ro")
    broken = TaskLog(url, journal=journal, shutdown_timeout=2)
    app = make_app(broken)
    for i in range(10):
        mention(app, i)
    assert broken.flush(1) is False
    retried_before_close = broken.health().retried
    started = time.monotonic()
    assert broken.close() is False
    assert time.monotonic() - started < 2 + 1.5
    health = broken.health()
    assert (health.left_in_journal, health.lost_at_shutdown, health.queued) == (10, 0, 10)
    # The shutdown loop backs off too: a few attempts in its 2 s, not thousands.
    assert health.retried - retried_before_close < 15, health

    remount(mounted, "rw")
    fixed = TaskLog(url, journal=journal)
    try:
        assert fixed.flush(20)
        assert query(fixed, "SELECT count(*), count(DISTINCT thread_ts) FROM tasklog_tasks") == [(10, 10)]
        assert fixed.health().replayed == 10
    finally:
        fixed.close()


# -- a read that cannot be consistent in time -----------------------------------------------------------------------


@sqlite_only
def test_export_while_another_connection_holds_the_write_lock_says_so(database_url: str, tmp_path: Path) -> None:
    db = Path(make_url(database_url).database or "")
    tasklog = TaskLog(database_url, shutdown_timeout=1)
    try:
        tasklog._record(TaskRequested("T1", None, "C1", thread_ts(1), thread_ts(1), "U1", "written"))
        assert tasklog.flush(10)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer, holding the lock for longer than the export waits
        try:
            tasklog._record(TaskRequested("T1", None, "C1", thread_ts(2), thread_ts(2), "U1", "waiting"))
            out = tmp_path / "tasks.csv"
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"1 events recorded by this process are not in sqlite:///"):
                tasklog.export_csv(out)
            assert time.monotonic() - started < 5
            assert not out.exists()  # no stale file left behind either
        finally:
            other.rollback()
            other.close()
        assert tasklog.export_csv(tmp_path / "tasks.csv") == 2
    finally:
        tasklog.close()


# -- a server that kills the writer's connection --------------------------------------------------------------------


@pytest.mark.backends("postgresql", "mariadb")
def test_the_server_killing_the_writers_connections_mid_traffic_loses_nothing(
    database_url: str, backend: str, make_app: Callable[..., App]
) -> None:
    name = make_url(database_url).database if backend == "mariadb" else f"tasklog_faults_{os.getpid()}"
    url = database_url
    if backend == "postgresql":
        # Named, so that only this test's connections are killed on the shared server.
        url = make_url(database_url).update_query_dict({"application_name": name}).render_as_string(False)
        kill = (f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
                " AND pid <> pg_backend_pid()")  # fmt: skip
    admin = _admin_engine(SERVER_URLS[backend])

    def kill_ours() -> int:
        with admin.connect() as conn:
            if backend == "postgresql":
                return len(conn.execute(text(kill)).all())
            ids = conn.execute(
                text("SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"),
                {"db": name},
            ).scalars()
            killed = 0
            for connection_id in ids:
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
                    killed += 1
            return killed

    tasklog = TaskLog(url)
    app = make_app(tasklog)
    total = 300

    def traffic() -> None:
        for i in range(total):
            mention(app, i)
            time.sleep(0.003)

    sender = threading.Thread(target=traffic)
    try:
        sender.start()
        killed = 0
        while sender.is_alive():
            time.sleep(0.2)
            killed += kill_ours()
        sender.join()
        assert killed >= 1
        assert tasklog.flush(30)
        assert query(tasklog, "SELECT count(*), count(DISTINCT thread_ts) FROM tasklog_tasks") == [(total, total)]
        assert tasklog.health().dropped == 0
    finally:
        tasklog.close()


def test_a_table_gone_missing_holds_the_events_until_it_is_back(tasklog: TaskLog) -> None:
    """A schema changed under the bot (a table renamed or dropped by hand, a privilege revoked) is the database's
    fault, not the events': they are held and written once it is fixed, never refused one by one."""
    tasklog._record(TaskRequested("T1", None, "C1", "1700000000.000100", "1700000000.000100", "U1", "first"))
    assert tasklog.flush(10)
    with tasklog.engine.connect() as conn:
        conn.execute(text("ALTER TABLE tasklog_evaluations RENAME TO tasklog_evaluations_away"))
        conn.commit()
    tasklog._record(
        AssignmentRecorded("a1", "1700000000.000100", "C1", "T1", "Grok", 90.0, (("Grok", 90.0),), 1.7e9, "")
    )
    assert not tasklog.flush(1.5)
    health = tasklog.health()
    assert (health.rejected, health.queued) == (0, 1)
    with tasklog.engine.connect() as conn:
        conn.execute(text("ALTER TABLE tasklog_evaluations_away RENAME TO tasklog_evaluations"))
        conn.commit()
    assert tasklog.flush(40)
    assert query(tasklog, "SELECT assignment_id, agent FROM tasklog_evaluations") == [("a1", "Grok")]
    assert tasklog.health().rejected == 0
