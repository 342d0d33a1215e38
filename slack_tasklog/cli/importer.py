"""Moving in: import a JSON-lines task log into the database.

Two formats, told apart line by line:

- The design document's Approach 1 (``task_logs.jsonl``): objects with ``event_type`` ``task_request``,
  ``evaluations`` or ``task_complete``, written by its ``log_task`` sketch.
- This package's own journal segments (``*.journal`` files, see ``writer.journal``): :func:`import_journal`.

Events are linked by thread as the bot's own are, and written through the same idempotent path: every imported
event has an identity derived from its content, so importing a file twice changes nothing. Lines that cannot be
read are reported with their numbers; the import goes on. The file is streamed in batches: memory stays flat.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import marshal
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from slack_tasklog import values
from slack_tasklog.capture.decorators import normalize_evaluations, read_usage
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded, TaskRequested
from slack_tasklog.storage.store import Store
from slack_tasklog.values import amount, token_count
from slack_tasklog.writer.journal import is_journal, read_segment
from slack_tasklog.writer.records import EVENT_CLASSES

__all__ = [
    "ImportParserError",
    "ImportReport",
    "fewer_collections",
    "import_file",
    "import_journal",
    "import_jsonl",
    "is_journal",
    "parse_line",
]

_BATCH = 5_000
_MAX_REPORTED = 1_000
# Files at least this big are parsed by a second process (see import_file): about 90,000 Approach 1 lines.
_PARALLEL_BYTES = 16 << 20
# Made once: json.loads/json.dumps with options build a new decoder/encoder per call, a third of the cost of a line.
_decode = json.JSONDecoder().decode
# check_circular off: parsed JSON holds no cycles, and the check kept a dict of every container's id (same output).
_identity_encode = json.JSONEncoder(sort_keys=True, default=str, check_circular=False).encode
# How a line's event gets its id: (time in seconds, *the fields that tell it apart) -> id (see _identity).
_Identity = Callable[..., str]


@dataclass
class ImportReport:
    """What an import read, wrote and could not read (line number and why, the first thousand)."""

    lines: int = 0
    events: int = 0
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def import_jsonl(
    lines: IO[bytes] | Iterable[bytes],
    store: Store,
    *,
    team_id: str = "",
    unassigned_error: str = "No agent confident enough",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Read JSON lines from ``lines`` and write the events to ``store``.

    ``team_id`` is the workspace Approach 1 lines belong to (they do not say). ``progress`` is called with the
    number of bytes read since its last call (once per batch of lines).
    """
    head, rest = _head(lines)
    legacy = _imported_before(store, head, team_id, unassigned_error)
    return _write_batches(_batches(itertools.chain(head, rest), team_id, unassigned_error, legacy), store, progress)


def import_file(
    path: Path,
    store: Store,
    *,
    team_id: str = "",
    unassigned_error: str = "No agent confident enough",
    progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> ImportReport:
    """:func:`import_jsonl` of the file at ``path``; with ``parallel``, a second process reads and parses the
    lines while this one writes them. ``None`` (the default): in parallel for a file of 16 MB or more, if the
    machine has a second core.

    Why: parsing a line (JSON, checks, the event's identity) is a quarter of an import's time, and it need not wait
    for the database. The child hands each batch over as one ``marshal`` record (plain tuples), which costs this
    process little to read; the pipe holds at most a batch or two, so memory stays flat.
    Starting the child costs about half a second (it imports this package), hence the threshold.
    """
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and path.stat().st_size >= _PARALLEL_BYTES
    if not parallel or not sys.executable:  # no interpreter to start (Python embedded in another program)
        with path.open("rb") as file:
            return import_jsonl(file, store, team_id=team_id, unassigned_error=unassigned_error, progress=progress)
    with path.open("rb") as file:
        head, _ = _head(file)
    legacy = _imported_before(store, head, team_id, unassigned_error)
    # A fresh interpreter rather than multiprocessing: "spawn" would run the caller's __main__ again in the child
    # (a script without an ``if __name__ == "__main__"`` guard would start over), "fork" copies its threads' locks.
    parser = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), team_id, unassigned_error, "legacy" if legacy else "ordered"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))},
    )
    assert parser.stdout is not None
    try:
        return _write_batches(_received(parser.stdout), store, progress)
    finally:
        parser.stdout.close()  # if this process gave up early, the child's next write fails and it exits
        try:
            parser.wait(timeout=5)
        except subprocess.TimeoutExpired:
            parser.kill()
            parser.wait()


