"""slack_tasklog.integrations.otel: one trace per task, made from what is committed, back-dated, sent over OTLP."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import StatusCode
from slack_bolt import App, BoltResponse
from slack_tasklog import TaskLog
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded
from slack_tasklog.integrations.otel import instrument, task_context, task_ids
from slack_tasklog.testing import app_mention, event_body, message, signed_request

from tests.conftest import free_port, query

pytestmark = pytest.mark.backends("sqlite")

ROOT = "1700000000.000100"
OTHER = "1700000100.000200"


def send(app: App, event: dict[str, Any], **kwargs: Any) -> BoltResponse:
    retry_num = kwargs.pop("retry_num", None)
    return app.dispatch(signed_request(event_body(event, **kwargs), retry_num=retry_num))


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


def memory_provider(**kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def bot(tasklog: TaskLog) -> tuple[Callable[..., Any], type]:
    """The bot's own functions, decorated: the orchestrator's round, and a specialist agent's run."""

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int], channel: str | None = None) -> str | None:
        best = max(evaluations, key=lambda agent: evaluations[agent])
        return best if evaluations[best] >= 50 else None

    class Grok:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            time.sleep(0.01)
            if text == "fail":
                raise RuntimeError("boom")
            return "done"

    return check_and_assign, Grok


def recorded(tasklog: TaskLog) -> list[Event]:
    events: list[Event] = []
    tasklog.add_observer(events.extend)
    return events


