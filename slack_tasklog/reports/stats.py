"""Task statistics: totals, success rate, unassigned tasks, and per-agent figures.

Which round counts
------------------
A task is counted once, by its **latest round** and that round's outcome — exactly the round and outcome the CSV
reports (both read what the writer keeps by the one rule of :mod:`slack_tasklog.storage.rounds`). A task re-routed
after a failure therefore counts for the agent that has it now, with that agent's result; the failed first attempt
is not counted a second time. Tasks are selected by when they were requested (``since`` inclusive, ``until`` exclusive).

- ``tasks``: tasks requested in the window.
- ``finished``: tasks whose latest round has an outcome; a round that assigned nobody is finished (and failed)
  at once, as in the CSV.
- ``success_rate``: ``succeeded / finished``; tasks still running are not failures.
- ``unassigned``: tasks whose latest round assigned nobody ("No agent confident enough").
- ``unrouted``: tasks with no round yet.
- Per agent (the latest round's agent): tasks, finished, succeeded, the median, 95th and 99th percentiles of the
  execution time of its finished tasks, and the mean of its confidence in those rounds.
- The people's verdict (:func:`slack_tasklog.storage.votes.verdict_of`: the requester's vote, else the others'
  majority), per agent and in all: ``voted`` tasks have one, ``approved`` ones are voted up (``approval_rate`` is
  ``approved / voted``, next to the ``success_rate`` the agent reported), and ``disagreed`` ones were reported
  successful yet voted down: the tasks to look at to fix routing.
- Tokens and cost (:class:`Usage`, on the totals, each agent and each day): the sums over every run of the tasks
  (a re-routed task's earlier runs included, counted under the agent that has it now, like its success); cost per
  task is the cost over the tasks that have one, cost per successful task the same cost over those of them that
  succeeded (what a success costs, failures' spend included).

How
---
Counts and means are exact. Percentiles are read from execution-time buckets 2% wide
(:func:`slack_tasklog.storage.summary.bucket_of`), so each is **within 1%** of the exact value (interpolated linearly
between the two nearest ranks, like PostgreSQL's ``percentile_cont``: the median of 1, 2, 3, 4 is 2.5, give or take
1%). That is what lets whole days come from the daily rollup (``tasklog_daily_stats``): a window reads the rollup for
the UTC days it covers entirely and the tasks' own summary columns for the part-days at its edges, grouped in SQL by
the keys of the rollups' rows (the same execution-time buckets), so that either way the results are a few thousand
rows whatever the window. :mod:`slack_tasklog.storage.summary` explains how the writer keeps both exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Date, Integer, Select, Table, and_, case, cast, func, select, type_coerce

from slack_tasklog.reports.export import filter_tasks, utc_window
from slack_tasklog.storage.models import DailyCalibration, DailyFailures, DailyStats, Outcome, Task
from slack_tasklog.storage.summary import UNFINISHED, bucket_value, failure_of
from slack_tasklog.storage.votes import verdict_of

__all__ = ["DEFAULT_BANDS", "AgentStats", "Band", "Day", "Failure", "Stats", "Usage", "compute_stats"]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_daily: Table = DailyStats.__table__  # type: ignore[assignment]
_calibration: Table = DailyCalibration.__table__  # type: ignore[assignment]
_failures: Table = DailyFailures.__table__  # type: ignore[assignment]
_outcomes: Table = Outcome.__table__  # type: ignore[assignment]
_FAILURES_READ = 100


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of a set of tasks: the sums over their runs, and how many of them have a cost (and of those,
    succeeded), which is what the costs per task divide by. ``cost`` is None while no task has one."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    costed: int = 0
    costed_succeeded: int = 0

    @property
    def cost_per_task(self) -> float | None:
        """The mean cost of the tasks that have one; None if none has."""
        return self.cost / self.costed if self.cost is not None and self.costed else None

    @property
    def cost_per_success(self) -> float | None:
        """What a successful task costs: the cost of the tasks that have one (failed ones included) over those of
        them that succeeded; None if none succeeded."""
        return self.cost / self.costed_succeeded if self.cost is not None and self.costed_succeeded else None


_NO_USAGE = Usage()
_NOTHING_USED = (0, 0, 0.0, 0)


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
    voted: int = 0  #: tasks with a verdict from people (see the module docstring)
    approved: int = 0  #: of which voted up
    disagreed: int = 0  #: reported successful, voted down
    #: The tokens and cost of its tasks' runs.
    usage: Usage = _NO_USAGE

    @property
    def success_rate(self) -> float | None:
        """``succeeded / finished``, None while nothing has finished."""
        return self.succeeded / self.finished if self.finished else None

    @property
    def approval_rate(self) -> float | None:
        """``approved / voted``: what people thought, None while nobody voted."""
        return self.approved / self.voted if self.voted else None


#: Confidence bands for calibration: (lowest, highest) whole percent, both included.
DEFAULT_BANDS: tuple[tuple[int, int], ...] = ((0, 49), (50, 69), (70, 84), (85, 100))


class _Rate:
    """``success_rate`` for the figures that count finished and succeeded tasks."""

    finished: int
    succeeded: int

    @property
    def success_rate(self) -> float | None:
        """``succeeded / finished``, None while nothing has finished."""
        return self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True)
class Band(_Rate):
    """Tasks an agent was given at a confidence from ``low`` to ``high`` percent (floored), and how they turned out:
    the calibration question (does 90% confident mean 90% successful?)."""

    low: int
    high: int
    tasks: int
    finished: int
    succeeded: int


@dataclass(frozen=True)
class Failure:
    """A failure and how many tasks' latest outcome it was: the first line of the error message."""

    message: str
    tasks: int


