"""Nothing lost, nothing doubled: the journal, outages, kill -9, many writers, real processes and servers."""

from __future__ import annotations

import mmap
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.events import TaskRequested, encode_event
from slack_tasklog.tasklog import default_journal_dir
from slack_tasklog.testing import app_mention, event_body, signed_request
from slack_tasklog.writer.journal import Journal, read_segment
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import _workers
from tests.conftest import TcpForwarder, ThrowawayPostgres, free_port, migrate_to_head, postgres_url, query

REPO = Path(__file__).resolve().parents[2]


# About the journal's files beside a SQLite database.
sqlite_only = pytest.mark.backends("sqlite")


def request(i: int) -> TaskRequested:
    ts = f"{1_700_000_000 + i}.000100"
    return TaskRequested("T1", None, "C1", ts, ts, "U1", f"task {i}")


def assert_complete(tasklog: TaskLog, tasks: int, *, follow_ups: bool = True) -> None:
    """Exactly ``tasks`` tasks, each with one follow-up, one round of three evaluations and one outcome."""
    counts = query(
        tasklog,
        "SELECT (SELECT count(*) FROM tasklog_tasks), "
        "(SELECT count(*) FROM tasklog_follow_ups), "
        "(SELECT count(*) FROM tasklog_assignments WHERE task_id IS NOT NULL), "
        "(SELECT count(*) FROM tasklog_evaluations), "
        "(SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NOT NULL), "
        "(SELECT count(DISTINCT task_id) FROM tasklog_outcomes)",
    )
    assert counts == [(tasks, tasks if follow_ups else 0, tasks, 3 * tasks, tasks, tasks)]


# -- the journal itself -----------------------------------------------------------------------------------------


def test_default_journal_places(tmp_path: Path) -> None:
    assert default_journal_dir(make_url(f"sqlite:///{tmp_path}/bot/tasklog.db")) == (
        tmp_path / "bot" / "tasklog.db.tasklog-journal"
    )
    assert default_journal_dir(make_url("sqlite://")) is None
    assert default_journal_dir(make_url("sqlite:///:memory:")) is None
    server = default_journal_dir(make_url("postgresql+psycopg://bot:s3cret@db.internal/tasks"))
    assert server is not None
    assert server.parent == tmp_path / "xdg-data" / "slack_tasklog" / "journal"
    # The password is not part of the key: rotating it must not orphan the journal.
    assert server == default_journal_dir(make_url("postgresql+psycopg://bot:rotated@db.internal/tasks"))
    assert "s3cret" not in str(server)


@pytest.fixture
def journaled(database_url: str) -> Iterator[TaskLog]:
    log = TaskLog(database_url, journal=True)
    yield log
    log.close()


@sqlite_only
def test_the_journal_is_off_unless_asked_for(tasklog: TaskLog) -> None:
    # It fits the request path's budget, but costs the decorators' ingest rate (benchmarks/README.md): opt-in.
    assert tasklog.health().journal_dir is None


@sqlite_only
def test_the_journal_is_trimmed_once_everything_is_committed(journaled: TaskLog, database_url: str) -> None:
    tasklog = journaled
    for i in range(200):
        tasklog._record(request(i))
    assert tasklog.flush(10)
    health = tasklog.health()
    assert health.journal_bytes == 0
    assert health.journal_dir == str(Path(database_url.removeprefix("sqlite:///")).with_suffix(".db.tasklog-journal"))
    assert (health.queued, health.written, health.dropped, health.spilled) == (0, 200, 0, 0)
    tasklog.close()
    assert list(Path(health.journal_dir).iterdir()) == []


