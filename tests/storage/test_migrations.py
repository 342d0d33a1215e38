"""Migrations on every backend: models and migrations agree, up and down and up again, adopting databases made
before migrations, refusing politely, and many processes starting at once."""

from __future__ import annotations

import importlib.util
import io
import logging
import multiprocessing
import shlex
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from slack_tasklog import TaskLog
from slack_tasklog.cli.main import main
from slack_tasklog.events import TaskRequested
from slack_tasklog.reports.stats import compute_stats
from slack_tasklog.storage.migrate import (
    SUMMARIES,
    VERSION_TABLE,
    MigrationRequiredError,
    SchemaMismatchError,
    SchemaNotReadyError,
    check,
    current,
    default_mode,
    downgrade,
    head,
    upgrade,
)
from slack_tasklog.storage.migrations._baseline import baseline_metadata
from slack_tasklog.storage.models import MYSQL_BINARY_COLLATION, Base
from slack_tasklog.storage.store import create_tasklog_engine
from sqlalchemy import Column, Engine, String, Table, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import query

HEAD = "0010"
TABLES = ("tasklog_tasks", "tasklog_follow_ups", "tasklog_assignments", "tasklog_evaluations", "tasklog_outcomes")
START = datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)


@pytest.fixture
def engine(empty_database_url: str) -> Iterator[Engine]:
    engine = create_tasklog_engine(empty_database_url)
    yield engine
    engine.dispose()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one() for name in TABLES}


