"""The CSV export, cell by cell."""

from __future__ import annotations

import csv
import io
import json
import sys
import tracemalloc
import unicodedata
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt import App
from slack_tasklog import CSV_COLUMNS, TaskLog
from slack_tasklog.events import AssignmentRecorded, MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.reports import parse_other_agents
from slack_tasklog.reports.export import NEUTRALIZED_COLUMNS, neutralize
from slack_tasklog.testing import app_mention, event_body, message, signed_request
from sqlalchemy import text as sql

HEADER = (
    "timestamp,user_id,request,assigned_agent,confidence,other_agents_confidence,success,execution_time,"
    "error_message,follow_ups,attempts,team_id,channel_id,thread_ts,feedback_up,feedback_down,requester_feedback,"
    "input_tokens,output_tokens,cost"
)


def export(tasklog: TaskLog, **kwargs: Any) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    count = tasklog.export_csv(out, **kwargs)
    text = out.getvalue()
    assert text.split("\r\n", 1)[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == count
    return rows


def mention(app: App, text: str, ts: str, user: str = "U123", **kwargs: Any) -> None:
    assert app.dispatch(signed_request(event_body(app_mention(text, ts=ts, user=user, **kwargs)))).status == 200


@pytest.fixture
def scripted(app: App, tasklog: TaskLog) -> TaskLog:
    """The design document's three example rows, plus a re-routed task and one still running."""

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str | None:
        best = max(evaluations, key=lambda agent: evaluations[agent])
        return best if evaluations[best] >= 50 else None

    class Specialist:
        def __init__(self, name: str) -> None:
            self.name = name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> None:
            if text == "fail":
                raise RuntimeError("model overloaded")

    mention(app, "Research quantum computing", "1705314600.000100", user="U123456")
    check_and_assign("1705314600.000100", {"Grok": 92, "Writer": 30, "Builder": 15})
    Specialist("Grok").process_assignment("1705314600.000100", "ok")

    mention(app, "Write a poem", "1705314660.000100", user="U789012")
    check_and_assign("1705314660.000100", {"Writer": 95, "Grok": 20})
    Specialist("Writer").process_assignment("1705314660.000100", "ok")

    mention(app, "Unknown request", "1705314720.000100", user="U345678")
    check_and_assign("1705314720.000100", {"Grok": 20, "Writer": 10})

    mention(app, "Build a site", "1705314780.000100", user="U1")
    check_and_assign("1705314780.000100", {"Builder": 80, "Writer": 60})
    with pytest.raises(RuntimeError):
        Specialist("Builder").process_assignment("1705314780.000100", "fail")
    for i, text in enumerate(["please retry", "with Writer"]):
        reply = message(text, ts=f"1705314790.00010{i}", thread_ts="1705314780.000100")
        app.dispatch(signed_request(event_body(reply)))
    check_and_assign("1705314780.000100", {"Builder": 10, "Writer": 75})
    Specialist("Writer").process_assignment("1705314780.000100", "ok")

    mention(app, "Still running", "1705314840.000100", user="U2")
    check_and_assign("1705314840.000100", {"Grok": 70})
    return tasklog


def test_columns_constant_matches_the_header() -> None:
    assert ",".join(CSV_COLUMNS) == HEADER


def test_rows_cell_by_cell(scripted: TaskLog) -> None:
    rows = export(scripted)
    assert [tuple(row.values())[:9] for row in rows] == [
        ("2024-01-15T10:30:00Z", "U123456", "Research quantum computing", "Grok", "92", "Writer:30;Builder:15",
         "true", rows[0]["execution_time"], ""),
        ("2024-01-15T10:31:00Z", "U789012", "Write a poem", "Writer", "95", "Grok:20",
         "true", rows[1]["execution_time"], ""),
        ("2024-01-15T10:32:00Z", "U345678", "Unknown request", "", "", "Grok:20;Writer:10",
         "false", "0", "No agent confident enough"),
        ("2024-01-15T10:33:00Z", "U1", "Build a site", "Writer", "75", "Builder:10",
         "true", rows[3]["execution_time"], ""),
        ("2024-01-15T10:34:00Z", "U2", "Still running", "Grok", "70", "", "", "", ""),
    ]  # fmt: skip
    for row in rows[:2] + rows[3:4]:
        assert 0 <= float(row["execution_time"]) < 1
        assert len(row["execution_time"].partition(".")[2]) <= 3
    assert [row["follow_ups"] for row in rows] == ["0", "0", "0", "2", "0"]
    assert [row["attempts"] for row in rows] == ["1", "1", "1", "2", "1"]
    assert {(row["team_id"], row["channel_id"]) for row in rows} == {("T111", "C111")}
    assert rows[0]["thread_ts"] == "1705314600.000100"


def test_tokens_and_cost_are_summed_per_task_in_the_csv_and_kept_per_run_in_json_lines(
    app: App, tasklog: TaskLog
) -> None:
    from slack_tasklog.reports.export import ExportFilter, write_jsonl

    tasklog.prices = {"Grok": {"input": 3.0, "output": 15.0}}
    mention(app, "Research", "1705314600.000100")
    mention(app, "Nothing said", "1705314660.000100")

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str, tokens: tuple[int, int]) -> dict[str, Any]:
        return {"usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}}

    process_assignment("1705314600.000100", (1000, 200))
    process_assignment("1705314600.000100", (3000, 0))
    rows = export(tasklog)
    assert [(r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows] == [
        ("4000", "200", "0.015"),
        ("", "", ""),
    ]
    out = io.StringIO()
    with tasklog.connect() as conn:
        write_jsonl(conn, out, ExportFilter())
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["input_tokens"], first["output_tokens"], first["cost"]) == (4000, 200, pytest.approx(0.015))
    assert [(run["input_tokens"], run["output_tokens"], run["cost"]) for run in first["runs"]] == [
        (1000, 200, pytest.approx(0.006)),
        (3000, 0, pytest.approx(0.009)),
    ]
    assert (second["input_tokens"], second["cost"], second["runs"]) == (None, None, [])


def test_filters(scripted: TaskLog) -> None:
    assert [r["request"] for r in export(scripted, agent="Writer")] == ["Write a poem", "Build a site"]
    assert len(export(scripted, since="2024-01-15T10:32:00Z")) == 3
    assert len(export(scripted, until=datetime(2024, 1, 15, 10, 32))) == 2  # naive means UTC
    assert len(export(scripted, since=date(2024, 1, 16))) == 0
    assert len(export(scripted, team_id="T111")) == 5
    assert export(scripted, team_id="T_OTHER") == []


def test_writes_to_a_path_in_utf8(scripted: TaskLog, tmp_path: Path) -> None:
    path = tmp_path / "out" / "tasks.csv"
    path.parent.mkdir()
    assert scripted.export_csv(path) == 5
    assert path.read_bytes().startswith(HEADER.encode() + b"\r\n")


def test_quoting_unicode_and_formula_neutralisation(app: App, tasklog: TaskLog) -> None:
    texts = [
        '=HYPERLINK("http://evil.example","click")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        'Quote "this", please,\nand a new line',
        "Résumé 🚀 — naïve",
        "a-b stays",  # only a leading trigger matters
    ]
    for i, text in enumerate(texts):
        mention(app, text, f"1705314600.00010{i}")

    @tasklog.track_outcome(agent="=cmd|' /C calc'!A0")
    def process_assignment(thread_ts: str) -> None:
        raise ValueError("-boom")

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        return "=cmd|' /C calc'!A0"

    check_and_assign("1705314600.000100", {"=cmd|' /C calc'!A0": 90, "@Other": 10})
    with pytest.raises(ValueError, match="-boom"):
        process_assignment("1705314600.000100")
    rows = export(tasklog)
    assert [row["request"] for row in rows] == [
        "'" + texts[0], "'+1+1", "'-2+3", "'@SUM(A1:A2)", texts[4], texts[5], texts[6],
    ]  # fmt: skip
    assert rows[0]["assigned_agent"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["other_agents_confidence"] == "'@Other:10"
    assert rows[0]["error_message"] == "ValueError: -boom"  # starts with a letter: untouched
    raw = [row["request"] for row in export(tasklog, neutralize_formulas=False)]
    assert raw == texts


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
     ("x=1", "x=1"), ("", ""), ("a -1", "a -1"), ("1-2", "1-2"), ("'=1", "'=1"), ("   ", "   "),
     ("\u200bx", "\u200bx")],
)  # fmt: skip
def test_neutralize(cell: str, expected: str) -> None:
    assert neutralize(cell) == expected


