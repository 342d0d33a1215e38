"""The latest-round rule: which of a task's rounds counts, and how a round's other agents are written down.

A task may be routed more than once (re-routed after a failure). The CSV, the stats and the per-task summary the
writer keeps all count a task by its **latest round** and that round's outcome:

- the latest round is the newest assignment (``recorded_at``, then ``id``);
- its outcome is the newest run (``finished_at``, then ``id``) by the round's agent — or the round's own "nobody"
  outcome — that finished at or after the round was recorded. That is, a run belongs to the latest round of its
  agent (for that task) recorded before the run *finished*, not before it started: the decorators of
  ``check_and_assign`` and ``process_assignment`` may run on different hosts, and clock skew (or an imported log)
  can put a run's start a fraction of a second before its round's.

The rule is stated twice, and tests check that the two agree: in SQL (:func:`latest_round_join`) and in Python
(:func:`latest_rounds`, which the writer applies to the tasks a batch touched and keeps on the task rows; see
:mod:`slack_tasklog.storage.summary`).

Example::

    with engine.connect() as conn:
        latest = latest_rounds(conn, [task_id])
    print(latest[task_id].agent, latest[task_id].success)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Join, Table, and_, select
from sqlalchemy.sql.selectable import NamedFromClause

from slack_tasklog.storage.bulk import among, as_stored
from slack_tasklog.storage.models import Assignment, Outcome

__all__ = [
    "NOT_ROUTED",
    "LatestRound",
    "latest_round_join",
    "latest_rounds",
    "number_text",
    "other_agents",
    "parse_other_agents",
]

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
    #: The sums over all the task's runs (whichever round they belong to); None where no run reported any.
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


#: What a task with no round yet has.
NOT_ROUTED = LatestRound(None, None, None, None, None, None, None, None, 0)
#: Sums of a task with no run that reported usage.
_NO_USAGE = (None, None, None)
_NO_OUTCOME = (None, None, None, None)


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
            o.c.finished_at >= latest_round.c.recorded_at,
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
# Each task's rounds and runs, oldest first by the rule's order: the last one kept per task is the newest. Times
# only compared here, so read as stored (see as_stored).
_ROUNDS = select(_a.task_id, _a.id, as_stored(_a.recorded_at), _a.agent, _a.confidence, _a.others).order_by(
    _a.task_id, _a.recorded_at, _a.id
)
_OUTCOMES = select(
    _o.task_id, _o.id, _o.agent, _o.success, _o.execution_time, _o.error_message, as_stored(_o.finished_at),
    _o.input_tokens, _o.output_tokens, _o.cost,
).order_by(_o.task_id, _o.finished_at, _o.id)  # fmt: skip


def latest_rounds(conn: Connection, task_ids: Sequence[int]) -> dict[int, LatestRound]:
    """Each task's latest round and its outcome, by the rule, and the sums of its runs' usage; tasks with neither a
    round nor a run that reported usage are left out.

    Two indexed reads and the rule in Python: :func:`latest_round_join`'s correlated subqueries cost PostgreSQL
    several times more per task, and the writer runs this for every task a batch touches.
    """
    newest_round: dict[int, list[Any]] = {}  # [id, recorded_at, agent, confidence, others]
    rounds: dict[int, int] = {}
    for task_id, *task_round in conn.execute(_ROUNDS.where(among(conn, _a.task_id, task_ids))).all():
        newest_round[task_id] = task_round
        rounds[task_id] = rounds.get(task_id, 0) + 1
    outcome_of: dict[int, tuple[Any, ...]] = {}  # (id, success, execution_time, error_message)
    # Every run counts towards the task's usage, even one no round claims (a run recorded without its round).
    usage_of: dict[int, tuple[int | None, int | None, float | None]] = {}
    outcomes = conn.execute(_OUTCOMES.where(among(conn, _o.task_id, task_ids))).all()
    for task_id, outcome_id, agent, success, execution_time, error_message, finished_at, *run_usage in outcomes:
        if run_usage != [None, None, None]:
            usage_of[task_id] = _add(usage_of.get(task_id, _NO_USAGE), run_usage)
        newest = newest_round.get(task_id)
        if newest is None:
            continue
        # A run of the round's agent (or its own "nobody" outcome) that finished once the round was recorded.
        _, recorded_at, round_agent, _, _ = newest
        if agent == round_agent and finished_at >= recorded_at:
            outcome_of[task_id] = (outcome_id, success, execution_time, error_message)
    latest: dict[int, LatestRound] = {}
    for task_id, (round_id, _, agent, confidence, others) in newest_round.items():
        outcome_id, success, execution_time, error_message = outcome_of.get(task_id, _NO_OUTCOME)
        latest[task_id] = LatestRound(
            round_id, agent, confidence, outcome_id, success, execution_time, error_message, others, rounds[task_id],
            *usage_of.pop(task_id, _NO_USAGE),
        )  # fmt: skip
    for task_id, usage in usage_of.items():  # runs, but no round
        latest[task_id] = NOT_ROUTED._replace(input_tokens=usage[0], output_tokens=usage[1], cost=usage[2])
    return latest


def _add(
    total: tuple[int | None, int | None, float | None], run: list[Any]
) -> tuple[int | None, int | None, float | None]:
    """A task's usage so far plus one run's: None stays None only while no run has said."""
    return (
        total[0] if run[0] is None else (total[0] or 0) + int(run[0]),
        total[1] if run[1] is None else (total[1] or 0) + int(run[1]),
        total[2] if run[2] is None else (total[2] or 0.0) + float(run[2]),
    )


# An agent's name in ``other_agents_confidence``: a backslash before each backslash, colon and semicolon; a line break
# as \n or \r. Then every unescaped ";" ends a pair and its unescaped ":" ends the name, whatever the names hold.
_ESCAPE_NAME = str.maketrans({"\\": "\\\\", ":": "\\:", ";": "\\;", "\n": "\\n", "\r": "\\r"})
_PAIR = re.compile(r"((?:[^\\:;]|\\.)*):([^\\:;]*)", re.DOTALL)
_PAIRS = re.compile(rf"{_PAIR.pattern}(?:;{_PAIR.pattern})*", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n", "r": "\r"}


def other_agents(evaluations: Iterable[tuple[str, Any]], assigned: str | None) -> str:
    """The CSV's ``other_agents_confidence`` of a round, ``Writer:8;Builder:6``: the agents not assigned, most
    confident first (ties by name, no confidence last). In a name, ``\\``, ``:`` and ``;`` get a backslash before
    them and a line break is written ``\\n`` (``\\r``); :func:`parse_other_agents` reads it back.

    The writer keeps it with each round (``tasklog_assignments.others``); the export makes it for rounds written
    before that column existed.
    """
    others = sorted(
        (pair for pair in evaluations if pair[0] != assigned),
        key=lambda pair: (pair[1] is None, -(pair[1] or 0.0), pair[0]),
    )
    return ";".join(f"{agent.translate(_ESCAPE_NAME)}:{number_text(confidence)}" for agent, confidence in others)


def parse_other_agents(text: str) -> list[tuple[str, float | None]]:
    """The ``(agent, confidence)`` pairs of an ``other_agents_confidence`` cell, in its order; ValueError if it is not
    one. A cell the export neutralised for spreadsheets starts with an added ``'``: take it off first (or export
    with ``neutralize_formulas=False``).

    Example::

        >>> parse_other_agents(r"a\\:b\\;c\\nd:40.5;Writer:")
        [('a:b;c\\nd', 40.5), ('Writer', None)]
    """
    if not text:
        return []
    if not _PAIRS.fullmatch(text):
        raise ValueError(f"not an other_agents_confidence cell: {text!r}")
    return [
        (
            _ESCAPED.sub(lambda escape: _UNESCAPED.get(escape[1], escape[1]), name),
            float(confidence) if confidence else None,
        )
        for name, confidence in _PAIR.findall(text)
    ]


def number_text(value: float | None) -> str:
    """A confidence as the CSV writes it: ``8`` for 8.0, ``40.5``, and "" for None."""
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)
