"""compute_stats: which round counts, percentiles, filters, and agreement with the CSV on every backend."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import re
import statistics
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.reports.export import ExportFilter
from slack_tasklog.reports.stats import Band, Day, Failure, Stats, _Group, compute_stats
from slack_tasklog.storage.summary import ALPHA, bucket_of, bucket_value

from tests.seeding import Round, SeedTask, random_tasks, seed

UTC = timezone.utc
T0 = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def stats_of(tasklog: TaskLog, **kwargs: object) -> Stats:
    with tasklog.engine.connect() as conn:
        return compute_stats(conn, **kwargs)  # type: ignore[arg-type]


def task(minutes: int, *rounds: Round, **fields: object) -> SeedTask:
    return SeedTask(requested_at=T0 + timedelta(minutes=minutes), rounds=list(rounds), **fields)  # type: ignore[arg-type]


def ok(seconds: float, start: float = 1.0) -> tuple[bool, float, timedelta, None]:
    return (True, seconds, timedelta(seconds=start), None)


def failed(seconds: float, start: float = 1.0) -> tuple[bool, float, timedelta, None]:
    return (False, seconds, timedelta(seconds=start), None)


def test_each_task_counts_once_by_its_latest_round(tasklog: TaskLog) -> None:
    seed(
        tasklog,
        [
            task(0, Round("Grok", 92, runs=[ok(4.0)])),
            task(1, Round("Grok", 80, runs=[failed(2.0)])),
            # Re-routed after a failure: counts for Writer, with Writer's result only.
            task(2, Round("Builder", 70, runs=[failed(9.0)]),
                 Round("Writer", 75, after=timedelta(minutes=5), runs=[ok(6.0)])),
            task(3, Round(None)),  # nobody confident enough
            task(4),  # not routed yet
            task(5, Round("Writer", 60)),  # running
            # A stray run by another agent, and one that started before the round: neither is this round's outcome.
            task(6, Round("Grok", 50, runs=[(True, 1.0, timedelta(seconds=5), "Writer"),
                                            (True, 1.0, timedelta(seconds=-5), None)])),
            # Two runs of the same round: the one that finished last counts.
            task(7, Round("Writer", 90, runs=[failed(1.0), ok(2.0, start=10)])),
        ],
    )  # fmt: skip
    stats = stats_of(tasklog)
    assert (stats.tasks, stats.finished, stats.succeeded, stats.unassigned, stats.unrouted) == (8, 5, 3, 1, 1)
    assert stats.in_progress == 3  # not routed, running, and the one whose only runs were not its round's
    assert stats.success_rate == pytest.approx(3 / 5)
    grok, writer = stats.agents
    assert (grok.agent, grok.tasks, grok.finished, grok.succeeded) == ("Grok", 3, 2, 1)
    assert (grok.median_execution_time, grok.p95_execution_time) == (
        pytest.approx(3.0, rel=ALPHA),
        pytest.approx(3.9, rel=ALPHA),
    )
    assert grok.mean_confidence == pytest.approx((92 + 80 + 50) / 3)
    assert (writer.agent, writer.tasks, writer.finished, writer.succeeded) == ("Writer", 3, 2, 2)
    assert writer.mean_confidence == pytest.approx((75 + 60 + 90) / 3)
    assert [a.agent for a in stats.agents] == ["Grok", "Writer"]  # Builder's only task was re-routed away


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 19, 20, 21, 22, 40, 101])
def test_percentiles_interpolate_like_percentile_cont(tasklog: TaskLog, count: int) -> None:
    rng = random.Random(count)
    times = [round(rng.uniform(0.1, 100), 3) for _ in range(count)]
    seed(tasklog, [task(i, Round("Grok", 90, runs=[ok(t)])) for i, t in enumerate(times)])
    [grok] = stats_of(tasklog).agents
    # Within 1% of the exact percentile (execution times are counted in buckets 2% wide).
    assert grok.median_execution_time == pytest.approx(statistics.median(times), rel=ALPHA)
    expected_p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if count > 1 else times[0]
    assert grok.p95_execution_time == pytest.approx(expected_p95, rel=ALPHA)
    expected_p99 = statistics.quantiles(times, n=100, method="inclusive")[98] if count > 1 else times[0]
    assert grok.p99_execution_time == pytest.approx(expected_p99, rel=ALPHA)


def test_percentile_arithmetic() -> None:
    def group(*times: float) -> _Group:
        g = _Group()
        for t in times:
            g.add(bucket_of(t), 1, 1, 0.0, 0)
        return g

    assert _Group().percentiles(50) == [None]
    assert group(5.0).percentiles(95) == [pytest.approx(5.0, rel=ALPHA)]
    assert group(1.0, 2.0, 3.0, 4.0).percentiles(50) == [pytest.approx(2.5, rel=ALPHA)]
    assert group(*range(1, 21)).percentiles(95) == [pytest.approx(19.05, rel=ALPHA)]
    assert group(0.0, 0.0, 7.0).percentiles(50, 100) == [0.0, pytest.approx(7.0, rel=ALPHA)]


@pytest.mark.parametrize("seconds", [1.5e-6, 2e-6, 0.001, 0.0123, 0.5, 1.0, 2.5, 59.9, 3600.0, 86_400.0 * 3])
def test_a_bucket_stands_for_its_times_within_one_percent(seconds: float) -> None:
    assert bucket_value(bucket_of(seconds)) == pytest.approx(seconds, rel=ALPHA)
    assert bucket_of(None) == -1
    assert bucket_of(0.0) == bucket_of(-1.0) == 0
    assert bucket_value(0) == 0.0


def test_filters_window_workspace_enterprise_agent(tasklog: TaskLog) -> None:
    seed(
        tasklog,
        [
            task(0, Round("Grok", 90, runs=[ok(1)])),
            task(10, Round("Writer", 90, runs=[ok(1)])),
            task(20, Round("Grok", 90, runs=[ok(1)]), team_id="T222"),
            task(30, Round("Grok", 90, runs=[ok(1)]), team_id="T333", enterprise_id="E1"),
            task(40, Round("Grok", 90, runs=[ok(1)]), team_id="T333", enterprise_id="E2"),
        ],
    )
    assert stats_of(tasklog).tasks == 5
    assert stats_of(tasklog, team_id="T111").tasks == 2
    assert stats_of(tasklog, team_id="T222").tasks == 1
    assert stats_of(tasklog, team_id="T333", enterprise_id="E1").tasks == 1
    assert stats_of(tasklog, team_id="T111", agent="Writer").tasks == 1
    # since inclusive, until exclusive
    assert stats_of(tasklog, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)).tasks == 2
    assert stats_of(tasklog, since="2024-01-15T10:10:00Z", until=T0 + timedelta(minutes=10)).tasks == 0


def test_an_empty_log(tasklog: TaskLog) -> None:
    tasklog._store.ensure_schema()
    stats = stats_of(tasklog, team_id="T111")
    assert stats == Stats(since=None, until=None)
    assert stats.success_rate is None


def from_csv(tasklog: TaskLog, **kwargs: object) -> dict[str, object]:
    """What the stats should be, computed from the CSV rows by their documented meaning."""
    out = io.StringIO(newline="")
    tasklog.export_csv(out, neutralize_formulas=False, **kwargs)  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    finished = [r for r in rows if r["success"]]

    def verdict(r: dict[str, str]) -> str:
        """The documented rule: the requester's vote, else the others' majority ("" for none)."""
        if r["requester_feedback"]:
            return r["requester_feedback"]
        up, down = int(r["feedback_up"]), int(r["feedback_down"])
        return "" if up == down else ("up" if up > down else "down")

    agents = {}
    for name in sorted({r["assigned_agent"] for r in rows if r["assigned_agent"]}):
        mine = [r for r in rows if r["assigned_agent"] == name]
        times = sorted(float(r["execution_time"]) for r in mine if r["success"])
        confidences = [float(r["confidence"]) for r in mine if r["confidence"]]
        agents[name] = (
            len(mine),
            len(times),
            sum(r["success"] == "true" for r in mine),
            round(statistics.median(times), 3) if times else None,
            round(statistics.quantiles(times, n=20, method="inclusive")[18], 3) if len(times) > 1 else (
                times[0] if times else None),
            round(statistics.fmean(confidences), 6) if confidences else None,
            sum(verdict(r) != "" for r in mine),
            sum(verdict(r) == "up" for r in mine),
            sum(verdict(r) == "down" and r["success"] == "true" for r in mine),
        )  # fmt: skip
    return {
        "tasks": len(rows),
        "finished": len(finished),
        "succeeded": sum(r["success"] == "true" for r in rows),
        "unassigned": sum(1 for r in rows if r["attempts"] != "0" and not r["assigned_agent"]),
        "unrouted": sum(1 for r in rows if r["attempts"] == "0"),
        "verdicts": (
            sum(verdict(r) != "" for r in rows),
            sum(verdict(r) == "up" for r in rows),
            sum(verdict(r) == "down" and r["success"] == "true" for r in rows),
        ),
        "agents": agents,
    }


def as_comparable(stats: Stats) -> dict[str, object]:
    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "tasks": stats.tasks,
        "finished": stats.finished,
        "succeeded": stats.succeeded,
        "unassigned": stats.unassigned,
        "unrouted": stats.unrouted,
        "verdicts": (stats.voted, stats.approved, stats.disagreed),
        "agents": {
            a.agent: (
                a.tasks,
                a.finished,
                a.succeeded,
                rounded(a.median_execution_time, 3),
                rounded(a.p95_execution_time, 3),
                rounded(a.mean_confidence, 6),
                a.voted,
                a.approved,
                a.disagreed,
            )
            for a in sorted(stats.agents, key=lambda a: a.agent)
        },
    }


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_stats_agree_with_the_csv(tasklog: TaskLog, seed_value: int) -> None:
    """On every backend: the same tasks, rounds and outcomes as the CSV, and the same figures from them."""
    rng = random.Random(seed_value)
    start = T0 - timedelta(days=10)
    seed(tasklog, random_tasks(rng, 150, start=start, span=timedelta(days=10)))
    seed(tasklog, random_tasks(rng, 30, start=start, span=timedelta(days=10), team_id="T222"))
    for filters in (
        {},
        {"team_id": "T111"},
        {"team_id": "T111", "since": start + timedelta(days=3), "until": start + timedelta(days=7)},
        # Midnight to midnight (the rollup alone), and within one day (the tasks alone).
        {"since": datetime(2024, 1, 7, tzinfo=UTC), "until": datetime(2024, 1, 12, tzinfo=UTC)},
        {"since": datetime(2024, 1, 8, 3, tzinfo=UTC), "until": datetime(2024, 1, 8, 21, tzinfo=UTC)},
        {"team_id": "T222", "agent": "Grok"},
    ):
        with tasklog.engine.connect() as conn:
            stats = compute_stats(conn, **filters)  # type: ignore[arg-type]
        got, got_percentiles = without_percentiles(as_comparable(stats))
        want, want_percentiles = without_percentiles(from_csv(tasklog, **filters))
        assert got == want, filters
        for agent, percentiles in want_percentiles.items():
            assert got_percentiles[agent] == pytest.approx(percentiles, rel=ALPHA), (filters, agent)


def without_percentiles(figures: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    """The figures with the agents' median and p95 taken out (they are within 1%), and those apart."""
    agents = figures["agents"]
    rest = {name: (*values[:3], *values[5:]) for name, values in agents.items()}
    percentiles = {name: tuple(0.0 if v is None else v for v in values[3:5]) for name, values in agents.items()}
    return figures | {"agents": rest}, percentiles