@dataclass(frozen=True)
class Day(_Rate):
    """One UTC day of the window for one agent (``agent`` None: tasks with no agent, unrouted or unassigned)."""

    day: date
    agent: str | None
    tasks: int
    finished: int
    succeeded: int
    usage: Usage = _NO_USAGE


@dataclass(frozen=True)
class Stats:
    """What :func:`compute_stats` found; ``agents`` are sorted by tasks, most first; ``calibration`` maps each
    agent to its confidence bands; ``days`` is the daily series, by day then agent."""

    since: datetime | None
    until: datetime | None
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    unassigned: int = 0
    unrouted: int = 0
    agents: tuple[AgentStats, ...] = ()
    calibration: Mapping[str, tuple[Band, ...]] = field(default_factory=dict)
    days: tuple[Day, ...] = ()
    #: The most frequent failures, most first (at most ``compute_stats(top_failures=...)``).
    failures: tuple[Failure, ...] = ()
    voted: int = 0  #: tasks with a verdict from people
    approved: int = 0  #: of which voted up
    disagreed: int = 0  #: reported successful, voted down
    #: The tokens and cost of every task's runs.
    usage: Usage = _NO_USAGE

    @property
    def approval_rate(self) -> float | None:
        """``approved / voted`` over every task with a verdict, None if none has one."""
        return self.approved / self.voted if self.voted else None

    @property
    def unassigned_rate(self) -> float | None:
        """Unassigned tasks over routed ones (those that had a round), None if none was routed."""
        routed = self.tasks - self.unrouted
        return self.unassigned / routed if routed else None

    @property
    def success_rate(self) -> float | None:
        """``succeeded / finished`` over every finished task (unassigned ones count as failed), None if none."""
        return self.succeeded / self.finished if self.finished else None

    @property
    def in_progress(self) -> int:
        """Tasks without an outcome yet: not routed, or routed and still running."""
        return self.tasks - self.finished


def _usage(used: Sequence[float]) -> Usage:
    """A :class:`Usage` from sums in the order of the rollups' columns (``_USAGE_COLUMNS``); the last, tasks with a
    cost and succeeded, may be missing (the daily series does not count them)."""
    costed = int(used[3])
    return Usage(
        input_tokens=int(used[0]),
        output_tokens=int(used[1]),
        cost=float(used[2]) if costed else None,
        costed=costed,
        costed_succeeded=int(used[4]) if len(used) > 4 else 0,
    )


def _add_usage(into: list[float], sums: Sequence[Any]) -> None:
    for index, value in enumerate(sums):
        into[index] += value or 0


