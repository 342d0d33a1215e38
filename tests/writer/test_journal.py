"""Nothing lost, nothing doubled, the host never harmed: the journal, a full disk, unreadable files, outages,
kill -9, many writers; real processes, files and servers."""

from __future__ import annotations

import errno
import json
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
from slack_tasklog.events import AssignmentRecorded, MessageDeleted, MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.tasklog import default_journal_dir
from slack_tasklog.testing import app_mention, event_body, signed_request
from slack_tasklog.writer.journal import HEADER, RETRY_INTERVAL, Journal, read_segment
from slack_tasklog.writer.records import decode_record, encode_record
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import _workers
from tests.conftest import (
    TcpForwarder,
    ThrowawayPostgres,
    free_port,
    migrate_to_head,
    mounted_tmpfs,
    postgres_url,
    query,
)

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


@sqlite_only
def test_the_journal_is_on_by_default(tasklog: TaskLog, database_url: str) -> None:
    assert tasklog.health().journal_dir == database_url.removeprefix("sqlite:///") + ".tasklog-journal"
    in_memory = TaskLog("sqlite://")
    try:
        assert in_memory.health().journal_dir is None
    finally:
        in_memory.close()


@sqlite_only
def test_the_journal_is_trimmed_once_everything_is_committed(tasklog: TaskLog) -> None:
    for i in range(200):
        tasklog._record(request(i))
    assert tasklog.flush(10)
    health = tasklog.health()
    assert health.journal_bytes == 0
    assert (health.queued, health.written, health.dropped, health.spilled, health.journal_failures) == (0, 200, 0, 0, 0)
    tasklog.close()
    assert list(Path(health.journal_dir or "").iterdir()) == []


def test_every_kind_of_event_reads_back_as_it_was_written() -> None:
    events = [
        request(1),
        TaskRequested("T1", "E1", "C1", "1.000200", "1.000200", "U1", 'héllo 😀 "quoted" \\ new\nline \udc80'),
        TaskRequested("T1", "E1", "C1", "1.000400", "1.000400", "U1", "héllo 😀\u2028 tab\t nul\x00"),
        MessageInThread("T1", "C1", "1.000100", "1.000300", "U2", None),
        AssignmentRecorded("a1", "1.000100", "C1", None, "Grok", 92.0, (("Grok", 92.0), ("Writer", None)), 1.5, "none"),
        AssignmentRecorded("a2", "1.000100", None, "T1", None, None, (), 1.25, "No agent confident enough"),
        OutcomeRecorded("o1", "1.000100", "C1", "T1", "Grok", False, 0.1 + 0.2, "boom\r\nline 2", 1.0, 1.3),
        OutcomeRecorded("o2", "1.000100", None, None, "Grok", True, 1e-7, None, 1.7e9 + 0.123456, 1.8e9, 2**70, 3, 0.5),
        MessageDeleted("T1", "C1", "1.000300"),
    ]
    for event in events:
        record = encode_record(event)
        # One line of JSON: a lone surrogate or a newline in a text cannot break the file's lines.
        assert record.index(b"\n") == len(record) - 1
        assert decode_record(record) == event
        assert type(decode_record(record)) is type(event)
    assert json.loads(encode_record(request(1)))["kind"] == "TaskRequested"
    bad_records = [
        b"",
        b"garbage",
        b"[1, 2]",
        b"\xff",
        b'{"kind": "Nope", "fields": []}',
        b'{"kind": "MessageDeleted"}',
        b'{"kind": "MessageDeleted", "fields": "abc"}',
        b'{"kind": "MessageDeleted", "fields": [1]}',
    ]
    for bad in bad_records:
        with pytest.raises(ValueError, match="not a journal record"):
            decode_record(bad)
    with pytest.raises(TypeError):
        encode_record(("not", "an", "event"))  # type: ignore[arg-type]


def test_a_torn_last_record_is_skipped(tmp_path: Path) -> None:
    """A process killed in the middle of a write leaves part of a line: the complete records before it read back."""
    journal = Journal(tmp_path / "journal")
    assert journal.append(request(1), 1)
    assert journal.append(request(2), 2)
    [segment] = journal._segments
    with segment.path.open("r+b") as file:  # where the next record would have gone, before the zeros
        file.seek(segment.size)
        file.write(encode_record(request(3))[:25])
    contents = read_segment(segment.path)
    assert (contents.events, contents.unreadable) == ([request(1), request(2)], 0)
    journal.close(everything_committed=True)


