"""track_outcome's tokens and cost: read from the return value in the common shapes or by a getter, priced at the
prices in force when recorded, and never a reason for the bot's call to fail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.events import OutcomeRecorded
from slack_tasklog.writer.records import decode_record

from tests.capture.test_decorators import ROOT, capture, warnings_of
from tests.conftest import query

pytestmark = pytest.mark.backends("sqlite")

GROK = {"Grok": {"input": 3.0, "output": 15.0}}


def runs(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(tasklog, "SELECT input_tokens, output_tokens, cost FROM tasklog_outcomes ORDER BY finished_at")


def task_usage(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(tasklog, "SELECT input_tokens, output_tokens, cost FROM tasklog_tasks")


SHAPES: dict[str, Callable[[], Any]] = {
    "OpenAI object": lambda: SimpleNamespace(usage=SimpleNamespace(prompt_tokens=1000, completion_tokens=200)),
    "Anthropic object": lambda: SimpleNamespace(usage=SimpleNamespace(input_tokens=1000, output_tokens=200)),
    "OpenAI mapping": lambda: {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 200}},
    "Anthropic mapping": lambda: {"content": [], "usage": {"input_tokens": 1000, "output_tokens": 200}},
    "the usage itself": lambda: {"input_tokens": 1000, "output_tokens": 200},
    "LangChain message": lambda: SimpleNamespace(usage_metadata={"input_tokens": 1000, "output_tokens": 200}),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_tokens_are_read_from_the_common_shapes_and_priced(app: App, tasklog: TaskLog, shape: str, kind: str) -> None:
    capture(app)
    tasklog.prices = GROK
    answer = SHAPES[shape]()

    class Grok:
        name = "Grok"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str) -> Any:
            return answer

        @tasklog.track_outcome
        async def process_assignment_async(self, thread_ts: str) -> Any:
            await asyncio.sleep(0)
            return answer

    if kind == "sync":
        assert Grok().process_assignment(ROOT) is answer
    else:
        assert asyncio.run(Grok().process_assignment_async(ROOT)) is answer
    # 1000 input tokens at 3 per million, 200 output at 15 per million.
    assert runs(tasklog) == [(1000, 200, pytest.approx(0.006))]
    assert task_usage(tasklog) == [(1000, 200, pytest.approx(0.006))]


def test_a_return_value_without_usage_records_none(app: App, tasklog: TaskLog) -> None:
    capture(app)
    tasklog.prices = GROK

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> Any:
        return SimpleNamespace(text="done", usage=None)

    process_assignment(ROOT)
    assert runs(tasklog) == [(None, None, None)]
    assert task_usage(tasklog) == [(None, None, None)]


def test_the_getter_reads_usage_from_the_arguments_even_when_the_run_raises(app: App, tasklog: TaskLog) -> None:
    capture(app)
    tasklog.prices = GROK

    class Client:
        last_usage = SimpleNamespace(input_tokens=0, output_tokens=0)

    class Grok:
        name = "Grok"
        client = Client()

        @tasklog.track_outcome(usage=lambda result, args: args["self"].client.last_usage)
        def process_assignment(self, thread_ts: str, fail: bool = False) -> str:
            self.client.last_usage = SimpleNamespace(input_tokens=400, output_tokens=100)
            if fail:
                raise TimeoutError("the model took too long")
            return "done"

    Grok().process_assignment(ROOT)
    with pytest.raises(TimeoutError):
        Grok().process_assignment(ROOT, fail=True)
    assert runs(tasklog) == [(400, 100, pytest.approx(0.0027))] * 2
    assert task_usage(tasklog) == [(800, 200, pytest.approx(0.0054))]


def test_a_run_that_raises_has_no_usage_without_a_getter(app: App, tasklog: TaskLog) -> None:
    capture(app)
    tasklog.prices = GROK

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> Any:
        raise ValueError("bad plan")

    with pytest.raises(ValueError, match="bad plan"):
        process_assignment(ROOT)
    assert runs(tasklog) == [(None, None, None)]


def test_a_getter_may_answer_with_a_pair_and_sees_the_return_value(app: App, tasklog: TaskLog) -> None:
    capture(app)

    @tasklog.track_outcome(agent="Grok", usage=lambda result, args: (result["meta"]["in"], result["meta"]["out"]))
    def process_assignment(thread_ts: str) -> Any:
        return {"meta": {"in": 7, "out": 3}}

    process_assignment(ROOT)
    assert runs(tasklog) == [(7, 3, None)]  # no price for Grok: tokens only


def test_a_getter_that_raises_is_the_bots_error_and_the_call_goes_on(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)
    tasklog.prices = GROK

    @tasklog.track_outcome(agent="Grok", usage=lambda result, args: result.missing, cost=lambda result, args: 1 / 0)
    def process_assignment(thread_ts: str) -> str:
        return "done"

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert process_assignment(ROOT) == "done"
        assert runs(tasklog) == [(None, None, None)]
    messages = [r.getMessage() for r in warnings_of(caplog)]
    assert any("your usage getter" in m and "AttributeError" in m and "without usage" in m for m in messages)
    assert any("your cost getter" in m and "ZeroDivisionError" in m for m in messages)
    assert query(tasklog, "SELECT agent, success FROM tasklog_outcomes") == [("Grok", 1)]


def test_the_cost_getter_wins_over_prices_and_an_amount_it_cannot_be_is_priced_instead(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    capture(app)
    tasklog.prices = GROK
    usage = {"usage": {"input_tokens": 1000, "output_tokens": 0}}

    @tasklog.track_outcome(agent="Grok", cost=lambda result, args: result.get("billed"))
    def process_assignment(thread_ts: str, billed: Any) -> Any:
        return {**usage, "billed": billed}

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        process_assignment(ROOT, 0.5)
        process_assignment(ROOT, None)  # the getter has no answer: priced
        process_assignment(ROOT, float("nan"))  # no amount: priced, and said
    assert runs(tasklog) == [(1000, 0, 0.5), (1000, 0, pytest.approx(0.003)), (1000, 0, pytest.approx(0.003))]
    assert any("not an amount" in r.getMessage() for r in warnings_of(caplog))


@pytest.mark.parametrize("bad", [-5, 1.5, True, "12", float("nan"), 2**64])
def test_a_token_count_that_is_none_is_left_out_and_said(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture, bad: Any
) -> None:
    capture(app)

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> Any:
        return {"usage": {"input_tokens": bad, "output_tokens": 20}}

    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        process_assignment(ROOT)
        assert runs(tasklog) == [(None, 20, None)]
    assert any("not a token count" in r.getMessage() for r in warnings_of(caplog))


def test_a_getter_that_cannot_take_the_result_and_arguments_is_refused_at_decoration(tasklog: TaskLog) -> None:
    with pytest.raises(TypeError, match=r"usage= takes a function of two arguments"):
        tasklog.track_outcome(usage=lambda result: result.usage)
    with pytest.raises(TypeError, match=r"cost= takes a function"):
        tasklog.track_outcome(cost=0.5)  # type: ignore[arg-type]


def test_costs_keep_the_price_in_force_when_they_were_recorded(app: App, tasklog: TaskLog) -> None:
    capture(app)
    tasklog.prices = GROK

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str) -> Any:
        return {"usage": {"input_tokens": 1_000_000, "output_tokens": 0}}

    process_assignment(ROOT)
    assert tasklog.flush(10)
    tasklog.prices = {"Grok": {"input": 1.0, "output": 5.0}}
    process_assignment(ROOT)
    tasklog.prices = None
    process_assignment(ROOT)
    assert runs(tasklog) == [(1_000_000, 0, 3.0), (1_000_000, 0, 1.0), (1_000_000, 0, None)]
    assert task_usage(tasklog) == [(3_000_000, 0, 4.0)]


@pytest.mark.parametrize(
    ("prices", "error"),
    [
        ([("Grok", 3.0)], TypeError),
        ({"Grok": 3.0}, ValueError),
        ({"Grok": {"input": 3.0}}, ValueError),
        ({"Grok": {"input": 3.0, "output": 15.0, "cache": 0.3}}, ValueError),
        ({"Grok": {"input": -1, "output": 15.0}}, ValueError),
        ({"Grok": {"input": float("inf"), "output": 15.0}}, ValueError),
        ({"Grok": {"input": "3", "output": 15.0}}, ValueError),
        ({"": {"input": 3.0, "output": 15.0}}, TypeError),
    ],
)
def test_prices_are_checked_when_the_log_is_made(prices: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"TaskLog\(prices=\.\.\.\)"):
        TaskLog("sqlite://", prices=prices)


def test_prices_are_kept_per_million_tokens() -> None:
    tasklog = TaskLog("sqlite://", prices={"Grok": {"input": 3, "output": 15.5}})
    try:
        assert tasklog.prices == {"Grok": (3.0, 15.5)}
    finally:
        tasklog.close()


def test_a_journal_record_from_before_usage_reads_back_without_it() -> None:
    line = (
        b'{"kind":"OutcomeRecorded","fields":["o1","1700000000.000100","C1","T1","Grok",true,1.5,null,'
        b"1700000001.0,1700000002.5]}\n"
    )
    event = decode_record(line)
    assert isinstance(event, OutcomeRecorded)
    assert (event.agent, event.input_tokens, event.output_tokens, event.cost) == ("Grok", None, None, None)