@dataclass
class _Group:
    tasks: int = 0
    finished: int = 0
    succeeded: int = 0
    confidence_sum: float = 0.0
    confidence_count: int = 0
    voted: int = 0
    approved: int = 0
    disagreed: int = 0
    # execution-time bucket -> finished tasks in it
    buckets: dict[int, int] = field(default_factory=dict)
    # input tokens, output tokens, cost, tasks with a cost, of which succeeded
    used: list[float] = field(default_factory=lambda: [0, 0, 0.0, 0, 0])

    def add(
        self,
        bucket: int,
        tasks: int,
        succeeded: int,
        confidence_sum: float,
        confidence_count: int,
        *,
        voted: int = 0,
        approved: int = 0,
        disagreed: int = 0,
    ) -> None:
        self.tasks += tasks
        self.succeeded += succeeded
        self.confidence_sum += confidence_sum
        self.confidence_count += confidence_count
        self.voted += voted
        self.approved += approved
        self.disagreed += disagreed
        if bucket != UNFINISHED:
            self.finished += tasks
            self.buckets[bucket] = self.buckets.get(bucket, 0) + tasks

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.confidence_count if self.confidence_count else None

    @property
    def usage(self) -> Usage:
        return _usage(self.used)

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


_COUNT_COLUMNS = ("tasks", "succeeded", "confidence_sum", "confidence_count", "voted", "approved", "disagreed")
_USAGE_COLUMNS = ("input_tokens", "output_tokens", "cost", "costed", "costed_succeeded")