@contextlib.contextmanager
def fewer_collections(threshold: int = 10_000) -> Iterator[None]:
    """Run the garbage collector's youngest generation every ``threshold`` allocations instead of every 700, for a
    long import in a process of our own (the CLI's; a library caller keeps its own settings).

    An import allocates millions of short-lived objects that form no cycles, while the long-lived ones (the thread
    cache) grow: with the default thresholds the collector keeps scanning that growing heap for cycles that are
    not there, a sizeable share of the import's CPU for the same peak memory."""
    saved = gc.get_threshold()
    gc.set_threshold(max(saved[0], threshold), *saved[1:])
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@dataclass
class _Batch:
    events: list[Event]
    numbers: list[int]  # each event's line number
    lines: int
    size: int  # bytes
    skipped: int
    problems: list[tuple[int, str]]


def _write_batches(batches: Iterable[_Batch], store: Store, progress: Callable[[int], None] | None) -> ImportReport:
    report = ImportReport()
    for batch in batches:
        refused: list[tuple[int, str]] = []
        written = _write(store, batch.events, batch.numbers, refused) if batch.events else 0
        report.lines += batch.lines
        report.events += written
        report.skipped += batch.skipped + len(refused)
        problems = sorted(batch.problems + refused)
        report.problems.extend(problems[: _MAX_REPORTED - len(report.problems)])
        if progress is not None:
            progress(batch.size)
    return report


def _write(store: Store, events: list[Event], numbers: list[int], refused: list[tuple[int, str]]) -> int:
    """Write ``events``; if the database refuses a value in them, write the halves, down to the lines it refuses
    (added to ``refused`` with the database's reason). Returns how many were written. Any other failure (the
    database is down) raises."""
    try:
        store.write(events)
    except Exception as error:
        if not _refused(error):
            raise
        if len(events) == 1:
            refused.append((numbers[0], f"the database refused it: {_first_line(error)}"))
            return 0
        half = len(events) // 2
        return _write(store, events[:half], numbers[:half], refused) + _write(
            store, events[half:], numbers[half:], refused
        )
    return len(events)


def _refused(error: Exception) -> bool:
    """Whether ``error`` is the database (or its driver) refusing a value, not failing: worth finding the line."""
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

    if isinstance(error, DataError | IntegrityError):
        return True
    if isinstance(error, StatementError) and not isinstance(error, DBAPIError):
        return True  # a value the statement could not convert before sending it
    return isinstance(error, ValueError | OverflowError | UnicodeError)


def _first_line(error: Exception) -> str:
    # SQLAlchemy adds the statement and a link on lines of their own; "(psycopg.errors.X) " is noise here.
    line = str(getattr(error, "orig", None) or error).strip().split("\n", 1)[0]
    return line[:200] or type(error).__name__


def _batches(lines: Iterable[bytes], team_id: str, unassigned_error: str, legacy: bool) -> Iterator[_Batch]:
    """The events of ``lines`` in batches of ``_BATCH``, with what could not be read (the first thousand)."""
    batch = _Batch([], [], 0, 0, 0, [])
    reported = 0
    for number, raw in enumerate(lines, start=1):
        batch.lines += 1
        batch.size += len(raw)
        try:
            event = parse_line(raw, team_id=team_id, unassigned_error=unassigned_error, legacy_ids=legacy)
        except ValueError as error:
            batch.skipped += 1
            if reported < _MAX_REPORTED:
                reported += 1
                batch.problems.append((number, str(error)))
            continue
        if event is None:
            continue
        batch.events.append(event)
        batch.numbers.append(number)
        if len(batch.events) >= _BATCH:
            yield batch
            batch = _Batch([], [], 0, 0, 0, [])
    if batch.lines:
        yield batch