def by_name(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        named.setdefault(span.name, []).append(span)
    return named


def test_a_task_is_one_trace_of_its_request_rounds_runs_and_follow_ups(
    make_app: Callable[..., App], tasklog: TaskLog
) -> None:
    provider, exporter = memory_provider()
    instrument(tasklog, provider)
    events = recorded(tasklog)
    app = make_app(tasklog)
    check_and_assign, grok = bot(tasklog)

    mention = app_mention("Research quantum computing", user="U42", channel="C7", ts=ROOT)
    assert send(app, mention).status == 200
    assert send(app, mention, retry_num=1).status == 200  # a redelivery: still one request
    send(app, message("use sources from 2024", user="U2", channel="C7", ts="1700000010.000100", thread_ts=ROOT))
    send(app, message("unrelated chatter", channel="C7", ts="1700000011.000100", thread_ts="1699999999.000100"))
    assert check_and_assign(ROOT, {"Grok": 30, "Writer": 20}) is None
    assert check_and_assign(ROOT, {"Grok": 92, "Writer": 30}, channel="C7") == "Grok"
    grok().process_assignment(ROOT, "ok")
    with pytest.raises(RuntimeError):
        grok().process_assignment(ROOT, "fail")
    send(app, app_mention("another task", user="U9", channel="C7", ts=OTHER))
    assert tasklog.flush(10)

    spans = by_name(exporter.get_finished_spans())
    assert sorted((name, len(found)) for name, found in spans.items()) == [
        ("check_and_assign", 2),
        ("invoke_agent Grok", 2),
        ("invoke_workflow slack_task", 2),
        ("slack.follow_up", 1),
    ]
    trace_id, root_id = task_ids(ROOT)
    [root] = [s for s in spans["invoke_workflow slack_task"] if s.attributes["slack.thread_ts"] == ROOT]
    [other] = [s for s in spans["invoke_workflow slack_task"] if s.attributes["slack.thread_ts"] == OTHER]

    # One trace per task, its root's ids derived from the thread; everything else a child of the root.
    assert (root.context.trace_id, root.context.span_id, root.parent) == (trace_id, root_id, None)
    assert other.context.trace_id == task_ids(OTHER)[0] != trace_id
    children = [s for s in exporter.get_finished_spans() if s not in (root, other)]
    assert {(s.context.trace_id, s.parent.span_id if s.parent else None) for s in children} == {(trace_id, root_id)}
    assert len({s.context.span_id for s in children}) == len(children)

    # The request: who, where, when (the message's own ts, to the microsecond).
    assert root.start_time == root.end_time == 1_700_000_000_000_100_000
    assert dict(root.attributes) == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "slack_task",
        "gen_ai.conversation.id": ROOT,
        "slack.team.id": "T111",
        "slack.channel.id": "C7",
        "slack.thread_ts": ROOT,
        "slack.message.ts": ROOT,
        "slack.user.id": "U42",
        "user.id": "U42",
    }
    [follow_up] = spans["slack.follow_up"]
    assert follow_up.start_time == follow_up.end_time == 1_700_000_010_000_100_000
    assert follow_up.attributes["slack.user.id"] == "U2"
    assert "slack.message.text" not in follow_up.attributes  # text only with record_text=True

    # Rounds: evaluations as events, the agent and confidence, at the time recorded; nobody assigned is an error.
    rounds = {e.id: e for e in events if isinstance(e, AssignmentRecorded)}
    unassigned, assigned = sorted(spans["check_and_assign"], key=lambda s: s.start_time)
    for span in (unassigned, assigned):
        event = rounds[span.attributes["slack_tasklog.round.id"]]
        assert span.start_time == span.end_time == ns(event.recorded_at)
    assert assigned.attributes["slack_tasklog.agent"] == "Grok"
    assert assigned.attributes["slack_tasklog.confidence"] == 92.0
    assert assigned.attributes["slack.channel.id"] == "C7"
    assert [(e.name, dict(e.attributes)) for e in assigned.events] == [
        ("slack_tasklog.evaluation", {"gen_ai.agent.name": "Grok", "slack_tasklog.confidence": 92.0}),
        ("slack_tasklog.evaluation", {"gen_ai.agent.name": "Writer", "slack_tasklog.confidence": 30.0}),
    ]
    assert assigned.status.status_code is StatusCode.UNSET
    assert "slack_tasklog.agent" not in unassigned.attributes
    assert unassigned.attributes["error.type"] == "unassigned"
    assert (unassigned.status.status_code, unassigned.status.description) == (
        StatusCode.ERROR,
        "No agent confident enough",
    )

    # Runs: the agent's work from start to finish, OK or ERROR with the error.
    runs = {e.id: e for e in events if isinstance(e, OutcomeRecorded)}
    ok, failed = sorted(spans["invoke_agent Grok"], key=lambda s: s.start_time)
    for span in (ok, failed):
        event = runs[span.attributes["slack_tasklog.outcome.id"]]
        assert (span.start_time, span.end_time) == (ns(event.started_at), ns(event.finished_at))
        assert span.end_time - span.start_time >= 10_000_000  # the 10 ms the agent slept
        assert span.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert span.attributes["gen_ai.agent.name"] == "Grok"
        assert span.attributes["gen_ai.conversation.id"] == ROOT
    assert ok.status.status_code is StatusCode.OK
    assert "error.type" not in ok.attributes
    assert (failed.status.status_code, failed.status.description) == (StatusCode.ERROR, "RuntimeError: boom")
    assert failed.attributes["error.type"] == "RuntimeError"
    [exception] = failed.events
    assert (exception.name, dict(exception.attributes), exception.timestamp) == (
        "exception",
        {"exception.type": "RuntimeError", "exception.message": "RuntimeError: boom"},
        failed.end_time,
    )