@dataclass
class _Tally:
    """The window's figures as its pieces add up: per (routed, agent) group, calibration and the daily series."""

    groups: dict[tuple[bool, str], _Group] = field(default_factory=dict)
    # (agent, confidence percent) -> [tasks, finished, succeeded]
    calibration: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    # (day, agent or "") -> [tasks, finished, succeeded]
    days: dict[tuple[date, str], list[int]] = field(default_factory=dict)
    # (day, agent or "") -> [input tokens, output tokens, cost, tasks with a cost]
    day_usage: dict[tuple[date, str], list[float]] = field(default_factory=dict)
    # error key -> [failed tasks], and the key's message
    failures: dict[str, list[int]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def add_failures(self, error_key: str, message: str, tasks: int) -> None:
        self._add(self.failures, error_key, tasks, 0, 0)
        self.messages.setdefault(error_key, message)

    def add_day_usage(self, key: tuple[date, str], sums: Sequence[Any]) -> None:
        held = self.day_usage.get(key)
        if held is None:
            held = self.day_usage[key] = [0, 0, 0.0, 0]
        _add_usage(held, sums)

    def group(self, routed: bool, agent: str | None) -> _Group:
        key = (bool(routed), agent or "")
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = _Group()
        return found

    @staticmethod
    def _add(counts: dict[Any, list[int]], key: Any, tasks: int, finished: int, succeeded: int) -> None:
        held = counts.get(key)
        if held is None:
            counts[key] = [tasks, finished, succeeded]
        else:
            held[0] += tasks
            held[1] += finished
            held[2] += succeeded

    def add_rollup(self, conn: Connection, where: _Where, first_day: date | None, end_day: date | None) -> None:
        """The whole days ``[first_day, end_day)`` (None: unbounded), from the rollups."""
        d, c = _daily, _calibration
        stats = select(
            d.c.routed,
            d.c.agent,
            d.c.bucket,
            *(func.sum(d.c[name]).label(name) for name in (*_COUNT_COLUMNS, *_USAGE_COLUMNS)),
        ).group_by(d.c.routed, d.c.agent, d.c.bucket)
        # The series and the calibration from the smaller rollup: a few rows per agent and day.
        days = select(
            c.c.day,
            c.c.agent,
            func.sum(c.c.tasks),
            func.sum(c.c.finished),
            func.sum(c.c.succeeded),
            *(func.sum(c.c[name]) for name in _USAGE_COLUMNS[:4]),
        ).group_by(c.c.day, c.c.agent)
        calibration = (
            select(c.c.agent, c.c.confidence, func.sum(c.c.tasks), func.sum(c.c.finished), func.sum(c.c.succeeded))
            .where(c.c.agent != "", c.c.confidence >= 0)
            .group_by(c.c.agent, c.c.confidence)
        )
        f = _failures
        failed = func.sum(f.c.tasks)
        failures = (
            select(f.c.error_key, func.max(f.c.error_message), failed)
            .group_by(f.c.error_key)
            .order_by(failed.desc())
            # The window's part-days may add to these: a wider cut than the top few keeps the order right.
            .limit(_FAILURES_READ)
        )
        failures = where.rollup(failures, f, first_day, end_day, routed=False)
        stats = where.rollup(stats, d, first_day, end_day)
        days = where.rollup(days, c, first_day, end_day, routed=False)
        calibration = where.rollup(calibration, c, first_day, end_day, routed=False)
        for (
            routed,
            agent,
            bucket,
            tasks,
            succeeded,
            confidence_sum,
            confidence_count,
            voted,
            approved,
            disagreed,
            *used,
        ) in conn.execute(stats):
            group = self.group(routed, agent)
            group.add(
                int(bucket),
                int(tasks or 0),
                int(succeeded or 0),
                float(confidence_sum or 0),
                int(confidence_count or 0),
                voted=int(voted or 0),
                approved=int(approved or 0),
                disagreed=int(disagreed or 0),
            )
            _add_usage(group.used, used)
        row: Any
        for row in conn.execute(days):
            day, name, tasks, done, succeeded, *used = row
            self._add_day((day, name), tasks, done, succeeded, used)
        for row in conn.execute(calibration):
            name, percent, tasks, done, succeeded = row
            self._add(self.calibration, (name, int(percent)), int(tasks or 0), int(done or 0), int(succeeded or 0))
        for row in conn.execute(failures):
            error_key, message, tasks = row
            if tasks:
                self.add_failures(error_key, message or "", int(tasks))

    def add_tasks(
        self, conn: Connection, where: _Where, since: datetime | None, until: datetime | None, day: date | None
    ) -> None:
        """``[since, until)`` from the tasks' own summary columns: a part of one ``day``, or (``day`` None) any
        window, each task's day worked out in SQL (what a filter the rollups do not have, channel or user, needs).

        Grouped in SQL as the rollups are, so that Python adds up groups, not tasks: by agent and execution-time
        bucket (and the votes' tally, whose verdict :func:`~slack_tasklog.storage.votes.verdict_of` gives per group)
        for the figures of the daily stats and the daily series, by agent and whole confidence percent for the
        calibration, by error key for the failures."""
        t, o = _tasks, _outcomes
        succeeded = t.c.latest_success.is_(True)
        confidence, cost = t.c.latest_confidence, t.c.cost
        keys = (
            *(() if day is not None else (_day(conn.dialect.name),)),
            t.c.latest_round_id.is_not(None),
            func.coalesce(t.c.latest_agent, ""),
            func.coalesce(t.c.stats_bucket, UNFINISHED),
            t.c.feedback_up,
            t.c.feedback_down,
            t.c.requester_feedback,
        )
        stats = select(
            *keys,
            func.count(),
            _count(succeeded),
            func.sum(confidence),
            func.count(confidence),
            func.sum(t.c.input_tokens),
            func.sum(t.c.output_tokens),
            func.sum(cost),
            func.count(cost),
            _count(and_(cost.is_not(None), succeeded)),
        ).group_by(*keys)
        percent = _confidence_percent(conn.dialect.name)
        calibration = (
            select(t.c.latest_agent, percent, func.count(), _count(t.c.stats_bucket != UNFINISHED), _count(succeeded))
            .where(t.c.latest_agent.is_not(None), confidence.is_not(None))
            .group_by(t.c.latest_agent, percent)
        )
        # The message of a failure is its latest outcome's; the writer keeps the key of its first line on the task.
        failures = (
            select(t.c.latest_error_key, func.max(o.c.error_message), func.count())
            .select_from(t.outerjoin(o, o.c.id == t.c.latest_outcome_id))
            .where(t.c.latest_error_key.is_not(None))
            .group_by(t.c.latest_error_key)
        )
        row: Any
        for row in conn.execute(where.tasks(stats, since, until)):
            task_day, found = (day, row) if day is not None else (row[0], row[1:])
            routed, agent, bucket, up, down, requester, tasks, won, confidence_sum, confidence_count, *used = found
            verdict = verdict_of(up, down, requester)
            group = self.group(routed, agent)
            group.add(
                int(bucket),
                int(tasks),
                int(won),
                float(confidence_sum or 0),
                int(confidence_count),
                voted=int(tasks) if verdict is not None else 0,
                approved=int(tasks) if verdict else 0,
                disagreed=int(won) if verdict is False else 0,
            )
            _add_usage(group.used, used)
            finished = 0 if int(bucket) == UNFINISHED else tasks
            self._add_day((task_day, agent), tasks, finished, won, used[:4])
        for row in conn.execute(where.tasks(calibration, since, until)):
            name, whole_percent, tasks, done, won = row
            self._add(self.calibration, (name, int(whole_percent)), int(tasks), int(done), int(won))
        for row in conn.execute(where.tasks(failures, since, until)):
            error_key, message, tasks = row
            self.add_failures(error_key, failure_of(message)[1], int(tasks))

    def _add_day(self, key: tuple[date, str], tasks: Any, finished: Any, succeeded: Any, used: Sequence[Any]) -> None:
        self._add(self.days, key, int(tasks or 0), int(finished or 0), int(succeeded or 0))
        self.add_day_usage(key, used)


def _count(condition: Any) -> Any:
    """How many rows of a group meet ``condition``."""
    return func.sum(case((condition, 1), else_=0))


def _confidence_percent(dialect: str) -> Any:
    """:func:`~slack_tasklog.storage.summary.confidence_percent` of a confidence (not NULL) in SQL: floored, kept
    within 0-100."""
    confidence = _tasks.c.latest_confidence
    # SQLite may be built without floor(); its CAST truncates, which is the floor within 0-100.
    whole = cast(confidence, Integer) if dialect == "sqlite" else func.floor(confidence)
    return case((confidence <= 0, 0), (confidence >= 100, 100), else_=whole)


def _day(dialect: str) -> Any:
    """The UTC day a task was requested (:func:`~slack_tasklog.storage.summary.day_of`), in each backend's words."""
    requested_at = _tasks.c.requested_at
    if dialect == "postgresql":  # timestamptz: its UTC wall time, whatever the session's time zone
        return cast(func.timezone("UTC", requested_at), Date)
    return type_coerce(func.date(requested_at), Date)  # SQLite and MySQL keep UTC wall time; SQLite returns text


@dataclass(frozen=True)
class _Where:
    """The filters of a stats request, applied to rollup or task queries."""

    team_id: str | None
    enterprise_id: str | None
    agent: str | None
    channel_id: str | None = None
    user_id: str | None = None

    def rollup(
        self, query: Select[Any], table: Table, first_day: date | None, end_day: date | None, *, routed: bool = True
    ) -> Select[Any]:
        if first_day is not None:
            query = query.where(table.c.day >= first_day)
        if end_day is not None:
            query = query.where(table.c.day < end_day)
        if self.team_id is not None:
            query = query.where(table.c.team_id == self.team_id)
        if self.enterprise_id is not None:
            query = query.where(table.c.enterprise_id == self.enterprise_id)
        if self.agent is not None:
            query = query.where(table.c.agent == self.agent)
            if routed:
                query = query.where(table.c.routed.is_(True))
        return query

    def tasks(self, query: Select[Any], since: datetime | None, until: datetime | None) -> Select[Any]:
        query = filter_tasks(
            query, since=since, until=until, team_id=self.team_id, enterprise_id=self.enterprise_id, agent=self.agent
        )
        if self.channel_id is not None:
            query = query.where(_tasks.c.channel_id == self.channel_id)
        if self.user_id is not None:
            query = query.where(_tasks.c.user_id == self.user_id)
        return query


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _pieces(
    since: datetime | None, until: datetime | None
) -> tuple[tuple[date | None, date | None] | None, list[tuple[datetime, datetime]]]:
    """The window as whole UTC days (read from the rollups; None if there are none) and part-days (from the tasks,
    each within one day): ``[since, until)`` is exactly their union."""
    first_day = None
    if since is not None:
        first_day = since.date() if since == _day_start(since.date()) else since.date() + timedelta(days=1)
    end_day = None if until is None else until.date()
    parts: list[tuple[datetime, datetime]] = []
    if (
        since is not None
        and until is not None
        and first_day is not None
        and end_day is not None
        and first_day >= end_day
    ):
        # Not one whole day: a part of one day, or the end of one and the start of the next.
        cut = _day_start(first_day)
        if since < min(cut, until):
            parts.append((since, min(cut, until)))
        if cut < until:
            parts.append((cut, until))
        return None, parts
    if since is not None and first_day is not None and since < _day_start(first_day):
        parts.append((since, _day_start(first_day)))
    if until is not None and end_day is not None and _day_start(end_day) < until:
        parts.append((_day_start(end_day), until))
    return (first_day, end_day), parts


def compute_stats(
    conn: Connection,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    team_id: str | None = None,
    enterprise_id: str | None = None,
    agent: str | None = None,
    channel_id: str | None = None,
    user_id: str | None = None,
    bands: Sequence[tuple[int, int]] = DEFAULT_BANDS,
    top_failures: int = 5,
) -> Stats:
    """Statistics of the tasks requested in ``[since, until)`` (None: unbounded) in one workspace.

    ``team_id`` and ``enterprise_id`` (Enterprise Grid) restrict to one workspace — a Slack command always passes
    its own; ``agent`` keeps the tasks whose latest round went to that agent; ``channel_id`` and ``user_id`` the tasks
    asked in one channel or by one person (the rollups do not know these: the tasks are read instead, a scan of the
    window); ``bands`` are the confidence bands of the calibration (whole percents, both ends included). See the
    module docstring for exactly what is counted.

    Example::

        with tasklog.engine.connect() as conn:
            stats = compute_stats(conn, since=datetime.now(timezone.utc) - timedelta(days=7), team_id="T111")
        print(stats.tasks, stats.success_rate, [a.agent for a in stats.agents])
    """
    since_utc, until_utc = utc_window(since, until)
    where = _Where(team_id, enterprise_id, agent, channel_id, user_id)
    tally = _Tally()
    if channel_id is not None or user_id is not None:
        tally.add_tasks(conn, where, since_utc, until_utc, None)
        return _stats_of(tally, since_utc, until_utc, bands, top_failures)
    whole_days, parts = _pieces(since_utc, until_utc)
    if whole_days is not None:
        tally.add_rollup(conn, where, *whole_days)
    for part_since, part_until in parts:
        tally.add_tasks(conn, where, part_since, part_until, part_since.date())
    return _stats_of(tally, since_utc, until_utc, bands, top_failures)


def _stats_of(
    tally: _Tally, since: datetime | None, until: datetime | None, bands: Sequence[tuple[int, int]], top: int
) -> Stats:
    groups = tally.groups
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
                voted=group.voted,
                approved=group.approved,
                disagreed=group.disagreed,
                usage=group.usage,
            )
        )
    agents.sort(key=lambda stats: (-stats.tasks, stats.agent))
    calibration: dict[str, list[Band]] = {}
    for agent_stats in agents:
        name = agent_stats.agent
        found = []
        for low, high in bands:
            tasks = finished = succeeded = 0
            for percent in range(max(low, 0), min(high, 100) + 1):
                counts = tally.calibration.get((name, percent))
                if counts is not None:
                    tasks, finished, succeeded = tasks + counts[0], finished + counts[1], succeeded + counts[2]
            found.append(Band(low, high, tasks, finished, succeeded))
        calibration[name] = found
    days = tuple(
        Day(day, agent or None, tasks, finished, succeeded, _usage(tally.day_usage.get((day, agent), _NOTHING_USED)))
        for (day, agent), (tasks, finished, succeeded) in sorted(tally.days.items())
        if tasks
    )
    used: list[float] = [0, 0, 0.0, 0, 0]
    for group in groups.values():
        _add_usage(used, group.used)
    unassigned = groups.get((True, ""), _Group())
    unrouted = groups.get((False, ""), _Group())
    return Stats(
        since=since,
        until=until,
        tasks=sum(group.tasks for group in groups.values()),
        finished=sum(group.finished for group in groups.values()),
        succeeded=sum(group.succeeded for group in groups.values()),
        unassigned=unassigned.tasks,
        unrouted=unrouted.tasks,
        agents=tuple(agents),
        calibration={name: tuple(found) for name, found in calibration.items()},
        days=days,
        failures=_top_failures(tally, top),
        voted=sum(group.voted for group in groups.values()),
        approved=sum(group.approved for group in groups.values()),
        disagreed=sum(group.disagreed for group in groups.values()),
        usage=_usage(used),
    )


def _top_failures(tally: _Tally, top: int) -> tuple[Failure, ...]:
    ranked = sorted(
        ((counts[0], tally.messages[key]) for key, counts in tally.failures.items() if counts[0] > 0),
        key=lambda item: (-item[0], item[1]),
    )
    return tuple(Failure(message, tasks) for tasks, message in ranked[:top])