@pytest.mark.parametrize(
    "cell",
    [
        " =1+1",  # leading spaces
        "   @SUM(A1)",
        "\u00a0=1",  # NBSP
        "\u200b=1",  # zero-width space
        "\ufeff=1",  # BOM
        "\u2060\u200d\u00ad+1",  # word joiner, zero-width joiner, soft hyphen
        "\u202e-1",  # right-to-left override
        "\u3000=1",  # ideographic space
        "\x01=1",  # a control character
        "\nhello",  # a leading line feed
        "\r\n=1",
        " \t x",  # a tab after blanks
        "\uff1d1+1",  # full-width =
        "\uff0b1",  # full-width +
        "\uff0d1",  # full-width -
        "\uff20A1",  # full-width @
        "\ufe66\u207a\u208c",  # small =, superscript +, subscript =
        " \u200b\uff1dHYPERLINK()",
    ],
)
def test_formula_variants_are_neutralised(cell: str) -> None:
    assert neutralize(cell) == "'" + cell


# What the property checks ``neutralize`` against, from ``unicodedata`` rather than from its pattern: a cell is a
# formula when, after blanks (whitespace, control and format characters), comes a character whose NFKC form starts
# with = + - @, or when a tab, CR or LF starts it or is among those blanks.
_SAMPLE_BLANKS = " \t\r\n\x0b\x00\x1f\x85\u00a0\u00ad\u1680\u2007\u200b\u200e\u2028\u202f\u2060\u3000\ufeff\U000e0020"
_SAMPLE_HEADS = "=+-@\uff1d\uff0b\uff0d\uff20\ufe63\u207c\u2a75'a1 "


