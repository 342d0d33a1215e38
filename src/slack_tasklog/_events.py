"""What the request path hands to the background writer.

Small frozen records of plain values only (strings, numbers, tuples), so they cost little to make on the request
path and can be written anywhere later (the database, a journal). Times are Unix seconds as floats: turning
them into datetimes is the writer's job, off the request path.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AssignmentRecorded",
    "Event",
    "MessageDeleted",
    "MessageInThread",
    "OutcomeRecorded",
    "TaskRequested",
    "decode_event",
    "encode_event",
]


@dataclass(frozen=True, slots=True)
class TaskRequested:
    """An app mention that opens a task, or, when its thread already holds one, is a follow-up of it."""

    team_id: str
    enterprise_id: str | None
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None


@dataclass(frozen=True, slots=True)
class MessageInThread:
    """A person's message in a thread: a follow-up if the thread holds a task, otherwise nothing."""

    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None


@dataclass(frozen=True, slots=True)
class AssignmentRecorded:
    """One call of ``check_and_assign``: every agent's confidence and who (if anyone) got the task."""

    id: str
    thread_ts: str
    channel_id: str | None
    team_id: str | None
    agent: str | None
    confidence: float | None
    evaluations: tuple[tuple[str, float | None], ...]
    recorded_at: float
    # The failure recorded when nobody was assigned; kept on the event so every process agrees on it.
    unassigned_error: str


@dataclass(frozen=True, slots=True)
class OutcomeRecorded:
    """One call of ``process_assignment``: success or the error, and the wall-clock time it took."""

    id: str
    thread_ts: str
    channel_id: str | None
    team_id: str | None
    agent: str | None
    success: bool
    execution_time: float
    error_message: str | None
    started_at: float
    finished_at: float


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    """Someone deleted a Slack message: if it is a task's request or a follow-up, its stored text is erased."""

    team_id: str
    channel_id: str
    ts: str


Event = TaskRequested | MessageInThread | AssignmentRecorded | OutcomeRecorded | MessageDeleted


# -- the journal's line format --------------------------------------------------------------------------------
# One JSON array per event: [seq, kind, field, field, ...] in the dataclass's field order. Arrays, not objects:
# half the bytes and half the time of json.dumps on the request path, and the field order is part of the format
# (FORMAT_VERSION says which).

FORMAT_VERSION = 1

_KIND_OF: dict[type[Any], str] = {
    TaskRequested: "request",
    MessageInThread: "message",
    AssignmentRecorded: "assignment",
    OutcomeRecorded: "outcome",
    MessageDeleted: "deleted",
}
_CLASS_OF: dict[str, type[Any]] = {kind: cls for cls, kind in _KIND_OF.items()}
_VALUES: dict[type[Any], Any] = {cls: operator.attrgetter(*cls.__slots__) for cls in _KIND_OF}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_event(seq: int, event: Event) -> bytes:
    """One journal line (with its newline) for ``event``."""
    cls = type(event)
    return (_dumps([seq, _KIND_OF[cls], *_VALUES[cls](event)]) + "\n").encode()


def decode_event(line: bytes | str) -> tuple[int, Event]:
    """The inverse of :func:`encode_event`; raises ValueError for anything else."""
    try:
        seq, kind, *values = json.loads(line)
        cls = _CLASS_OF[kind]
        if cls is AssignmentRecorded:
            values[6] = tuple((str(agent), confidence) for agent, confidence in values[6])
        event: Event = cls(*values)
    except (TypeError, KeyError, IndexError, ValueError) as error:
        raise ValueError(f"not a journal line: {error}") from error
    if not isinstance(seq, int):
        raise ValueError("not a journal line: bad sequence number")
    return seq, event