def fill_baseline(engine: Engine, tasks: int = 30) -> None:
    """Rows as slack_tasklog wrote them before migrations, into the tables of then: every task a follow-up, a round
    with two evaluations and an outcome; every third round assigned nobody; emoji and a 20,000-character request."""
    tables = baseline_metadata().tables

    def t(name: str) -> Table:
        return tables[name]

    moments = [START + timedelta(minutes=i) for i in range(tasks)]
    threads = [f"{at.timestamp():.6f}" for at in moments]
    with engine.begin() as conn:
        # Ids from the database's own sequence, as they were got then: later inserts must not collide with these.
        conn.execute(
            insert(t("tasklog_tasks")),
            [
                {"team_id": "T1", "enterprise_id": None, "channel_id": "C1", "thread_ts": ts, "request_ts": ts,
                 "user_id": f"U{i % 4}", "request_text": "Résumé 🚀 " + "x" * (20_000 if i == 0 else i),
                 "requested_at": at, "recorded_at": at}
                for i, (ts, at) in enumerate(zip(threads, moments, strict=True))
            ],
        )  # fmt: skip
        task_ids = dict(conn.execute(select(t("tasklog_tasks").c.thread_ts, t("tasklog_tasks").c.id)).all())
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES[1:]}
        for i, (ts, at) in enumerate(zip(threads, moments, strict=True)):
            task_id = task_ids[ts]
            agent = None if i % 3 == 2 else "Grok"
            rows["tasklog_follow_ups"].append(
                {"task_id": task_id, "team_id": "T1", "channel_id": "C1", "ts": f"{at.timestamp() + 5:.6f}",
                 "user_id": "U9", "text": "more 🙏", "posted_at": at + timedelta(seconds=5)}
            )  # fmt: skip
            rows["tasklog_assignments"].append(
                {"id": f"a{i:031d}", "task_id": task_id, "team_id": "T1", "channel_id": "C1", "thread_ts": ts,
                 "agent": agent, "confidence": 92.0 if agent else None, "recorded_at": at + timedelta(seconds=1)}
            )  # fmt: skip
            rows["tasklog_evaluations"] += [
                {"assignment_id": f"a{i:031d}", "agent": "Grok", "confidence": 92.0},
                {"assignment_id": f"a{i:031d}", "agent": "Writer", "confidence": 30.0},
            ]
            rows["tasklog_outcomes"].append(
                {"id": f"o{i:031d}", "task_id": task_id, "team_id": "T1", "channel_id": "C1", "thread_ts": ts,
                 "agent": agent, "success": agent is not None, "execution_time": 1.5 if agent else 0.0,
                 "error_message": None if agent else "No agent confident enough",
                 "started_at": at + timedelta(seconds=1), "finished_at": at + timedelta(seconds=3)}
            )  # fmt: skip
        for name, values in rows.items():
            conn.execute(insert(t(name)), values)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in the columns of the first schema, in a stable order."""
    tables = baseline_metadata().tables
    with engine.connect() as conn:
        return {
            name: [
                tuple(row)
                for row in conn.execute(select(*tables[name].columns).order_by(*tables[name].primary_key.columns))
            ]
            for name in TABLES
        }


def mysql_collations(engine: Engine) -> dict[tuple[str, str], str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name LIKE 'tasklog\\_%' AND data_type = 'varchar'"
            )
        )
        summaries = ("tasklog_daily_stats", "tasklog_daily_calibration", "tasklog_daily_failures", "tasklog_feedback")
        return {(table, column): collation for table, column, collation in rows if table in (*TABLES, *summaries)}


# -- models and migrations agree ------------------------------------------------------------------------------------


def test_the_package_ships_its_migrations_as_resources() -> None:
    folder = resources.files("slack_tasklog.storage") / "migrations"
    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert {entry.name for entry in (folder / "versions").iterdir() if entry.name.endswith(".py")} == {
        "0001_initial.py",
        "0002_exact_ids_and_erasure.py",
        "0003_task_summaries_and_daily_stats.py",
        "0004_room_for_task_updates.py",
        "0005_evaluations_without_rowid.py",
        "0006_leaner_indexes.py",
        "0007_tokens_and_cost.py",
        "0008_events_out_of_order.py",
        "0009_feedback.py",
        "0010_votes_out_of_order.py",
    }
    assert head() == HEAD


def test_task_pages_leave_room_for_summary_updates_on_postgresql(engine: Engine, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("fillfactor is PostgreSQL's")

    def fillfactor() -> list[str] | None:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = to_regclass('tasklog_tasks')")
            ).scalar()

    upgrade(engine, "0003")
    assert fillfactor() is None
    upgrade(engine)  # migrated
    assert fillfactor() == ["fillfactor=75"]
    downgrade(engine, "0003")
    assert fillfactor() is None
    downgrade(engine, "base")
    upgrade(engine)  # made from the models
    assert fillfactor() == ["fillfactor=75"]


def test_evaluations_are_stored_by_their_key_on_sqlite(engine: Engine, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("WITHOUT ROWID is SQLite's")

    def shape() -> tuple[bool, list[tuple[str, str, float]]]:
        with engine.connect() as conn:
            declared = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasklog_evaluations'")
            ).scalar_one()
            rows = conn.execute(text("SELECT assignment_id, agent, confidence FROM tasklog_evaluations")).all()
        return declared.rstrip().upper().endswith("WITHOUT ROWID"), sorted(tuple(row) for row in rows)

    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tasklog_tasks (id, team_id, channel_id, thread_ts, request_ts, user_id, requested_at, "
                "recorded_at, follow_ups, rounds) VALUES (1, 'T1', 'C1', '1.0', '1.0', 'U1', '2026-11-26 00:00:00', "
                "'2026-11-26 00:00:00', 0, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO tasklog_assignments (id, task_id, thread_ts, recorded_at) "
                "VALUES ('a1', 1, '1.0', '2026-11-26 00:00:01')"
            )
        )
        conn.execute(text("INSERT INTO tasklog_evaluations VALUES ('a1', 'Grok', 90.0), ('a1', 'Writer', 30.5)"))
    kept = [("a1", "Grok", 90.0), ("a1", "Writer", 30.5)]
    assert shape() == (False, kept)
    upgrade(engine)  # migrated: every row kept
    assert shape() == (True, kept)
    assert check(engine) == HEAD
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the key still holds
        conn.execute(text("INSERT INTO tasklog_evaluations VALUES ('a1', 'Grok', 1.0)"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM tasklog_assignments WHERE id = 'a1'"))  # cascades
    assert shape() == (True, [])
    downgrade(engine, "0004")
    assert shape() == (False, [])
    downgrade(engine, "base")
    upgrade(engine)  # made from the models
    assert shape() == (True, [])


def test_models_and_migrations_agree(engine: Engine, backend: str) -> None:
    """Replaying the migrations gives what the models say (Alembic's ``check``), and so does a new database made
    from the models in one go, which is how ``upgrade`` builds an empty one."""
    assert upgrade(engine, "0001").after == "0001"
    result = upgrade(engine)
    assert (result.before, result.after, result.created) == ("0001", HEAD, False)
    assert check(engine) == HEAD
    migrated = mysql_collations(engine) if backend == "mariadb" else None
    assert downgrade(engine, "base") == (HEAD, None)

    result = upgrade(engine)
    assert (result.before, result.after, result.created) == (None, HEAD, True)
    assert check(engine) == HEAD
    if backend == "mariadb":
        # Alembic compares types, not collations: check those here, for both ways of getting to head.
        created = mysql_collations(engine)
        assert created == migrated
        assert set(created.values()) == {MYSQL_BINARY_COLLATION}
        assert len(created) == 42  # every id, ts, agent and emoji column


def test_check_finds_a_schema_that_drifted(engine: Engine) -> None:
    upgrade(engine)
    [index] = [ix for ix in Base.metadata.tables["tasklog_follow_ups"].indexes if ix.name.endswith("user_id")]
    with engine.begin() as conn:
        index.drop(conn)  # someone "tidied up" by hand
    with pytest.raises(SchemaMismatchError, match="ix_tasklog_follow_ups_user_id"):
        check(engine)


def test_upgrade_downgrade_upgrade_keeps_the_rows(engine: Engine) -> None:
    upgrade(engine, "0001")
    fill_baseline(engine)
    before = snapshot(engine)
    assert upgrade(engine).after == HEAD
    assert snapshot(engine) == before
    # 0003 worked out every task's latest round and the daily rollup from the rows already there.
    with engine.connect() as conn:
        stats = compute_stats(conn)
    assert (stats.tasks, stats.finished, stats.succeeded, stats.unassigned) == (30, 30, 20, 10)
    [grok] = stats.agents
    assert (grok.tasks, grok.median_execution_time, grok.mean_confidence) == (20, pytest.approx(1.5, rel=0.01), 92.0)
    assert downgrade(engine, "0001") == (HEAD, "0001")
    assert snapshot(engine) == before
    assert "text_erased_at" not in {column["name"] for column in inspect(engine).get_columns("tasklog_tasks")}
    assert downgrade(engine, "base") == ("0001", None)
    assert table_names(engine) & set(TABLES) == set()
    assert upgrade(engine, "0001").after == "0001"
    assert upgrade(engine).after == HEAD
    assert check(engine) == HEAD
    assert counts(engine) == dict.fromkeys(TABLES, 0)


def test_an_upgrade_in_steps_fills_the_summaries_at_its_last_step(engine: Engine) -> None:
    upgrade(engine, "0001")
    fill_baseline(engine)
    assert upgrade(engine, SUMMARIES).after == SUMMARIES  # not head: the writer's summary code cannot run yet
    assert upgrade(engine).after == HEAD
    with engine.connect() as conn:
        stats = compute_stats(conn)
    assert (stats.tasks, stats.finished, stats.succeeded, stats.unassigned) == (30, 30, 20, 10)


def test_tokens_and_cost_start_empty_on_an_upgraded_log_and_count_from_then_on(engine: Engine) -> None:
    upgrade(engine, "0001")
    fill_baseline(engine, tasks=6)
    before = snapshot(engine)
    assert upgrade(engine).after == HEAD
    with engine.connect() as conn:
        assert query_all(conn, "SELECT input_tokens, output_tokens, cost FROM tasklog_outcomes") == [(None,) * 3] * 6
        assert query_all(conn, "SELECT DISTINCT cost FROM tasklog_tasks") == [(None,)]
        stats = compute_stats(conn)
    assert (stats.tasks, stats.usage.input_tokens, stats.usage.cost, stats.usage.costed) == (6, 0, None, 0)
    tasklog = TaskLog(engine=engine, journal=False, prices={"Grok": {"input": 3.0, "output": 15.0}})
    try:

        @tasklog.track_outcome(agent="Grok")
        def process_assignment(thread_ts: str) -> dict[str, object]:
            return {"usage": {"input_tokens": 1000, "output_tokens": 200}}

        process_assignment(f"{START.timestamp():.6f}")  # the first task's thread
        assert tasklog.flush(10)
    finally:
        tasklog.close()
    with engine.connect() as conn:
        stats = compute_stats(conn)
    assert (stats.usage.input_tokens, stats.usage.output_tokens, stats.usage.costed) == (1000, 200, 1)
    assert stats.usage.cost == pytest.approx(0.006)
    # Down to 0006 and up again: the columns go and come back empty, every row of the first schema kept.
    assert downgrade(engine, "0006") == (HEAD, "0006")
    assert "cost" not in {column["name"] for column in inspect(engine).get_columns("tasklog_outcomes")}
    assert upgrade(engine).after == HEAD
    assert check(engine) == HEAD
    assert len(snapshot(engine)["tasklog_outcomes"]) == len(before["tasklog_outcomes"]) + 1


def query_all(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(text(sql))]


@pytest.mark.backends("mariadb")
def test_an_interrupted_mysql_upgrade_finishes_when_run_again(engine: Engine) -> None:
    """MySQL commits each DDL statement on its own: a 0002 cut short leaves some of it done, and no new revision."""
    upgrade(engine, "0001")
    fill_baseline(engine, tasks=5)
    with engine.begin() as conn:
        fk = "fk_tasklog_evaluations_assignment_id_tasklog_assignments"
        conn.execute(text(f"ALTER TABLE tasklog_evaluations DROP FOREIGN KEY {fk}"))
        conn.execute(text("ALTER TABLE tasklog_tasks ADD COLUMN text_erased_at DATETIME(6) NULL"))
        conn.execute(text("CREATE INDEX ix_tasklog_follow_ups_user_id ON tasklog_follow_ups (user_id)"))
    before = snapshot(engine)
    assert upgrade(engine).after == HEAD
    assert snapshot(engine) == before
    assert check(engine) == HEAD


# -- adopting databases made before migrations ----------------------------------------------------------------------


def test_a_database_made_by_create_all_is_adopted_without_losing_a_row(
    engine: Engine, empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    baseline_metadata().create_all(engine)
    fill_baseline(engine)
    # The host app's own Alembic history lives in the same database: ours must not touch it.
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('hostapp42')"))
        conn.execute(text("CREATE TABLE app_users (id INTEGER PRIMARY KEY)"))
    before, sizes = snapshot(engine), counts(engine)
    assert current(engine) is None

    # What a bot upgrading from a version without migrations does on its first write (SQLite's default; on servers,
    # `db upgrade` does the same).
    with caplog.at_level(logging.INFO, logger="slack_tasklog"):
        tasklog = TaskLog(empty_database_url, migrate="upgrade", journal=False)
        try:
            tasklog._record(TaskRequested("T1", None, "C1", "1800000000.000100", "1800000000.000100", "U1", "new"))
            assert tasklog.flush(30)
            assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(sizes["tasklog_tasks"] + 1,)]
            exported = tasklog.export_csv(io.StringIO())
        finally:
            tasklog.close()
    assert exported == sizes["tasklog_tasks"] + 1
    assert any("adopted the tables made before migrations" in r.getMessage() for r in caplog.records)

    after = snapshot(engine)
    assert after["tasklog_tasks"][:-1] == before["tasklog_tasks"]
    assert {name: rows for name, rows in after.items() if name != "tasklog_tasks"} == {
        name: rows for name, rows in before.items() if name != "tasklog_tasks"
    }
    assert current(engine) == HEAD
    assert check(engine) == HEAD
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [("hostapp42",)]
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [(HEAD,)]


@pytest.mark.parametrize("damage", ["missing table", "extra column"])
def test_unversioned_tables_of_another_shape_are_refused_untouched(engine: Engine, damage: str) -> None:
    metadata = baseline_metadata()
    if damage == "missing table":
        metadata.remove(metadata.tables["tasklog_evaluations"])
        expected = "tasklog_evaluations is missing"
    else:
        metadata.tables["tasklog_outcomes"].append_column(Column("reviewer", String(32)))
        expected = "tasklog_outcomes has unexpected reviewer"
    metadata.create_all(engine)
    before = table_names(engine)
    with pytest.raises(SchemaMismatchError, match=expected):
        upgrade(engine)
    assert current(engine) is None
    assert table_names(engine) - {VERSION_TABLE} == before


def test_a_database_from_a_newer_version_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(SchemaNotReadyError, match="0099"):
        upgrade(engine)
    with pytest.raises(MigrationRequiredError, match="does not know"):
        check(engine)


# -- TaskLog(migrate=...) -------------------------------------------------------------------------------------------


def test_defaults_upgrade_sqlite_and_check_servers(engine: Engine, backend: str) -> None:
    assert default_mode(engine) == ("upgrade" if backend == "sqlite" else "check")


def test_check_refuses_with_the_command_keeps_the_events_and_writes_them_once_upgraded(
    empty_database_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    upgrade(engine, "0001")
    fill_baseline(engine, tasks=3)
    # export_csv flushes for shutdown_timeout first: keep it short.
    tasklog = TaskLog(empty_database_url, migrate="check", shutdown_timeout=0.3)
    try:
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            for i in range(5):
                ts = f"{1_800_000_000 + i}.000100"
                tasklog._record(TaskRequested("T1", None, "C1", ts, ts, "U1", f"held {i}"))
            with pytest.raises(MigrationRequiredError, match="slack-tasklog db upgrade"):
                tasklog.export_csv(io.StringIO())
            assert tasklog.flush(0.5) is False
        warnings = [r.getMessage() for r in caplog.records if r.name == "slack_tasklog"]
        command = f"slack-tasklog db upgrade --database-url {shlex.quote(engine.url.render_as_string())}"
        assert any("is at revision 0001" in m and f"needs revision {HEAD}" in m and command in m for m in warnings), (
            warnings
        )
        assert tasklog.health().queued == 5
        assert tasklog.health().rejected == 0

        result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", empty_database_url])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Upgraded ")
        assert f"from 0001 to {HEAD}" in result.output

        assert tasklog.flush(30) is True
        assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(8,)]
        assert tasklog.health().rejected == 0
    finally:
        tasklog.close()


def test_off_leaves_the_schema_alone_but_never_writes_into_the_void(empty_database_url: str, engine: Engine) -> None:
    tasklog = TaskLog(empty_database_url, migrate="off")
    try:
        tasklog._record(TaskRequested("T1", None, "C1", "1.000100", "1.000100", "U1", "x"))
        assert tasklog.flush(1.0) is False  # no tables, and not ours to make: the event waits
        assert (tasklog.health().queued, tasklog.health().rejected) == (1, 0)
        assert table_names(engine) & set(TABLES) == set()
        upgrade(engine)  # the operator's doing
        assert tasklog.flush(30) is True
        assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [("x",)]
    finally:
        tasklog.close(timeout=0.5)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"migrate=\.\.\.\) must be one of 'upgrade', 'check', 'off'"):
        TaskLog("sqlite://", migrate="sometimes")  # type: ignore[arg-type]


# -- many processes at once -----------------------------------------------------------------------------------------


def start_and_record(url: str, worker: int, barrier: Any) -> None:
    barrier.wait(60)  # everyone has imported everything: start together
    tasklog = TaskLog(url, migrate="upgrade", journal=False)
    ts = f"{1_800_000_000 + worker}.000100"
    tasklog._record(TaskRequested("T1", None, "C1", ts, ts, "U1", f"from {worker}"))
    if not tasklog.close(timeout=60):
        raise SystemExit(f"worker {worker} could not write: {tasklog.health()}")


@pytest.mark.parametrize("fill", [False, True], ids=["empty", "made-before-migrations"])
# The test's own threads (pytest's, the database drivers') are no concern of the forked workers, which open their own.
@pytest.mark.filterwarnings("ignore:This process.*is multi-threaded:DeprecationWarning")
def test_processes_starting_at_once_migrate_once(
    empty_database_url: str, engine: Engine, fill: bool, tmp_path: Path
) -> None:
    if fill:
        baseline_metadata().create_all(engine)
        fill_baseline(engine, tasks=10)
    engine.dispose()  # no connection of ours may be inherited
    # fork: the children start at once, without importing everything again (spawn elsewhere).
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    workers = 4
    barrier = context.Barrier(workers)
    processes = [
        context.Process(target=start_and_record, args=(empty_database_url, i, barrier)) for i in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * workers
    assert current(engine) == HEAD
    assert counts(engine)["tasklog_tasks"] == workers + (10 if fill else 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(text(VERSION_TABLE))).scalar_one() == 1


# -- the CLI -------------------------------------------------------------------------------------------------------


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input, env=env)


def test_db_commands(empty_database_url: str, engine: Engine) -> None:
    shown = engine.url.render_as_string(hide_password=True)
    result = run("db", "upgrade", "0001", "--database-url", empty_database_url)
    assert (result.exit_code, result.output) == (0, f"Upgraded {shown} from nothing to 0001.\n")
    result = run("db", "current", "--database-url", empty_database_url)
    assert (result.exit_code, result.output) == (
        0,
        f"0001 (this slack-tasklog needs {HEAD}: run `slack-tasklog db upgrade`)\n",
    )
    result = run("db", "check", "--database-url", empty_database_url)
    assert result.exit_code == 1
    assert "is at revision 0001" in result.output
    assert "slack-tasklog db upgrade" in result.output
    # The URL may come from the environment, like every command's.
    result = run("db", "upgrade", env={"TASKLOG_DATABASE_URL": empty_database_url})
    assert (result.exit_code, result.output) == (0, f"Upgraded {shown} from 0001 to {HEAD}.\n")
    assert run("db", "current", "--database-url", empty_database_url).output == f"{HEAD} (head)\n"
    result = run("db", "check", "--database-url", empty_database_url)
    assert (result.exit_code, result.output) == (0, f"{shown} is at revision {HEAD} (head) and matches the models.\n")
    result = run("db", "upgrade", "--database-url", empty_database_url)
    assert result.output == f"{shown} is already at revision {HEAD}.\n"
    result = run("db", "downgrade", "0001", "--database-url", empty_database_url)
    assert (result.exit_code, result.output) == (0, f"Downgraded {shown} from {HEAD} to 0001.\n")
    result = run("db", "downgrade", "base", "--database-url", empty_database_url, input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output
    assert current(engine) == "0001"
    result = run("db", "downgrade", "base", "--yes", "--database-url", empty_database_url)
    assert result.output == f"Downgraded {shown} from 0001 to base (no task log tables).\n"
    result = run("db", "current", "--database-url", empty_database_url)
    assert result.output == "none: no task log tables (`slack-tasklog db upgrade` creates them)\n"


@pytest.mark.backends("sqlite")
def test_db_current_on_unversioned_tables_and_on_no_database(
    engine: Engine, empty_database_url: str, tmp_path: Path
) -> None:
    baseline_metadata().create_all(engine)
    result = run("db", "current", "--database-url", empty_database_url)
    assert result.output.startswith("none: tables made before migrations, not versioned yet")
    missing = tmp_path / "nowhere.db"
    for command in ("current", "check", "downgrade"):
        args = ["db", command, *(["0001"] if command == "downgrade" else []), "--database-url", f"sqlite:///{missing}"]
        result = run(*args)
        assert (result.exit_code, result.output) == (1, f"Error: no SQLite database at {missing}\n")
    assert not missing.exists()


@pytest.mark.backends("sqlite")
def test_a_missing_driver_is_an_install_hint_not_a_traceback() -> None:
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed here")
    result = run("db", "upgrade", "--database-url", "mysql://bot@127.0.0.1:1/tasks")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no driver for mysql databases: pip install 'slack-tasklog[mysql]'")
    assert "Traceback" not in result.output


def test_models_metadata_is_the_only_schema() -> None:
    # The naming convention gives every constraint a name migrations can refer to, on every backend.
    for table in Base.metadata.sorted_tables:
        assert all(constraint.name for constraint in table.constraints), table.name
        assert all(index.name for index in table.indexes), table.name


def test_rounds_and_outcomes_are_indexed_by_thread_only_while_waiting_for_a_task(engine: Engine, backend: str) -> None:
    def by_thread() -> dict[str, bool]:
        """Index name -> whether it is partial (only rows with no task)."""
        with engine.connect() as conn:
            if backend == "sqlite":
                rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
            elif backend == "postgresql":
                rows = conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
                ).all()
            else:
                rows = conn.execute(
                    text(
                        "SELECT DISTINCT index_name, '' FROM information_schema.statistics "
                        "WHERE table_schema = DATABASE()"
                    )
                ).all()
        return {
            name: "task_id IS NULL" in (sql or "").replace('"', "").replace("(", "").replace(")", "")
            for name, sql in rows
            if name.startswith("ix_")
            and name.endswith(("_thread_ts", "_user_id"))
            and "follow_ups" not in name
            and "feedback" not in name
        }

    partial = backend in ("sqlite", "postgresql")
    upgrade(engine)
    assert by_thread() == {
        "ix_tasklog_tasks_thread_ts": False,
        "ix_tasklog_assignments_thread_ts": partial,
        "ix_tasklog_outcomes_thread_ts": partial,
        "ix_tasklog_waiting_messages_thread_ts": False,  # every row there waits
        "ix_tasklog_waiting_votes_thread_ts": False,
    }
    downgrade(engine, "0005")
    assert by_thread() == {
        "ix_tasklog_tasks_thread_ts": False,
        "ix_tasklog_tasks_user_id": False,
        "ix_tasklog_assignments_thread_ts": False,
        "ix_tasklog_outcomes_thread_ts": False,
    }
    downgrade(engine, "base")
    upgrade(engine)  # made from the models
    assert by_thread()["ix_tasklog_assignments_thread_ts"] is partial