def _is_blank(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def _is_trigger(char: str) -> bool:
    return char in "\t\r\n" or unicodedata.normalize("NFKC", char)[:1] in ("=", "+", "-", "@")


def _is_formula(cell: str) -> bool:
    for char in cell:
        if _is_trigger(char):
            return True
        if not _is_blank(char):
            return False
    return False


cells = st.text() | st.builds(
    lambda blanks, head, rest: blanks + head + rest,
    st.text(st.sampled_from(_SAMPLE_BLANKS), max_size=4),
    st.sampled_from(_SAMPLE_HEADS) | st.characters(),
    st.text(max_size=20),
)


@given(cells)
@settings(max_examples=1_000, deadline=None)
def test_no_text_comes_out_as_a_formula(cell: str) -> None:
    """Whatever the text, the cell a spreadsheet reads is inert: a formula gets the quote, anything else is left as
    it is, and both come back from a CSV reader intact."""
    expected = "'" + cell if _is_formula(cell) else cell
    assert neutralize(cell) == expected
    out = io.StringIO(newline="")
    # NUL is no CSV text: readers before Python 3.11 refuse it.
    csv.writer(out, lineterminator="\r\n").writerow([neutralize(cell.replace("\x00", "")), "next"])
    assert next(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [neutralize(cell.replace("\x00", "")), "next"]


def test_every_character_is_classified_as_unicodedata_says() -> None:
    """The pattern's lists of blanks and triggers against this Python's Unicode database, character by character
    (unassigned ones may be either: the lists hold some that newer Unicode versions assign)."""
    wrong = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in ("Cn", "Cs"):
            continue
        if (neutralize(char) != char) != _is_trigger(char):
            wrong.append(("trigger", hex(code)))
        if (neutralize(char + "=") != char + "=") != (_is_blank(char) or _is_trigger(char)):
            wrong.append(("blank", hex(code)))
    assert wrong == []


def test_every_text_and_id_column_is_neutralised_and_numbers_are_not(tasklog: TaskLog) -> None:
    """``NEUTRALIZED_COLUMNS`` are the ones guarded, ids included; the numbers are not, so a negative execution
    time (a clock stepped back) stays a number. Confidences are stored in 0..100, never negative."""
    ts = "+1705314600.000100"
    tasklog._record(TaskRequested("-T1", None, "@C1", ts, ts, "=U1", "\u00a0=1+1"))
    evaluations = (("=Grok", 5.0), ("\uff20Other", 1.5))
    tasklog._record(AssignmentRecorded("a1", ts, "@C1", "-T1", "=Grok", 5.0, evaluations, 1705314601.0, "-"))
    tasklog._record(
        OutcomeRecorded("o1", ts, "@C1", "-T1", "=Grok", False, -2.5, "\u200b-boom", 1705314601.0, 1705314602.0)
    )
    assert tasklog.flush(10)
    [row] = export(tasklog)
    assert set(NEUTRALIZED_COLUMNS) < set(CSV_COLUMNS)
    assert {column for column, cell in row.items() if cell.startswith("'")} == set(NEUTRALIZED_COLUMNS)
    assert [row[column] for column in NEUTRALIZED_COLUMNS] == [
        "'=U1", "'\u00a0=1+1", "'=Grok", "'\uff20Other:1.5", "'\u200b-boom", "'-T1", "'@C1", "'" + ts,
    ]  # fmt: skip
    assert (row["confidence"], row["execution_time"], row["success"]) == ("5", "-2.5", "false")
    assert {column: cell for column, cell in row.items() if column not in NEUTRALIZED_COLUMNS} == {
        column: cell for column, cell in export(tasklog, neutralize_formulas=False)[0].items()
        if column not in NEUTRALIZED_COLUMNS
    }  # fmt: skip


def test_agent_names_with_separators_read_back_unambiguously(app: App, tasklog: TaskLog) -> None:
    """``other_agents_confidence`` escapes ``\\ : ;`` and line breaks in names; ``parse_other_agents`` reads it."""
    names = ["a:b;c\nd", "back\\slash:", ";", "Writer", "x\r\\n"]
    mention(app, "route me", "1705314600.000100")

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, float]) -> str:
        return "Grok"

    check_and_assign("1705314600.000100", {"Grok": 99.0, **{name: 50.0 - i for i, name in enumerate(names)}})
    [row] = export(tasklog)
    cell = row["other_agents_confidence"]
    assert cell == r"a\:b\;c\nd:50;back\\slash\::49;\;:48;Writer:47;x\r\\n:46"
    assert parse_other_agents(cell) == [(name, 50.0 - i) for i, name in enumerate(names)]
    assert parse_other_agents("") == []
    assert parse_other_agents("Writer:;Grok:-1e-07") == [("Writer", None), ("Grok", -1e-07)]
    for broken in ("a:b:1", "a;b", "a\\", "a:1;"):
        with pytest.raises(ValueError, match="not an other_agents_confidence cell"):
            parse_other_agents(broken)


