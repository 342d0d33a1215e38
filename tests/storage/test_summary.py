"""The writer keeps each task's latest round and the daily rollup exact, whatever order events arrive in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded, TaskRequested
from slack_tasklog.reports.stats import Stats, Usage, compute_stats
from slack_tasklog.storage import summary
from slack_tasklog.storage.models import DailyCalibration, DailyFailures, DailyStats, Outcome, Task
from slack_tasklog.storage.rounds import latest_round_join
from sqlalchemy import func, select

UTC = timezone.utc
START = datetime(2024, 3, 10, tzinfo=UTC)
AGENTS = ("Grok", "Writer", "Builder")
ERRORS = ("TimeoutError: the agent took too long", "ValueError: bad plan\nTraceback (most recent call last): ...", None)


def lifecycle_events(rng: random.Random, n: int, team: str) -> list[Event]:
    """A task (sometimes none: its rounds stay orphans), 0-3 rounds, 0-2 runs a round, in causal order."""
    requested = START + timedelta(seconds=rng.uniform(0, 5 * 86_400))
    ts = f"{requested.timestamp():.6f}"
    events: list[Event] = []
    if rng.random() < 0.95:
        events.append(TaskRequested(team, None, "C1", ts, ts, "U1", f"task {n}"))
    at = requested.timestamp()
    for r in range(rng.choice((0, 1, 1, 1, 2, 3))):
        at += rng.uniform(1, 300)
        agent = None if rng.random() < 0.1 else rng.choice(AGENTS)
        confidence = None if agent is None else float(rng.randrange(40, 100))
        evaluations = tuple((name, float(rng.randrange(100))) for name in AGENTS)
        events.append(
            AssignmentRecorded(f"{team}{n:06d}r{r}", ts, "C1", team, agent, confidence, evaluations, at, "nobody")
        )
        if agent is None:
            continue
        for k in range(rng.choice((0, 1, 1, 2))):
            started = at + rng.uniform(0, 30)
            success = rng.random() < 0.8
            took = round(rng.lognormvariate(1.0, 1.0), 3)
            # Usage on most runs, some with tokens and no cost (an agent without a price), some with neither.
            tokens = (rng.randrange(5_000), rng.randrange(2_000)) if rng.random() < 0.8 else (None, None)
            cost = None if tokens[0] is None or rng.random() < 0.2 else tokens[0] * 3e-6 + tokens[1] * 15e-6
            events.append(
                OutcomeRecorded(
                    f"{team}{n:06d}r{r}o{k}", ts, "C1", team, agent, success, took,
                    None if success else rng.choice(ERRORS), started, started + took, *tokens, cost,
                )
            )  # fmt: skip
    return events


def snapshot(tasklog: TaskLog) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    t = Task.__table__.c  # type: ignore[attr-defined]
    d = DailyStats.__table__.c  # type: ignore[attr-defined]
    with tasklog.engine.connect() as conn:
        tasks = conn.execute(
            select(t.id, t.latest_round_id, t.latest_outcome_id, t.latest_agent, t.latest_confidence,
                   t.latest_success, t.latest_execution_time, t.stats_bucket, t.input_tokens, t.output_tokens,
                   t.cost).order_by(t.id)
        ).all()  # fmt: skip
        rollup = conn.execute(
            select(d.team_id, d.enterprise_id, d.day, d.routed, d.agent, d.bucket, d.tasks, d.succeeded,
                   d.confidence_sum, d.confidence_count, d.input_tokens, d.output_tokens, d.cost, d.costed,
                   d.costed_succeeded)
            .where(d.tasks != 0)
            .order_by(d.team_id, d.day, d.routed, d.agent, d.bucket)
        ).all()  # fmt: skip
        c = DailyCalibration.__table__.c  # type: ignore[attr-defined]
        calibration = conn.execute(
            select(
                c.team_id,
                c.enterprise_id,
                c.day,
                c.agent,
                c.confidence,
                c.tasks,
                c.finished,
                c.succeeded,
                c.input_tokens,
                c.output_tokens,
                c.cost,
                c.costed,
            )
            .where(c.tasks != 0)
            .order_by(c.team_id, c.day, c.agent, c.confidence)
        ).all()
        f = DailyFailures.__table__.c  # type: ignore[attr-defined]
        failures = conn.execute(
            select(f.team_id, f.day, f.agent, f.error_key, f.error_message, f.tasks)
            .where(f.tasks != 0)
            .order_by(f.team_id, f.day, f.agent, f.error_key)
        ).all()
    # Sums of confidences and costs added and taken away in another order differ in the last bits.
    return (
        [(*row[:10], None if row[10] is None else round(row[10], 9)) for row in tasks],
        [(*row[:8], round(row[8], 6), row[9], row[10], row[11], round(row[12], 9), *row[13:]) for row in rollup],
        [(*row[:10], round(row[10], 9), row[11]) for row in calibration],
        [tuple(row) for row in failures],
    )


@pytest.mark.parametrize("seed_value", [7, 8])
def test_events_in_any_order_leave_what_a_rebuild_finds(tasklog: TaskLog, seed_value: int) -> None:
    rng = random.Random(seed_value)
    events: list[Event] = []
    for n in range(150):
        events += lifecycle_events(rng, n, "T111" if n % 5 else "T222")
    # Slack retries, replayed journals: some events twice. Then any order, in batches of any size.
    events += rng.sample(events, len(events) // 10)
    rng.shuffle(events)
    position = 0
    while position < len(events):
        step = rng.choice((1, 5, 40, 200))
        for event in events[position : position + step]:
            tasklog._record(event)
        assert tasklog.flush(30)
        position += step
    tasklog._store.maintain()  # links the rounds that came before their task
    kept = snapshot(tasklog)
    assert kept[1], "nothing was counted"
    assert kept[2], "no calibration was counted"
    assert kept[3], "no failure was counted"
    assert any(row[12] for row in kept[1]), "no cost was counted"

    with tasklog.engine.begin() as conn:
        tasks = summary.rebuild(conn)
    assert tasks == len(kept[0])
    assert snapshot(tasklog) == kept
    assert_the_rule_in_sql_agrees(tasklog)


def assert_the_rule_in_sql_agrees(tasklog: TaskLog) -> None:
    """The writer applies the latest-round rule in Python; latest_round_join states it in SQL: same answers."""
    t = Task.__table__
    joined, latest_round, round_outcome = latest_round_join(t)  # type: ignore[arg-type]
    with tasklog.engine.connect() as conn:
        by_sql = conn.execute(
            select(t.c.id, latest_round.c.id, round_outcome.c.id).select_from(joined).order_by(t.c.id)
        ).all()
        kept = conn.execute(select(t.c.id, t.c.latest_round_id, t.c.latest_outcome_id).order_by(t.c.id)).all()
    assert [tuple(row) for row in kept] == [tuple(row) for row in by_sql]
    assert any(row[2] is not None for row in kept)


def used(usage: Usage) -> tuple[int, ...]:
    # The cost is a sum of floats, compared apart (pytest.approx).
    return usage.input_tokens, usage.output_tokens, usage.costed, usage.costed_succeeded


def counts(stats: Stats) -> dict[str, Any]:
    return {
        "totals": (stats.tasks, stats.finished, stats.succeeded, stats.unassigned, stats.unrouted, *used(stats.usage)),
        "agents": {a.agent: (a.tasks, a.finished, a.succeeded, *used(a.usage)) for a in stats.agents},
    }


def add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    agents = dict(a["agents"])
    for name, figures in b["agents"].items():
        agents[name] = tuple(x + y for x, y in zip(agents.get(name, (0,) * 7), figures, strict=True))
    return {"totals": tuple(x + y for x, y in zip(a["totals"], b["totals"], strict=True)), "agents": agents}


def record_log(tasklog: TaskLog, rng: random.Random) -> None:
    """200 tasks' lifecycles through the writer, the rounds that came before their task linked."""
    for n in range(200):
        for event in lifecycle_events(rng, n, "T111"):
            tasklog._record(event)
    assert tasklog.flush(30)
    tasklog._store.maintain()


