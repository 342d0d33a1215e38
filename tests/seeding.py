"""Rows straight into the task log's tables with SQLAlchemy Core: fast, exact, and independent of the writer.

The scenario tests still go through Slack where that is the point; these build the data a command reads.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from slack_tasklog import TaskLog
from slack_tasklog.storage import summary
from slack_tasklog.storage.models import Assignment, Evaluation, Feedback, Outcome, Task
from sqlalchemy import Connection, Engine, insert, select

UTC = timezone.utc
AGENTS = ("Grok", "Writer", "Builder")
_ids = itertools.count(1)


@dataclass
class Round:
    agent: str | None
    confidence: float | None = None
    evaluations: Sequence[tuple[str, float]] = ()
    after: timedelta = timedelta(seconds=1)  # recorded this long after the request
    # (success, execution_time, started after the round, agent override) for each run of the round
    runs: list[tuple[bool, float, timedelta, str | None]] = field(default_factory=list)


@dataclass
class SeedTask:
    requested_at: datetime
    team_id: str = "T111"
    enterprise_id: str | None = None
    channel_id: str = "C111"
    user_id: str = "U123"
    text: str = "do the thing"
    rounds: list[Round] = field(default_factory=list)
    # (user, positive, added) for each vote event on the request, in order
    votes: list[tuple[str, bool, bool]] = field(default_factory=list)


def seed(tasklog: TaskLog, tasks: Sequence[SeedTask]) -> None:
    """Insert ``tasks`` with their rounds, evaluations and outcomes."""
    tasklog._store.ensure_schema()
    with tasklog.engine.begin() as conn:
        insert_tasks(conn, tasks)


def insert_tasks(conn: Connection, tasks: Sequence[SeedTask]) -> None:
    task_rows: list[dict[str, Any]] = []
    round_rows: list[dict[str, Any]] = []
    evaluation_rows: list[dict[str, Any]] = []
    outcome_rows: list[dict[str, Any]] = []
    vote_rows: list[dict[str, Any]] = []
    for task in tasks:
        n = next(_ids)
        ts = f"{task.requested_at.timestamp():.6f}"
        for v, (user, positive, added) in enumerate(task.votes):
            vote_rows.append(
                {"team_id": task.team_id, "channel_id": task.channel_id, "item_ts": ts, "user_id": user,
                 "reaction": "+1" if positive else "-1", "positive": positive, "added": added,
                 "ts": f"{task.requested_at.timestamp() + 60 + v:.6f}",
                 "given_at": task.requested_at + timedelta(seconds=60 + v), "_task": len(task_rows)}
            )  # fmt: skip
        task_rows.append(
            {
                "team_id": task.team_id,
                "enterprise_id": task.enterprise_id,
                "channel_id": task.channel_id,
                "thread_ts": ts,
                "request_ts": ts,
                "user_id": task.user_id,
                "request_text": task.text,
                "requested_at": task.requested_at,
                "recorded_at": task.requested_at,
            }
        )
        for r, spec in enumerate(task.rounds):
            round_id = f"r{n:08d}x{r:03d}"
            at = task.requested_at + spec.after
            round_rows.append(
                {
                    "id": round_id,
                    "team_id": task.team_id,
                    "channel_id": task.channel_id,
                    "thread_ts": ts,
                    "agent": spec.agent,
                    "confidence": spec.confidence,
                    "recorded_at": at,
                    "_task": len(task_rows) - 1,
                }
            )
            evaluation_rows.extend(
                {"assignment_id": round_id, "agent": agent, "confidence": confidence}
                for agent, confidence in spec.evaluations
            )
            if spec.agent is None:
                # What the store writes for a round nobody took: a failed outcome of its own, at once.
                spec_runs: list[tuple[bool, float, timedelta, str | None]] = [(False, 0.0, timedelta(0), None)]
                error = "No agent confident enough"
            else:
                spec_runs, error = spec.runs, "RuntimeError: boom"
            for k, (success, seconds, start, agent) in enumerate(spec_runs):
                started = at + start
                outcome_rows.append(
                    {
                        "id": round_id if spec.agent is None else f"o{n:08d}x{r:03d}x{k:03d}",
                        "team_id": task.team_id,
                        "channel_id": task.channel_id,
                        "thread_ts": ts,
                        "agent": agent if agent is not None else spec.agent,
                        "success": success,
                        "execution_time": seconds,
                        "error_message": None if success else error,
                        "started_at": started,
                        "finished_at": started + timedelta(seconds=seconds),
                        "_task": len(task_rows) - 1,
                    }
                )
    if not task_rows:
        return
    tasks_table = Task.__table__
    conn.execute(insert(tasks_table), task_rows)  # type: ignore[arg-type]
    # Read the new ids back by the unique (team, channel, thread_ts).
    keys = {(row["team_id"], row["channel_id"], row["thread_ts"]): i for i, row in enumerate(task_rows)}
    ids: dict[int, int] = {}
    t = tasks_table.c  # type: ignore[attr-defined]
    for task_id, team, channel, thread_ts in conn.execute(
        select(t.id, t.team_id, t.channel_id, t.thread_ts).where(t.thread_ts.in_({k[2] for k in keys}))
    ):
        if (team, channel, thread_ts) in keys:
            ids[keys[(team, channel, thread_ts)]] = task_id
    for row in round_rows:
        row["task_id"] = ids[row.pop("_task")]
    for row in outcome_rows:
        row["task_id"] = ids[row.pop("_task")]
    for row in vote_rows:
        row["task_id"] = ids[row.pop("_task")]
    if round_rows:
        conn.execute(insert(Assignment.__table__), round_rows)  # type: ignore[arg-type]
    if evaluation_rows:
        conn.execute(insert(Evaluation.__table__), evaluation_rows)  # type: ignore[arg-type]
    if outcome_rows:
        conn.execute(insert(Outcome.__table__), outcome_rows)  # type: ignore[arg-type]
    if vote_rows:
        conn.execute(insert(Feedback.__table__), vote_rows)  # type: ignore[arg-type]
    # What the writer does after each batch: the tasks' latest rounds, their votes, and the daily rollup.
    summary.refresh(conn, ids.values())
    summary.refresh_feedback(conn, {row["task_id"] for row in vote_rows})


def random_tasks(rng: random.Random, count: int, *, start: datetime, span: timedelta, **fields: Any) -> list[SeedTask]:
    """A varied task log: unrouted, unassigned, running, re-routed, late and foreign outcomes, ties."""
    tasks = []
    for _ in range(count):
        requested_at = start + timedelta(seconds=rng.uniform(0, span.total_seconds()))
        requested_at = requested_at.replace(microsecond=rng.randrange(0, 1_000_000, 100))
        rounds = []
        for r in range(rng.choice((0, 1, 1, 1, 1, 2, 3))):
            agent = None if rng.random() < 0.1 else rng.choice(AGENTS)
            spec = Round(
                agent=agent,
                confidence=None if agent is None else float(rng.randrange(40, 100)),
                evaluations=[(name, float(rng.randrange(0, 100))) for name in AGENTS],
                after=timedelta(minutes=5 * r + 1),
            )
            if agent is not None:
                for _ in range(rng.choice((0, 1, 1, 1, 2))):
                    other = rng.choice(AGENTS) if rng.random() < 0.1 else None  # a stray run by someone else
                    early = rng.random() < 0.05  # started before the round: belongs to an earlier one
                    spec.runs.append(
                        (
                            rng.random() < 0.8,
                            round(rng.lognormvariate(2.5, 1.0), 3),
                            timedelta(seconds=-30 if early else rng.uniform(0, 60)),
                            other,
                        )
                    )
            rounds.append(spec)
        votes = [
            (rng.choice(("U123", "U2", "U3")), rng.random() < 0.6, rng.random() < 0.9)
            for _ in range(rng.choice((0, 0, 0, 1, 2, 4)))
        ]
        tasks.append(SeedTask(requested_at=requested_at, rounds=rounds, votes=votes, **fields))
    return tasks


def bulk_tasks(engine: Engine, count: int, *, start: datetime, team_id: str = "T111") -> None:
    """``count`` tasks, one second apart from ``start``, each with one successful round: fast (executemany)."""
    rows = []
    for i in range(count):
        at = start + timedelta(seconds=i)
        ts = f"{at.timestamp():.6f}"
        rows.append(
            {
                "team_id": team_id,
                "enterprise_id": None,
                "channel_id": "C111",
                "thread_ts": ts,
                "request_ts": ts,
                "user_id": f"U{i % 97:04d}",
                "request_text": f"request number {i}, with a comma",
                "requested_at": at,
                "recorded_at": at,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Task.__table__), rows)  # type: ignore[arg-type]