def test_empty_log_exports_only_the_header(tasklog: TaskLog) -> None:
    assert export(tasklog) == []


@pytest.mark.slow
def test_export_streams_with_flat_memory(tasklog: TaskLog) -> None:
    """The export's peak Python allocation is the same for 5,000 and 20,000 tasks."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(20_000):
        ts = f"{(start + timedelta(seconds=i)).timestamp():.6f}"
        tasklog._record(TaskRequested("T1", None, "C1", ts, ts, "U1", "x" * 200))
        tasklog._record(
            AssignmentRecorded(f"a{i}", ts, None, None, "Grok", 90.0, (("Grok", 90.0), ("Writer", 5.0)), 0.0, "-")
        )
        tasklog._record(OutcomeRecorded(f"o{i}", ts, None, None, "Grok", True, 1.5, None, 1.0, 2.5))
    assert tasklog.flush(60)

    class CountingSink(io.TextIOBase):
        size = 0

        def write(self, s: str) -> int:
            self.size += len(s)
            return len(s)

    def peak_of(**kwargs: Any) -> tuple[int, int, int]:
        sink = CountingSink()
        tracemalloc.start()
        try:
            count = tasklog.export_csv(sink, **kwargs)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return count, peak, sink.size

    peak_of(until=start + timedelta(seconds=100))  # warm SQLAlchemy's statement cache
    small = peak_of(until=start + timedelta(seconds=5_000))
    full = peak_of()
    assert (small[0], full[0]) == (5_000, 20_000)
    assert full[2] > 20_000 * 200
    # Four times the rows, about the same peak: memory does not grow with the row count.
    assert full[1] < small[1] * 1.5, (small, full)


def test_what_the_writer_keeps_and_what_the_export_counts_agree(tasklog: TaskLog) -> None:
    """Rounds' ``others`` and the tasks' round and follow-up counts are kept at write time; rows from before they
    existed (NULL) are worked out when exporting: the CSV is the same either way."""
    events: list[Any] = []
    for n in range(30):
        ts = f"{1_700_000_000 + n * 60}.000100"
        events.append(TaskRequested("T111", None, "C111", ts, ts, "U1", f"task {n}"))
        for k in range(n % 3):  # 0-2 follow-ups, the last one delivered twice (a Slack retry)
            events.append(MessageInThread("T111", "C111", ts, f"{1_700_000_000 + n * 60 + k + 1}.000200", "U2", "+"))
        if k := n % 3:
            events.append(events[-1])
        for r in range(n % 4):  # 0-3 rounds
            agent = None if r == 2 else ("Grok", "Writer")[r % 2]
            scores = (("Grok", 90.0 - r), ("Writer", 40.5 + r), ("Builder", float(n)))
            at = 1_700_000_000 + n * 60 + 10 + r
            events.append(AssignmentRecorded(f"a{n:03d}{r}", ts, "C111", "T111", agent, 70.0, scores, at, "nobody"))
            if agent is not None and (n + r) % 2:
                events.append(OutcomeRecorded(f"o{n:03d}{r}", ts, "C111", "T111", agent, n % 5 != 0, 1.25, "boom",
                                              at + 1, at + 2.25))  # fmt: skip
    for event in events:
        tasklog._record(event)
    assert tasklog.flush(10)
    kept = csv_text(tasklog)
    rows = list(csv.DictReader(io.StringIO(kept, newline="")))
    assert [row["follow_ups"] for row in rows[:3]] == ["0", "1", "2"]
    assert [row["attempts"] for row in rows[:4]] == ["0", "1", "2", "3"]
    assert rows[1]["other_agents_confidence"] == "Writer:40.5;Builder:1"
    with tasklog.engine.begin() as conn:
        conn.execute(sql("UPDATE tasklog_assignments SET others = NULL"))
        conn.execute(sql("UPDATE tasklog_tasks SET latest_others = NULL, rounds = NULL, follow_ups = NULL"))
    assert csv_text(tasklog) == kept


def csv_text(tasklog: TaskLog) -> str:
    out = io.StringIO(newline="")
    tasklog.export_csv(out)
    return out.getvalue()


def test_feedback_columns_and_every_vote_in_the_json_lines(scripted: TaskLog) -> None:
    from slack_tasklog.reports.export import ExportFilter, write_jsonl

    first, second = "1705314600.000100", "1705314660.000100"
    scripted.record_feedback(first, True, user="U2")
    scripted.record_feedback(first, False, user="U3")
    scripted.record_feedback(first, True, user="U4")
    scripted.record_feedback(first, False, user="U123456")  # the requester
    scripted.record_feedback(second, False, user="U2")
    scripted.record_feedback(second, True, user="U2")  # changed their mind: the latest counts
    rows = export(scripted)
    assert [(r["feedback_up"], r["feedback_down"], r["requester_feedback"]) for r in rows] == [
        ("2", "1", "down"), ("1", "0", ""), ("0", "0", ""), ("0", "0", ""), ("0", "0", ""),
    ]  # fmt: skip
    out = io.StringIO()
    with scripted.connect() as conn:
        write_jsonl(conn, out, ExportFilter())
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(v["user_id"], v["positive"], v["removed"]) for v in records[1]["votes"]] == [
        ("U2", False, False), ("U2", True, False),
    ]  # fmt: skip
    assert all(v["at"].endswith("Z") for v in records[0]["votes"])
    assert (records[0]["feedback_up"], records[0]["feedback_down"], records[0]["requester_feedback"]) == (2, 1, False)
