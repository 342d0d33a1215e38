"""slack_tasklog.integrations.prometheus: counters and histograms as events are committed, writer figures at scrape."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from slack_tasklog import TaskLog
from slack_tasklog.integrations.prometheus import instrument

from tests.conftest import free_port

pytestmark = pytest.mark.backends("sqlite")


def test_assignments_outcomes_and_the_writer(tasklog: TaskLog) -> None:
    registry = CollectorRegistry()
    instrument(tasklog, registry=registry)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str | None:
        best = max(evaluations, key=lambda agent: evaluations[agent])
        return best if evaluations[best] >= 50 else None

    class Grok:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            if text == "fail":
                raise RuntimeError("boom")
            return "done"

    assert check_and_assign("1.000001", {"Grok": 92, "Writer": 30}) == "Grok"
    assert check_and_assign("1.000002", {"Grok": 71, "Writer": 30}) == "Grok"
    assert check_and_assign("1.000003", {"Grok": 10, "Writer": 30}) is None
    Grok().process_assignment("1.000001", "ok")
    with pytest.raises(RuntimeError):
        Grok().process_assignment("1.000002", "fail")
    assert tasklog.flush(10)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("slack_tasklog_assignments_total", agent="Grok") == 2
    assert value("slack_tasklog_assignments_total", agent="") == 1
    assert value("slack_tasklog_task_outcomes_total", agent="Grok", outcome="success") == 1
    assert value("slack_tasklog_task_outcomes_total", agent="Grok", outcome="failure") == 1
    assert value("slack_tasklog_task_outcomes_total", agent="", outcome="unassigned") == 1
    assert value("slack_tasklog_execution_time_seconds_count", agent="Grok") == 2
    assert value("slack_tasklog_assignment_confidence_percent_sum", agent="Grok") == 92 + 71
    assert value("slack_tasklog_assignment_confidence_percent_bucket", agent="Grok", le="80.0") == 1
    # The writer's counters, read at scrape: 3 rounds + 2 runs written, nothing lost.
    assert value("slack_tasklog_events_written_total") == 5
    assert value("slack_tasklog_events_dropped_total") == 0
    assert value("slack_tasklog_queue_depth") == 0


def test_tokens_and_cost_are_counted_per_agent(tasklog: TaskLog) -> None:
    registry = CollectorRegistry()
    instrument(tasklog, registry=registry)
    tasklog.prices = {"Grok": {"input": 3.0, "output": 15.0}}

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str, tokens: tuple[int, int]) -> dict[str, object]:
        return {"usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1]}}

    process_assignment("1.000001", (1000, 200))
    process_assignment("1.000002", (3000, 0))
    assert tasklog.flush(10)
    assert registry.get_sample_value("slack_tasklog_tokens_total", {"agent": "Grok", "kind": "input"}) == 4000
    assert registry.get_sample_value("slack_tasklog_tokens_total", {"agent": "Grok", "kind": "output"}) == 200
    assert registry.get_sample_value("slack_tasklog_cost_total", {"agent": "Grok"}) == pytest.approx(0.015)


def test_served_over_http(tasklog: TaskLog) -> None:
    registry = CollectorRegistry()
    port = free_port()
    instrument(tasklog, registry=registry, port=port, addr="127.0.0.1")

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Writer"

    check_and_assign("2.000001", {"Writer": 88})
    assert tasklog.flush(10)  # metrics count what is committed
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert 'slack_tasklog_assignments_total{agent="Writer"} 1.0' in body
    assert "# TYPE slack_tasklog_queue_depth gauge" in body