def test_calibration_bands_and_the_daily_series(tasklog: TaskLog) -> None:
    seed(
        tasklog,
        [
            task(0, Round("Grok", 92, runs=[ok(1)])),
            task(1, Round("Grok", 88, runs=[failed(1)])),
            task(2, Round("Grok", 75, runs=[ok(1)])),
            task(3, Round("Grok", 40)),  # still running
            task(4, Round("Grok", 30, runs=[failed(1)]), Round("Grok", 84.9, after=timedelta(minutes=5), runs=[ok(1)])),
            task(60 * 24, Round("Writer", 99.7, runs=[ok(2)])),  # the next day
            task(60 * 24 + 1, Round(None)),
        ],
    )
    everything = stats_of(tasklog)
    # Bands by the latest round's confidence, floored: 84.9 is in 70-84.
    assert everything.calibration["Grok"] == (
        Band(0, 49, 1, 0, 0),
        Band(50, 69, 0, 0, 0),
        Band(70, 84, 2, 2, 2),
        Band(85, 100, 2, 2, 1),
    )
    assert everything.calibration["Writer"][-1] == Band(85, 100, 1, 1, 1)
    assert everything.calibration["Grok"][2].success_rate == 1.0
    assert everything.days == (
        Day(date(2024, 1, 15), "Grok", 5, 4, 3),
        Day(date(2024, 1, 16), None, 1, 1, 0),
        Day(date(2024, 1, 16), "Writer", 1, 1, 1),
    )
    assert everything.unassigned_rate == pytest.approx(1 / 7)
    # The same from part-days (the tasks) as from whole days (the rollups).
    around = stats_of(tasklog, since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1, hours=1))
    assert (around.calibration, around.days) == (everything.calibration, everything.days)
    within = stats_of(tasklog, since=T0, until=T0 + timedelta(minutes=3))
    assert within.days == (Day(date(2024, 1, 15), "Grok", 3, 3, 2),)