# The child's messages, each one marshal record after its length: a batch, the end, or why it stopped.
_BATCH_MESSAGE, _END_MESSAGE, _ERROR_MESSAGE = 0, 1, 2
_LENGTH = struct.Struct("<Q")
_CHILD = "from slack_tasklog.cli.importer import _parse_to_stdout; _parse_to_stdout()"
# Where this package is imported from, for the child (the caller may have put it on sys.path itself).
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _parse_to_stdout() -> None:
    """The child process of :func:`import_file` (``argv``: path, team id, unassigned error, ``legacy`` or
    ``ordered`` ids): parse the file, write each batch to standard output for the parent."""
    path, team_id, unassigned_error, ids = sys.argv[1:5]
    out = sys.stdout.buffer

    def send(message: tuple[Any, ...]) -> None:
        record = marshal.dumps(message)
        out.write(_LENGTH.pack(len(record)))
        out.write(record)
        out.flush()

    try:
        try:
            with fewer_collections(), open(path, "rb") as file:  # a process of our own
                for batch in _batches(file, team_id, unassigned_error, ids == "legacy"):
                    # Events as plain tuples, by kind: marshal takes no tuple subclasses, and is several times
                    # faster than pickle both ways. Store.write takes each kind apart anyway, in the order given.
                    by_kind: dict[str, list[tuple[Any, ...]]] = {}
                    numbers: dict[str, list[int]] = {}  # their line numbers, in the same order
                    for event, number in zip(batch.events, batch.numbers, strict=True):
                        kind = type(event).__name__
                        by_kind.setdefault(kind, []).append(tuple(event))
                        numbers.setdefault(kind, []).append(number)
                    send((_BATCH_MESSAGE, batch.lines, batch.size, batch.skipped, batch.problems, by_kind, numbers))
        except OSError as error:
            send((_ERROR_MESSAGE, f"{type(error).__name__}: {error}"))
        else:
            send((_END_MESSAGE,))
    except BrokenPipeError:  # the parent stopped reading: it gave up, and says why itself
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())  # no second error when Python flushes at exit


def _received(stream: IO[bytes]) -> Iterator[_Batch]:
    while True:
        head = stream.read(_LENGTH.size)
        length = _LENGTH.unpack(head)[0] if len(head) == _LENGTH.size else 0
        record = stream.read(length) if length else b""
        if not length or len(record) != length:
            raise ImportParserError("the parser process stopped without finishing the file")
        message = marshal.loads(record)
        if message[0] == _END_MESSAGE:
            return
        if message[0] == _ERROR_MESSAGE:
            raise ImportParserError(f"the parser process failed: {message[1]}")
        _, lines, size, skipped, problems, by_kind, numbers = message
        events: list[Event] = []
        event_numbers: list[int] = []
        for kind, records in by_kind.items():
            cls = EVENT_CLASSES[kind]
            events.extend(cls(*record) for record in records)
            event_numbers.extend(numbers[kind])
        yield _Batch(events, event_numbers, lines, size, skipped, [tuple(problem) for problem in problems])


class ImportParserError(RuntimeError):
    """The process parsing a file for :func:`import_file` stopped early (the file became unreadable, it was killed)."""


