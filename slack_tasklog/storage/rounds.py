"""The latest-round rule: which of a task's rounds counts, and how a round's other agents are written down.

A task may be routed more than once (re-routed after a failure). The CSV, the stats and the per-task summary the
writer keeps all count a task by its **latest round** and that round's outcome:

- the latest round is the newest assignment (``recorded_at``, then ``id``);
- its outcome is the newest run (``finished_at``, then ``id``) by the round's agent — or the round's own "nobody"
  outcome — that started at or after the round was recorded.

The rule is stated twice, and tests check that the two agree: in SQL (:func:`latest_round_join`) and in Python
(:func:`latest_rounds`, which the writer applies to the tasks a batch touched and keeps on the task rows; see
:mod:`slack_tasklog.storage.summary`).

Example::

    with engine.connect() as conn:
        latest = latest_rounds(conn, [task_id])
    print(latest[task_id].agent, latest[task_id].success)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Join, Table, and_, select
from sqlalchemy.sql.selectable import NamedFromClause

from slack_tasklog.storage.bulk import among
from slack_tasklog.storage.models import Assignment, Outcome

__all__ = ["NOT_ROUTED", "LatestRound", "latest_round_join", "latest_rounds", "number_text", "other_agents"]

_assignments: Table = Assignment.__table__  # type: ignore[assignment]
_outcomes: Table = Outcome.__table__  # type: ignore[assignment]


class LatestRound(NamedTuple):
    """A task's latest round and that round's outcome (the outcome's fields are None while it runs)."""

    round_id: str | None
    agent: str | None
    confidence: float | None
    outcome_id: str | None
    success: bool | None
    execution_time: float | None
    error_message: str | None
    #: The round's other agents, as :func:`other_agents` writes them.
    others: str | None
    #: How many rounds the task has had.
    rounds: int


#: What a task with no round yet has.
NOT_ROUTED = LatestRound(None, None, None, None, None, None, None, None, 0)


def latest_round_join(tasks: Table) -> tuple[Join, NamedFromClause, NamedFromClause]:
    """``tasks`` outer-joined to each task's latest round and that round's outcome: the rule in SQL.

    Returns the join and the two aliases, ``latest_round`` and ``round_outcome``; both are NULL for a task with no
    round yet, and the outcome alone for a round still running.
    """
    a, o = _assignments, _outcomes
    latest_round = a.alias("latest_round")
    round_outcome = o.alias("round_outcome")
    newest_round_id = (
        select(a.c.id)
        .where(a.c.task_id == tasks.c.id)
        .order_by(a.c.recorded_at.desc(), a.c.id.desc())
        .limit(1)
        .correlate(tasks)
        .scalar_subquery()
    )
    newest_outcome_id = (
        select(o.c.id)
        .where(
            o.c.task_id == tasks.c.id,
            o.c.agent.is_not_distinct_from(latest_round.c.agent),
            o.c.started_at >= latest_round.c.recorded_at,
        )
        .order_by(o.c.finished_at.desc(), o.c.id.desc())
        .limit(1)
        .correlate(tasks, latest_round)
        .scalar_subquery()
    )
    # The task_id terms are implied by the ids, but they let the planner reach the rows through the task_id indexes
    # (and SQLAlchemy's linter see how the tables join).
    joined = tasks.outerjoin(
        latest_round, and_(latest_round.c.task_id == tasks.c.id, latest_round.c.id == newest_round_id)
    ).outerjoin(round_outcome, and_(round_outcome.c.task_id == tasks.c.id, round_outcome.c.id == newest_outcome_id))
    return joined, latest_round, round_outcome


_a, _o = _assignments.c, _outcomes.c
_ROUNDS = select(_a.task_id, _a.id, _a.recorded_at, _a.agent, _a.confidence, _a.others)
_OUTCOMES = select(
    _o.task_id, _o.id, _o.agent, _o.success, _o.execution_time, _o.error_message, _o.started_at, _o.finished_at
)


def latest_rounds(conn: Connection, task_ids: Sequence[int]) -> dict[int, LatestRound]:
    """Each task's latest round and its outcome, by the rule; tasks with no round are left out.

    Two indexed reads and the rule in Python: :func:`latest_round_join`'s correlated subqueries cost PostgreSQL
    several times more per task, and the writer runs this for every task a batch touches.
    """
    newest_round: dict[int, Any] = {}
    rounds: Counter[int] = Counter()
    for row in conn.execute(_ROUNDS.where(among(conn, _a.task_id, task_ids))):
        rounds[row.task_id] += 1
        held = newest_round.get(row.task_id)
        if held is None or (row.recorded_at, row.id) > (held.recorded_at, held.id):
            newest_round[row.task_id] = row
    if not newest_round:
        return {}
    newest_outcome: dict[int, Any] = {}
    for run in conn.execute(_OUTCOMES.where(among(conn, _o.task_id, list(newest_round)))):
        task_round = newest_round[run.task_id]
        if run.agent != task_round.agent or run.started_at < task_round.recorded_at:
            continue
        held = newest_outcome.get(run.task_id)
        if held is None or (run.finished_at, run.id) > (held.finished_at, held.id):
            newest_outcome[run.task_id] = run
    latest: dict[int, LatestRound] = {}
    for task_id, task_round in newest_round.items():
        outcome = newest_outcome.get(task_id)
        latest[task_id] = LatestRound(
            round_id=task_round.id,
            agent=task_round.agent,
            confidence=task_round.confidence,
            outcome_id=None if outcome is None else outcome.id,
            success=None if outcome is None else outcome.success,
            execution_time=None if outcome is None else outcome.execution_time,
            error_message=None if outcome is None else outcome.error_message,
            others=task_round.others,
            rounds=rounds[task_id],
        )
    return latest


def other_agents(evaluations: Iterable[tuple[str, Any]], assigned: str | None) -> str:
    """The CSV's ``other_agents_confidence`` of a round, ``Writer:8;Builder:6``: the agents not assigned, most
    confident first (ties by name, no confidence last).

    The writer keeps it with each round (``tasklog_assignments.others``); the export makes it for rounds written
    before that column existed.
    """
    others = sorted(
        (pair for pair in evaluations if pair[0] != assigned),
        key=lambda pair: (pair[1] is None, -(pair[1] or 0.0), pair[0]),
    )
    return ";".join(f"{agent}:{number_text(confidence)}" for agent, confidence in others)


def number_text(value: float | None) -> str:
    """A confidence as the CSV writes it: ``8`` for 8.0, ``40.5``, and "" for None."""
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)