def test_the_top_failures(tasklog: TaskLog) -> None:
    def failing(minutes: int, agent: str | None, error: str) -> SeedTask:
        return task(minutes, Round(agent, 80, runs=[(False, 1.0, timedelta(seconds=1), None)]), text=error)

    seed(
        tasklog,
        [
            task(0, Round("Grok", 80, runs=[failed(1)])),
            task(1, Round("Grok", 80, runs=[failed(2)])),
            task(2, Round("Writer", 80, runs=[failed(3)])),
            task(3, Round(None)),
            task(60 * 24, Round("Grok", 80, runs=[ok(1)])),
            # Re-routed after a failure: the latest round succeeded, so this task is no failure.
            task(5, Round("Builder", 70, runs=[failed(9.0)]),
                 Round("Writer", 75, after=timedelta(minutes=5), runs=[ok(6.0)])),
        ],
    )  # fmt: skip
    everything = stats_of(tasklog)
    assert everything.failures == (Failure("RuntimeError: boom", 3), Failure("No agent confident enough", 1))
    assert stats_of(tasklog, agent="Writer").failures == (Failure("RuntimeError: boom", 1),)
    # From part-days (the tasks) as from whole days (the rollup).
    around = stats_of(tasklog, since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1, hours=1))
    assert around.failures == everything.failures
    assert stats_of(tasklog, top_failures=1).failures == (Failure("RuntimeError: boom", 3),)


