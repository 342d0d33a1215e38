"""Moving in from the design document's Approach 1 JSON-lines log (and from our own journal)."""

from __future__ import annotations

import io
import json
import time
import warnings
from datetime import datetime
from pathlib import Path

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.cli.importer import import_jsonl

from tests.conftest import query


def approach_1_log(path: Path) -> None:
    """Lines produced exactly as the design document's Approach 1 sketch produces them."""

    def log_task(event_type, data):  # type: ignore[no-untyped-def]  # verbatim from the sketch
        """Append task event to log file"""
        log_entry = {"timestamp": datetime.utcnow().isoformat(), "event_type": event_type, **data}
        with open(path, "a") as f:
            f.write(json.dumps(log_entry) + "\n")

    def handle(user_id: str, text: str, channel_id: str, thread_ts: str, evaluations: dict[str, int]) -> None:
        # In handle_orchestrator_mention:
        log_task(
            "task_request", {"user_id": user_id, "request": text, "channel_id": channel_id, "thread_ts": thread_ts}
        )
        # In check_and_assign after evaluations:
        agent_name, confidence = max(evaluations.items(), key=lambda item: item[1])
        if confidence < 50:
            agent_name, confidence = None, 0
        log_task(
            "evaluations",
            {
                "thread_ts": thread_ts,
                "evaluations": evaluations,
                "assigned_to": agent_name if evaluations else None,
                "max_confidence": confidence if evaluations else 0,
            },
        )
        if agent_name is None:
            return
        start_time = time.time()
        # In specialist_agent.py process_assignment completion:
        log_task(
            "task_complete",
            {"thread_ts": thread_ts, "agent": agent_name, "success": True, "execution_time": time.time() - start_time},
        )

    with warnings.catch_warnings():
        # The sketch's datetime.utcnow(), deprecated since Python 3.12, kept for its naive timestamps.
        warnings.filterwarnings("ignore", "datetime.datetime.utcnow", DeprecationWarning)
        handle(
            "U123456", "Research quantum computing", "C1", "1705314600.000100",
            {"Grok": 92, "Writer": 30, "Builder": 15},
        )  # fmt: skip
        handle("U789012", "Write a poem", "C1", "1705314660.000100", {"Writer": 95, "Grok": 20})
        handle("U345678", "Unknown request", "C1", "1705314720.000100", {"Grok": 20, "Writer": 10})


def test_an_approach_1_log_moves_in_and_exports_like_the_design(tmp_path: Path, tasklog: TaskLog) -> None:
    log = tmp_path / "task_logs.jsonl"
    approach_1_log(log)
    with log.open("rb") as file:
        report = import_jsonl(file, tasklog._store, team_id="T111")
    assert (report.lines, report.events, report.skipped) == (8, 8, 0)
    out = io.StringIO()
    assert tasklog.export_csv(out) == 3
    rows = [line.split(",")[:9] for line in out.getvalue().splitlines()[1:]]
    assert [row[:6] for row in rows] == [
        ["2024-01-15T10:30:00Z", "U123456", "Research quantum computing", "Grok", "92", "Writer:30;Builder:15"],
        ["2024-01-15T10:31:00Z", "U789012", "Write a poem", "Writer", "95", "Grok:20"],
        ["2024-01-15T10:32:00Z", "U345678", "Unknown request", "", "", "Grok:20;Writer:10"],
    ]
    assert [row[6] for row in rows] == ["true", "true", "false"]
    assert rows[2][8] == "No agent confident enough"


def test_importing_twice_changes_nothing(tmp_path: Path, tasklog: TaskLog) -> None:
    log = tmp_path / "task_logs.jsonl"
    approach_1_log(log)
    counts = []
    for _ in range(2):
        with log.open("rb") as file:
            import_jsonl(file, tasklog._store)
        counts.append(
            query(
                tasklog,
                "SELECT (SELECT count(*) FROM tasklog_tasks), (SELECT count(*) FROM tasklog_assignments), "
                "(SELECT count(*) FROM tasklog_evaluations), (SELECT count(*) FROM tasklog_outcomes)",
            )
        )
    assert counts[0] == counts[1] == [(3, 3, 7, 3)]


