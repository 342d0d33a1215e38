"""Task statistics: totals, success rate, unassigned tasks, and per-agent figures, in one SQL statement.

Which round counts
------------------
A task is counted once, by its **latest round** and that round's outcome — exactly the round and outcome the CSV
reports (:func:`~slack_tasklog._export.latest_round_join` is the one rule both use). A task re-routed after a
failure therefore counts for the agent that has it now, with that agent's result; the failed first attempt is not
counted a second time. Tasks are selected by when they were requested (``since`` inclusive, ``until`` exclusive).

- ``tasks``: tasks requested in the window.
- ``finished``: tasks whose latest round has an outcome; a round that assigned nobody is finished (and failed)
  at once, as in the CSV.
- ``success_rate``: ``succeeded / finished``; tasks still running are not failures.
- ``unassigned``: tasks whose latest round assigned nobody ("No agent confident enough").
- ``unrouted``: tasks with no round yet.
- Per agent (the latest round's agent): tasks, finished, succeeded, the median and 95th percentile of the
  execution time of its finished tasks, and the mean of its confidence in those rounds.

Percentiles interpolate linearly between the two nearest ranks (PostgreSQL's ``percentile_cont``, NumPy's default):
the median of 1, 2, 3, 4 is 2.5. Only the few rows around each percentile leave the database, so the statement is
portable SQL (window functions: SQLite 3.25+, PostgreSQL, MySQL 8 / MariaDB 10.2+) and its result is small whatever
the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, and_, case, func, or_, select

from ._export import as_utc, latest_round_join
from ._models import Task

__all__ = ["AgentStats", "Stats", "compute_stats"]

_tasks: Table = Task.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class AgentStats:
    """One agent's figures: the tasks whose latest round it was assigned."""

    agent: str
    tasks: int
    finished: int
    succeeded: int
    median_execution_time: float | None
    p95_execution_time: float | None
    mean_confidence: float | None

    @property
    def success_rate(self) -> float | None:
        """``succeeded / finished``, None while nothing has finished."""
        return self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True)
class Stats:
    """What :func:`compute_stats` found; ``agents`` are sorted by tasks, most first."""

    since: datetime | None
    until: datetime | None
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    unassigned: int = 0
    unrouted: int = 0
    agents: tuple[AgentStats, ...] = ()

    @property
    def success_rate(self) -> float | None:
        """``succeeded / finished`` over every finished task (unassigned ones count as failed), None if none."""
        return self.succeeded / self.finished if self.finished else None

    @property
    def in_progress(self) -> int:
        """Tasks without an outcome yet: not routed, or routed and still running."""
        return self.tasks - self.finished


@dataclass
class _Group:
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    mean_confidence: float | None = None
    # Execution times at the 1-based ranks around the percentiles.
    ranked: dict[int, float] = field(default_factory=dict)


def _statement(
    *,
    since: datetime | None,
    until: datetime | None,
    team_id: str | None,
    enterprise_id: str | None,
    agent: str | None,
) -> Select[Any]:
    t = _tasks
    joined, latest_round, round_outcome = latest_round_join(t)
    routed = case((latest_round.c.id.is_(None), 0), else_=1)
    per_task = select(
        routed.label("routed"),
        latest_round.c.agent.label("agent"),
        latest_round.c.confidence.label("confidence"),
        round_outcome.c.success.label("success"),
        round_outcome.c.execution_time.label("execution_time"),
    ).select_from(joined)
    if since is not None:
        per_task = per_task.where(t.c.requested_at >= since)
    if until is not None:
        per_task = per_task.where(t.c.requested_at < until)
    if team_id is not None:
        per_task = per_task.where(t.c.team_id == team_id)
    if enterprise_id is not None:
        per_task = per_task.where(t.c.enterprise_id == enterprise_id)
    if agent is not None:
        per_task = per_task.where(latest_round.c.agent == agent)
    p = per_task.subquery("per_task")

    group = (p.c.routed, p.c.agent)
    # Finished tasks first, fastest first: ranks 1..finished are the sorted execution times. (Spelled out because
    # backends disagree on where NULLs sort.)
    unfinished_last = case((p.c.execution_time.is_(None), 1), else_=0)
    ranked = select(
        p.c.routed,
        p.c.agent,
        p.c.execution_time,
        func.row_number().over(partition_by=group, order_by=(unfinished_last, p.c.execution_time)).label("rank"),
        func.count().over(partition_by=group).label("tasks"),
        func.count(p.c.execution_time).over(partition_by=group).label("finished"),
        func.sum(case((p.c.success, 1), else_=0)).over(partition_by=group).label("succeeded"),
        func.avg(p.c.confidence).over(partition_by=group).label("mean_confidence"),
    ).subquery("ranked")
    r = ranked.c
    # Keep one row per group (rank 1) and the ranks that interpolation needs, in integer arithmetic so that every
    # backend picks the same rows: for the median the ranks r with n <= 2r <= n + 2, for the 95th percentile those
    # with 95n - 95 < 100r < 95n + 105 (floor and ceiling of 1 + 0.95(n - 1)).
    needed = or_(
        r.rank == 1,
        and_(2 * r.rank >= r.finished, 2 * r.rank <= r.finished + 2),
        and_(100 * r.rank > 95 * r.finished - 95, 100 * r.rank < 95 * r.finished + 105),
    )
    return select(
        r.routed, r.agent, r.rank, r.execution_time, r.tasks, r.finished, r.succeeded, r.mean_confidence
    ).where(needed)


