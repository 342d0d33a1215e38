"""Each task's latest round on its own row, and the daily rollup that stats over months read instead of the tasks.

Why: which round counts for a task (:func:`~slack_tasklog.reports.export.latest_round_join`) takes two correlated
searches
per task. Stats over a month of a busy bot read hundreds of thousands of tasks, and percentiles sort them: seconds.
So the writer, in the transaction that adds a round or an outcome, works the rule out once for the tasks it touched
(:func:`refresh`: three indexed reads and the rule in Python, which tests check against the SQL), keeps the answer
in the task's ``latest_*`` columns, and moves the task from its old row of
``tasklog_daily_stats`` to its new one (counts go down there and up here: a task is always counted exactly once).
Stats then read whole days from the rollup and only the part-days at a window's edges from the tasks.

Execution times are counted per bucket (:func:`bucket_of`): bucket ``i`` holds the times in
``(GAMMA ** (i - 1), GAMMA ** i]`` microseconds, each bucket 2% wide, so the value a bucket stands for
(:func:`bucket_value`) is within 1% of every time in it: a percentile read from the buckets is within 1% of the
exact one (the idea of DDSketch). Counts, success rates and mean confidences stay exact.

Concurrency: two processes may change one task at once (the orchestrator records a round while a specialist
records its outcome). :func:`refresh` locks the task rows first (``FOR NO KEY UPDATE`` on PostgreSQL, ``FOR UPDATE``
on MySQL/MariaDB, whose write connections read committed data; SQLite has one writer at a time), so the second
transaction waits, then sees the first one's rows. The writer also takes those locks before it inserts the rounds
(:func:`lock`): on MySQL an insert takes a shared lock on the parent task, and two shared locks that both want to
become exclusive would deadlock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, String, Table, delete, func, select, type_coerce, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql import bindparam

from slack_tasklog.reports.export import other_agents
from slack_tasklog.storage.bulk import Bulk, among
from slack_tasklog.storage.models import (
    Assignment,
    DailyCalibration,
    DailyFailures,
    DailyStats,
    Evaluation,
    FollowUp,
    Outcome,
    Task,
)

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
    "remove",
    "upsert_deltas",
]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_daily: Table = DailyStats.__table__  # type: ignore[assignment]
_calibration: Table = DailyCalibration.__table__  # type: ignore[assignment]
_assignments: Table = Assignment.__table__  # type: ignore[assignment]
_failures: Table = DailyFailures.__table__  # type: ignore[assignment]

#: Relative accuracy of the execution-time buckets: a bucket's value is within 1% of the times it holds.
ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
_UNIT = 1e-6  # seconds: times under a microsecond count as 0
#: Bucket of a task with no outcome yet.
UNFINISHED = -1

_CHUNK = 500
_KEYS = ("team_id", "enterprise_id", "day", "routed", "agent", "bucket")
_COUNTS = ("tasks", "succeeded", "confidence_sum", "confidence_count")

_CALIBRATION_KEYS = ("team_id", "enterprise_id", "day", "agent", "confidence")
_CALIBRATION_COUNTS = ("tasks", "finished", "succeeded")


_FAILURE_KEYS = ("team_id", "enterprise_id", "day", "agent", "error_key")
_MAX_FAILURE = 200  # characters of an error's first line kept to tell failures apart


def failure_of(message: str | None) -> tuple[str, str]:
    """``(key, text)`` of a failure: the first line of its message (at most 200 characters), and a hash of it."""
    text = (message or "").strip().split("\n", 1)[0].strip()[:_MAX_FAILURE] or "(no error message)"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:32], text


_new_state = tuple.__new__


class _State(NamedTuple):
    routed: bool
    agent: str | None
    bucket: int
    success: bool | None
    confidence: float | None
    # A failed task's failure (failure_of); only the key when taking a task out of the rollup.
    failure: tuple[str, str] | None = None


@dataclass
class Deltas:
    """What a refresh changes in the rollups, summed per row: added to them in one write (:func:`upsert_deltas`)."""

    # (team_id, enterprise_id, day, routed, agent, bucket) -> [tasks, succeeded, confidence_sum, confidence_count]
    daily: dict[tuple[str, str, date, bool, str, int], list[float]] = field(default_factory=dict)
    # (team_id, enterprise_id, day, agent, confidence percent) -> [tasks, finished, succeeded]
    calibration: dict[tuple[str, str, date, str, int], list[int]] = field(default_factory=dict)
    # (team_id, enterprise_id, day, agent, error key) -> [failed tasks]; and each key's message
    failures: dict[tuple[str, str, date, str, str], list[int]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def count(self, sign: int, team_id: str, enterprise_id: str, day: date, state: _State) -> None:
        """Count one task (``sign`` 1) or stop counting it (-1), in the state its summary columns describe."""
        routed, agent, bucket, success, confidence, failure = state
        key = (team_id, enterprise_id, day, routed, agent or "", bucket)
        counts = self.daily.get(key)
        if counts is None:
            counts = self.daily[key] = [0, 0, 0.0, 0]
        counts[0] += sign
        if success:
            counts[1] += sign
        if confidence is not None:
            counts[2] += sign * confidence
            counts[3] += sign
        # Every task, by its agent ("" for none) and whole confidence percent (-1 for none): calibration reads the
        # rows with both, the daily series all of them (a far smaller table than daily_stats to group by day).
        # The usual confidence (0 <= c < 100) without a call: floor is int() for those.
        percent = (
            -1
            if confidence is None
            else int(confidence)
            if 0.0 <= confidence < 100.0
            else confidence_percent(confidence)
        )
        calibration_key = (team_id, enterprise_id, day, agent or "", percent)
        tally = self.calibration.get(calibration_key)
        if tally is None:
            tally = self.calibration[calibration_key] = [0, 0, 0]
        tally[0] += sign
        if bucket != UNFINISHED:
            tally[1] += sign
        if success:
            tally[2] += sign
        if failure is not None:
            error_key, message = failure
            failed = self.failures.get((team_id, enterprise_id, day, agent or "", error_key))
            if failed is None:
                self.failures[(team_id, enterprise_id, day, agent or "", error_key)] = [sign]
            else:
                failed[0] += sign
            if message:
                self.messages[error_key] = message


def confidence_percent(confidence: float) -> int:
    """The whole percent a confidence is counted under for calibration: floored, kept within 0-100."""
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


def _raw(column: Any) -> Any:
    # A datetime as the driver gives it: text on SQLite, in one fixed format, so it compares as the database
    # compares it, and parsing it (the costly part of reading a row) is not needed to find the newest.
    return type_coerce(column, String).label(column.name)


_t, _a, _o = _tasks, Assignment.__table__.c, Outcome.__table__.c
_CURRENT = select(
    _t.c.id,
    _t.c.team_id,
    _t.c.enterprise_id,
    _raw(_t.c.requested_at),
    _t.c.latest_round_id,
    _t.c.latest_outcome_id,
    _t.c.latest_agent,
    _t.c.latest_confidence,
    _t.c.latest_success,
    _t.c.latest_execution_time,
    _t.c.stats_bucket,
    _t.c.latest_error_key,
    _t.c.latest_others,
    _t.c.rounds,
)
_ROUNDS = select(_a.task_id, _raw(_a.recorded_at), _a.id, _a.agent, _a.confidence, _a.others)
_OUTCOMES = select(
    _o.task_id, _raw(_o.finished_at), _o.id, _o.agent, _o.success, _o.execution_time, _raw(_o.started_at),
    _o.error_message,
)  # fmt: skip


def _latest(conn: Connection, chunk: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Each task's latest round and that round's outcome, by the rule of :func:`~slack_tasklog.reports.export.
    latest_round_join` (tests check the two agree): task id -> (round id, agent, confidence, outcome id, success,
    execution time, error message, the round's ``others``, how many rounds); tasks with no round are missing.

    Three plain indexed reads and the rule in Python: the rule's correlated subqueries cost PostgreSQL several
    times more per task."""
    newest_round: dict[int, tuple[Any, ...]] = {}
    rounds: dict[int, int] = {}
    round_row: Any
    for round_row in conn.execute(_ROUNDS.where(among(conn, _a.task_id, chunk))).all():
        # (task_id, recorded_at, id, agent, confidence, others): the newest by (recorded_at, id)
        row = tuple(round_row)
        rounds[row[0]] = rounds.get(row[0], 0) + 1
        held = newest_round.get(row[0])
        if held is None or row[1:3] > held[1:3]:
            newest_round[row[0]] = row
    if not newest_round:
        return {}
    newest_outcome: dict[int, tuple[Any, ...]] = {}
    outcome_row: Any
    for outcome_row in conn.execute(_OUTCOMES.where(among(conn, _o.task_id, list(newest_round)))).all():
        # (task_id, finished_at, id, agent, success, execution_time, started_at): the newest run by the round's
        # agent (or the round's own "nobody" outcome) that started at or after the round.
        row = tuple(outcome_row)
        task_round = newest_round.get(row[0])
        if task_round is None or row[3] != task_round[3] or row[6] < task_round[1]:
            continue
        held = newest_outcome.get(row[0])
        if held is None or row[1:3] > held[1:3]:
            newest_outcome[row[0]] = row
    latest: dict[int, tuple[Any, ...]] = {}
    for task_id, (_, _, round_id, agent, confidence, others) in newest_round.items():
        outcome = newest_outcome.get(task_id)
        if outcome is None:
            latest[task_id] = (round_id, agent, confidence, None, None, None, None, others, rounds[task_id])
        else:
            latest[task_id] = (
                round_id,
                agent,
                confidence,
                outcome[2],
                outcome[4],
                outcome[5],
                outcome[7],
                others,
                rounds[task_id],
            )
    return latest


