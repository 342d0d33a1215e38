"""Each task's latest round on its own row, and the daily rollup that stats over months read instead of the tasks.

Why: which round counts for a task (the latest-round rule, :mod:`slack_tasklog.storage.rounds`) takes two
correlated searches per task. Stats over a month of a busy bot read hundreds of thousands of tasks, and percentiles
sort them: seconds. So the writer, in the transaction that adds a round or an outcome, works the rule out once for
the tasks it touched (:func:`refresh`, with :func:`~slack_tasklog.storage.rounds.latest_rounds`), keeps the answer
in the task's ``latest_*`` columns, and moves the task from its old row of
``tasklog_daily_stats`` to its new one (counts go down there and up here: a task is always counted exactly once).
Stats then read whole days from the rollup and only the part-days at a window's edges from the tasks.

Feedback works the same way: when a task's votes change (:func:`refresh_feedback`), the writer keeps their tally on
the task (``feedback_up``, ``feedback_down``, ``requester_feedback``) and moves the task in the rollup if its verdict
(:func:`~slack_tasklog.storage.votes.verdict_of`) changed; the rollup counts tasks with a verdict, approved ones,
and those reported successful yet voted down.

Execution times are counted per bucket (:func:`bucket_of`): bucket ``i`` holds the times in
``(GAMMA ** (i - 1), GAMMA ** i]`` microseconds, each bucket 2% wide, so the value a bucket stands for
(:func:`bucket_value`) is within 1% of every time in it: a percentile read from the buckets is within 1% of the
exact one (the idea of DDSketch). Counts, success rates and mean confidences stay exact.

Concurrency: two processes may change one task at once (the orchestrator records a round while a specialist
records its outcome). :func:`refresh` locks the task rows first (``FOR NO KEY UPDATE`` on PostgreSQL, ``FOR UPDATE``
on MySQL/MariaDB, whose write connections read committed data; SQLite has one writer at a time), so the second
transaction waits, then sees the first one's rows. The writer also takes those locks before it inserts the rounds
(:func:`lock`): on MySQL an insert takes a shared lock on the parent task, and two shared locks that both want to
become exclusive would deadlock. And it locks every stored task its batch may change in one call, before any row
changes: locks taken in id order by each of several calls could still make a circle between two writers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, Table, delete, func, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql import bindparam

from slack_tasklog.storage.bulk import Bulk, among, as_stored
from slack_tasklog.storage.models import (
    Assignment,
    DailyCalibration,
    DailyFailures,
    DailyStats,
    Evaluation,
    Feedback,
    FollowUp,
    Task,
)
from slack_tasklog.storage.rounds import NOT_ROUTED, latest_rounds, other_agents
from slack_tasklog.storage.votes import Tally, tally_votes, verdict_of, votes_of

__all__ = [
    "GAMMA",
    "bucket_of",
    "bucket_value",
    "confidence_percent",
    "count_follow_ups",
    "day_of",
    "fill_others",
    "lock",
    "rebuild",
    "refresh",
    "refresh_feedback",
    "remove",
    "upsert_deltas",
]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_daily: Table = DailyStats.__table__  # type: ignore[assignment]
_calibration: Table = DailyCalibration.__table__  # type: ignore[assignment]
_assignments: Table = Assignment.__table__  # type: ignore[assignment]
_failures: Table = DailyFailures.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]

#: Relative accuracy of the execution-time buckets: a bucket's value is within 1% of the times it holds.
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
_UNIT = 1e-6  # seconds: times under a microsecond count as 0
#: Bucket of a task with no outcome yet.
UNFINISHED = -1

_CHUNK = 500
_KEYS = ("team_id", "enterprise_id", "day", "routed", "agent", "bucket")
_COUNTS = (
    "tasks", "succeeded", "confidence_sum", "confidence_count", "voted", "approved", "disagreed",
    "input_tokens", "output_tokens", "cost", "costed", "costed_succeeded",
)  # fmt: skip

_CALIBRATION_KEYS = ("team_id", "enterprise_id", "day", "agent", "confidence")
_CALIBRATION_COUNTS = ("tasks", "finished", "succeeded", "input_tokens", "output_tokens", "cost", "costed")


_FAILURE_KEYS = ("team_id", "enterprise_id", "day", "agent", "error_key")
_MAX_FAILURE = 200  # characters of an error's first line kept to tell failures apart


def failure_of(message: str | None) -> tuple[str, str]:
    """``(key, text)`` of a failure: the first line of its message (at most 200 characters), and a hash of it."""
    text = (message or "").strip().split("\n", 1)[0].strip()[:_MAX_FAILURE] or "(no error message)"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:32], text


class _State(NamedTuple):
    routed: bool
    agent: str | None
    bucket: int
    success: bool | None
    confidence: float | None
    # A failed task's failure (failure_of); only the key when taking a task out of the rollup.
    failure: tuple[str, str] | None = None
    # The people's verdict (verdict_of), None without one.
    verdict: bool | None = None
    # The sums of its runs' (input tokens, output tokens, cost), each None while no run said.
    usage: tuple[int | None, int | None, float | None] = (None, None, None)


@dataclass
class Deltas:
    """What a refresh changes in the rollups, summed per row: added to them in one write (:func:`upsert_deltas`)."""

    # (team_id, enterprise_id, day, routed, agent, bucket) -> [tasks, succeeded, confidence_sum, confidence_count,
    # voted, approved, disagreed, input_tokens, output_tokens, cost, costed, costed_succeeded]
    daily: dict[tuple[str, str, date, bool, str, int], list[float]] = field(default_factory=dict)
    # (team_id, enterprise_id, day, agent, confidence percent) -> [tasks, finished, succeeded, input_tokens,
    # output_tokens, cost, costed]
    calibration: dict[tuple[str, str, date, str, int], list[float]] = field(default_factory=dict)
    # (team_id, enterprise_id, day, agent, error key) -> [failed tasks]; and each key's message
    failures: dict[tuple[str, str, date, str, str], list[int]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def count(self, sign: int, team_id: str, enterprise_id: str, day: date, state: _State) -> None:
        """Count one task (``sign`` 1) or stop counting it (-1), in the state its summary columns describe."""
        routed, agent, bucket, success, confidence, failure, verdict, usage = state
        # input tokens, output tokens, cost, tasks with a cost, of which succeeded
        used = _usage_counts(sign, usage, success)
        key = (team_id, enterprise_id, day, routed, agent or "", bucket)
        counts = self.daily.get(key)
        if counts is None:
            counts = self.daily[key] = [0, 0, 0.0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0]
        counts[0] += sign
        if success:
            counts[1] += sign
        if confidence is not None:
            counts[2] += sign * confidence
            counts[3] += sign
        _count_verdict(counts, sign, verdict, success)
        for index, value in enumerate(used, 7):
            counts[index] += value
        # Every task, by its agent ("" for none) and whole confidence percent (-1 for none): calibration reads the
        # rows with both, the daily series all of them (a far smaller table than daily_stats to group by day).
        percent = confidence_percent(confidence)
        calibration_key = (team_id, enterprise_id, day, agent or "", percent)
        tally = self.calibration.get(calibration_key)
        if tally is None:
            tally = self.calibration[calibration_key] = [0, 0, 0, 0, 0, 0.0, 0]
        tally[0] += sign
        if bucket != UNFINISHED:
            tally[1] += sign
        if success:
            tally[2] += sign
        for index, value in enumerate(used[:4], 3):
            tally[index] += value
        if failure is not None:
            error_key, message = failure
            failed = self.failures.get((team_id, enterprise_id, day, agent or "", error_key))
            if failed is None:
                self.failures[(team_id, enterprise_id, day, agent or "", error_key)] = [sign]
            else:
                failed[0] += sign
            if message:
                self.messages[error_key] = message


def _count_verdict(counts: list[float], sign: int, verdict: bool | None, success: bool | None) -> None:
    """A task's verdict in its daily row's counts: voted, approved, and reported successful yet voted down."""
    if verdict is None:
        return
    counts[4] += sign
    if verdict:
        counts[5] += sign
    elif success:
        counts[6] += sign


def _usage_counts(
    sign: int, usage: tuple[int | None, int | None, float | None], success: bool | None
) -> tuple[int, int, float, int, int]:
    """What a task adds to a rollup row's usage (``sign`` -1: takes away): its tokens and cost, and whether it has a
    cost (and succeeded), which is what cost per task divides by."""
    input_tokens, output_tokens, cost = usage
    costed = cost is not None
    return (
        sign * (input_tokens or 0),
        sign * (output_tokens or 0),
        sign * (cost or 0.0),
        sign * costed,
        sign * (costed and bool(success)),
    )


def confidence_percent(confidence: float | None) -> int:
    """The whole percent a confidence is counted under for calibration: floored, kept within 0-100; -1 for none
    (None, NaN or an infinity, which rows written before such confidences were stored as NULL may hold)."""
    if confidence is None or not math.isfinite(confidence):
        return -1
    return min(100, max(0, math.floor(confidence)))


def bucket_of(execution_time: float | None) -> int:
    """The bucket an execution time (seconds) is counted in; :data:`UNFINISHED` for None."""
    if execution_time is None:
        return UNFINISHED
    if execution_time <= _UNIT:  # includes 0 (a round that assigned nobody) and nonsense negatives
        return 0
    return max(1, math.ceil(math.log(execution_time / _UNIT) / _LOG_GAMMA))


def bucket_value(bucket: int) -> float:
    """The execution time (seconds) a bucket stands for: within :data:`ALPHA` of every time in it."""
    if bucket <= 0:
        return 0.0
    return _UNIT * 2 * GAMMA**bucket / (GAMMA + 1)


def _among(conn: Connection, column: Any, ids: Sequence[int]) -> Any:
    return among(conn, column, ids, key=True)


def lock(conn: Connection, task_ids: Iterable[int]) -> None:
    """Lock these task rows until the transaction ends, in id order (two writers never wait on each other in a
    circle). Nothing to do on SQLite, where a write transaction has the whole database."""
    if conn.dialect.name == "sqlite":
        return
    ids = sorted(set(task_ids))
    for start in range(0, len(ids), _CHUNK):
        query = select(_tasks.c.id).where(_among(conn, _tasks.c.id, ids[start : start + _CHUNK])).order_by(_tasks.c.id)
        # PostgreSQL: NO KEY UPDATE does not conflict with the KEY SHARE locks that inserting rounds takes.
        conn.execute(query.with_for_update(key_share=conn.dialect.name == "postgresql")).all()


class _Summary(NamedTuple):
    """A task's summary columns, as the writer keeps them on its row (see the module docstring)."""

    latest_round_id: str | None
    latest_outcome_id: str | None
    latest_agent: str | None
    latest_confidence: float | None
    latest_success: bool | None
    latest_execution_time: float | None
    stats_bucket: int | None  # None: not counted in the rollups yet
    latest_error_key: str | None
    latest_others: str | None
    rounds: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None

    def state(self, verdict: bool | None) -> _State:
        """The state the task is counted in (it must be counted: ``stats_bucket`` is set), with its verdict."""
        assert self.stats_bucket is not None
        return _State(
            routed=self.latest_round_id is not None,
            agent=self.latest_agent,
            bucket=int(self.stats_bucket),
            success=self.latest_success,
            confidence=None if self.latest_confidence is None else float(self.latest_confidence),
            failure=None if self.latest_error_key is None else (self.latest_error_key, ""),
            verdict=verdict,
            usage=(self.input_tokens, self.output_tokens, None if self.cost is None else float(self.cost)),
        )