def _percentile(ranked: Mapping[int, float], finished: int, percent: int) -> float | None:
    """Linear interpolation between the nearest ranks, in exact integer arithmetic (what the SQL selected)."""
    if finished == 0:
        return None
    scaled = percent * (finished - 1)  # 100 x the 0-based position
    low, rest = divmod(scaled, 100)
    low_value = ranked[low + 1]
    if rest == 0:
        return low_value
    high_value = ranked[low + 2]
    return low_value + (high_value - low_value) * rest / 100


def compute_stats(
    conn: Connection,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    team_id: str | None = None,
    enterprise_id: str | None = None,
    agent: str | None = None,
) -> Stats:
    """Statistics of the tasks requested in ``[since, until)`` (None: unbounded) in one workspace.

    ``team_id`` and ``enterprise_id`` (Enterprise Grid) restrict to one workspace — a Slack command always passes
    its own; ``agent`` keeps the tasks whose latest round went to that agent. See the module docstring for exactly
    what is counted.

    Example::

        with tasklog.engine.connect() as conn:
            stats = compute_stats(conn, since=datetime.now(timezone.utc) - timedelta(days=7), team_id="T111")
        print(stats.tasks, stats.success_rate, [a.agent for a in stats.agents])
    """
    since_utc, until_utc = as_utc(since), as_utc(until)
    statement = _statement(since=since_utc, until=until_utc, team_id=team_id, enterprise_id=enterprise_id, agent=agent)
    groups: dict[tuple[int, str | None], _Group] = {}
    for row in conn.execute(statement):
        key = (int(row.routed), row.agent)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(
                tasks=int(row.tasks),
                finished=int(row.finished),
                succeeded=int(row.succeeded or 0),
                mean_confidence=None if row.mean_confidence is None else float(row.mean_confidence),
            )
        if row.execution_time is not None:
            group.ranked[int(row.rank)] = float(row.execution_time)

    agents = [
        AgentStats(
            agent=name,
            tasks=group.tasks,
            finished=group.finished,
            succeeded=group.succeeded,
            median_execution_time=_percentile(group.ranked, group.finished, 50),
            p95_execution_time=_percentile(group.ranked, group.finished, 95),
            mean_confidence=group.mean_confidence,
        )
        for (routed, name), group in groups.items()
        if routed and name is not None
    ]
    agents.sort(key=lambda stats: (-stats.tasks, stats.agent))
    unassigned = groups.get((1, None), _Group())
    unrouted = groups.get((0, None), _Group())
    return Stats(
        since=since_utc,
        until=until_utc,
        tasks=sum(group.tasks for group in groups.values()),
        finished=sum(group.finished for group in groups.values()),
        succeeded=sum(group.succeeded for group in groups.values()),
        unassigned=unassigned.tasks,
        unrouted=unrouted.tasks,
        agents=tuple(agents),
    )