def test_whole_days_from_the_rollup_agree_with_part_days_from_the_tasks(tasklog: TaskLog) -> None:
    record_log(tasklog, random.Random(3))
    since, until = START + timedelta(days=1), START + timedelta(days=4)
    with tasklog.engine.connect() as conn:
        whole = counts(compute_stats(conn, since=since, until=until))  # the rollup alone
        cut = timedelta(microseconds=1)
        parts = add(
            counts(compute_stats(conn, since=since, until=until - cut)),  # rollup + a part-day from the tasks
            counts(compute_stats(conn, since=until - cut, until=until)),  # the tasks alone
        )
        shifted = add(
            counts(compute_stats(conn, since=since, until=since + timedelta(hours=7))),
            counts(compute_stats(conn, since=since + timedelta(hours=7), until=until)),
        )
    assert whole["totals"][0] > 50
    assert whole["totals"][5] > 0, "no tokens were counted"
    assert parts == whole
    assert shifted == whole


def test_tokens_and_cost_from_the_rollups_agree_with_the_runs(tasklog: TaskLog) -> None:
    record_log(tasklog, random.Random(5))
    o, t = Outcome.__table__.c, Task.__table__.c  # type: ignore[attr-defined]
    since, until = START + timedelta(days=1), START + timedelta(days=4)
    with tasklog.engine.connect() as conn:
        in_window = select(t.id).where(t.requested_at >= since, t.requested_at < until)
        runs = conn.execute(
            select(func.sum(o.input_tokens), func.sum(o.output_tokens), func.sum(o.cost)).where(
                o.task_id.in_(in_window)
            )
        ).one()
        costed = conn.execute(select(func.count()).where(t.id.in_(in_window), t.cost.is_not(None))).scalar_one()
        whole = compute_stats(conn, since=since, until=until)  # the rollups alone
        cut = compute_stats(conn, since=since + timedelta(hours=7), until=until - timedelta(hours=5))
        edges = [
            compute_stats(conn, since=since, until=since + timedelta(hours=7)),
            cut,
            compute_stats(conn, since=until - timedelta(hours=5), until=until),
        ]
    assert (whole.usage.input_tokens, whole.usage.output_tokens, whole.usage.cost) == (
        runs[0],
        runs[1],
        pytest.approx(runs[2]),
    )
    assert whole.usage.costed == costed
    # A task whose latest round assigned nobody keeps its earlier runs' cost, under no agent.
    assert 0 < sum(a.usage.cost or 0 for a in whole.agents) <= whole.usage.cost
    # The daily series adds up to the window, and so do its pieces (part-days read from the tasks).
    assert sum(d.usage.input_tokens for d in whole.days) == whole.usage.input_tokens
    assert sum(d.usage.cost or 0 for d in whole.days) == pytest.approx(whole.usage.cost)
    assert sum(s.usage.input_tokens for s in edges) == whole.usage.input_tokens
    assert sum(s.usage.cost or 0 for s in edges) == pytest.approx(whole.usage.cost)
    assert sum(d.usage.input_tokens for d in cut.days) == cut.usage.input_tokens
    assert whole.usage.cost_per_task == pytest.approx(whole.usage.cost / costed)