def test_a_mention_inside_a_thread_opens_the_task_and_later_ones_follow_it_up(
    make_app: Callable[..., App], tasklog: TaskLog
) -> None:
    provider, exporter = memory_provider()
    instrument(tasklog, provider, workflow_name="orchestrator", record_text=True)
    app = make_app(tasklog)
    first = "1700000005.000100"
    # Whether the mention or its message copy comes first, the mention is the request.
    send(app, message("<@UBOT> can you help with this?", ts=first, thread_ts=ROOT))
    send(app, app_mention("can you help with this?", ts=first, thread_ts=ROOT))
    assert tasklog.flush(10)
    send(app, app_mention("and add a chart", user="U7", ts="1700000006.000100", thread_ts=ROOT))
    assert tasklog.flush(10)

    spans = by_name(exporter.get_finished_spans())
    [root] = spans["invoke_workflow orchestrator"]
    assert root.context.span_id == task_ids(ROOT)[1]
    assert root.attributes["slack.message.ts"] == first
    assert root.attributes["gen_ai.input.messages"] == (
        '[{"role": "user", "parts": [{"type": "text", "content": "can you help with this?"}]}]'
    )
    [follow_up] = spans["slack.follow_up"]
    assert follow_up.parent is not None
    assert follow_up.parent.span_id == root.context.span_id
    assert follow_up.attributes["slack.message.text"] == "and add a chart"


def test_a_run_recorded_by_another_process_joins_the_trace_of_the_request(
    make_app: Callable[..., App], tasklog: TaskLog, database_url: str
) -> None:
    provider, exporter = memory_provider()
    instrument(tasklog, provider)
    # Another bot process: its own TaskLog on the same database, its own tracer provider; it never sees the request,
    # and its run is recorded before the request (its root span) is.
    specialist = TaskLog(database_url, journal=False)
    try:
        other_provider, other_exporter = memory_provider()
        instrument(specialist, other_provider)
        _, grok = bot(specialist)
        grok().process_assignment(ROOT, "ok")
        assert specialist.flush(10)
        send(make_app(tasklog), app_mention("Research quantum computing", channel="C7", ts=ROOT))
        assert tasklog.flush(10)
    finally:
        specialist.close()

    [run] = other_exporter.get_finished_spans()
    [root] = exporter.get_finished_spans()
    assert run.name == "invoke_agent Grok"
    assert run.context.trace_id == root.context.trace_id
    assert run.parent is not None
    assert run.parent.span_id == root.context.span_id
    assert run.parent.is_remote
    # The task log linked them too.
    assert query(tasklog, "SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NOT NULL") == [(1,)]


def test_a_run_span_carries_its_tokens_and_cost(tasklog: TaskLog) -> None:
    provider, exporter = memory_provider()
    instrument(tasklog, provider)
    tasklog.prices = {"Grok": {"input": 3.0, "output": 15.0}}

    class Grok:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, tokens: tuple[int, int] | None) -> Any:
            return None if tokens is None else {"usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]}}

    Grok().process_assignment(ROOT, (1000, 200))
    Grok().process_assignment(OTHER, None)
    assert tasklog.flush(10)
    priced, plain = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)
    assert priced.attributes is not None
    assert (priced.attributes["gen_ai.usage.input_tokens"], priced.attributes["gen_ai.usage.output_tokens"]) == (
        1000,
        200,
    )
    assert priced.attributes["slack_tasklog.cost"] == pytest.approx(0.006)
    assert plain.attributes is not None
    assert not {"gen_ai.usage.input_tokens", "slack_tasklog.cost"} & set(plain.attributes)


def test_the_bot_hangs_its_own_spans_in_the_task_trace(tasklog: TaskLog) -> None:
    provider, exporter = memory_provider()
    with provider.get_tracer("bot").start_as_current_span("call the model", context=task_context(ROOT)):
        pass
    [span] = exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent and span.parent.span_id) == task_ids(ROOT)