def test_by_channel_and_by_user_from_the_tasks(tasklog: TaskLog) -> None:
    seed(
        tasklog,
        [
            task(0, Round("Grok", 90, runs=[ok(1)]), channel_id="C1", user_id="U1"),
            task(1, Round("Grok", 60, runs=[failed(2)]), channel_id="C1", user_id="U2"),
            task(60 * 24, Round("Writer", 80, runs=[ok(3)]), channel_id="C2", user_id="U1"),
        ],
    )
    in_c1 = stats_of(tasklog, channel_id="C1")
    assert (in_c1.tasks, in_c1.succeeded, [a.agent for a in in_c1.agents]) == (2, 1, ["Grok"])
    assert in_c1.failures == (Failure("RuntimeError: boom", 1),)
    by_u1 = stats_of(tasklog, user_id="U1")
    assert [(d.day, d.agent, d.tasks) for d in by_u1.days] == [
        (date(2024, 1, 15), "Grok", 1),
        (date(2024, 1, 16), "Writer", 1),
    ]
    assert by_u1.calibration["Writer"][-1] == Band(85, 100, 0, 0, 0)
    assert stats_of(tasklog, user_id="U1", channel_id="C2", since=T0 + timedelta(hours=1)).tasks == 1


def record_usage_scenario(tasklog: TaskLog, day: datetime) -> None:
    """Grok: a success (1000 in, 200 out, 0.006) and a failure (500 in, 0.0015); Writer: a success with tokens and no
    cost (no price); Grok again: a task still running. Through the writer, as the decorators would record it."""
    from slack_tasklog.events import AssignmentRecorded, OutcomeRecorded, TaskRequested

    runs = [
        ("Grok", True, (1000, 200, 0.006)),
        ("Grok", False, (500, 0, 0.0015)),
        ("Writer", True, (100, 50, None)),
        ("Grok", None, None),
    ]
    for n, (agent, success, usage) in enumerate(runs):
        at = day.timestamp() + 3600 * (n + 1)
        ts = f"{at:.6f}"
        tasklog._record(TaskRequested("T111", None, "C1", ts, ts, "U1", f"task {n}"))
        tasklog._record(AssignmentRecorded(f"r{n}", ts, "C1", "T111", agent, 90.0, ((agent, 90.0),), at + 1, "nobody"))
        if usage is not None:
            error = None if success else "TimeoutError: slow"
            tasklog._record(
                OutcomeRecorded(f"o{n}", ts, "C1", "T111", agent, bool(success), 2.0, error, at + 2, at + 4, *usage)
            )
    assert tasklog.flush(10)