_SUMMARY = _Summary._fields
_UPDATE = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("b_id", type_=_tasks.c.id.type))
    .values({name: bindparam(f"b_{name}", type_=_tasks.c[name].type) for name in _SUMMARY})
)
# The order of the values :func:`refresh` gives each task's update in.
_UPDATE_ORDER = ("b_id", *(f"b_{name}" for name in _SUMMARY))
_FEEDBACK = ("feedback_up", "feedback_down", "requester_feedback")
# A task: who and when, its votes' tally, then its summary columns.
_CURRENT = select(
    _tasks.c.id,
    _tasks.c.team_id,
    _tasks.c.enterprise_id,
    as_stored(_tasks.c.requested_at),
    *(_tasks.c[name] for name in _FEEDBACK),
    *(_tasks.c[name] for name in _SUMMARY),
)
_UPDATE_FEEDBACK = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("b_id", type_=_tasks.c.id.type))
    .values({name: bindparam(f"b_{name}", type_=_tasks.c[name].type) for name in _FEEDBACK})
)


def day_of(requested_at: str | datetime) -> date:
    """The UTC day of a ``requested_at``, as SQLAlchemy returns it or as stored (see :func:`~.bulk.as_stored`)."""
    if isinstance(requested_at, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
        return date.fromisoformat(requested_at[:10])
    if requested_at.tzinfo is None:  # MySQL/MariaDB: UTC wall time
        return requested_at.date()
    return requested_at.astimezone(timezone.utc).date()


class _Statements:
    """The writes of this module, compiled once per dialect for :class:`~slack_tasklog.storage.bulk.Bulk`."""

    def __init__(self, dialect: Dialect) -> None:
        self.update = Bulk(_UPDATE, dialect, order=_UPDATE_ORDER)
        self.update_feedback = Bulk(_UPDATE_FEEDBACK, dialect, order=("b_id", *(f"b_{name}" for name in _FEEDBACK)))
        self.upsert = Bulk(_upsert_statement(_daily, _KEYS, _COUNTS, dialect.name), dialect, _KEYS + _COUNTS)
        self.upsert_failures = Bulk(
            _upsert_statement(_failures, _FAILURE_KEYS, ("tasks",), dialect.name),
            dialect,
            (*_FAILURE_KEYS, "error_message", "tasks"),
        )
        self.upsert_calibration = Bulk(
            _upsert_statement(_calibration, _CALIBRATION_KEYS, _CALIBRATION_COUNTS, dialect.name),
            dialect,
            _CALIBRATION_KEYS + _CALIBRATION_COUNTS,
        )


_compiled: dict[tuple[str, str], _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    dialect = conn.dialect
    key = (dialect.name, dialect.paramstyle)
    statements = _compiled.get(key)
    if statements is None:
        statements = _compiled[key] = _Statements(dialect)
    return statements


def refresh(
    conn: Connection, task_ids: Iterable[int], *, deltas: Deltas | None = None, locked: AbstractSet[int] = frozenset()
) -> int:
    """Work out the latest round and outcome of these tasks again, store what changed, and move them in the rollup.

    Idempotent: a task whose latest round did not change is left alone, so refreshing too many tasks only costs
    time. ``deltas``: collect the rollup changes there and leave them to the caller (:func:`upsert_deltas`), to
    merge many calls into one write. ``locked``: tasks this transaction has locked already (:func:`lock`), not
    locked again (on PostgreSQL each lock is a write to the row). Returns how many tasks changed.
    """
    ids = sorted(set(task_ids))
    own = deltas is None
    collected = Deltas() if deltas is None else deltas
    changed: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        lock(conn, [task_id for task_id in chunk if task_id not in locked] if locked else chunk)
        latest = latest_rounds(conn, chunk)
        for task_id, team_id, enterprise_id, requested_at, up, down, requester, *columns in conn.execute(
            _CURRENT.where(_among(conn, _tasks.c.id, chunk))
        ).all():
            current = _Summary(*columns)
            verdict = verdict_of(up, down, requester)
            new = latest.get(task_id, NOT_ROUTED)
            # Outcome fields are None exactly when the round has no outcome yet.
            success = None if new.success is None else bool(new.success)
            execution_time = None if new.execution_time is None else float(new.execution_time)
            confidence = None if new.confidence is None else float(new.confidence)
            if confidence is not None and not math.isfinite(confidence):
                confidence = None  # written by a version that stored NaN and infinities as they came
            failure = failure_of(new.error_message) if success is False else None
            bucket = bucket_of(execution_time)
            usage = (new.input_tokens, new.output_tokens, new.cost)
            kept = _Summary(
                new.round_id, new.outcome_id, new.agent, confidence, success, execution_time, bucket,
                None if failure is None else failure[0], new.others, new.rounds, *usage,
            )  # fmt: skip
            if kept == current:
                continue
            day = day_of(requested_at)
            enterprise = enterprise_id or ""
            if current.stats_bucket is not None:  # counted already: stop counting it as it was
                collected.count(-1, team_id, enterprise, day, current.state(verdict))
            new_state = _State(
                new.round_id is not None, new.agent, bucket, success, confidence, failure, verdict, usage
            )
            collected.count(1, team_id, enterprise, day, new_state)
            changed.append((task_id, *kept))
    if changed:
        _statements(conn).update.execute_tuples(conn, changed)
    if own:
        upsert_deltas(conn, collected)
    return len(changed)


def count_follow_ups(conn: Connection, task_ids: Sequence[int] | None = None) -> None:
    """Count these tasks' follow-ups again (None: every task's) and keep the count on the task row. Counting, not
    adding one, so a follow-up written twice (a Slack retry) is counted once."""
    f = FollowUp.__table__.c
    counted = select(func.count()).where(f.task_id == _tasks.c.id).scalar_subquery()
    if task_ids is None:
        conn.execute(update(_tasks).values(follow_ups=counted))
        return
    for start in range(0, len(task_ids), _CHUNK):
        chunk = task_ids[start : start + _CHUNK]
        conn.execute(update(_tasks).where(_among(conn, _tasks.c.id, chunk)).values(follow_ups=counted))


def fill_others(conn: Connection, *, chunk: int = 5_000) -> int:
    """Work out ``others`` for rounds written before the writer kept it (from their evaluations). Returns how many."""
    e = Evaluation.__table__.c
    statement = update(_assignments).where(_assignments.c.id == bindparam("b_id")).values(others=bindparam("b_others"))
    filled = 0
    a = _assignments.c
    while True:
        missing = conn.execute(select(a.id, a.agent).where(a.others.is_(None)).order_by(a.id).limit(chunk)).all()
        if not missing:
            return filled
        evaluations: dict[str, list[tuple[str, Any]]] = {}
        ids = [row[0] for row in missing]
        for start in range(0, len(ids), _CHUNK):
            for assignment_id, agent, confidence in conn.execute(
                select(e.assignment_id, e.agent, e.confidence).where(e.assignment_id.in_(ids[start : start + _CHUNK]))
            ):
                evaluations.setdefault(assignment_id, []).append((agent, confidence))
        conn.execute(
            statement, [{"b_id": i, "b_others": other_agents(evaluations.get(i, ()), agent)} for i, agent in missing]
        )
        filled += len(missing)


def remove(conn: Connection, task_ids: Sequence[int]) -> None:
    """Take these tasks (about to be deleted) out of the rollup."""
    collected = Deltas()
    for start in range(0, len(task_ids), _CHUNK):
        chunk = task_ids[start : start + _CHUNK]
        lock(conn, chunk)
        query = _CURRENT.where(_among(conn, _tasks.c.id, chunk), _tasks.c.stats_bucket.is_not(None))
        for _, team_id, enterprise_id, requested_at, up, down, requester, *columns in conn.execute(query):
            state = _Summary(*columns).state(verdict_of(up, down, requester))
            collected.count(-1, team_id, enterprise_id or "", day_of(requested_at), state)
    upsert_deltas(conn, collected)


def refresh_feedback(conn: Connection, task_ids: Iterable[int], *, locked: AbstractSet[int] = frozenset()) -> int:
    """Tally these tasks' votes again (:mod:`~slack_tasklog.storage.votes`), keep the tally on the task, and move
    a counted task in the rollup if its verdict changed. Idempotent, like :func:`refresh`. Returns how many tasks'
    tallies changed."""
    ids = sorted(set(task_ids))
    collected = Deltas()
    changed: list[tuple[Any, ...]] = []
    f = _feedback.c
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        lock(conn, [task_id for task_id in chunk if task_id not in locked] if locked else chunk)
        events: dict[int, list[tuple[str, str, str, str, bool, bool]]] = {}
        for task_id, *event in conn.execute(
            select(f.task_id, f.user_id, f.item_ts, f.reaction, f.ts, f.added, f.positive).where(
                _among(conn, f.task_id, chunk)
            )
        ):
            events.setdefault(task_id, []).append(tuple(event))
        requesters = dict(
            conn.execute(select(_tasks.c.id, _tasks.c.user_id).where(_among(conn, _tasks.c.id, chunk))).all()
        )
        for task_id, team_id, enterprise_id, requested_at, up, down, requester, *columns in conn.execute(
            _CURRENT.where(_among(conn, _tasks.c.id, chunk))
        ).all():
            tally = tally_votes(votes_of(events.get(task_id, ())), requesters[task_id])
            held = Tally(up or 0, down or 0, None if requester is None else bool(requester))
            if tally == held:
                continue
            changed.append((task_id, tally.up, tally.down, tally.requester))
            current = _Summary(*columns)
            before, after = verdict_of(*held), verdict_of(*tally)
            if current.stats_bucket is not None and before != after:
                day, enterprise = day_of(requested_at), enterprise_id or ""
                collected.count(-1, team_id, enterprise, day, current.state(before))
                collected.count(1, team_id, enterprise, day, current.state(after))
    if changed:
        _statements(conn).update_feedback.execute_tuples(conn, changed)
    upsert_deltas(conn, collected)
    return len(changed)


def _upsert_statement(table: Table, keys: Sequence[str], counts: Sequence[str], dialect: str) -> Any:
    """Insert a row of counts, or add them to the row already there, in each backend's own words."""
    increments: Mapping[str, Any]
    if dialect in ("mysql", "mariadb"):
        mysql_insert = mysql.insert(table)
        increments = {name: table.c[name] + mysql_insert.inserted[name] for name in counts}
        return mysql_insert.on_duplicate_key_update(increments)
    dialect_insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    increments = {name: table.c[name] + dialect_insert.excluded[name] for name in counts}
    return dialect_insert.on_conflict_do_update(index_elements=list(keys), set_=increments)


def _rows(deltas: Mapping[tuple[Any, ...], Sequence[float]]) -> list[tuple[Any, ...]]:
    """Key and counts of each row, in one tuple; sorted by key, so every writer takes the rows' locks in one order."""
    # A task that moved within one row (another confidence, same bucket) may leave nothing to add.
    return sorted((*key, *values) for key, values in deltas.items() if any(values))


def upsert_deltas(conn: Connection, deltas: Deltas) -> None:
    """Add ``deltas`` to the rollup rows (creating them as needed), one executemany per rollup."""
    statements = _statements(conn)
    daily = _rows(deltas.daily)
    if daily:
        statements.upsert.execute_tuples(conn, daily)
    calibration = _rows(deltas.calibration)
    if calibration:
        statements.upsert_calibration.execute_tuples(conn, calibration)
    failures = _rows(deltas.failures)
    if failures:
        # Only a new row takes the message: the increment of an existing one leaves it as it is.
        messages = deltas.messages
        statements.upsert_failures.execute_tuples(
            conn, [(*row[:5], messages.get(row[4], ""), row[5]) for row in failures]
        )


def drop_empty(conn: Connection) -> None:
    """Delete rollup rows that no task is counted in any more (left behind as tasks finish or are purged)."""
    conn.execute(delete(_daily).where(_daily.c.tasks == 0))
    conn.execute(delete(_calibration).where(_calibration.c.tasks == 0))
    conn.execute(delete(_failures).where(_failures.c.tasks == 0))


def rebuild(conn: Connection, *, chunk: int = 5_000) -> int:
    """Recompute every task's summary and the whole rollup, in ``conn``'s transaction (the migration that adds them,
    or a repair). Returns the number of tasks."""
    fill_others(conn)
    conn.execute(delete(_daily))
    conn.execute(delete(_calibration))
    conn.execute(delete(_failures))
    conn.execute(update(_tasks).values(stats_bucket=None, latest_error_key=None))
    collected = Deltas()
    last = 0
    count = 0
    while True:
        ids = list(
            conn.execute(select(_tasks.c.id).where(_tasks.c.id > last).order_by(_tasks.c.id).limit(chunk)).scalars()
        )
        if not ids:
            break
        refresh(conn, ids, deltas=collected)
        last = ids[-1]
        count += len(ids)
    upsert_deltas(conn, collected)
    count_follow_ups(conn)
    return count