def test_a_sampler_keeps_or_drops_a_task_whole_in_every_process(tasklog: TaskLog) -> None:
    provider, exporter = memory_provider(sampler=ParentBased(TraceIdRatioBased(0.5)))
    instrument(tasklog, provider)
    check_and_assign, grok = bot(tasklog)
    threads = [f"17000{n:05d}.000100" for n in range(40)]
    for thread_ts in threads:
        check_and_assign(thread_ts, {"Grok": 90})
        grok().process_assignment(thread_ts, "ok")
    assert tasklog.flush(10)
    kept: dict[int, int] = {}
    for span in exporter.get_finished_spans():
        kept[span.context.trace_id] = kept.get(span.context.trace_id, 0) + 1
    assert 0 < len(kept) < len(threads)  # some tasks sampled, some not...
    assert set(kept.values()) == {2}  # ...each with its round and its run, or with neither


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf."""

    received: list[ExportTraceServiceRequest]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.received.append(request)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_spans_arrive_over_otlp_http_with_their_attributes(
    make_app: Callable[..., App], tasklog: TaskLog, receiver: ThreadingHTTPServer
) -> None:
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}/v1/traces"
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
    try:
        instrument(tasklog, provider)
        check_and_assign, grok = bot(tasklog)
        send(make_app(tasklog), app_mention("Research quantum computing", user="U42", channel="C7", ts=ROOT))
        check_and_assign(ROOT, {"Grok": 92})
        with pytest.raises(RuntimeError):
            grok().process_assignment(ROOT, "fail")
        assert tasklog.flush(10)
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()

    def value(any_value: Any) -> Any:
        return getattr(any_value, any_value.WhichOneof("value"))

    spans = {
        span.name: span
        for request in receiver.received  # type: ignore[attr-defined]
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert set(spans) == {"invoke_workflow slack_task", "check_and_assign", "invoke_agent Grok"}
    trace_id, root_id = task_ids(ROOT)
    assert {span.trace_id for span in spans.values()} == {trace_id.to_bytes(16, "big")}
    root, run = spans["invoke_workflow slack_task"], spans["invoke_agent Grok"]
    assert root.span_id == run.parent_span_id == root_id.to_bytes(8, "big")
    assert {a.key: value(a.value) for a in root.attributes}.items() >= {
        "slack.user.id": "U42",
        "slack.channel.id": "C7",
    }.items()
    assert {a.key: value(a.value) for a in run.attributes}.items() >= {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "Grok",
        "error.type": "RuntimeError",
    }.items()
    assert run.status.code == run.status.STATUS_CODE_ERROR
    assert root.start_time_unix_nano == 1_700_000_000_000_100_000


@pytest.fixture(params=["closed", "silent"])
def dead_collector(request: pytest.FixtureRequest) -> Iterator[str]:
    """An OTLP endpoint that is down: a closed port (refused at once), or one that takes connections and never
    answers (each export waits out its timeout)."""
    if request.param == "closed":
        yield f"http://127.0.0.1:{free_port()}/v1/traces"
        return
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(64)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}/v1/traces"


def test_a_collector_that_is_down_loses_no_events_and_holds_up_nothing(
    make_app: Callable[..., App], tasklog: TaskLog, dead_collector: str
) -> None:
    provider = TracerProvider()
    # A small queue: most spans are dropped by the processor, none of the task log's events.
    exporter = OTLPSpanExporter(endpoint=dead_collector, timeout=1)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=8, max_export_batch_size=4))
    try:
        instrument(tasklog, provider)
        check_and_assign, grok = bot(tasklog)
        app = make_app(tasklog)
        started = time.monotonic()
        for n in range(30):
            thread_ts = f"17000{n:05d}.000100"
            send(app, app_mention(f"task {n}", ts=thread_ts))
            check_and_assign(thread_ts, {"Grok": 90})
            grok().process_assignment(thread_ts, "ok")
        assert tasklog.flush(10)
        # Exporting in line, one timeout per batch of spans, would take a minute or more.
        assert time.monotonic() - started < 5
    finally:
        provider.shutdown()
    assert query(tasklog, "SELECT count(*) FROM tasklog_tasks") == [(30,)]
    assert query(tasklog, "SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NOT NULL") == [(30,)]
    health = tasklog.health()
    assert (health.written, health.dropped, health.rejected) == (90, 0, 0)


def test_without_opentelemetry_instrument_says_which_extra(tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"slack-tasklog\[otel\]"):
        instrument(tasklog)
