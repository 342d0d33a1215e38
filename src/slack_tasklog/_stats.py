"""Task statistics: totals, success rate, unassigned tasks, and per-agent figures.

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
- Per agent (the latest round's agent): tasks, finished, succeeded, the median, 95th and 99th percentiles of the
  execution time of its finished tasks, and the mean of its confidence in those rounds.

How
---
Counts and means are exact. Percentiles are read from execution-time buckets 2% wide (``_summary.bucket_of``), so
each is **within 1%** of the exact value (interpolated linearly between the two nearest ranks, like PostgreSQL's
``percentile_cont``: the median of 1, 2, 3, 4 is 2.5, give or take 1%). That is what lets whole days come from the
daily rollup (``tasklog_daily_stats``): a window reads the rollup for the UTC days it covers entirely and the tasks'
own summary columns for the part-days at its edges, one ``GROUP BY`` each, whose results are a few thousand rows
whatever the window. ``_summary`` explains how the writer keeps both exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Select, Table, case, func, select

from ._export import as_utc
from ._models import DailyStats, Task
from ._summary import UNFINISHED, bucket_value

__all__ = ["AgentStats", "Stats", "compute_stats"]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_daily: Table = DailyStats.__table__  # type: ignore[assignment]


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
    p99_execution_time: float | None = None

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
    confidence_sum: float = 0.0
    confidence_count: int = 0
    # execution-time bucket -> finished tasks in it
    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, bucket: int, tasks: int, succeeded: int, confidence_sum: float, confidence_count: int) -> None:
        self.tasks += tasks
        self.succeeded += succeeded
        self.confidence_sum += confidence_sum
        self.confidence_count += confidence_count
        if bucket != UNFINISHED:
            self.finished += tasks
            self.buckets[bucket] = self.buckets.get(bucket, 0) + tasks

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.confidence_count if self.confidence_count else None

    def percentiles(self, *percents: int) -> list[float | None]:
        """Linear interpolation between the nearest ranks, the ranks' values read from their buckets."""
        n = self.finished
        if n == 0:
            return [None] * len(percents)
        # 1-based ranks wanted, in exact integer arithmetic: floor and ceiling of 1 + p(n - 1)/100.
        wanted: dict[int, float] = {}
        plan = []
        for percent in percents:
            low, rest = divmod(percent * (n - 1), 100)
            plan.append((low + 1, low + 2 if rest else None, rest))
            wanted[low + 1] = 0.0
            if rest:
                wanted[low + 2] = 0.0
        ranks = sorted(wanted)
        seen = 0
        index = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            while index < len(ranks) and ranks[index] <= seen:
                wanted[ranks[index]] = bucket_value(bucket)
                index += 1
            if index == len(ranks):
                break
        return [
            wanted[low] if high is None else wanted[low] + (wanted[high] - wanted[low]) * rest / 100
            for low, high, rest in plan
        ]


_COUNT_COLUMNS = ("tasks", "succeeded", "confidence_sum", "confidence_count")


def _rollup_query(
    first_day: date | None, end_day: date | None, team_id: str | None, enterprise_id: str | None, agent: str | None
) -> Select[Any]:
    d = _daily
    query = select(
        d.c.routed, d.c.agent, d.c.bucket, *(func.sum(d.c[name]).label(name) for name in _COUNT_COLUMNS)
    ).group_by(d.c.routed, d.c.agent, d.c.bucket)
    if first_day is not None:
        query = query.where(d.c.day >= first_day)
    if end_day is not None:
        query = query.where(d.c.day < end_day)
    if team_id is not None:
        query = query.where(d.c.team_id == team_id)
    if enterprise_id is not None:
        query = query.where(d.c.enterprise_id == enterprise_id)
    if agent is not None:
        query = query.where(d.c.routed.is_(True), d.c.agent == agent)
    return query


def _tasks_query(
    since: datetime | None,
    until: datetime | None,
    team_id: str | None,
    enterprise_id: str | None,
    agent: str | None,
) -> Select[Any]:
    t = _tasks
    routed = case((t.c.latest_round_id.is_(None), False), else_=True)
    bucket = func.coalesce(t.c.stats_bucket, UNFINISHED)
    query = select(
        routed.label("routed"),
        t.c.latest_agent.label("agent"),
        bucket.label("bucket"),
        func.count().label("tasks"),
        func.sum(case((t.c.latest_success.is_(True), 1), else_=0)).label("succeeded"),
        func.sum(t.c.latest_confidence).label("confidence_sum"),
        func.count(t.c.latest_confidence).label("confidence_count"),
    ).group_by(routed, t.c.latest_agent, bucket)
    if since is not None:
        query = query.where(t.c.requested_at >= since)
    if until is not None:
        query = query.where(t.c.requested_at < until)
    if team_id is not None:
        query = query.where(t.c.team_id == team_id)
    if enterprise_id is not None:
        query = query.where(t.c.enterprise_id == enterprise_id)
    if agent is not None:
        query = query.where(t.c.latest_agent == agent)
    return query


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _statements(
    *,
    since: datetime | None,
    until: datetime | None,
    team_id: str | None,
    enterprise_id: str | None,
    agent: str | None,
) -> list[Select[Any]]:
    """The queries whose rows add up to the window: the rollup for the whole UTC days in it, the tasks for the rest."""
    filters = (team_id, enterprise_id, agent)
    # The whole days: from the first midnight at or after since, to the last midnight at or before until.
    first_day = None
    if since is not None:
        first_day = since.date() if since == _day_start(since.date()) else since.date() + timedelta(days=1)
    end_day = None if until is None else until.date()
    if first_day is not None and end_day is not None and first_day >= end_day:
        return [_tasks_query(since, until, *filters)]  # not one whole day: the tasks alone
    statements = [_rollup_query(first_day, end_day, *filters)]
    if since is not None and first_day is not None and since < _day_start(first_day):
        statements.append(_tasks_query(since, _day_start(first_day), *filters))
    if until is not None and end_day is not None and _day_start(end_day) < until:
        statements.append(_tasks_query(_day_start(end_day), until, *filters))
    return statements


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
    groups: dict[tuple[bool, str], _Group] = {}
    statements = _statements(
        since=since_utc, until=until_utc, team_id=team_id, enterprise_id=enterprise_id, agent=agent
    )
    for statement in statements:
        for row in conn.execute(statement):
            key = (bool(row.routed), row.agent or "")
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            group.add(
                int(row.bucket),
                int(row.tasks or 0),
                int(row.succeeded or 0),
                float(row.confidence_sum or 0.0),
                int(row.confidence_count or 0),
            )

    agents = []
    for (routed, name), group in groups.items():
        if not (routed and name) or group.tasks == 0:
            continue
        median, p95, p99 = group.percentiles(50, 95, 99)
        agents.append(
            AgentStats(
                agent=name,
                tasks=group.tasks,
                finished=group.finished,
                succeeded=group.succeeded,
                median_execution_time=median,
                p95_execution_time=p95,
                mean_confidence=group.mean_confidence,
                p99_execution_time=p99,
            )
        )
    agents.sort(key=lambda stats: (-stats.tasks, stats.agent))
    unassigned = groups.get((True, ""), _Group())
    unrouted = groups.get((False, ""), _Group())
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
