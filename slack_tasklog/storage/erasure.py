"""Erasing texts everywhere the database copied them: a person forgotten, or a Slack message deleted. A person
forgotten loses their votes too (their tasks' tallies and verdicts are worked out again without them).

A request or follow-up text is stored once, but copied in two more places: the error message of a run that failed
on it (exception messages often quote the request) and, through that, the failure rollup's text. Erasing a text
blanks it, reduces those error messages to their exception type (``ValueError: cannot parse 'pay Bob'`` ->
``ValueError``) and moves the task in the failure rollup to that type, so counts stay right and no rollup row
keeps the text.

Erasures are also remembered for what arrives after them (Slack delivers out of order; a running bot's queue and a
dead bot's journal are written later): a deletion for 30 days (``tasklog_deleted_messages``), a forgotten person for
good (``tasklog_forgotten_users``). The writer asks :func:`erased_before_arrival` and :func:`erased_tasks`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, or_, select, update

from slack_tasklog.events import Event, FeedbackGiven, MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.storage import summary
from slack_tasklog.storage.bulk import among, any_rows, insert_ignore
from slack_tasklog.storage.models import (
    DailyFailures,
    DeletedMessage,
    Feedback,
    FollowUp,
    ForgottenUser,
    Outcome,
    Task,
    WaitingMessage,
    WaitingVote,
)
from slack_tasklog.values import exception_type, ts_seconds

__all__ = [
    "Dropped",
    "Erasure",
    "MessageKey",
    "drop_waits",
    "erased_before_arrival",
    "erased_tasks",
    "forget_in_events",
    "forget_user",
    "forget_votes",
    "reduce_errors",
    "remember_deletions",
    "votes_after_forget",
]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_follow_ups: Table = FollowUp.__table__  # type: ignore[assignment]
_outcomes: Table = Outcome.__table__  # type: ignore[assignment]
_failures: Table = DailyFailures.__table__  # type: ignore[assignment]
_waiting: Table = WaitingMessage.__table__  # type: ignore[assignment]
_deleted: Table = DeletedMessage.__table__  # type: ignore[assignment]
_forgotten: Table = ForgottenUser.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]
_waiting_votes: Table = WaitingVote.__table__  # type: ignore[assignment]

#: A Slack message's own key: (team, channel, ts).
MessageKey = tuple[str, str, str]

_CHUNK = 500
# The time of a ts that is not one: never before a forget.
_NEVER = math.inf


@dataclass(frozen=True)
class Erasure:
    """What forgetting a person (or erasing a deleted message) erased, place by place."""

    #: Request and follow-up texts erased (including replies still waiting for their thread's request).
    texts: int = 0
    #: Error messages of runs on those tasks, reduced to their exception type.
    error_messages: int = 0
    #: Rows of the failure rollup (``tasklog_daily_failures``) left with no task once those moved to the type.
    failure_rows: int = 0
    #: Records scrubbed in journals that stopped bots left on this machine.
    journal_records: int = 0
    #: Vote events deleted (feedback reactions and ``record_feedback`` calls, those waiting for their task too), in
    #: the database.
    votes: int = 0
    #: SQLite: whether the WAL was emptied into the file (a reader kept busy can prevent it); None elsewhere.
    checkpointed: bool | None = None
    #: The threads of the person's requests, for the journal scrub: not a count.
    threads: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @property
    def total(self) -> int:
        """Everything erased or reduced, all places together."""
        return self.texts + self.error_messages + self.failure_rows + self.journal_records + self.votes


def forget_user(conn: Connection, user_id: str, team_id: str | None, now: datetime) -> Erasure:
    """Erase what ``user_id`` wrote, in ``conn``'s write transaction: their request and follow-up texts, the error
    messages of their tasks' runs (all of them: whatever the exception quoted came from the request) and those of
    other tasks' runs that quote one of their follow-ups."""
    tasks = select(_tasks.c.id, _tasks.c.thread_ts).where(_tasks.c.user_id == user_id)
    follow_ups = select(_follow_ups.c.task_id, _follow_ups.c.text).where(
        _follow_ups.c.user_id == user_id, _follow_ups.c.text.is_not(None)
    )
    if team_id is not None:
        tasks = tasks.where(_tasks.c.team_id == team_id)
        follow_ups = follow_ups.where(_follow_ups.c.team_id == team_id)
    own = conn.execute(tasks).all()
    quoting: dict[int, list[str]] = {}
    for task_id, text in conn.execute(follow_ups).all():
        quoting.setdefault(task_id, []).append(text)
    # Every task whose rows change below, locked in one step in id order before any of them (see summary.lock).
    locked = {task_id for task_id, _ in own} | set(quoting) | _voted(conn, user_id, team_id)
    summary.lock(conn, locked)
    texts = 0
    for table, text_column in (
        (_tasks, _tasks.c.request_text),
        (_follow_ups, _follow_ups.c.text),
        (_waiting, _waiting.c.text),
    ):
        query = update(table).where(table.c.user_id == user_id, text_column.is_not(None))
        if team_id is not None:
            query = query.where(table.c.team_id == team_id)
        texts += conn.execute(query.values({text_column: None, table.c.text_erased_at: now})).rowcount
    errors, failure_rows = reduce_errors(conn, whole={task_id for task_id, _ in own}, quoting=quoting, locked=locked)
    # What they wrote before now and reaches a writer later (a running bot's queue, a journal) loses its text there.
    key = {"user_id": user_id, "team_id": team_id or ""}
    conn.execute(insert_ignore(_forgotten, conn.dialect.name), [{**key, "forgotten_at": now}])
    conn.execute(update(_forgotten).filter_by(**key).values(forgotten_at=now))
    votes = forget_votes(conn, user_id, team_id)
    return Erasure(texts, errors, failure_rows, votes=votes, threads=frozenset(thread for _, thread in own))


