"""What the task log records: one event per thing that happened, handed from the request path to the writer.

Public because observers see them (:meth:`slack_tasklog.TaskLog.add_observer`)::

    from slack_tasklog.events import OutcomeRecorded

    def count_failures(events):
        failures.inc(sum(isinstance(e, OutcomeRecorded) and not e.success for e in events))

Named tuples of plain values only (strings, numbers, booleans, None, tuples), so the journal can write them as they
are and read them back in another process. Times are Unix seconds as floats; the writer turns them into datetimes.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "AssignmentRecorded",
    "Event",
    "FeedbackGiven",
    "MessageDeleted",
    "MessageInThread",
    "OutcomeRecorded",
    "TaskRequested",
]


class TaskRequested(NamedTuple):
    """A request to the bot (a mention, a direct message): it opens a task keyed on its thread, or, when that
    thread already holds one, is a follow-up of it. ``text`` is as stored: without the app's leading mention."""

    team_id: str
    enterprise_id: str | None
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None


class MessageInThread(NamedTuple):
    """A person's message in a thread: a follow-up if the thread holds a task, otherwise nothing."""

    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None


class AssignmentRecorded(NamedTuple):
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


class OutcomeRecorded(NamedTuple):
    """One call of ``process_assignment``: success or the error, the wall-clock time it took, and the tokens it used
    and what they cost (at the prices in force when it was recorded), where known."""

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
    # Last, with defaults: journals written before these fields existed still read back.
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


class MessageDeleted(NamedTuple):
    """Someone deleted a Slack message: if it is a task's request or a follow-up, its stored text is erased."""

    team_id: str
    channel_id: str
    ts: str


class FeedbackGiven(NamedTuple):
    """A person's verdict on a task: a feedback reaction added to (or removed from) a message of its thread, or a
    call of ``TaskLog.record_feedback``. The person's latest vote on a task is the one that counts."""

    team_id: str | None
    channel_id: str | None
    # The message reacted to; for record_feedback, the thread's ts.
    item_ts: str
    # The task's thread when the recorder knows it (record_feedback); None for a reaction: the writer finds it.
    thread_ts: str | None
    user_id: str
    # The emoji's base name (skin tone dropped); "" for record_feedback.
    reaction: str
    positive: bool
    # False: the reaction was removed, taking that vote back.
    added: bool
    # Slack's event_ts (the time of the vote), or the recording time for record_feedback: with the keys above, what
    # makes a redelivered event land once.
    ts: str


Event = TaskRequested | MessageInThread | AssignmentRecorded | OutcomeRecorded | MessageDeleted | FeedbackGiven
