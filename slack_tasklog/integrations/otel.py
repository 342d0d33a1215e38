"""OpenTelemetry traces (the ``otel`` extra): one trace per task, for Jaeger, Grafana Tempo, Langfuse, Phoenix...

Example::

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from slack_tasklog import TaskLog
    from slack_tasklog.integrations.otel import instrument

    provider = TracerProvider(resource=Resource.create({"service.name": "orchestrator-bot"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    trace.set_tracer_provider(provider)

    tasklog = TaskLog()
    instrument(tasklog)               # on the global tracer provider, or instrument(tasklog, provider)

What a trace holds (span names and attributes follow the OpenTelemetry GenAI semantic conventions, which are at
"Development" stability: ``gen_ai.*`` names may still change upstream; Slack specifics are ``slack.*``, the task
log's own ``slack_tasklog.*``):

- the root span, ``invoke_workflow {workflow}`` (``gen_ai.operation.name="invoke_workflow"``,
  ``gen_ai.workflow.name``, ``gen_ai.conversation.id`` = the thread's ts): the request, at the message's own time
  (the Slack ts), zero-length; who (``slack.user.id``, ``user.id``) and where (``slack.team.id``,
  ``slack.enterprise.id``, ``slack.channel.id``, ``slack.thread_ts``, ``slack.message.ts``);
- ``check_and_assign``, one per round, at the time it was called: the assigned agent (``slack_tasklog.agent``) and
  its confidence (``slack_tasklog.confidence``), every agent's evaluation as a ``slack_tasklog.evaluation`` span
  event (``gen_ai.agent.name``, ``slack_tasklog.confidence``); a round that assigned nobody has status ERROR,
  ``error.type="unassigned"``. (The round event records when it started, not when it ended: zero-length.)
- ``invoke_agent {agent}``, one per run of ``process_assignment`` (``gen_ai.operation.name="invoke_agent"``,
  ``gen_ai.agent.name``), from its start to its end: status OK, or ERROR with the error message, ``error.type``
  (the exception's class name) and an ``exception`` span event; the tokens it reported
  (``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``) and its cost (``slack_tasklog.cost``, in the
  currency of ``TaskLog(prices=...)``: the conventions have no cost attribute), where known;
- ``slack.follow_up``, one zero-length span per follow-up in the thread (``slack.user.id``, ``slack.message.ts``).
  Follow-ups are not events of the root span because that span is exported when the request is recorded and is
  immutable after that, while follow-ups come minutes later, perhaps to another process.

Every span is a child of the root and belongs to the same trace whichever process records it: the trace id and the
root's span id are derived from the thread's ts (a SHA-256 hash), the other spans' ids from the event's own id (so a
replayed journal produces the same spans again, not new ones). The key is the thread ts alone, not (team, channel,
thread ts), because it is the one part of a task's key that every event carries: a run recorded as
``process_assignment(thread_ts, text)``, with no channel argument, in a process that never saw the request, must
land in the request's trace. It is how storage links such a run, too (to the thread's task). The cost: two tasks
with the same thread ts in different channels or workspaces (Slack ts are unique per channel, so only if two
threads start in the same microsecond) share a trace. :func:`task_context` gives the bot the same root, to hang its
own spans (an LLM call, a tool) in the task's trace.

Nothing here runs on the request path: spans are made in the writer thread
(:meth:`~slack_tasklog.TaskLog.add_observer`) once each batch is committed, back-dated to the recorded times, and
handed to the tracer provider's span processors. Export is theirs: use the SDK's ``BatchSpanProcessor``, which
queues spans in a bounded queue (2048 by default, ``OTEL_BSP_MAX_QUEUE_SIZE``) and exports from a thread of its own;
when the collector is slow or down it drops spans once the queue is full (logged, and on recent SDKs counted in
``otel.sdk.processor.span.processed{error.type="queue_full"}`` with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``),
so it costs bounded memory and never delays the task log, whose events are committed before any span is made. (A
``SimpleSpanProcessor`` exports in the calling thread: with a network exporter it would hold up the writer, and
``flush()`` with it; keep it for tests.) Resolving whether a thread message opens a task or follows one up needs the
database: at most one indexed read per batch, by the writer, for messages in threads this process has not seen yet.
A failure here is logged, at most once a minute, and never raises into the bot.

Sampling: the root is sampled by the provider's sampler on the derived trace id, and rounds, runs and follow-ups
ask that sampler about the same trace id, so a ``TraceIdRatioBased`` sampler keeps or drops a task's spans together
in every process. Spans with the chosen ids need the SDK's ``TracerProvider``; another provider gets random ids.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from slack_tasklog.events import AssignmentRecorded, Event, MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.logs import RateLimitedLog
from slack_tasklog.values import exception_type

if TYPE_CHECKING:
    from slack_tasklog.tasklog import TaskLog

__all__ = ["instrument", "task_context", "task_ids"]

_SCOPE = "slack_tasklog.integrations.otel"
_NAMESPACE = b"slack_tasklog/otel/v1\0"
_REMEMBERED = 10_000  # threads and messages remembered per instrumented TaskLog
_IN_CHUNK = 500
_failures = RateLimitedLog()


def _api() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as error:
        raise ImportError("traces need OpenTelemetry: pip install 'slack-tasklog[otel]'") from error
    return trace


# -- ids ------------------------------------------------------------------------------------------------------


def _digest(*parts: str) -> bytes:
    return hashlib.sha256(_NAMESPACE + "\0".join(parts).encode()).digest()


def task_ids(thread_ts: str) -> tuple[int, int]:
    """The trace id and the root span id of the task in thread ``thread_ts`` (never 0, which OpenTelemetry
    reserves for "invalid"): ``format(task_ids(thread_ts)[0], "032x")`` is the trace id to look up in Jaeger or
    Tempo."""
    digest = _digest("task", thread_ts)
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


def _span_id(kind: str, key: str) -> int:
    return int.from_bytes(_digest(kind, key)[:8], "big") or 1


def task_context(thread_ts: str) -> Any:
    """An OpenTelemetry ``Context`` whose current span is the root of the task in thread ``thread_ts``: spans the bot
    starts in it join the task's trace, as children of its request::

        with tracer.start_as_current_span("summarise", context=task_context(thread_ts)):
            ...
    """
    trace = _api()
    trace_id, root_id = task_ids(thread_ts)
    parent = trace.SpanContext(
        trace_id, root_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


class _ChosenIds:
    """The SDK tracer's id generator (duck-typed ``IdGenerator``): hands out the ids set just before ``start_span``
    in this thread, random ones otherwise."""

    def __init__(self) -> None:
        self._next = threading.local()

    def choose(self, trace_id: int | None, span_id: int) -> None:
        self._next.trace_id = trace_id
        self._next.span_id = span_id

    def generate_trace_id(self) -> int:
        chosen: int | None = getattr(self._next, "trace_id", None)
        self._next.trace_id = None
        return chosen if chosen else random.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        chosen: int | None = getattr(self._next, "span_id", None)
        self._next.span_id = None
        return chosen if chosen else random.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return False  # a hash of the thread ts: no W3C random flag


# -- times ----------------------------------------------------------------------------------------------------


def _ts_ns(ts: str) -> int:
    """A Slack ts (``"1700000000.000100"``) as Unix nanoseconds, exactly."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class _Remembered(OrderedDict[Hashable, Any]):
    """A bounded map: the oldest entries go first."""

    def remember(self, key: Hashable, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _REMEMBERED:
            self.popitem(last=False)


# -- the observer ---------------------------------------------------------------------------------------------


class _Tracing:
    def __init__(self, tasklog: TaskLog, provider: Any, workflow: str, record_text: bool) -> None:
        self._tasklog = tasklog
        self._provider = provider
        self._workflow = workflow
        self._record_text = record_text
        self._tracer: Any = None
        self._ids: _ChosenIds | None = None
        # (team, channel, thread_ts) -> the ts of the request that opened the thread's task.
        self._tasks = _Remembered()
        # (team, channel, ts) of requests and follow-ups already traced (redeliveries, a mention's message copy).
        self._traced = _Remembered()

    def tracer(self) -> Any:
        if self._tracer is not None:
            return self._tracer
        trace = _api()
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        tracer = provider.get_tracer(_SCOPE)
        ids = getattr(tracer, "id_generator", None)
        if ids is None:
            # Not the SDK's tracer: the global provider is not set yet (try again next batch), or another SDK.
            if type(provider).__name__ != "ProxyTracerProvider":
                self._tracer = tracer
            return tracer
        if not isinstance(ids, _ChosenIds):
            ids = _ChosenIds()
            tracer.id_generator = ids  # the SDK caches one tracer per scope: every TaskLog instrumented shares it
        self._ids = ids
        self._tracer = tracer
        return tracer

    def observe(self, events: Sequence[Event]) -> None:
        try:
            tracer = self.tracer()
            messages = [e for e in events if type(e) is TaskRequested or type(e) is MessageInThread]
            if messages:
                self._learn_tasks(messages)
        except Exception as error:
            _failures.warning("otel", "slack_tasklog: could not make OpenTelemetry spans: %s", error)
            return
        for event in events:
            try:
                if type(event) is OutcomeRecorded:
                    self._run(tracer, event)
                elif type(event) is AssignmentRecorded:
                    self._round(tracer, event)
                elif type(event) is TaskRequested or type(event) is MessageInThread:
                    self._message(tracer, event)
            except Exception as error:  # one odd event must not hide the rest of the batch
                _failures.warning("otel", "slack_tasklog: could not make an OpenTelemetry span: %s", error)

    # -- which messages open a task -----------------------------------------------------------------------------

    def _learn_tasks(self, messages: Sequence[TaskRequested | MessageInThread]) -> None:
        missing: set[str] = set()
        for m in messages:
            key = (m.team_id, m.channel_id, m.thread_ts)
            if key in self._tasks:
                continue
            if type(m) is TaskRequested and m.ts == m.thread_ts:
                # A thread's first message: nothing before it can have opened the thread's task.
                self._tasks.remember(key, m.ts)
            else:
                missing.add(m.thread_ts)
        if not missing:
            return
        from sqlalchemy import select

        from slack_tasklog.storage.models import Task

        wanted = sorted(missing)
        with self._tasklog.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                query = select(Task.team_id, Task.channel_id, Task.thread_ts, Task.request_ts).where(
                    Task.thread_ts.in_(wanted[start : start + _IN_CHUNK])
                )
                for team_id, channel_id, thread_ts, request_ts in conn.execute(query):
                    self._tasks.remember((team_id, channel_id, thread_ts), request_ts)

    # -- spans --------------------------------------------------------------------------------------------------

    def _start(
        self, tracer: Any, name: str, thread_ts: str, span_id: int, *, start: int, attributes: dict[str, Any]
    ) -> Any:
        """A span of the task in ``thread_ts`` with id ``span_id``: the root if ``span_id`` is the root's, otherwise
        a child of it."""
        trace = _api()
        trace_id, root_id = task_ids(thread_ts)
        attributes["gen_ai.conversation.id"] = thread_ts
        attributes["slack.thread_ts"] = thread_ts
        context = None
        if span_id != root_id:
            flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if self._sampled(tracer, trace_id) else 0)
            parent = trace.SpanContext(trace_id, root_id, is_remote=True, trace_flags=flags)
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        if self._ids is not None:
            self._ids.choose(trace_id if context is None else None, span_id)
        return tracer.start_span(
            name, context=context, kind=trace.SpanKind.INTERNAL, attributes=_clean(attributes), start_time=start
        )

    def _sampled(self, tracer: Any, trace_id: int) -> bool:
        """What the provider's sampler decides for the task's root, so that its other spans follow it."""
        sampler = getattr(tracer, "sampler", None)
        if sampler is None:
            return True
        result = sampler.should_sample(None, trace_id, self._root_name())
        return bool(result.decision.is_sampled())

    def _root_name(self) -> str:
        return f"invoke_workflow {self._workflow}"

    def _where(self, team_id: str | None, channel_id: str | None) -> dict[str, Any]:
        return {"slack.team.id": team_id, "slack.channel.id": channel_id}

    def _message(self, tracer: Any, m: TaskRequested | MessageInThread) -> None:
        request_ts = self._tasks.get((m.team_id, m.channel_id, m.thread_ts))
        message_key = (m.team_id, m.channel_id, m.ts)
        if request_ts is None or message_key in self._traced:
            return  # no task in this thread (a reply to other people's talk), or traced already
        if request_ts == m.ts and type(m) is MessageInThread:
            return  # the message copy of the request's mention: the mention itself makes the root
        self._traced.remember(message_key, True)
        at = _ts_ns(m.ts)
        attributes = {
            **self._where(m.team_id, m.channel_id),
            "slack.message.ts": m.ts,
            "slack.user.id": m.user_id,
            "user.id": m.user_id,
        }
        if request_ts == m.ts:
            if type(m) is TaskRequested:
                attributes["slack.enterprise.id"] = m.enterprise_id
            attributes["gen_ai.operation.name"] = "invoke_workflow"
            attributes["gen_ai.workflow.name"] = self._workflow
            if self._record_text and m.text:
                attributes["gen_ai.input.messages"] = _user_message(m.text)
            root_id = task_ids(m.thread_ts)[1]
            span = self._start(tracer, self._root_name(), m.thread_ts, root_id, start=at, attributes=attributes)
        else:
            if self._record_text and m.text:
                attributes["slack.message.text"] = m.text
            span_id = _span_id("message", f"{m.team_id}\0{m.channel_id}\0{m.ts}")
            span = self._start(tracer, "slack.follow_up", m.thread_ts, span_id, start=at, attributes=attributes)
        span.end(end_time=at)

    def _round(self, tracer: Any, a: AssignmentRecorded) -> None:
        trace = _api()
        at = _ns(a.recorded_at)
        attributes = {
            **self._where(a.team_id, a.channel_id),
            "slack_tasklog.round.id": a.id,
            "slack_tasklog.agent": a.agent,
            "slack_tasklog.confidence": a.confidence,
            "slack_tasklog.evaluations": len(a.evaluations),
        }
        if a.agent is None:
            attributes["error.type"] = "unassigned"
        span_id = _span_id("round", a.id)
        span = self._start(tracer, "check_and_assign", a.thread_ts, span_id, start=at, attributes=attributes)
        for agent, confidence in a.evaluations:
            span.add_event(
                "slack_tasklog.evaluation",
                _clean({"gen_ai.agent.name": agent, "slack_tasklog.confidence": confidence}),
                timestamp=at,
            )
        if a.agent is None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, a.unassigned_error))
        span.end(end_time=at)

    def _run(self, tracer: Any, o: OutcomeRecorded) -> None:
        trace = _api()
        attributes = {
            **self._where(o.team_id, o.channel_id),
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": o.agent,
            "slack_tasklog.outcome.id": o.id,
            **_clean(
                {
                    "gen_ai.usage.input_tokens": o.input_tokens,
                    "gen_ai.usage.output_tokens": o.output_tokens,
                    "slack_tasklog.cost": o.cost,
                }
            ),
        }
        if not o.success:
            attributes["error.type"] = exception_type(o.error_message or "") or "_OTHER"
        name = f"invoke_agent {o.agent}" if o.agent else "invoke_agent"
        start, end = _ns(o.started_at), _ns(o.finished_at)
        span = self._start(tracer, name, o.thread_ts, _span_id("outcome", o.id), start=start, attributes=attributes)
        if o.success:
            span.set_status(trace.Status(trace.StatusCode.OK))
        else:
            span.add_event(
                "exception",
                _clean({"exception.type": attributes["error.type"], "exception.message": o.error_message}),
                timestamp=end,
            )
            span.set_status(trace.Status(trace.StatusCode.ERROR, o.error_message))
        span.end(end_time=end)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Without the None values OpenTelemetry refuses."""
    return {key: value for key, value in attributes.items() if value is not None}


def _user_message(text: str) -> str:
    """``gen_ai.input.messages`` as JSON (the conventions' shape for exporters without structured attributes)."""
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def instrument(
    tasklog: TaskLog,
    tracer_provider: Any = None,
    *,
    workflow_name: str = "slack_task",
    record_text: bool = False,
) -> None:
    """Trace what ``tasklog`` records: one trace per task (its request, rounds, runs and follow-ups), made from the
    writer thread as each batch is committed (``tasklog.flush()`` waits for them to be handed to the provider).

    Args:
        tracer_provider: an OpenTelemetry SDK ``TracerProvider``; default: the global one (looked up at each batch
            until it is set, so ``trace.set_tracer_provider`` may come later).
        workflow_name: ``gen_ai.workflow.name`` of the root spans (``invoke_workflow {workflow_name}``).
        record_text: also send the request's text (``gen_ai.input.messages``) and follow-ups' text
            (``slack.message.text``), as stored (after ``redact``; none with ``store_text=False``). Off by default:
            a tracing backend is rarely the place for what people wrote.
    """
    _api()  # fail now, naming the extra, rather than at the first batch
    tasklog.add_observer(_Tracing(tasklog, tracer_provider, workflow_name, record_text).observe)
