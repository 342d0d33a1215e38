"""Live metrics for Prometheus (the ``prometheus`` extra): what this process records, as it is committed.

Example::

    from slack_tasklog import TaskLog
    from slack_tasklog.integrations.prometheus import instrument

    tasklog = TaskLog()
    instrument(tasklog)               # on prometheus_client's default registry
    instrument(tasklog, port=9464)    # ... and serve /metrics on that port (a thread of its own)

Every bot process exposes its own figures; Prometheus sums them (``sum by (agent) (...)``), so one Grafana sees
the orchestrator and every specialist bot together. Updated in process (:meth:`~slack_tasklog.TaskLog.add_observer`)
as the writer commits each batch, a moment after the decorators record, never read from the database:

- ``slack_tasklog_assignments_total{agent}``: rounds of ``check_and_assign``; ``agent=""`` when nobody was
  confident enough.
- ``slack_tasklog_task_outcomes_total{agent,outcome}``: runs of ``process_assignment``, ``outcome`` ``success`` or
  ``failure``; and ``outcome="unassigned"`` (``agent=""``) for rounds that assigned nobody.
- ``slack_tasklog_execution_time_seconds{agent}``: histogram of the runs' execution time.
- ``slack_tasklog_assignment_confidence_percent{agent}``: histogram of the assigned agent's confidence (0-100).
- ``slack_tasklog_tokens_total{agent,kind}``: tokens the runs reported (``kind`` ``input`` or ``output``), and
  ``slack_tasklog_cost_total{agent}``: their cost, in the currency of ``TaskLog(prices=...)`` (see
  :meth:`~slack_tasklog.TaskLog.track_outcome`).
- ``slack_tasklog_events_{written,retried,spilled,dropped,rejected}_total``, ``slack_tasklog_queue_depth`` and
  ``slack_tasklog_journal_bytes``: the background writer (:meth:`~slack_tasklog.TaskLog.health`), read at scrape.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded
from slack_tasklog.logs import RateLimitedLog

if TYPE_CHECKING:
    from slack_tasklog.tasklog import TaskLog

__all__ = ["instrument"]

_EXECUTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_CONFIDENCE_BUCKETS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0)
_failures = RateLimitedLog()


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as error:
        raise ImportError("metrics need prometheus_client: pip install 'slack-tasklog[prometheus]'") from error
    return prometheus_client


def instrument(tasklog: TaskLog, *, registry: Any = None, port: int | None = None, addr: str = "0.0.0.0") -> None:
    """Count what ``tasklog`` records into ``registry`` (default: prometheus_client's own); with ``port``, also
    serve them over HTTP at ``addr:port/metrics``.

    Call it once per ``TaskLog`` and registry (a second call raises prometheus_client's "Duplicated timeseries").
    Metrics are updated from the writer thread once each batch is committed (``tasklog.flush()`` waits for them),
    and never raise into the bot: a failure is logged, at most once a minute.
    """
    client = _client()
    registry = registry if registry is not None else client.REGISTRY
    assignments = client.Counter(
        "slack_tasklog_assignments", "Rounds of check_and_assign, by the agent assigned.", ["agent"], registry=registry
    )
    outcomes = client.Counter(
        "slack_tasklog_task_outcomes",
        "Runs of process_assignment by outcome (success, failure), and rounds nobody was assigned (unassigned).",
        ["agent", "outcome"],
        registry=registry,
    )
    execution = client.Histogram(
        "slack_tasklog_execution_time_seconds",
        "Execution time of process_assignment.",
        ["agent"],
        buckets=_EXECUTION_BUCKETS,
        registry=registry,
    )
    confidence = client.Histogram(
        "slack_tasklog_assignment_confidence_percent",
        "The assigned agent's confidence (0-100).",
        ["agent"],
        buckets=_CONFIDENCE_BUCKETS,
        registry=registry,
    )

    tokens = client.Counter(
        "slack_tasklog_tokens",
        "Tokens the runs of process_assignment reported, by kind (input, output).",
        ["agent", "kind"],
        registry=registry,
    )
    cost = client.Counter(
        "slack_tasklog_cost", "Cost of the runs of process_assignment, in the prices' currency.", ["agent"],
        registry=registry,
    )  # fmt: skip

    def observe(events: Sequence[Event]) -> None:
        for event in events:
            try:
                if type(event) is OutcomeRecorded:
                    agent = event.agent or ""
                    outcomes.labels(agent, "success" if event.success else "failure").inc()
                    execution.labels(agent).observe(event.execution_time)
                    if event.input_tokens:
                        tokens.labels(agent, "input").inc(event.input_tokens)
                    if event.output_tokens:
                        tokens.labels(agent, "output").inc(event.output_tokens)
                    if event.cost:
                        cost.labels(agent).inc(event.cost)
                elif type(event) is AssignmentRecorded:
                    agent = event.agent or ""
                    assignments.labels(agent).inc()
                    if event.agent is None:
                        outcomes.labels("", "unassigned").inc()
                    elif event.confidence is not None:
                        confidence.labels(agent).observe(event.confidence)
            except Exception as error:  # one odd event must not hide the rest of the batch
                _failures.warning("metrics", "slack_tasklog: could not update the Prometheus metrics: %s", error)

    registry.register(_WriterCollector(tasklog))
    tasklog.add_observer(observe)
    if port is not None:
        client.start_http_server(port, addr=addr, registry=registry)


class _WriterCollector:
    """The writer's counters, read from ``tasklog.health()`` when Prometheus scrapes."""

    def __init__(self, tasklog: TaskLog) -> None:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self._tasklog = tasklog
        self._counter, self._gauge = CounterMetricFamily, GaugeMetricFamily

    def describe(self) -> list[Any]:
        return []  # unchecked: the families are built at each collect

    def collect(self) -> Iterator[Any]:
        health = self._tasklog.health()
        for name, value, text in (
            ("written", health.written, "Events this process committed to the database."),
            ("retried", health.retried, "Batch writes retried after the database failed."),
            ("spilled", health.spilled, "Events that went to the journal only, because the queue was full."),
            ("dropped", health.dropped, "Events lost: the queue was full with no journal, or the log was closed."),
            ("rejected", health.rejected, "Events the database refused as invalid (logged, skipped)."),
        ):
            yield self._counter(f"slack_tasklog_events_{name}", text, value=value)
        yield self._gauge(
            "slack_tasklog_queue_depth", "Events recorded and not yet in the database.", value=health.queued
        )
        yield self._gauge(
            "slack_tasklog_journal_bytes", "Bytes of this process's journal not yet known committed.",
            value=health.journal_bytes,
        )  # fmt: skip
