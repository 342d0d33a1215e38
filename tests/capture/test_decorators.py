"""track_assignment and track_outcome: every argument shape, sync and async, rounds, late linking."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
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