_NOT_ROUTED = (None, None, None, None, None, None, None, None, 0)

_SUMMARY = (
    "latest_round_id",
    "latest_outcome_id",
    "latest_agent",
    "latest_confidence",
    "latest_success",
    "latest_execution_time",
    "stats_bucket",
    "latest_error_key",
    "latest_others",
    "rounds",
)
_UPDATE = (
    update(_tasks)
    .where(_tasks.c.id == bindparam("b_id", type_=_tasks.c.id.type))
    .values({name: bindparam(f"b_{name}", type_=_tasks.c[name].type) for name in _SUMMARY})
)
# The order of the values :func:`refresh` gives each task's update in.
_UPDATE_ORDER = ("b_id", *(f"b_{name}" for name in _SUMMARY))


def day_of(requested_at: str | datetime) -> date:
    """The UTC day of a ``requested_at`` as the driver returns it (text on SQLite, naive UTC on MySQL)."""
    if isinstance(requested_at, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC
        return date.fromisoformat(requested_at[:10])
    if requested_at.tzinfo is not None:  # PostgreSQL: in the session's time zone
        requested_at = requested_at.astimezone(timezone.utc)
    return requested_at.date()


class _Statements:
    """The writes of this module, compiled once per dialect for :class:`~slack_tasklog.storage.bulk.Bulk`."""

    def __init__(self, dialect: Dialect) -> None:
        self.update = Bulk(_UPDATE, dialect, order=_UPDATE_ORDER)
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
        latest = _latest(conn, chunk)
        for (
            task_id, team_id, enterprise_id, requested_at,
            round_id, outcome_id, agent, confidence, success, execution_time, bucket, error_key, others, rounds,
        ) in conn.execute(_CURRENT.where(_among(conn, _tasks.c.id, chunk))).all():  # fmt: skip
            (
                new_round_id, new_agent, raw_confidence, new_outcome_id, raw_success, raw_time, error, new_others,
                new_rounds,
            ) = latest.get(task_id, _NOT_ROUTED)  # fmt: skip
            finished = new_outcome_id is not None
            new_success = bool(raw_success) if finished else None
            new_execution_time = float(raw_time) if finished else None
            new_bucket = bucket_of(new_execution_time)
            new_confidence = None if raw_confidence is None else float(raw_confidence)
            new_failure = failure_of(error) if finished and not new_success else None
            new_error_key = None if new_failure is None else new_failure[0]
            if (
                bucket == new_bucket
                and round_id == new_round_id
                and outcome_id == new_outcome_id
                and agent == new_agent
                and confidence == new_confidence
                and success == new_success
                and execution_time == new_execution_time
                and error_key == new_error_key
                and others == new_others
                and rounds == new_rounds
            ):
                continue
            day = day_of(requested_at)
            enterprise = enterprise_id or ""
            if bucket is not None:
                old_confidence = None if confidence is None else float(confidence)
                old_failure = None if error_key is None else (error_key, "")
                # tuple.__new__: a named tuple's own __new__ is a Python frame, twice per task here.
                old_state = _new_state(
                    _State, (round_id is not None, agent, int(bucket), success, old_confidence, old_failure)
                )
                collected.count(-1, team_id, enterprise, day, old_state)
            new_state = _new_state(
                _State, (new_round_id is not None, new_agent, new_bucket, new_success, new_confidence, new_failure)
            )
            collected.count(1, team_id, enterprise, day, new_state)
            changed.append(
                (task_id, new_round_id, new_outcome_id, new_agent, new_confidence, new_success, new_execution_time,
                 new_bucket, new_error_key, new_others, new_rounds)
            )  # fmt: skip
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
    while True:
        missing = conn.execute(select(_a.id, _a.agent).where(_a.others.is_(None)).order_by(_a.id).limit(chunk)).all()
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
    t = _tasks
    for start in range(0, len(task_ids), _CHUNK):
        chunk = task_ids[start : start + _CHUNK]
        lock(conn, chunk)
        query = select(
            t.c.team_id,
            t.c.enterprise_id,
            type_coerce(t.c.requested_at, String),
            t.c.latest_round_id,
            t.c.latest_agent,
            t.c.latest_confidence,
            t.c.latest_success,
            t.c.stats_bucket,
            t.c.latest_error_key,
        ).where(_among(conn, t.c.id, chunk), t.c.stats_bucket.is_not(None))
        row: Any
        for row in conn.execute(query):
            team_id, enterprise_id, requested_at, round_id, agent, confidence, success, bucket, error_key = row
            state = _State(
                round_id is not None,
                agent,
                int(bucket),
                success,
                None if confidence is None else float(confidence),
                None if error_key is None else (error_key, ""),
            )
            collected.count(-1, team_id, enterprise_id or "", day_of(requested_at), state)
    upsert_deltas(conn, collected)


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