def forget_votes(conn: Connection, user_id: str, team_id: str | None) -> int:
    """Delete every vote ``user_id`` gave, in ``conn``'s write transaction, and tally their tasks' votes again; and
    those still waiting for their task. Returns how many vote events were deleted."""
    mine = _votes_of(user_id, team_id)
    voted = _voted(conn, user_id, team_id)
    summary.lock(conn, voted)
    deleted = conn.execute(delete(_feedback).where(mine)).rowcount
    summary.refresh_feedback(conn, voted, locked=voted)
    # A waiting vote without a workspace (record_feedback named none) is anyone's with that user id.
    waiting = _waiting_votes.c.user_id == user_id
    if team_id is not None:
        waiting = waiting & _waiting_votes.c.team_id.in_((team_id, ""))
    deleted += conn.execute(delete(_waiting_votes).where(waiting)).rowcount
    return int(deleted)


def _votes_of(user_id: str, team_id: str | None) -> Any:
    mine = _feedback.c.user_id == user_id
    return mine if team_id is None else mine & (_feedback.c.team_id == team_id)


def _voted(conn: Connection, user_id: str, team_id: str | None) -> set[int]:
    """The tasks ``user_id`` voted on."""
    return set(conn.execute(select(_feedback.c.task_id).where(_votes_of(user_id, team_id)).distinct()).scalars())


