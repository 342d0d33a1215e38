"""track_assignment and track_outcome: every argument shape, sync and async, rounds, late linking."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import slack_tasklog.default
from slack_bolt import App
from slack_tasklog import TaskLog, track_assignment, track_outcome
from slack_tasklog.testing import app_mention, event_body, signed_request

from tests.conftest import query

# Argument shapes and decorator behaviour, not storage: one backend says as much as three.
sqlite_only = pytest.mark.backends("sqlite")

ROOT = "1700000000.000100"


def capture(app: App, ts: str = ROOT, **kwargs: Any) -> None:
    assert app.dispatch(signed_request(event_body(app_mention("a task", ts=ts, **kwargs)))).status == 200


def rounds(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(
        tasklog,
        "SELECT a.thread_ts, a.agent, a.confidence, a.task_id IS NOT NULL FROM tasklog_assignments a "
        "ORDER BY a.recorded_at",
    )


def evaluations(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations ORDER BY confidence DESC")


def outcomes(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(
        tasklog,
        "SELECT agent, success, error_message, task_id IS NOT NULL FROM tasklog_outcomes ORDER BY finished_at",
    )


def test_the_quickstart(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str | None:
        best = max(evaluations, key=lambda agent: evaluations[agent])
        return best if evaluations[best] >= 50 else None

    class SpecialistAgent:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> str:
            time.sleep(0.02)
            return "done"

    assert check_and_assign(ROOT, {"Grok": 92, "Writer": 30, "Builder": 15}) == "Grok"
    assert SpecialistAgent().process_assignment(ROOT, "x") == "done"
    assert rounds(tasklog) == [(ROOT, "Grok", 92.0, 1)]
    assert evaluations(tasklog) == [("Grok", 92.0), ("Writer", 30.0), ("Builder", 15.0)]
    assert outcomes(tasklog) == [("Grok", 1, None, 1)]
    [(execution_time,)] = query(tasklog, "SELECT execution_time FROM tasklog_outcomes")
    assert 0.02 <= execution_time < 1.0


@dataclass
class Score:
    name: str
    confidence: float


@pytest.mark.parametrize(
    "shape",
    [
        {"Grok": 92, "Writer": 30},
        [("Grok", 92), ("Writer", 30)],
        [{"agent": "Grok", "confidence": 92}, {"name": "Writer", "confidence": 30}],
        [Score("Grok", 92), Score("Writer", 30)],
        {"Grok": {"confidence": 92}, "Writer": Score("Writer", 30)},
        {"Grok": "92", "Writer": 30.0},
    ],
    ids=["mapping", "pairs", "mappings", "objects", "nested", "strings"],
)
@sqlite_only
def test_evaluation_shapes(app: App, tasklog: TaskLog, shape: Any) -> None:
    capture(app)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    check_and_assign(ROOT, shape)
    assert evaluations(tasklog) == [("Grok", 92.0), ("Writer", 30.0)]


class Agent:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("Writer", ("Writer", 30.0)),
        (("Writer", 31), ("Writer", 31.0)),
        ({"agent": "Writer", "confidence": 33}, ("Writer", 33.0)),
        ({"name": "Writer"}, ("Writer", 30.0)),
        (Agent("Writer"), ("Writer", 30.0)),
        (Score("Writer", 34), ("Writer", 34.0)),
        ((Agent("Writer"), 35), ("Writer", 35.0)),
        (None, (None, None)),
    ],
    ids=["name", "pair", "mapping", "mapping-name", "agent-object", "object", "object-pair", "nobody"],
)
@sqlite_only
def test_assigned_shapes(app: App, tasklog: TaskLog, result: Any, expected: tuple[Any, Any]) -> None:
    capture(app)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> Any:
        return result

    assert check_and_assign(ROOT, {"Grok": 92, "Writer": 30}) is result
    [(_, agent, confidence, linked)] = rounds(tasklog)
    assert (agent, confidence) == expected
    assert linked


@sqlite_only
def test_nobody_assigned_fails_the_round_with_the_configured_message(
    make_app: Callable[..., App], database_url: str
) -> None:
    tasklog = TaskLog(database_url, unassigned_error="Nobody wanted it")
    try:
        capture(make_app(tasklog))

        @tasklog.track_assignment
        def check_and_assign(thread_ts: str, evaluations: Any) -> None:
            return None

        check_and_assign(ROOT, {"Grok": 12})
        assert outcomes(tasklog) == [(None, 0, "Nobody wanted it", 1)]
    finally:
        tasklog.close()


def test_failures_are_recorded_and_reraised_untouched(app: App, tasklog: TaskLog) -> None:
    capture(app)
    error = ValueError("API quota exceeded")

    class Builder:
        name = "Builder"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> None:
            raise error

    with pytest.raises(ValueError, match="API quota exceeded") as raised:
        Builder().process_assignment(ROOT, "build it")
    assert raised.value is error
    assert outcomes(tasklog) == [("Builder", 0, "ValueError: API quota exceeded", 1)]


@sqlite_only
def test_agent_name_options(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_outcome(agent="Writer")
    def process(thread_ts: str) -> None:
        pass

    @tasklog.track_outcome(agent=lambda args: args["who"])
    def process_for(thread_ts: str, who: str) -> None:
        pass

    class Nameless:
        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str) -> None:
            pass

    process(ROOT)
    process_for(ROOT, who="Builder")
    Nameless().process_assignment(ROOT)
    assert [row[0] for row in outcomes(tasklog)] == ["Writer", "Builder", "Nameless"]


@sqlite_only
def test_extraction_points_can_be_overridden(app: App, tasklog: TaskLog) -> None:
    capture(app, channel="C5")

    @dataclass
    class Routed:
        agent: Agent
        score: float

    @tasklog.track_assignment(
        thread_ts=lambda args: args["msg"]["thread_ts"],
        channel=lambda args: args["msg"]["channel"],
        evaluations="scores",
        assigned=lambda result: (result.agent, result.score),
    )
    def route(msg: dict[str, str], scores: list[tuple[str, int]]) -> Routed:
        return Routed(Agent("Grok"), 0.9)

    @tasklog.track_outcome(agent="Grok", thread_ts=lambda args: args["msg"]["thread_ts"], channel="where")
    def run(msg: dict[str, str], where: str) -> None:
        pass

    route({"thread_ts": ROOT, "channel": "C5"}, [("Grok", 90), ("Writer", 10)])
    run({"thread_ts": ROOT}, where="C5")
    assert rounds(tasklog) == [(ROOT, "Grok", 0.9, 1)]
    assert evaluations(tasklog) == [("Grok", 90.0), ("Writer", 10.0)]
    assert outcomes(tasklog) == [("Grok", 1, None, 1)]


def test_channel_and_team_arguments_narrow_the_task(app: App, tasklog: TaskLog) -> None:
    capture(app, channel="C1")
    capture(app, channel="C2")  # same thread ts in another channel

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any, channel_id: str, team_id: str) -> str:
        return "Grok"

    check_and_assign(ROOT, {"Grok": 1}, channel_id="C1", team_id="T111")
    check_and_assign(ROOT, {"Grok": 2}, channel_id="C2", team_id="T111")
    rows = query(
        tasklog,
        "SELECT t.channel_id, a.confidence FROM tasklog_assignments a JOIN tasklog_tasks t ON t.id = a.task_id "
        "ORDER BY a.confidence",
    )
    assert rows == [("C1", 1.0), ("C2", 2.0)]


def test_every_round_is_kept(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return max(evaluations, key=lambda agent: evaluations[agent])

    check_and_assign(ROOT, {"Grok": 80, "Writer": 40})
    check_and_assign(ROOT, {"Grok": 10, "Writer": 70})
    assert [row[1] for row in rounds(tasklog)] == ["Grok", "Writer"]
    assert len(evaluations(tasklog)) == 4


async def test_async_functions_are_timed_across_their_awaits(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_assignment
    async def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        await asyncio.sleep(0.01)
        return "Writer"

    class Writer:
        name = "Writer"

        @tasklog.track_outcome
        async def process_assignment(self, thread_ts: str, text: str) -> str:
            await asyncio.sleep(0.05)
            if text == "fail":
                raise TimeoutError("model timed out")
            return "ok"

    assert asyncio.iscoroutinefunction(check_and_assign)
    assert await check_and_assign(ROOT, {"Writer": 95, "Grok": 20}) == "Writer"
    assert await Writer().process_assignment(ROOT, "go") == "ok"
    with pytest.raises(TimeoutError):
        await Writer().process_assignment(ROOT, "fail")
    rows = query(tasklog, "SELECT success, execution_time, error_message FROM tasklog_outcomes ORDER BY finished_at")
    assert [(success, error) for success, _, error in rows] == [(1, None), (0, "TimeoutError: model timed out")]
    assert all(0.05 <= seconds < 1.0 for _, seconds, _ in rows)


@sqlite_only
async def test_a_cancelled_run_is_a_failure(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_outcome(agent="Grok")
    async def process_assignment(thread_ts: str) -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(process_assignment(ROOT))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert outcomes(tasklog) == [("Grok", 0, "CancelledError", 1)]


@pytest.mark.parametrize("strays", [0, 4])
def test_rounds_recorded_before_their_task_are_linked_when_it_arrives(
    app: App, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch, strays: int
) -> None:
    """Also among rounds of threads no task will ever hold: the writer reads the waiting rows whole when they are
    few (here at most 2), and past that looks the new tasks' threads up instead."""
    monkeypatch.setattr("slack_tasklog.storage.store._WAITING_READ", 2)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> None:
        pass

    for stray in range(strays):
        check_and_assign(f"1600000000.00000{stray}", {"Grok": 90})
        process_assignment(f"1600000000.00000{stray}")
    check_and_assign(ROOT, {"Grok": 90})
    process_assignment(ROOT)
    assert [row[-1] for row in rounds(tasklog) if row[0] == ROOT] == [0]  # stored at once, not yet linked
    capture(app)
    assert [row[-1] for row in rounds(tasklog) if row[0] == ROOT] == [1]
    assert [row[-1] for row in rounds(tasklog) if row[0] != ROOT] == [0] * strays
    assert sorted(row[-1] for row in outcomes(tasklog)) == [0] * strays + [1]


