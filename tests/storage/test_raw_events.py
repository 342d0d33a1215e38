"""Events that reach storage without the decorators' checks (journals, the importer, other hosts): confidences that
are no finite number in 0..100 are stored as NULL and cost no event; an outcome whose start a clock put a little
before its round's still belongs to that round. On all three backends."""

from __future__ import annotations

import csv
import io
import math

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded, TaskRequested
from slack_tasklog.reports.stats import Stats, compute_stats
from slack_tasklog.storage.summary import confidence_percent

from tests.conftest import query
from tests.storage.test_summary import assert_the_rule_in_sql_agrees

ROOT = "1700000000.000100"
T = 1_700_000_010.0


def request() -> TaskRequested:
    return TaskRequested("T1", None, "C1", ROOT, ROOT, "U1", "do it")


Evaluations = tuple[tuple[str, float | None], ...]


def assignment(round_id: str, confidence: float | None, evaluations: Evaluations, at: float) -> AssignmentRecorded:
    return AssignmentRecorded(round_id, ROOT, "C1", "T1", "Grok", confidence, evaluations, at, "-")


def outcome(outcome_id: str, started: float, finished: float, *, success: bool = True) -> OutcomeRecorded:
    error = None if success else "boom"
    return OutcomeRecorded(outcome_id, ROOT, "C1", "T1", "Grok", success, finished - started, error, started, finished)


def exported(tasklog: TaskLog) -> list[dict[str, str]]:
    out = io.StringIO(newline="")
    tasklog.export_csv(out, neutralize_formulas=False)
    return list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))


def stats_of(tasklog: TaskLog) -> Stats:
    with tasklog.engine.connect() as conn:
        return compute_stats(conn)


def record(tasklog: TaskLog, *events: Event) -> None:
    for item in events:
        tasklog._record(item)
    assert tasklog.flush(10)


@pytest.mark.parametrize(
    ("order", "assigned"), [("round first", math.inf), ("mention first", math.nan), ("round first", -math.inf)]
)
def test_a_confidence_that_is_no_finite_percent_is_null(tasklog: TaskLog, order: str, assigned: float) -> None:
    evaluations = (
        ("Grok", assigned), ("Writer", math.nan), ("Builder", -math.inf), ("Ops", math.inf),
        ("Big", 100.5), ("Neg", -1.0), ("Good", 42.0), ("Edge", 100.0),
    )  # fmt: skip
    round_and_run = (assignment("a1", assigned, evaluations, T), outcome("o1", T + 1, T + 3))
    if order == "round first":
        record(tasklog, *round_and_run, request())
    else:
        record(tasklog, request(), *round_and_run)
    assert tasklog.health().rejected == 0
    assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(1,)]
    assert query(tasklog, "SELECT id, agent, confidence, task_id IS NOT NULL FROM tasklog_assignments") == [
        ("a1", "Grok", None, True)
    ]
    assert sorted(query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations")) == [
        ("Big", None), ("Builder", None), ("Edge", 100.0), ("Good", 42.0),
        ("Grok", None), ("Neg", None), ("Ops", None), ("Writer", None),
    ]  # fmt: skip
    assert query(tasklog, "SELECT id, task_id IS NOT NULL FROM tasklog_outcomes") == [("o1", True)]
    [row] = exported(tasklog)
    assert (row["assigned_agent"], row["confidence"], row["success"]) == ("Grok", "", "true")
    assert row["other_agents_confidence"] == "Edge:100;Good:42;Big:;Builder:;Neg:;Ops:;Writer:"
    stats = stats_of(tasklog)
    assert (stats.tasks, stats.finished, stats.succeeded) == (1, 1, 1)
    assert [(a.agent, a.tasks) for a in stats.agents] == [("Grok", 1)]


def test_confidence_percent_treats_what_is_no_number_like_none() -> None:
    assert [confidence_percent(value) for value in (None, math.nan, math.inf, -math.inf)] == [-1, -1, -1, -1]
    assert [confidence_percent(value) for value in (0.0, 41.9, 100.0, 150.0, -3.0)] == [0, 41, 100, 100, 0]


def test_an_outcome_that_started_just_before_its_round_belongs_to_it(tasklog: TaskLog) -> None:
    """Clock skew between the host that routed and the one that ran: the run's start is 0.3 s before the round."""
    record(tasklog, request(), assignment("a1", 80.0, (("Grok", 80.0),), T), outcome("o1", T - 0.3, T + 2))
    assert query(tasklog, "SELECT latest_round_id, latest_outcome_id FROM tasklog_tasks") == [("a1", "o1")]
    [row] = exported(tasklog)
    assert (row["assigned_agent"], row["success"], row["execution_time"]) == ("Grok", "true", "2.3")
    stats = stats_of(tasklog)
    assert (stats.tasks, stats.finished, stats.succeeded) == (1, 1, 1)
    assert_the_rule_in_sql_agrees(tasklog)


def test_two_rounds_of_one_agent_each_run_goes_to_the_round_before_it_finished(tasklog: TaskLog) -> None:
    # The first round's run failed and finished before the task was routed again, to the same agent.
    record(
        tasklog,
        request(),
        assignment("a1", 80.0, (("Grok", 80.0),), T),
        outcome("o1", T - 0.3, T + 5, success=False),
        assignment("a2", 70.0, (("Grok", 70.0),), T + 100),
    )
    # The second round has no run yet: the first one's failure is not its outcome.
    assert query(tasklog, "SELECT latest_round_id, latest_outcome_id FROM tasklog_tasks") == [("a2", None)]
    assert exported(tasklog)[0]["success"] == ""
    stats = stats_of(tasklog)
    assert (stats.tasks, stats.finished, stats.succeeded) == (1, 0, 0)
    # Its run started 0.2 s before it (another host's clock) and finished after it.
    record(tasklog, outcome("o2", T + 99.8, T + 104))
    assert query(tasklog, "SELECT latest_round_id, latest_outcome_id FROM tasklog_tasks") == [("a2", "o2")]
    [row] = exported(tasklog)
    assert (row["confidence"], row["success"], row["execution_time"]) == ("70", "true", "4.2")
    stats = stats_of(tasklog)
    assert (stats.tasks, stats.finished, stats.succeeded) == (1, 1, 1)
    assert_the_rule_in_sql_agrees(tasklog)