def reduce_errors(
    conn: Connection,
    *,
    whole: Iterable[int] = (),
    quoting: Mapping[int, Sequence[str]] | None = None,
    locked: Iterable[int] = (),
) -> tuple[int, int]:
    """Reduce to their exception type the error messages of every run of the ``whole`` tasks, and those of runs of
    the ``quoting`` tasks that contain one of the texts given for the task; then move those tasks in the failure
    rollup and drop its rows left with no task. Rounds that assigned nobody keep their message: it is the
    operator's (``unassigned_error``), not a quote. Returns (error messages reduced, rollup rows dropped)."""
    quoting = quoting or {}
    whole_ids = set(whole)
    ids = sorted(whole_ids | {task_id for task_id, texts in quoting.items() if any(texts)})
    if not ids:
        return 0, 0
    # Locked before any of their rows change, in the same order as every writer (see summary.lock).
    already = set(locked)
    summary.lock(conn, [task_id for task_id in ids if task_id not in already])
    changes: list[tuple[str, str | None]] = []
    touched: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        runs = select(_outcomes.c.id, _outcomes.c.task_id, _outcomes.c.error_message).where(
            among(conn, _outcomes.c.task_id, chunk),
            _outcomes.c.error_message.is_not(None),
            _outcomes.c.agent.is_not(None),
        )
        for outcome_id, task_id, message in conn.execute(runs).all():
            quoted = task_id in whole_ids or any(text and text in message for text in quoting.get(task_id, ()))
            reduced = exception_type(message)
            if quoted and reduced != message:
                changes.append((outcome_id, reduced))
                touched.add(task_id)
    for outcome_id, reduced in changes:
        conn.execute(update(_outcomes).where(_outcomes.c.id == outcome_id).values(error_message=reduced))
    if not touched:
        return 0, 0
    deltas = summary.Deltas()
    summary.refresh(conn, touched, deltas=deltas, locked=set(ids))
    summary.upsert_deltas(conn, deltas)
    # Only the rows these tasks left: others at zero are drop_empty's, hourly.
    dropped = 0
    for key, (count,) in deltas.failures.items():
        if count < 0:
            team_id, enterprise_id, day, agent, error_key = key
            dropped += conn.execute(
                delete(_failures).where(
                    _failures.c.team_id == team_id,
                    _failures.c.enterprise_id == enterprise_id,
                    _failures.c.day == day,
                    _failures.c.agent == agent,
                    _failures.c.error_key == error_key,
                    _failures.c.tasks == 0,
                )
            ).rowcount
    return len(changes), dropped


def forget_in_events(
    events: Sequence[Event], user_id: str, team_id: str | None, threads: Iterable[str] = ()
) -> list[Event]:
    """``events`` (a journal's) with what :func:`forget_user` erases taken out: the texts ``user_id`` wrote, and the
    error messages of runs in the threads of their requests (``threads``: those stored, the journal's own added)."""

    def theirs(event: TaskRequested | MessageInThread) -> bool:
        return event.user_id == user_id and (team_id is None or event.team_id == team_id)

    their_threads = set(threads)
    their_threads.update(e.thread_ts for e in events if isinstance(e, TaskRequested) and theirs(e))
    kept: list[Event] = []
    for event in events:
        if isinstance(event, FeedbackGiven) and event.user_id == user_id and team_id in (None, event.team_id):
            continue  # their vote
        if isinstance(event, TaskRequested | MessageInThread) and event.text is not None and theirs(event):
            kept.append(event._replace(text=None))
        elif (
            isinstance(event, OutcomeRecorded)
            and event.error_message is not None
            and event.agent is not None
            and event.thread_ts in their_threads
            and (team_id is None or event.team_id in (None, team_id))
        ):
            kept.append(event._replace(error_message=exception_type(event.error_message)))
        else:
            kept.append(event)
    return kept


def erased_before_arrival(conn: Connection, messages: Sequence[TaskRequested | MessageInThread]) -> set[MessageKey]:
    """Which of ``messages`` were erased before they reached the writer: deleted in Slack (a deletion delivered
    first, kept in ``tasklog_deleted_messages``), or written before their author was forgotten."""
    with_text = {(m.team_id, m.channel_id, m.ts): m for m in messages if m.text is not None}
    if not with_text:
        return set()
    erased: set[MessageKey] = set()
    stamps = sorted({ts for _, _, ts in with_text}) if any_rows(conn, _deleted) else []
    for start in range(0, len(stamps), _CHUNK):
        deleted = select(_deleted.c.team_id, _deleted.c.channel_id, _deleted.c.ts).where(
            among(conn, _deleted.c.ts, stamps[start : start + _CHUNK])
        )
        erased.update(key for key in map(tuple, conn.execute(deleted)) if key in with_text)
    forgotten = _forgotten_at(conn, {m.user_id for m in with_text.values()})
    for key, m in with_text.items():
        # "" : forgotten in every workspace.
        at = max(forgotten.get((m.user_id, m.team_id), -1.0), forgotten.get((m.user_id, ""), -1.0))
        if at >= 0 and ts_seconds(m.ts, _NEVER) <= at:
            erased.add(key)
    return erased


