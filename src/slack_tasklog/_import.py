"""Moving in: import a JSON-lines task log into the database.

Two formats, told apart line by line:

- The design document's Approach 1 (``task_logs.jsonl``): objects with ``event_type`` ``task_request``,
  ``evaluations`` or ``task_complete``, written by its ``log_task`` sketch.
- This package's own journal segments (``*.journal`` files, see ``_journal``): :func:`import_journal`.

Events are linked by thread as the bot's own are, and written through the same idempotent path: every imported
event has an identity derived from its content, so importing a file twice changes nothing. Lines that cannot be
read are reported with their numbers; the import goes on. The file is streamed in batches: memory stays flat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ._decorators import normalize_evaluations
from ._events import AssignmentRecorded, Event, OutcomeRecorded, TaskRequested
from ._journal import MAGIC, read_segment
from ._store import Store

__all__ = ["ImportReport", "import_journal", "import_jsonl", "is_journal", "parse_line"]

_BATCH = 5_000
_MAX_REPORTED = 1_000
# Made once: json.loads/json.dumps with options build a new decoder/encoder per call, a third of the cost of a line.
_decode = json.JSONDecoder().decode
_identity_encode = json.JSONEncoder(sort_keys=True, default=str).encode


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
    number of bytes read since its last call.
    """
    report = ImportReport()
    batch: list[Event] = []
    for number, raw in enumerate(lines, start=1):
        report.lines += 1
        if progress is not None:
            progress(len(raw))
        try:
            event = parse_line(raw, team_id=team_id, unassigned_error=unassigned_error)
        except ValueError as error:
            report.skipped += 1
            if len(report.problems) < _MAX_REPORTED:
                report.problems.append((number, str(error)))
            continue
        if event is None:
            continue
        batch.append(event)
        if len(batch) >= _BATCH:
            store.write(batch)
            report.events += len(batch)
            batch = []
    if batch:
        store.write(batch)
        report.events += len(batch)
    return report


def parse_line(
    raw: bytes | str, *, team_id: str = "", unassigned_error: str = "No agent confident enough"
) -> Event | None:
    """One line → one event, or None for a line that carries none (blank, a journal header). ValueError says why a
    line cannot be read."""
    if not raw.strip():
        return None
    try:
        data = _decode(raw if isinstance(raw, str) else raw.decode("utf-8-sig"))
    except ValueError as error:  # UnicodeDecodeError included
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    kind = data.get("event_type")
    convert = _APPROACH_1.get(kind) if isinstance(kind, str) else None
    if convert is None:
        raise ValueError(f"unknown event_type {kind!r}")
    try:
        return convert(data, team_id, unassigned_error)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{kind}: {_why(error)}") from None


def import_journal(path: Path, store: Store) -> ImportReport:
    """Write the events of a journal segment (``*.journal``) that were not yet marked committed."""
    events, unreadable = read_segment(path)
    for start in range(0, len(events), _BATCH):
        store.write(events[start : start + _BATCH])
    report = ImportReport(lines=len(events) + unreadable, events=len(events), skipped=unreadable)
    if unreadable:
        report.problems.append((0, f"{unreadable} unreadable records"))
    return report


def is_journal(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(len(MAGIC)) == MAGIC


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


def _identity(*parts: object) -> str:
    # Derived from the content, so the same line imported twice is the same event (and written once).
    # Exactly json.dumps(parts, sort_keys=True, default=str): ids of events imported before must not change.
    return hashlib.sha256(_identity_encode(parts).encode()).hexdigest()[:32]


def _task_request(data: dict[str, Any], team_id: str, _: str) -> Event:
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


def _evaluations(data: dict[str, Any], team_id: str, unassigned_error: str) -> Event:
    thread_ts = _text(data, "thread_ts")
    evaluations = normalize_evaluations(data.get("evaluations"))
    if evaluations is None:
        raise ValueError("evaluations must map agents to confidences")
    agent = data.get("assigned_to")
    if agent is not None and not isinstance(agent, str):
        raise ValueError("assigned_to must be a string or null")
    confidence = data.get("max_confidence")
    if agent is None:
        confidence = None
    elif not isinstance(confidence, int | float) or isinstance(confidence, bool):
        confidence = dict(evaluations).get(agent)
    when = _when(data)
    return AssignmentRecorded(
        id=_identity("evaluations", thread_ts, data["timestamp"], data.get("evaluations"), agent),
        thread_ts=thread_ts,
        channel_id=data.get("channel_id") if isinstance(data.get("channel_id"), str) else None,
        team_id=team_id or None,
        agent=agent or None,
        confidence=float(confidence) if confidence is not None else None,
        evaluations=evaluations,
        recorded_at=when,
        unassigned_error=unassigned_error,
    )


def _task_complete(data: dict[str, Any], team_id: str, _: str) -> Event:
    thread_ts = _text(data, "thread_ts")
    success = data["success"]
    if not isinstance(success, bool):
        raise ValueError("success must be true or false")
    execution_time = data.get("execution_time", 0.0)
    if not isinstance(execution_time, int | float) or isinstance(execution_time, bool) or execution_time < 0:
        raise ValueError("execution_time must be a number of seconds")
    error = data.get("error_message", data.get("error"))
    finished = _when(data)
    return OutcomeRecorded(
        id=_identity("task_complete", thread_ts, data["timestamp"], data.get("agent"), success),
        thread_ts=thread_ts,
        channel_id=data.get("channel_id") if isinstance(data.get("channel_id"), str) else None,
        team_id=team_id or None,
        agent=_text(data, "agent"),
        success=success,
        execution_time=float(execution_time),
        error_message=str(error) if error is not None else None,
        started_at=finished - float(execution_time),
        finished_at=finished,
    )


_APPROACH_1: dict[str, Callable[[dict[str, Any], str, str], Event]] = {
    "task_request": _task_request,
    "evaluations": _evaluations,
    "task_complete": _task_complete,
}