@sqlite_only
def test_misshapen_arguments_are_logged_never_raised(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)

    @tasklog.track_assignment
    def no_thread(evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_assignment(thread_ts=lambda args: args["missing"]["key"])
    def broken_getter(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_assignment
    def odd_evaluations(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert no_thread({"Grok": 1}) == "Grok"
        assert broken_getter(ROOT, {"Grok": 1}) == "Grok"
        assert odd_evaluations(ROOT, 42) == "Grok"
        assert odd_evaluations(ROOT, 42) == "Grok"
    # The odd evaluations still record the round, just without evaluations.
    assert rounds(tasklog) == [(ROOT, "Grok", None, 1), (ROOT, "Grok", None, 1)]
    messages = [r.getMessage() for r in caplog.records if r.name == "slack_tasklog"]
    assert len(messages) == 3, messages  # one per problem, not one per call


@sqlite_only
def test_decorated_functions_keep_their_identity(tasklog: TaskLog) -> None:
    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        """Route a task."""
        return "Grok"

    assert check_and_assign.__name__ == "check_and_assign"
    assert check_and_assign.__doc__ == "Route a task."


@sqlite_only
def test_module_level_one_liners(
    make_app: Callable[..., App], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKLOG_DATABASE_URL", database_url)
    monkeypatch.setattr(slack_tasklog.default, "_default", None)

    @track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> None:
        return None

    class Grok:
        name = "Grok"

        @track_outcome
        def process_assignment(self, thread_ts: str) -> None:
            pass

    default = slack_tasklog.default.get_default_tasklog()
    try:
        capture(make_app(default))
        check_and_assign(ROOT, {"Grok": 10})
        Grok().process_assignment(ROOT)
        assert outcomes(default) == [(None, 0, "No agent confident enough", 1), ("Grok", 1, None, 1)]
    finally:
        default.close()


def test_event_ids_are_32_hex_digits_ordered_by_time() -> None:
    from slack_tasklog.capture.decorators import new_event_id

    before = time.time_ns()
    ids = [new_event_id() for _ in range(1_000)]
    after = time.time_ns()
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert len(set(ids)) == len(ids)
    stamps = [int(i[:16], 16) for i in ids]
    assert stamps == sorted(stamps)
    assert before <= stamps[0]
    assert stamps[-1] <= after


# -- bad input gets a clear answer and costs nothing ------------------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "slack_tasklog" and r.levelno >= logging.WARNING]


@sqlite_only
def test_an_agent_named_elsewhere_is_recorded_under_its_class_with_a_warning_naming_agent(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)

    class Specialist:
        def __init__(self) -> None:
            self.agent_name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str) -> None:
            pass

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        Specialist().process_assignment(ROOT)
        Specialist().process_assignment(ROOT)
    assert [row[0] for row in outcomes(tasklog)] == ["Specialist", "Specialist"]
    [warning] = warnings_of(caplog)  # once, not once per call
    assert "Specialist" in warning.getMessage()
    assert "agent=" in warning.getMessage()


@sqlite_only
def test_evaluations_under_another_name_are_said_to_be_missing(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evals: dict[str, int]) -> str:
        return "Grok"

    @tasklog.track_assignment
    def no_evaluations(thread_ts: str, evaluations: Any = None) -> str:
        return "Grok"  # None said on purpose: no warning

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        check_and_assign(ROOT, {"Grok": 90})
        check_and_assign(ROOT, {"Grok": 90})
        no_evaluations(ROOT)
    assert rounds(tasklog) == [(ROOT, "Grok", None, 1)] * 3
    [warning] = warnings_of(caplog)
    assert "check_and_assign" in warning.getMessage()
    assert "evaluations=" in warning.getMessage()


def kinds(func: Any) -> tuple[bool, bool, bool]:
    return inspect.iscoroutinefunction(func), inspect.isasyncgenfunction(func), inspect.isgeneratorfunction(func)


@sqlite_only
def test_wrappers_are_the_same_kind_of_function_as_what_they_wrap(tasklog: TaskLog) -> None:
    def function(thread_ts: str) -> None:
        pass

    async def coroutine(thread_ts: str) -> None:
        pass

    def generator(thread_ts: str) -> Iterator[int]:
        yield 1

    async def async_generator(thread_ts: str) -> AsyncIterator[int]:
        yield 1

    for func in (function, coroutine, generator, async_generator):
        assert kinds(tasklog.track_outcome(agent="Grok")(func)) == kinds(func), func
    for func in (function, coroutine):
        assert kinds(tasklog.track_assignment(func)) == kinds(func), func


@sqlite_only
def test_a_generator_is_timed_over_its_whole_iteration(app: App, tasklog: TaskLog) -> None:
    """Exhausted: success. Raising: failure. Closed early by its consumer: a success of what ran."""
    capture(app)

    class Streamer:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, fail: bool = False) -> Generator[str, int, str]:
            received = yield "first"
            time.sleep(0.03)
            if fail:
                raise ValueError("stream broke")
            yield f"got {received}"
            return "the end"

    stream = Streamer().process_assignment(ROOT)
    assert next(stream) == "first"
    assert stream.send(7) == "got 7"
    with pytest.raises(StopIteration) as stopped:
        next(stream)
    assert stopped.value.value == "the end"
    with pytest.raises(ValueError, match="stream broke"):
        list(Streamer().process_assignment(ROOT, fail=True))
    early = Streamer().process_assignment(ROOT)
    next(early)
    early.send(1)
    early.close()
    rows = query(tasklog, "SELECT success, execution_time, error_message FROM tasklog_outcomes ORDER BY finished_at")
    assert [(success, error) for success, _, error in rows] == [(1, None), (0, "ValueError: stream broke"), (1, None)]
    assert all(0.03 <= seconds < 1.0 for _, seconds, _ in rows)


@sqlite_only
async def test_an_async_generator_is_timed_over_its_whole_iteration(app: App, tasklog: TaskLog) -> None:
    capture(app)

    class Streamer:
        name = "Grok"

        @tasklog.track_outcome
        async def process_assignment(self, thread_ts: str, fail: bool = False) -> AsyncGenerator[str, int]:
            received = yield "first"
            await asyncio.sleep(0.03)
            if fail:
                raise ValueError("stream broke")
            yield f"got {received}"

    stream = Streamer().process_assignment(ROOT)
    assert await stream.__anext__() == "first"
    assert await stream.asend(7) == "got 7"
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    with pytest.raises(ValueError, match="stream broke"):
        [chunk async for chunk in Streamer().process_assignment(ROOT, fail=True)]
    thrown = Streamer().process_assignment(ROOT)
    await thrown.__anext__()
    with pytest.raises(KeyError):
        await thrown.athrow(KeyError("from the consumer"))
    early = Streamer().process_assignment(ROOT)
    await early.__anext__()
    await early.asend(1)
    await early.aclose()
    rows = query(tasklog, "SELECT success, execution_time, error_message FROM tasklog_outcomes ORDER BY finished_at")
    assert [(success, error) for success, _, error in rows] == [
        (1, None),
        (0, "ValueError: stream broke"),
        (0, "KeyError: 'from the consumer'"),
        (1, None),
    ]
    assert all(seconds < 1.0 for _, seconds, _ in rows)
    assert all(rows[i][1] >= 0.03 for i in (0, 1, 3))


@sqlite_only
async def test_an_async_callable_object_is_async(app: App, tasklog: TaskLog) -> None:
    capture(app)

    class Writer:
        name = "Writer"

        async def __call__(self, thread_ts: str) -> str:
            await asyncio.sleep(0.03)
            raise TimeoutError("model timed out")

    process_assignment = tasklog.track_outcome(Writer())
    assert inspect.iscoroutinefunction(process_assignment)
    with pytest.raises(TimeoutError):
        await process_assignment(ROOT)
    [(agent, success, error, seconds)] = query(
        tasklog, "SELECT agent, success, error_message, execution_time FROM tasklog_outcomes"
    )
    assert (agent, success, error) == ("Writer", 0, "TimeoutError: model timed out")
    assert 0.03 <= seconds < 1.0


@sqlite_only
def test_track_assignment_refuses_a_generator_at_once(tasklog: TaskLog) -> None:
    with pytest.raises(TypeError, match="generator"):

        @tasklog.track_assignment
        def check_and_assign(thread_ts: str, evaluations: Any) -> Iterator[str]:
            yield "Grok"


@sqlite_only
def test_options_of_the_wrong_type_are_refused_at_once(tasklog: TaskLog) -> None:
    with pytest.raises(TypeError, match="agent="):
        tasklog.track_outcome(agent=42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="thread_ts="):
        tasklog.track_assignment(thread_ts=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="assigned="):
        tasklog.track_assignment(assigned="agent")  # type: ignore[call-overload]


def test_a_parameter_name_the_function_does_not_have_is_refused_at_decoration(tasklog: TaskLog) -> None:
    """Not at every call, as "no thread_ts argument", which would blame the bot for what it did pass."""
    with pytest.raises(TypeError, match=r"thread_ts='nope': .*run has no such parameter \(its parameters: ts, text\)"):

        @tasklog.track_outcome(thread_ts="nope", agent="Grok")
        def run(ts: str, text: str) -> None: ...

    with pytest.raises(TypeError, match="team='workspace'"):

        @tasklog.track_assignment(team="workspace")
        def route(thread_ts: str, evaluations: dict[str, int]) -> str: ...

    @tasklog.track_outcome(thread_ts="nope", agent="Grok")  # **kwargs may carry any name
    def flexible(**kwargs: object) -> None: ...


BAD_CONFIDENCES = {"Inf": float("inf"), "NaN": float("nan"), "Huge": 10**400, "Below": -1, "Above": 100.5}


def test_confidences_that_are_no_percent_are_refused_and_the_round_kept(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    """On every backend: the round and the other agents' evaluations are stored, the bad confidences are not, and
    the request arriving after the round is stored and linked."""

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> Any:
        return ("Grok", float("nan")) if "Text" in evaluations else "Grok"

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        check_and_assign(ROOT, {"Grok": 90, **BAD_CONFIDENCES})  # recorded before its request
        check_and_assign(ROOT, [("Grok", 91), ("Text", "-inf"), *BAD_CONFIDENCES.items()])
    capture(app)
    assert rounds(tasklog) == [(ROOT, "Grok", 90.0, 1), (ROOT, "Grok", 91.0, 1)]
    stored = query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations")
    refused = dict.fromkeys(BAD_CONFIDENCES)
    assert sorted(stored, key=repr) == sorted(
        [("Grok", 90.0), *refused.items(), ("Grok", 91.0), *refused.items(), ("Text", None)], key=repr
    )
    [(request_text,)] = query(tasklog, "SELECT request_text FROM tasklog_tasks")
    assert request_text == "a task"
    [warning] = warnings_of(caplog)  # rate-limited: once for both calls
    assert "Inf" in warning.getMessage()
    assert "0 to 100" in warning.getMessage()


@pytest.mark.parametrize(
    ("thread_ts", "slack_form"),
    [
        (1700000000.0001, ROOT),
        (Decimal("1700000000.0001"), ROOT),
        ("1700000000.0001", ROOT),  # str() of the float
        (1700000000, "1700000000.000000"),
        (1700000000.1234, "1700000000.123400"),
    ],
    ids=["float", "decimal", "str-of-float", "int", "four-decimals"],
)
@sqlite_only
def test_a_numeric_thread_ts_is_read_in_slacks_form(
    app: App, tasklog: TaskLog, thread_ts: Any, slack_form: str
) -> None:
    capture(app, ts=slack_form)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: Any, evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok", thread_ts=lambda args: args["message"]["ts"])
    def process_assignment(message: dict[str, Any]) -> None:
        pass

    check_and_assign(thread_ts, {"Grok": 90})
    process_assignment({"ts": thread_ts})
    assert rounds(tasklog) == [(slack_form, "Grok", 90.0, 1)]
    assert outcomes(tasklog) == [("Grok", 1, None, 1)]


@sqlite_only
def test_a_getter_that_raises_is_reported_as_yours_and_never_raised(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)

    def broken(args: Any) -> Any:
        raise LookupError("no such key")

    @tasklog.track_assignment(thread_ts=broken)
    def no_thread(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_assignment(evaluations=broken, channel=broken, team=broken)
    def no_evaluations(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    @tasklog.track_assignment(assigned=lambda result: result.missing)
    def no_decision(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    class Grok:
        name = "Grok"

        @tasklog.track_outcome(agent=broken)
        def process_assignment(self, thread_ts: str) -> str:
            return "done"

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert no_thread(ROOT, {"Grok": 1}) == "Grok"
        assert no_evaluations(ROOT, {"Grok": 2}) == "Grok"
        assert no_decision(ROOT, {"Grok": 3}) == "Grok"
        assert Grok().process_assignment(ROOT) == "done"
    assert rounds(tasklog) == [(ROOT, "Grok", None, 1)]  # no thread: nothing; no decision: no round
    assert evaluations(tasklog) == []
    assert outcomes(tasklog) == [("Grok", 1, None, 1)]  # the best name found: self.name
    warnings = warnings_of(caplog)
    messages = [w.getMessage() for w in warnings]
    assert not any("internal error" in m for m in messages), messages
    assert all(w.exc_info is not None for w in warnings)
    for role, function in [
        ("thread_ts", "no_thread"),
        ("evaluations", "no_evaluations"),
        ("channel", "no_evaluations"),
        ("team", "no_evaluations"),
        ("assigned", "no_decision"),
        ("agent", "process_assignment"),
    ]:
        assert any(
            m.startswith(f"slack_tasklog: your {role} getter for ") and function in m and "raised" in m
            for m in messages
        ), (role, messages)