def votes_after_forget(conn: Connection, votes: Sequence[FeedbackGiven]) -> list[FeedbackGiven]:
    """``votes`` without those given before their person was forgotten (a running bot's queue, a journal replayed):
    a forget deletes a person's votes, and one that arrives later must not bring them back."""
    forgotten = _forgotten_at(conn, {v.user_id for v in votes})
    if not forgotten:
        return list(votes)
    kept = []
    for vote in votes:
        at = max(forgotten.get((vote.user_id, vote.team_id or ""), -1.0), forgotten.get((vote.user_id, ""), -1.0))
        if at < 0 or ts_seconds(vote.ts, _NEVER) > at:
            kept.append(vote)
    return kept


def _forgotten_at(conn: Connection, users: Iterable[str]) -> dict[tuple[str, str], float]:
    """(user, team) -> when they were forgotten (Unix seconds; team "" for every workspace), for these users."""
    wanted = sorted(set(users)) if any_rows(conn, _forgotten) else []
    forgotten: dict[tuple[str, str], float] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = select(_forgotten.c.user_id, _forgotten.c.team_id, _forgotten.c.forgotten_at).where(
            among(conn, _forgotten.c.user_id, wanted[start : start + _CHUNK])
        )
        for user, team, at in conn.execute(rows):
            forgotten[(user, team)] = at.astimezone(timezone.utc).timestamp()
    return forgotten


def erased_tasks(conn: Connection, task_ids: Iterable[int]) -> set[int]:
    """Which of these tasks had their request erased: deleted in Slack, or its author forgotten since it was asked."""
    ids = sorted(set(task_ids))
    found: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = among(conn, _tasks.c.id, ids[start : start + _CHUNK], key=True)
        found.update(conn.execute(select(_tasks.c.id).where(chunk, _tasks.c.text_erased_at.is_not(None))).scalars())
        forgotten = (
            select(_tasks.c.id)
            .join(
                _forgotten,
                and_(
                    _forgotten.c.user_id == _tasks.c.user_id,
                    or_(_forgotten.c.team_id == "", _forgotten.c.team_id == _tasks.c.team_id),
                ),
            )
            .where(chunk)
            .where(_tasks.c.requested_at <= _forgotten.c.forgotten_at)
        )
        found.update(conn.execute(forgotten).scalars())
    return found


def remember_deletions(conn: Connection, keys: Iterable[MessageKey], now: datetime) -> None:
    """Keep these deletions (30 days, see ``Store.maintain``) for their message, should it arrive after them; erase
    the text of a reply waiting for its request."""
    keys = sorted(set(keys))
    for team_id, channel_id, ts in keys:
        conn.execute(
            update(_waiting)
            .where(_waiting.c.team_id == team_id, _waiting.c.channel_id == channel_id, _waiting.c.ts == ts)
            .values(text=None, text_erased_at=now)
        )
    rows = [{"team_id": team, "channel_id": channel, "ts": ts, "deleted_at": now} for team, channel, ts in keys]
    if rows:
        conn.execute(insert_ignore(_deleted, conn.dialect.name), rows)


@dataclass(frozen=True)
class Dropped:
    """What :func:`drop_waits` dropped of what was waiting for its task."""

    replies: int
    votes: int


def drop_waits(conn: Connection, replies_before: datetime, deletions_before: datetime) -> Dropped:
    """Drop the replies and votes still waiting for their request since before ``replies_before``, and the deletions
    kept for their message since before ``deletions_before``. Slack's events arrive out of order within seconds or
    minutes; deletions are kept far longer, for a journal replayed late (30 days, ``Store.maintain``)."""
    replies = conn.execute(delete(_waiting).where(_waiting.c.recorded_at < replies_before)).rowcount
    votes = conn.execute(delete(_waiting_votes).where(_waiting_votes.c.recorded_at < replies_before)).rowcount
    conn.execute(delete(_deleted).where(_deleted.c.deleted_at < deletions_before))
    return Dropped(int(replies), int(votes))