def parse_line(
    raw: bytes | str,
    *,
    team_id: str = "",
    unassigned_error: str = "No agent confident enough",
    legacy_ids: bool = False,
) -> Event | None:
    """One line → one event, or None for a line that carries none (blank, a journal header). ValueError says why a
    line cannot be read. ``legacy_ids``: hashed identities, as earlier versions made them (see :func:`_identity`)."""
    if not raw.strip():
        return None
    try:
        text = raw if isinstance(raw, str) else raw.decode()
        if text[:1] == "\ufeff":  # a byte order mark, as some editors start a file with
            text = text[1:]
        data = _decode(text)
    except ValueError as error:  # UnicodeDecodeError included
        raise ValueError(f"not JSON: {error}") from None
    except RecursionError:
        raise ValueError("not JSON this import reads: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise ValueError("a \\ud800-\\udfff escape that is half of a character (a lone surrogate) is not text")
    kind = data.get("event_type")
    convert = _APPROACH_1.get(kind) if isinstance(kind, str) else None
    if convert is None:
        raise ValueError(f"unknown event_type {kind!r}")
    try:
        return convert(data, team_id, unassigned_error, _legacy_identity if legacy_ids else _identity)
    except (KeyError, TypeError, ValueError, OverflowError) as error:  # OverflowError: a time beyond year 1 or 9999
        raise ValueError(f"{kind}: {_why(error)}") from None
    except RecursionError:
        raise ValueError(f"{kind}: nested too deeply") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    """Whether a string in ``data`` holds a lone surrogate (valid JSON, but no text a database can store)."""
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def import_journal(path: Path, store: Store) -> ImportReport:
    """Write the events of a journal segment (``*.journal``); ``UnreadableJournalError`` (a ValueError) if it is not
    one this version reads."""
    contents = read_segment(path)
    events, unreadable = contents.events, contents.unreadable
    for start in range(0, len(events), _BATCH):
        store.write(events[start : start + _BATCH])
    report = ImportReport(lines=len(events) + unreadable, events=len(events), skipped=unreadable)
    if unreadable:
        report.problems.append((0, f"{unreadable} unreadable records"))
    return report


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    return str(error)


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
        raise ValueError(f"field {name!r} must be a non-empty string")
    return str(value)


def _when(data: dict[str, Any]) -> float:
    """The line's ``timestamp``: ``datetime.utcnow().isoformat()`` in the sketch, so naive means UTC."""
    value = datetime.fromisoformat(_text(data, "timestamp").replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _identity(when: float, *parts: object) -> str:
    """A round's or an outcome's id: derived from the line, so the same line imported twice is the same event
    (written once), and ordered by its time like the ids the decorators mint (nanoseconds, 16 hex digits, then 16
    of a hash of the line's fields).

    Why ordered: each id is a primary key (the evaluations' too, as their round's), and hashed ids put every insert
    on a random page of those B-trees. Past the cache, every batch then rewrote thousands of pages: importing
    1,000,000 lines took 68.2 s with hashed ids against 37.8 s with these (measured, one process, same file).
    """
    nanoseconds = min(max(round(when * 1e6), 0) * 1000, _MAX_NANOSECONDS)  # 1970 to 2554
    return f"{nanoseconds:016x}{_legacy_identity(when, *parts)[:16]}"


_MAX_NANOSECONDS = (1 << 64) - 1


def _legacy_identity(_when: float, *parts: object) -> str:
    # The ids of imports before the ordered ids: exactly json.dumps(parts, sort_keys=True, default=str), hashed.
    # Still made for a file those versions imported (see _imported_before), so importing it again changes nothing.
    return hashlib.sha256(_identity_encode(parts).encode()).hexdigest()[:32]


_HEAD_LINES = 1_000


def _head(lines: Iterable[bytes]) -> tuple[list[bytes], Iterator[bytes]]:
    """The first lines of ``lines`` (to look at before the import), and an iterator over the rest."""
    rest = iter(lines)
    return list(itertools.islice(rest, _HEAD_LINES)), rest


def _imported_before(store: Store, head: Sequence[bytes], team_id: str, unassigned_error: str) -> bool:
    """Whether a version that hashed the ids (:func:`_legacy_identity`) imported this file already: then its ids
    are made that way again, or importing it again would add every round and outcome a second time."""
    ids: dict[type[Any], list[str]] = {AssignmentRecorded: [], OutcomeRecorded: []}
    for raw in head:
        try:
            event = parse_line(raw, team_id=team_id, unassigned_error=unassigned_error, legacy_ids=True)
        except ValueError:
            continue
        if isinstance(event, AssignmentRecorded | OutcomeRecorded):
            ids[type(event)].append(event.id)
    return store.has_any_event(rounds=ids[AssignmentRecorded], outcomes=ids[OutcomeRecorded])


def _task_request(data: dict[str, Any], team_id: str, _: str, __: _Identity) -> Event:
    thread_ts = _text(data, "thread_ts")
    request = data.get("request")
    return TaskRequested(
        team_id=team_id,
        enterprise_id=None,
        channel_id=_text(data, "channel_id"),
        thread_ts=thread_ts,
        ts=thread_ts,
        user_id=_text(data, "user_id"),
        text=request if isinstance(request, str) else None,
    )


def _evaluations(data: dict[str, Any], team_id: str, unassigned_error: str, identity: _Identity) -> Event:
    thread_ts = _text(data, "thread_ts")
    evaluations = normalize_evaluations(data.get("evaluations"))
    if evaluations is None:
        raise ValueError("evaluations must map agents to confidences")
    agent = data.get("assigned_to")
    if agent is not None and not isinstance(agent, str):
        raise ValueError("assigned_to must be a string or null")
    confidence = None
    if agent is not None:
        # A max_confidence that is no confidence (missing, NaN, out of range): the assigned agent's evaluation.
        confidence = values.confidence(data.get("max_confidence"))
        if confidence is None:
            confidence = dict(evaluations).get(agent)
    when = _when(data)
    return AssignmentRecorded(
        id=identity(when, "evaluations", thread_ts, data["timestamp"], data.get("evaluations"), agent),
        thread_ts=thread_ts,
        channel_id=data.get("channel_id") if isinstance(data.get("channel_id"), str) else None,
        team_id=team_id or None,
        agent=agent or None,
        confidence=confidence,
        evaluations=evaluations,
        recorded_at=when,
        unassigned_error=unassigned_error,
    )


def _task_complete(data: dict[str, Any], team_id: str, _: str, identity: _Identity) -> Event:
    thread_ts = _text(data, "thread_ts")
    success = data["success"]
    if not isinstance(success, bool):
        raise ValueError("success must be true or false")
    execution_time = data.get("execution_time", 0.0)
    if (
        not isinstance(execution_time, int | float)
        or isinstance(execution_time, bool)
        or not 0 <= execution_time <= _MAX_EXECUTION_TIME  # False for NaN too
    ):
        raise ValueError("execution_time must be a number of seconds, at most a year (not NaN or Infinity)")
    error = data.get("error_message", data.get("error"))
    finished = _when(data)
    input_tokens, output_tokens = read_usage(data) or (None, None)
    return OutcomeRecorded(
        id=identity(finished, "task_complete", thread_ts, data["timestamp"], data.get("agent"), success),
        thread_ts=thread_ts,
        channel_id=data.get("channel_id") if isinstance(data.get("channel_id"), str) else None,
        team_id=team_id or None,
        agent=_text(data, "agent"),
        success=success,
        execution_time=float(execution_time),
        error_message=str(error) if error is not None else None,
        started_at=finished - float(execution_time),
        finished_at=finished,
        input_tokens=_count(input_tokens, "input tokens"),
        output_tokens=_count(output_tokens, "output tokens"),
        cost=_amount(data.get("cost")),
    )


def _count(value: Any, what: str) -> int | None:
    """A token count of a line (``input_tokens``/``output_tokens`` or OpenAI's names, at the top or in ``usage``)."""
    count = token_count(value)
    if count is None and value is not None:
        raise ValueError(f"{what} must be a whole number, 0 or more, not {value!r}")
    return count


def _amount(value: Any) -> float | None:
    cost = amount(value)
    if cost is None and value is not None:
        raise ValueError(f"cost must be a number, 0 or more (not NaN or Infinity), not {value!r}")
    return cost


# Longer is a unit mistake (milliseconds?) or garbage; and a start time must stay a time a database can hold.
_MAX_EXECUTION_TIME = 365 * 86_400

_APPROACH_1: dict[str, Callable[[dict[str, Any], str, str, _Identity], Event]] = {
    "task_request": _task_request,
    "evaluations": _evaluations,
    "task_complete": _task_complete,
}
