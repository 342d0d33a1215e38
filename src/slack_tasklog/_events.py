"""What the request path hands to the background writer.

Small frozen records of plain values only (strings, numbers, tuples), so they cost little to make on the request
path and can be written anywhere later (the database, a journal). Times are Unix seconds as floats: turning
them into datetimes is the writer's job, off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AssignmentRecorded", "Event", "MessageInThread", "OutcomeRecorded", "TaskRequested"]


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


Event = TaskRequested | MessageInThread | AssignmentRecorded | OutcomeRecorded