def test_segments_roll_over_are_deleted_once_committed_and_the_total_is_bounded(tmp_path: Path) -> None:
    record_size = len(encode_record(request(1)))
    journal = Journal(tmp_path / "journal", segment_bytes=len(HEADER) + 3 * record_size, max_bytes=7 * record_size)
    for i in range(1, 8):
        assert journal.append(request(i), i)
    assert [segment.last_index for segment in journal._segments] == [3, 6, 7]
    assert not journal.append(request(8), 8)  # over max_bytes: memory only, counted
    assert (journal.failures, journal.size) == (1, 7 * record_size)
    journal.committed(6, caught_up=False)  # the first two segments are deleted; the live one stays
    assert [segment.last_index for segment in journal._segments] == [7]
    assert len(list((tmp_path / "journal").iterdir())) == 1
    assert journal.append(request(9), 9)  # room again
    journal.committed(9, caught_up=True)  # the live segment starts over
    assert journal.size == 0
    [live] = journal._segments
    assert live.path.read_bytes().rstrip(b"\0") == HEADER  # cleared in place, its space kept
    assert read_segment(live.path).events == []
    journal.close(everything_committed=True)
    assert list((tmp_path / "journal").iterdir()) == []


_SHORT_WRITE_CHILD = """
import logging, resource, signal, sys, time
from pathlib import Path
from slack_tasklog.events import TaskRequested
from slack_tasklog.writer.journal import HEADER, RETRY_INTERVAL, Journal, read_segment
from slack_tasklog.writer.records import encode_record

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the default action kills the process


def request(i):
    ts = f"1700000000.{i:06d}"
    return TaskRequested("T1", None, "C1", ts, ts, "U1", f"request {i}")


record_size = len(encode_record(request(1)))
journal = Journal(Path(sys.argv[1]), segment_bytes=len(HEADER) + 2 * record_size)
assert journal.append(request(1), 1)
assert journal.append(request(2), 2)  # the first segment is full
# This process's largest file size: no room for another segment's reservation (EFBIG), as on a full disk.
resource.setrlimit(resource.RLIMIT_FSIZE, (len(HEADER), resource.RLIM_INFINITY))
assert not journal.append(request(3), 3)  # memory only, counted and logged
[full] = journal._segments
assert not journal.append(request(4), 4)  # broken: memory only, without trying the disk again at once
assert journal.failures == 2
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
time.sleep(RETRY_INTERVAL + 0.05)
assert journal.append(request(5), 5)  # a new segment
assert len(journal._segments) == 2
assert read_segment(full.path).events == [request(1), request(2)]
assert read_segment(journal._segments[1].path).events == [request(5)]
journal.close(everything_committed=True)
print("ok")
"""