@sqlite_only
@pytest.mark.backends("sqlite")
def test_the_writer_faults_pages_in_ahead_of_the_appends(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    events = [TaskRequested("T1", None, "C1", f"{i}.000100", f"{i}.000100", "U1", "x" * 900) for i in range(3000)]
    for index, event in enumerate(events[:1000], start=1):
        assert journal.append(encode_event(index, event), index)
    journal.prefault()
    [segment] = journal._segments
    if journal._populate is not None:  # Linux 5.14+
        assert segment.populated >= segment.position
        assert segment.populated % mmap.PAGESIZE == 0
    for index, event in enumerate(events[1000:], start=1001):
        assert journal.append(encode_event(index, event), index)
        if index % 250 == 0:
            journal.prefault()
    # What the pages hold is what was appended, whatever was faulted in when.
    found, unreadable = read_segment(segment.path)
    assert (found, unreadable) == (events, 0)
    journal.close(everything_committed=True)


@pytest.mark.backends("sqlite")
def test_every_kind_of_record_reads_back_as_it_was_written() -> None:
    from slack_tasklog.events import SlackEvent, decode_event

    body = {"type": "event_callback"}  # in memory only: never journaled
    cases = [
        SlackEvent('{"text": "héllo \U0001f600"}', "T1", None, "UBOT", True, body),
        SlackEvent("{}", None, "E1", None, False),
        # Written as marshal: a lone surrogate (not UTF-8), an id holding the text record's separator.
        SlackEvent('{"text": "\udc80"}', "T1", None, None, True),
        SlackEvent("{}", "T\x1f1", None, None, True),
        request(1),
    ]
    for index, event in enumerate(cases, start=1):
        record = encode_event(index, event)
        expected = event._replace(body=None) if isinstance(event, SlackEvent) else event
        # A text record leaves its index out (the reader counts records); a marshalled one keeps it.
        assert decode_event(record) == (None if record[:1] == b"\x1d" else index, expected)
    # The common case is the text record; the odd ones fall back to marshal.
    assert [encode_event(1, event)[:1] == b"\x1d" for event in cases] == [True, True, False, False, False]
    # A SlackEvent journaled by an earlier version (marshal, or a text record with its index) still reads.
    import marshal

    old = marshal.dumps((5, 5, "{}", "T1", None, "UBOT", True))
    assert decode_event(old) == (5, SlackEvent("{}", "T1", None, "UBOT", True))
    assert decode_event(b"\x1e7\x1f1\x1fT1\x1f\x1fUBOT\x1f{}") == (7, SlackEvent("{}", "T1", None, "UBOT", True))
    for bad in (
        b"\x1e",
        b"\x1e1\x1f2\x1f\x1f\x1f\x1f{}",
        b"\x1ex\x1f1\x1f\x1f\x1f\x1f{}",
        b"\x1e1\x1f1\xff",
        b"\x1d1\x1f1\x1f\x1f\x1f\x1f{}",  # a number where none belongs
        b"\x1d\x1f1\x1f\x1f\x1f",
    ):
        with pytest.raises(ValueError, match="not a journal record"):
            decode_event(bad)


@pytest.mark.backends("sqlite")
def test_a_record_is_visible_only_once_its_length_is_written(tmp_path: Path) -> None:
    """An append writes the bytes, then the length: a process killed before that last step leaves the segment as it
    was. That needs zeroes past the last record, even in a segment started over (its old records are zeroed)."""
    journal = Journal(tmp_path / "journal")
    first = TaskRequested("T1", None, "C1", "1.000100", "1.000100", "U1", "a longer request " * 20)
    second, third = request(2), request(3)
    assert journal.append(encode_event(1, first), 1)
    journal.committed(1, caught_up=True)  # started over from its start
    [segment] = journal._segments
    start = segment.position
    assert segment.map[start : start + len(encode_event(1, first)) + 8] == bytes(len(encode_event(1, first)) + 8)
    record = encode_event(2, second)
    # What an append killed just before its last step leaves behind:
    segment.map[start + 4 : start + 4 + len(record)] = record
    assert read_segment(segment.path) == ([], 0)
    assert journal.append(record, 2)
    assert read_segment(segment.path) == ([second], 0)
    assert journal.append(encode_event(3, third), 3)
    assert read_segment(segment.path) == ([second, third], 0)
    journal.close(everything_committed=True)


@pytest.mark.backends("sqlite")
def test_a_failed_append_leaves_its_segment_for_a_new_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A failed copy may leave bytes past the end, where appends expect zeroes: that segment takes no more."""
    journal = Journal(tmp_path / "journal")
    assert journal.append(encode_event(1, request(1)), 1)
    [broken] = journal._segments
    broken.map.close()  # what a failing copy looks like from here
    assert not journal.append(encode_event(2, request(2)), 2)
    assert "cannot write the journal" in caplog.text
    assert journal.append(encode_event(3, request(3)), 3)
    assert len(journal._segments) == 2
    assert read_segment(journal._segments[1].path) == ([request(3)], 0)
    journal.close(everything_committed=True)


def test_journal_files_are_private(journaled: TaskLog) -> None:
    tasklog = journaled
    tasklog._record(request(1))
    directory = Path(tasklog.health().journal_dir or "")
    [segment] = directory.iterdir()
    assert segment.stat().st_mode & 0o777 == 0o600


def test_overflow_spills_to_the_journal_then_lands_once(postgres_schema: str) -> None:
    forwarder = TcpForwarder(free_port(), ("127.0.0.1", 5432))
    tasklog = TaskLog(postgres_url(postgres_schema, port=forwarder.port), max_queue=50, journal=True)
    try:
        for i in range(2_000):
            assert tasklog._writer.submit(request(i))
            tasklog._record(request(i))  # every event twice: a redelivery
        health = tasklog.health()
        assert health.in_memory <= 50
        assert health.spilled >= 3_900
        assert health.dropped == 0
        assert health.journal_bytes > 100_000
        forwarder.start()
        assert tasklog.flush(60)
        assert query(tasklog, "SELECT count(*), count(DISTINCT thread_ts) FROM tasklog_tasks") == [(2_000, 2_000)]
        health = tasklog.health()
        assert (health.queued, health.journal_bytes) == (0, 0)
        # Back to normal: new events go to memory again.
        tasklog._record(request(5_000))
        assert tasklog.health().spilled == health.spilled
        assert tasklog.flush(10)
    finally:
        tasklog.close(timeout=5)
        forwarder.stop()


def test_events_left_at_shutdown_are_written_by_the_next_start(tmp_path: Path, postgres_schema: str) -> None:
    journal = tmp_path / "journal"
    down = TaskLog(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", journal=journal)
    for i in range(30):
        down._record(request(i))
    assert down.close(timeout=0.5) is False
    assert down.stats.left_in_journal == 30
    assert len(list(journal.iterdir())) == 1

    up = TaskLog(postgres_url(postgres_schema), journal=journal)
    try:
        assert up.flush(30)  # the recovery started with the TaskLog, before any new event
        assert query(up, "SELECT count(*) FROM tasklog_tasks") == [(30,)]
        assert up.health().replayed == 30
        assert list(journal.iterdir()) == []
    finally:
        up.close()


# -- kill -9 --------------------------------------------------------------------------------------------------------


def run_and_kill(database_url: str, journal: Path, after: float) -> list[int]:
    """Start a bot process that records lifecycles and says which ones returned; SIGKILL it after ``after`` s."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests._workers", database_url, "3", "1000000", str(journal)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    returned: list[int] = []
    assert child.stdout is not None

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            returned.append(int(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not returned and time.monotonic() < deadline:  # wait for the child to be recording (imports take a while)
        time.sleep(0.01)
    time.sleep(after)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    reader.join(10)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert returned, "the child recorded nothing before it was killed"
    return returned


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_point_loses_nothing_and_doubles_nothing(tmp_path: Path, seed: int) -> None:
    database_url = f"sqlite:///{tmp_path / 'tasklog.db'}"
    journal = tmp_path / "journal"
    returned = run_and_kill(database_url, journal, after=random.Random(seed).uniform(0.2, 1.0))
    orphans = list(journal.iterdir())
    assert len(orphans) == 1

    tasklog = TaskLog(database_url, journal=journal)
    try:
        assert tasklog.flush(60)
        done = [_workers.thread_ts(3, i) for i in returned]
        rows = query(
            tasklog,
            "SELECT t.thread_ts, "
            "(SELECT count(*) FROM tasklog_follow_ups f WHERE f.task_id = t.id), "
            "(SELECT count(*) FROM tasklog_assignments a WHERE a.task_id = t.id), "
            "(SELECT count(*) FROM tasklog_evaluations e JOIN tasklog_assignments a ON a.id = e.assignment_id "
            " WHERE a.task_id = t.id), "
            "(SELECT count(*) FROM tasklog_outcomes o WHERE o.task_id = t.id) "
            "FROM tasklog_tasks t",
        )
        by_thread = {thread: counts for thread, *counts in rows}
        # Every lifecycle whose record calls returned is there, complete, exactly once.
        assert [by_thread.get(thread) for thread in done] == [[1, 1, 3, 1]] * len(done)
        # Whatever the child was in the middle of is there at most once.
        assert all(counts[0] <= 1 and counts[1] <= 1 and counts[3] <= 1 for counts in by_thread.values())
        assert query(tasklog, "SELECT count(*) FROM tasklog_assignments WHERE task_id IS NULL") == [(0,)]
        assert list(journal.iterdir()) == []
    finally:
        tasklog.close()


@pytest.mark.slow
def test_kill_9_with_the_database_down_recovers_everything_from_the_journal(
    tmp_path: Path, postgres_schema: str
) -> None:
    journal = tmp_path / "journal"
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    returned = run_and_kill(unreachable, journal, after=0.5)
    tasklog = TaskLog(postgres_url(postgres_schema), journal=journal)
    try:
        assert tasklog.flush(60)
        assert tasklog.health().replayed >= 4 * len(returned)
        # Everything that returned, and no more than one lifecycle in flight beyond it.
        [(tasks,)] = query(tasklog, "SELECT count(*) FROM tasklog_tasks")
        assert len(returned) <= tasks <= len(returned) + 1
        [(outcomes, distinct)] = query(tasklog, "SELECT count(*), count(DISTINCT task_id) FROM tasklog_outcomes")
        assert outcomes == distinct >= len(returned)
    finally:
        tasklog.close()


# -- many writers ---------------------------------------------------------------------------------------------------

# About 5,000 events a process: a mention, a follow-up, a round and an outcome per task, and every tenth task a
# retried mention, its message copy and a redelivered follow-up.
TASKS_PER_PROCESS = 1_163


def run_workers(database_url: str, processes: int, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_workers.worker_main,
            args=(database_url, worker, TASKS_PER_PROCESS, str(tmp_path / f"journal-{worker}")),
        )
        for worker in range(processes)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(300)
    assert [process.exitcode for process in workers] == [0] * processes


@pytest.mark.slow
def test_eight_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'tasklog.db'}"
    run_workers(database_url, 8, tmp_path)
    tasklog = TaskLog(database_url, journal=False)
    try:
        assert_complete(tasklog, 8 * TASKS_PER_PROCESS)
    finally:
        tasklog.close()


@pytest.mark.slow
@pytest.mark.backends("postgresql", "mariadb")
def test_four_processes_share_one_database_server(tmp_path: Path, database_url: str) -> None:
    run_workers(database_url, 4, tmp_path)
    tasklog = TaskLog(database_url, journal=False)
    try:
        assert_complete(tasklog, 4 * TASKS_PER_PROCESS)
    finally:
        tasklog.close()


# -- a real PostgreSQL stopped mid-run ----------------------------------------------------------------------------


@pytest.fixture
def throwaway_schema(throwaway_postgres: ThrowawayPostgres) -> Iterator[str]:
    engine = create_engine(throwaway_postgres.url, isolation_level="AUTOCOMMIT")
    schema = f"run_{os.getpid()}_{time.monotonic_ns()}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = (
        make_url(throwaway_postgres.url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    migrate_to_head(url)  # a server's TaskLog checks the schema rather than creating it
    yield url
    engine = create_engine(throwaway_postgres.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.mark.slow
def test_ten_thousand_tasks_through_a_ten_second_postgresql_outage(
    throwaway_postgres: ThrowawayPostgres, throwaway_schema: str, make_app: Callable[..., App]
) -> None:
    tasklog = TaskLog(throwaway_schema, max_queue=5_000, journal=True)
    app, _, run = _workers.build(tasklog)
    timings: dict[str, list[float]] = {"up": [], "down": []}
    state = {"phase": "up"}

    def outage() -> None:
        time.sleep(1.0)
        throwaway_postgres.stop()
        state["phase"] = "down"
        time.sleep(10.0)
        throwaway_postgres.start()
        state["phase"] = "back"

    stopper = threading.Thread(target=outage)
    stopper.start()
    try:
        i = 0
        while i < 10_000 or stopper.is_alive():
            if i < 10_000:
                ts = _workers.thread_ts(7, i)
                body = event_body(app_mention(f"task {i}", ts=ts))
                request = signed_request(body)
                started = time.perf_counter()
                assert app.dispatch(request).status == 200
                if state["phase"] in timings:
                    timings[state["phase"]].append(time.perf_counter() - started)
                app.dispatch(signed_request(body, retry_num=1))  # Slack's retry, interleaved
                app.dispatch(signed_request(event_body(_workers.message("more", ts=f"{ts[:-3]}200", thread_ts=ts))))
                run(ts, f"task {i}")
                i += 1
            else:
                time.sleep(0.05)
        stopper.join()
        assert tasklog.flush(120)
        health = tasklog.health()
        assert health.retried >= 1
        assert health.dropped == 0
        assert_complete(tasklog, 10_000)
        # The bot answered Slack at full speed while the database was down.
        assert len(timings["down"]) > 100
        p99_down = statistics.quantiles(timings["down"], n=100)[98]
        assert p99_down < 0.1, f"p99 dispatch during the outage: {p99_down * 1000:.1f} ms"
    finally:
        tasklog.close(timeout=10)


@sqlite_only
def test_journal_fsync(database_url: str) -> None:
    tasklog = TaskLog(database_url, journal=True, journal_fsync=True)
    try:
        for i in range(20):
            tasklog._record(request(i))
        assert tasklog.flush(10)
        assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(20,)]
        assert tasklog.health().dropped == 0
    finally:
        tasklog.close()