def test_imported_ids_are_ordered_by_time_and_a_file_imported_before_keeps_its_ids(
    tmp_path: Path, tasklog: TaskLog
) -> None:
    import hashlib

    from slack_tasklog.cli.importer import _identity, _legacy_identity, parse_line

    parts = ("evaluations", "1.000100", "2024-01-01T00:00:00", {"Writer": 8, "Grok": 92.5}, "Grok")
    legacy = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    assert _legacy_identity(1704067200.0, *parts) == legacy
    assert _identity(1704067200.0, *parts) == f"{1704067200 * 10**9:016x}{legacy[:16]}"
    assert _identity(1704067200.0, *parts) < _identity(1704067200.000001, *parts) < _identity(1704067201.0, *parts)
    assert len(_identity(-5.0, *parts)) == len(_identity(1e12, *parts)) == 32

    # A file an earlier version imported (hashed ids) is recognised, and imported again with those ids.
    log = tmp_path / "task_logs.jsonl"
    approach_1_log(log)
    lines = log.read_bytes().splitlines(keepends=True)
    earlier = [event for line in lines if (event := parse_line(line, legacy_ids=True)) is not None]
    tasklog._store.write(earlier)
    counts = "SELECT (SELECT count(*) FROM tasklog_assignments), (SELECT count(*) FROM tasklog_outcomes)"
    assert query(tasklog, counts) == [(3, 3)]
    import_jsonl(lines, tasklog._store)
    assert query(tasklog, counts) == [(3, 3)]
    # A new file gets ordered ids.
    other = tmp_path / "other.jsonl"
    other.write_bytes(b"".join(lines).replace(b'"17053', b'"18053'))  # the same tasks in other threads
    import_jsonl(other.read_bytes().splitlines(keepends=True), tasklog._store)
    assert query(tasklog, counts) == [(6, 6)]
    ids = [row[0] for row in query(tasklog, "SELECT id FROM tasklog_assignments")]
    assert sum(abs(int(i[:16], 16) / 1e9 - time.time()) < 86_400 for i in ids) == 3  # the lines' time: now


def test_tokens_and_cost_move_in_when_a_line_has_them(tasklog: TaskLog) -> None:
    def complete(seconds: int, **usage: object) -> bytes:
        line = {
            "timestamp": f"2024-01-15T10:30:{seconds:02d}",
            "event_type": "task_complete",
            "thread_ts": "1705314600.000100",
            "agent": "Grok",
            "success": True,
            "execution_time": 1.0,
            **usage,
        }
        return json.dumps(line).encode() + b"\n"  # fmt: skip

    lines = [
        complete(1, input_tokens=1000, output_tokens=200, cost=0.006),
        complete(2, usage={"prompt_tokens": 30, "completion_tokens": 7}),
        complete(3),
        complete(4, input_tokens=-1),
        complete(5, cost="cheap"),
    ]
    report = import_jsonl(lines, tasklog._store)
    assert [number for number, _ in report.problems] == [4, 5]
    assert "input tokens must be a whole number" in dict(report.problems)[4]
    assert query(tasklog, "SELECT input_tokens, output_tokens, cost FROM tasklog_outcomes ORDER BY finished_at") == [
        (1000, 200, 0.006),
        (30, 7, None),
        (None, None, None),
    ]


def test_a_utf8_bom_and_bytes_that_are_not_utf8_are_handled() -> None:
    from slack_tasklog.cli.importer import parse_line

    line = '{"event_type": "task_request", "timestamp": "2024-01-01T00:00:00", "user_id": "U1", "channel_id": "C1", '
    line += '"thread_ts": "1.000100", "request": "hi"}'
    event = parse_line(b"\xef\xbb\xbf" + line.encode())
    assert event is not None
    assert event.thread_ts == "1.000100"
    with pytest.raises(ValueError, match="not JSON"):
        parse_line(b"\xff\xfe{}")


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_imported(tasklog: TaskLog) -> None:
    lines = [
        b'{"timestamp": "2024-01-15T10:30:00", "event_type": "task_request", "user_id": "U1", "request": "ok", '
        b'"channel_id": "C1", "thread_ts": "1705314600.000100"}\n',
        b"not json at all\n",
        b'{"timestamp": "2024-01-15T10:30:01", "event_type": "task_request", "user_id": "U1"}\n',
        b'{"timestamp": "2024-01-15T10:30:02", "event_type": "mystery"}\n',
        b"\n",
        b'["x"]\n',
        b'{"timestamp": "yesterday", "event_type": "task_complete", "thread_ts": "1", "agent": "G", "success": true}\n',
        b'{"timestamp": "2024-01-15T10:30:03", "event_type": "task_complete", "thread_ts": "1705314600.000100", '
        b'"agent": "Grok", "success": "yes"}\n',
        b'{"timestamp": "2024-01-15T10:30:04", "event_type": "evaluations", "thread_ts": "1705314600.000100", '
        b'"evaluations": {"Grok": 90}, "assigned_to": "Grok", "max_confidence": 90}\n',
    ]
    report = import_jsonl(lines, tasklog._store)
    assert (report.lines, report.events, report.skipped) == (9, 2, 6)
    assert [number for number, _ in report.problems] == [2, 3, 4, 6, 7, 8]
    reasons = dict(report.problems)
    assert "not JSON" in reasons[2]
    assert "missing field 'thread_ts'" in reasons[3]
    assert "unknown event_type 'mystery'" in reasons[4]
    assert "success must be true or false" in reasons[8]


def test_a_max_confidence_that_is_no_confidence_takes_the_agents_evaluation(tasklog: TaskLog) -> None:
    lines = [
        b'{"timestamp": "2024-01-15T10:30:00", "event_type": "task_request", "user_id": "U1", "request": "ok", '
        b'"channel_id": "C1", "thread_ts": "1705314600.000100"}\n',
        b'{"timestamp": "2024-01-15T10:30:04", "event_type": "evaluations", "thread_ts": "1705314600.000100", '
        b'"evaluations": {"Grok": 90, "Writer": 40}, "assigned_to": "Grok", "max_confidence": 150}\n',
    ]
    report = import_jsonl(lines, tasklog._store)
    assert (report.events, report.skipped) == (2, 0)
    assert query(tasklog, "SELECT agent, confidence FROM tasklog_assignments") == [("Grok", 90.0)]