def test_a_segment_without_room_leaves_events_in_memory_until_a_pause_has_passed(tmp_path: Path) -> None:
    # In a child process: RLIMIT_FSIZE would also cut short pytest's own output, should it go to a file.
    child = subprocess.run(
        [sys.executable, "-c", _SHORT_WRITE_CHILD, str(tmp_path / "journal")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "ok\n"
    assert child.stderr.count("cannot write the journal") == 1
    assert "writable again" in child.stderr


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    saved = os.umask(0o022)
    try:
        database = tmp_path / "new" / "folder" / "tasklog.db"
        tasklog = TaskLog(f"sqlite:///{database}")
        try:
            tasklog._record(request(1))
            journal = Path(tasklog.health().journal_dir or "")
            [segment] = journal.iterdir()
            assert tasklog.flush(10)
            modes = {
                path.name: path.stat().st_mode & 0o777
                for path in (tmp_path / "new", database.parent, database, journal, segment)
            }
            modes.update({name: Path(f"{database}{name}").stat().st_mode & 0o777 for name in ("-wal", "-shm")})
        finally:
            tasklog.close()
        assert modes == {
            "new": 0o700,
            "folder": 0o700,
            "tasklog.db": 0o600,
            "-wal": 0o600,
            "-shm": 0o600,
            "tasklog.db.tasklog-journal": 0o700,
            segment.name: 0o600,
        }
    finally:
        os.umask(saved)


@sqlite_only
def test_unreadable_journals_are_set_aside_and_the_rest_is_replayed(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Path(database_url.removeprefix("sqlite:///") + ".tasklog-journal")
    journal.mkdir()
    files = {
        # A crash mid-write: the torn last record is skipped, the others replayed, the file deleted.
        "tasklog-1-1.journal": HEADER + encode_record(request(1)) + encode_record(request(2))[:30],
        "tasklog-1-2.journal": b"\x00\xffgarbage\x13" * 40,
        "tasklog-1-3.journal": HEADER[:10],  # truncated
        "tasklog-1-4.journal": encode_record(request(4)),  # no header
        "tasklog-1-5.journal": b"SLTJ\x01" + bytes(11),  # another version's
        # A bad record in the middle: the good ones are replayed, the file is kept aside for someone to look at.
        "tasklog-1-6.journal": HEADER + encode_record(request(6)) + b"not json\n" + encode_record(request(7)),
        "tasklog-1-7.journal": b"",  # its process died before writing the header: nothing to replay
    }
    for name, data in files.items():
        (journal / name).write_bytes(data)
    tasklog = TaskLog(database_url)
    try:
        assert tasklog.flush(10)
        tasklog._record(request(8))  # and the writer goes on
        assert tasklog.flush(10)
        health = tasklog.health()
        assert (health.corrupt_journals, health.replayed, health.writer_errors) == (5, 3, 0)
        assert sorted(path.name for path in journal.iterdir() if path.suffix == ".corrupt") == [
            f"tasklog-1-{n}.journal.corrupt" for n in (2, 3, 4, 5, 6)
        ]
        assert query(tasklog, "SELECT request_text FROM tasklog_tasks ORDER BY thread_ts") == [
            (f"task {n}",) for n in (1, 6, 7, 8)
        ]
    finally:
        tasklog.close()
    assert sum("is unreadable" in r.getMessage() for r in caplog.records) == 5


@sqlite_only
def test_a_journal_left_under_other_options_is_replayed_under_store_text_false(database_url: str) -> None:
    """A bot that kept texts died; it restarts with store_text=False: what its journal held keeps no text either."""
    journal = Path(database_url.removeprefix("sqlite:///") + ".tasklog-journal")
    journal.mkdir()
    thread = request(1).thread_ts
    error = "ValueError: cannot parse 'task 1'"
    run = OutcomeRecorded("run-1", thread, "C1", "T1", "Grok", False, 0.5, error, 1.0, 1.5)
    reply = MessageInThread("T1", "C1", thread, "1700000001.000200", "U2", "and quickly")
    records = (request(1), reply, run)
    (journal / "tasklog-1-1.journal").write_bytes(HEADER + b"".join(encode_record(event) for event in records))
    tasklog = TaskLog(database_url, store_text=False)
    try:
        assert tasklog.flush(10)
        assert tasklog.health().replayed == 3
        assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [(None,)]
        assert query(tasklog, "SELECT text FROM tasklog_follow_ups") == [(None,)]
        assert query(tasklog, "SELECT error_message FROM tasklog_outcomes") == [("ValueError",)]
    finally:
        tasklog.close()


# -- a full disk ----------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs of the test's own, room for one journal segment (needs root; skipped where not permitted)."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as mount:
        yield mount


def fill(path: Path) -> None:
    """Write ``path`` until the disk is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, bytes(4096))
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                return
    finally:
        os.close(fd)


@sqlite_only
def test_a_full_disk_never_harms_the_bot(small_disk: Path, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The journal on a full disk (the database elsewhere): every submit returns, the events are written from
    memory, the failures are counted and logged once; with space back, the journal resumes. A segment once made has
    its space: a disk that fills up afterwards does not stop it."""
    fill(small_disk / "filler")
    tasklog = TaskLog(database_url, journal=small_disk / "journal")
    writer = tasklog._writer
    try:
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 2.5 * RETRY_INTERVAL:  # the journal retries the disk meanwhile
            assert writer.submit(request(i))
            i += 1
            time.sleep(0.001)
        assert tasklog.flush(30)
        health = tasklog.health()
        assert health.journal_failures > 0
        assert (health.written, health.dropped, health.writer_errors) == (i, 0, 0)
        assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(i,)]
        assert sum("cannot write the journal" in r.getMessage() for r in caplog.records) == 1

        (small_disk / "filler").unlink()
        time.sleep(RETRY_INTERVAL + 0.1)
        failures = health.journal_failures
        assert writer.submit(request(i))
        i += 1
        assert tasklog.health().journal_bytes > 0  # journaled again
        assert "writable again" in caplog.text

        fill(small_disk / "filler")  # full again, mid-traffic: the segment made meanwhile keeps its space
        for _ in range(1_000):
            assert writer.submit(request(i))
            i += 1
        assert tasklog.flush(30)
        health = tasklog.health()
        assert (health.journal_failures, health.written, health.dropped) == (failures, i, 0)
    finally:
        tasklog.close()


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
    assert down.health().left_in_journal == 30
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


def run_and_kill(database_url: str, after: float, journal: Path | None = None) -> list[int]:
    """Start a bot process that records lifecycles and says which ones returned; SIGKILL it after ``after`` s. With
    ``journal``, the bot's journal goes there; without, the bot runs with the defaults."""
    if journal is None:
        command = [sys.executable, "-m", "tests.writer._bot", database_url]
    else:
        command = [sys.executable, "-m", "tests._workers", database_url, "3", "1000000", str(journal)]
    child = subprocess.Popen(
        command,
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
    """With the defaults (``TaskLog(url)``): the journal is on, beside the SQLite file."""
    database_url = f"sqlite:///{tmp_path / 'tasklog.db'}"
    journal = tmp_path / "tasklog.db.tasklog-journal"
    returned = run_and_kill(database_url, after=random.Random(seed).uniform(0.2, 1.0))
    orphans = list(journal.iterdir())
    assert len(orphans) == 1

    tasklog = TaskLog(database_url)
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
        assert tasklog.health().replayed > 0
        assert list(journal.iterdir()) == []
    finally:
        tasklog.close()


@pytest.mark.slow
def test_kill_9_with_the_database_down_recovers_everything_from_the_journal(
    tmp_path: Path, postgres_schema: str
) -> None:
    journal = tmp_path / "journal"
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    returned = run_and_kill(unreachable, after=0.5, journal=journal)
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