def test_tokens_and_cost_per_agent_per_task_and_per_successful_task(tasklog: TaskLog) -> None:
    record_usage_scenario(tasklog, T0.replace(hour=0))
    for window in (
        {"since": date(2024, 1, 15), "until": date(2024, 1, 16)},
        {"since": T0.replace(hour=0, minute=30), "until": T0.replace(hour=23)},
    ):
        stats = stats_of(tasklog, **window)  # whole day from the rollups; a part-day from the tasks
        by_agent = {a.agent: a.usage for a in stats.agents}
        grok, writer = by_agent["Grok"], by_agent["Writer"]
        assert (grok.input_tokens, grok.output_tokens, grok.costed, grok.costed_succeeded) == (1500, 200, 2, 1)
        assert grok.cost == pytest.approx(0.0075)
        assert grok.cost_per_task == pytest.approx(0.00375)
        assert grok.cost_per_success == pytest.approx(0.0075)  # the failure's spend included
        assert (writer.input_tokens, writer.output_tokens, writer.cost, writer.cost_per_task) == (100, 50, None, None)
        assert (stats.usage.input_tokens, stats.usage.output_tokens) == (1600, 250)
        assert stats.usage.cost == pytest.approx(0.0075)
        [day_grok] = [d for d in stats.days if d.agent == "Grok"]
        assert (day_grok.usage.input_tokens, day_grok.usage.costed) == (1500, 2)
        assert day_grok.usage.cost == pytest.approx(0.0075)


def test_no_usage_is_no_cost() -> None:
    assert Stats(since=None, until=None).usage.cost_per_task is None


def test_part_days_from_the_tasks_agree_with_the_rollups_figure_for_figure(tasklog: TaskLog) -> None:
    """The tasks grouped in SQL (part-days, and windows by channel) give every figure the rollups give: votes, usage,
    failures, unassigned, unrouted and running tasks, confidences the calibration floors and clamps, percentiles."""
    rng = random.Random(7)
    first = datetime(2024, 1, 10, tzinfo=UTC)
    span = timedelta(days=4, hours=22)
    tasks = random_tasks(rng, 200, start=first + timedelta(minutes=1), span=span, channel_id="C1")
    for n, confidence in enumerate((-5.0, 0.0, 0.5, 49.99, 84.9, 99.7, 100.0, 120.0)):
        at = first + timedelta(hours=5, minutes=n)
        tasks.append(SeedTask(at, channel_id="C1", rounds=[Round("Grok", confidence, runs=[ok(2)])]))
    seed(tasklog, tasks)
    record_usage_scenario(tasklog, first + timedelta(days=1))  # tokens and costs, in channel C1 too

    def figures(**window: Any) -> dict[str, Any]:
        found = dataclasses.asdict(dataclasses.replace(stats_of(tasklog, **window), since=None, until=None))
        return rounded(found)

    whole_days = figures(since=first, until=first + timedelta(days=5))  # the rollups alone
    assert min(whole_days["voted"], whole_days["approved"], whole_days["disagreed"]) > 0
    assert whole_days["usage"]["costed"] == 2
    assert len(whole_days["failures"]) == 3
    assert whole_days["tasks"] > whole_days["finished"] > 0
    assert whole_days["unassigned"] > 0
    assert whole_days["unrouted"] > 0
    edges = timedelta(microseconds=1)
    # The first and last days from the tasks, the rest from the rollups.
    assert figures(since=first + edges, until=first + timedelta(days=5) - edges) == whole_days
    # Every day from the tasks, each task's day worked out in SQL.
    assert figures(channel_id="C1") == whole_days


def rounded(value: Any) -> Any:
    """``value`` with its floats to 12 significant digits: sums taken in another order may differ in the last bit."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


@pytest.mark.parametrize(
    ("window", "error", "says"),
    [
        ({"since": "yesterday"}, ValueError, "since='yesterday' is not a time: give a datetime, a date or an ISO 8601"),
        ({"until": "7d"}, ValueError, "until='7d' is not a time"),
        ({"since": 5}, TypeError, "since takes a datetime, a date or an ISO 8601 text, not int"),
        ({"since": "2025-01-01", "until": "2024-01-01"}, ValueError, "since must come before until"),
    ],
)
def test_a_window_that_is_no_window_is_refused_saying_so(
    tasklog: TaskLog, window: dict[str, Any], error: type[Exception], says: str
) -> None:
    """The same words for compute_stats, an export filter and tasklog.export_csv, instead of a parser's error."""
    with pytest.raises(error, match=re.escape(says)):
        stats_of(tasklog, **window)
    with pytest.raises(error, match=re.escape(says)):
        ExportFilter(**window)
    with pytest.raises(error, match=re.escape(says)):
        tasklog.export_csv(io.StringIO(), **window)
    assert stats_of(tasklog, since="2024-01-01", until="2024-01-01").tasks == 0  # an empty window is no slip