def test_a_journal_segment_left_behind_imports_too(tmp_path: Path, tasklog: TaskLog, database_url: str) -> None:
    from click.testing import CliRunner
    from slack_tasklog.cli.main import main
    from slack_tasklog.events import TaskRequested
    from slack_tasklog.writer.journal import Journal

    journal = Journal(tmp_path / "journal")
    assert journal.append(TaskRequested("T1", None, "C1", "1.000100", "1.000100", "U1", "from a journal"), 1)
    assert journal.close(everything_committed=False) is not None
    [segment] = (tmp_path / "journal").iterdir()
    result = CliRunner().invoke(main, ["import", str(segment), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "journal segment, 1 events imported" in result.output
    assert query(tasklog, "SELECT request_text FROM tasklog_tasks") == [("from a journal",)]


@pytest.mark.slow
def test_large_imports_keep_memory_flat(tmp_path: Path, tasklog: TaskLog) -> None:
    """The import's peak allocation is the same for 10,000 and 40,000 lines."""
    import tracemalloc

    from slack_tasklog.storage.store import Store

    def peak_of(lines: int, offset: int) -> int:
        log = tmp_path / f"big-{lines}.jsonl"
        with log.open("w") as file:
            for i in range(offset, offset + lines):
                ts = f"{1_700_000_000 + i}.000100"
                file.write(json.dumps({"timestamp": "2024-01-15T10:30:00", "event_type": "task_request",
                                       "user_id": "U1", "request": "x" * 100, "channel_id": "C1",
                                       "thread_ts": ts}) + "\n")  # fmt: skip
        store = Store(tasklog.engine, cache_size=1_000)
        tracemalloc.start()
        try:
            with log.open("rb") as file:
                assert import_jsonl(file, store).events == lines
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small = peak_of(10_000, 0)
    large = peak_of(40_000, 100_000)
    assert large < small * 1.5, (small, large)


def test_a_file_parsed_by_a_second_process_imports_the_same(tmp_path: Path, tasklog: TaskLog) -> None:
    from slack_tasklog.cli.importer import import_file

    log = tmp_path / "task_logs.jsonl"
    approach_1_log(log)
    with log.open("ab") as file:
        file.write(b"not json at all\n\n")
    approach_1_log(log)  # the same tasks again, a second day: new rounds and outcomes for them
    counts = "SELECT (SELECT count(*) FROM tasklog_tasks), (SELECT count(*) FROM tasklog_evaluations), "
    counts += "(SELECT count(*) FROM tasklog_outcomes), (SELECT sum(rounds) FROM tasklog_tasks)"
    sizes: list[int] = []
    parallel = import_file(log, tasklog._store, parallel=True, progress=sizes.append)
    assert sum(sizes) == log.stat().st_size
    after_parallel = query(tasklog, counts)
    # The same events, with the same identities: importing the file again in one process adds nothing.
    serial = import_file(log, tasklog._store, parallel=False)
    assert query(tasklog, counts) == after_parallel == [(3, 14, 6, 6)]
    assert (parallel.lines, parallel.events, parallel.skipped) == (serial.lines, serial.events, serial.skipped)
    assert (parallel.lines, parallel.events, parallel.skipped) == (18, 16, 1)
    assert parallel.problems == serial.problems
    assert [number for number, _ in parallel.problems] == [9]


def test_a_parser_process_that_fails_or_dies_is_reported() -> None:
    import marshal

    from slack_tasklog.cli.importer import _ERROR_MESSAGE, _LENGTH, ImportParserError, _received

    def stream(*records: bytes) -> io.BytesIO:
        return io.BytesIO(b"".join(_LENGTH.pack(len(record)) + record for record in records))

    failed = marshal.dumps((_ERROR_MESSAGE, "OSError: [Errno 5] Input/output error"))
    with pytest.raises(ImportParserError, match="failed: OSError"):
        list(_received(stream(failed)))
    with pytest.raises(ImportParserError, match="stopped without finishing"):  # killed before its last word
        list(_received(stream()))
    with pytest.raises(ImportParserError, match="stopped without finishing"):  # killed in the middle of a record
        list(_received(io.BytesIO(_LENGTH.pack(100) + b"x" * 10)))


def test_fewer_collections_raises_the_youngest_threshold_and_restores_all_three() -> None:
    import gc

    from slack_tasklog.cli.importer import fewer_collections

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        with fewer_collections(10_000):
            assert gc.get_threshold() == (10_000, 11, 12)
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(50_000, 11, 12)  # never lowered
        with fewer_collections(10_000):
            assert gc.get_threshold() == (50_000, 11, 12)
    finally:
        gc.set_threshold(*saved)
