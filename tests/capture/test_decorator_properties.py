"""Properties of the decorators: whatever the bot's code hands them, the call goes on untouched, and a round keeps
everything in it that can be kept."""

from __future__ import annotations

import math
import string
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_tasklog import TaskLog
from slack_tasklog.capture.decorators import Tracking, normalize_assigned, normalize_evaluations
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded

from tests.conftest import query


class Collected(Tracking):
    """The decorators' own output, the events (what the writer would be handed)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def _record(self, event: Event) -> None:
        self.events.append(event)

    def _unassigned_error(self) -> str:
        return "No agent confident enough"


@dataclass
class Score:
    name: Any
    confidence: Any


class Broken:
    """An object whose every attribute fails, as a half-built model object of the bot's might."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} here")


class Raising:
    """An iterable that breaks halfway."""

    def __iter__(self) -> Iterator[Any]:
        yield ("Grok", 50)
        raise RuntimeError("the iterator broke")


# Any text, lone surrogates and NULs included; sometimes longer than an agent name may be.
texts = st.text(st.characters(exclude_categories=()), max_size=8) | st.text(
    string.ascii_letters, min_size=185, max_size=200
)
good_names = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
good_confidences = st.floats(0, 100) | st.integers(0, 100)
any_confidence = (
    good_confidences
    | st.floats()
    | st.integers()
    | st.just(10**400)
    | st.decimals()
    | st.fractions()
    | st.text(max_size=5)
    | st.sampled_from(["nan", "inf", "-1", "1e999", "50"])
    | st.none()
    | st.booleans()
    | st.builds(Broken)
    | st.lists(st.integers(), max_size=2)
)
names = texts | st.none() | st.integers() | st.builds(Score, texts, st.none()) | st.builds(Broken)
evaluation_shapes = st.one_of(
    st.dictionaries(texts, any_confidence, max_size=5),
    st.lists(st.tuples(names, any_confidence), max_size=5),
    st.lists(st.fixed_dictionaries({"agent": names, "confidence": any_confidence}), max_size=5),
    st.lists(st.builds(Score, names, any_confidence), max_size=5),
    st.dictionaries(texts, st.fixed_dictionaries({"confidence": any_confidence}), max_size=5),
    st.lists(names | any_confidence, max_size=5),
    any_confidence,
    st.builds(Raising),
    st.builds(Broken),
)
decisions = st.one_of(
    st.none(),
    texts,
    st.tuples(names, any_confidence),
    st.fixed_dictionaries({"agent": names, "confidence": any_confidence}),
    st.builds(Score, names, any_confidence),
    any_confidence,
)


def assigned(decision: Any) -> Any:
    """What the decorator reads from a decision: None when it names something that is no agent (or fails)."""
    try:
        return normalize_assigned(decision)
    except Exception:
        return None


def check_storable_name(name: Any) -> None:
    assert isinstance(name, str)
    assert 0 < len(name) <= 191
    assert "\x00" not in name
    name.encode("utf-8")  # no lone surrogate


def check_round(event: AssignmentRecorded) -> None:
    agents = [agent for agent, _ in event.evaluations]
    assert len(set(agents)) == len(agents)
    for agent, confidence in event.evaluations:
        check_storable_name(agent)
        assert confidence is None or (isinstance(confidence, float) and 0.0 <= confidence <= 100.0)
    if event.agent is not None:
        check_storable_name(event.agent)
    assert event.confidence is None or 0.0 <= event.confidence <= 100.0


@settings(max_examples=300, deadline=None)
@given(evaluations=evaluation_shapes, decision=decisions, thread_ts=st.sampled_from(["1.000100", 1.0001, None]))
def test_any_round_goes_on_untouched_and_is_recorded_as_far_as_it_is_understood(
    evaluations: Any, decision: Any, thread_ts: Any
) -> None:
    tracking = Collected()

    @tracking.track_assignment
    def check_and_assign(thread_ts: Any, evaluations: Any) -> Any:
        return decision

    assert check_and_assign(thread_ts, evaluations) is decision
    if thread_ts is None:
        assert tracking.events == []
        return
    if len(tracking.events) == 0:  # only a decision that names something that is no agent
        assert not isinstance(decision, str | type(None))
        assert assigned(decision) is None
        return
    [event] = tracking.events
    assert isinstance(event, AssignmentRecorded)
    assert event.thread_ts == "1.000100"
    check_round(event)


@settings(max_examples=150, deadline=None)
@given(
    kept=st.dictionaries(good_names, good_confidences, max_size=4),
    refused=st.dictionaries(
        good_names,
        st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -1, 100.5, "nan", "1e999", Decimal("NaN")]),
        max_size=4,
    ),
    shape=st.sampled_from(["mapping", "pairs", "mappings", "objects"]),
)
def test_refused_confidences_never_cost_the_rest_of_the_round(
    kept: dict[str, float], refused: dict[str, Any], shape: str
) -> None:
    refused = {f"bad {name}": value for name, value in refused.items()}
    given_evaluations = {**kept, **refused}
    items = list(given_evaluations.items())
    evaluations: Any = {
        "mapping": given_evaluations,
        "pairs": items,
        "mappings": [{"agent": agent, "confidence": confidence} for agent, confidence in items],
        "objects": [Score(agent, confidence) for agent, confidence in items],
    }[shape]
    tracking = Collected()

    @tracking.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> str:
        return "Grok"

    check_and_assign("1.000100", evaluations)
    [event] = tracking.events
    assert isinstance(event, AssignmentRecorded)
    assert event.agent == "Grok"
    assert dict(event.evaluations) == {
        **{agent: float(confidence) for agent, confidence in kept.items()},
        **dict.fromkeys(refused),
    }


@settings(max_examples=150, deadline=None)
@given(message=texts, agent=names, raises=st.booleans())
def test_any_outcome_goes_on_untouched(message: str, agent: Any, raises: bool) -> None:
    tracking = Collected()
    error = ValueError(message)

    @tracking.track_outcome(agent=lambda args: args["agent"])
    def process_assignment(thread_ts: str, agent: Any) -> str:
        if raises:
            raise error
        return "done"

    if raises:
        with pytest.raises(ValueError) as raised:  # noqa: PT011 - whatever its message, the very same error
            process_assignment("1.000100", agent)
        assert raised.value is error
    else:
        assert process_assignment("1.000100", agent) == "done"
    [event] = tracking.events
    assert isinstance(event, OutcomeRecorded)
    check_storable_name(event.agent)
    assert event.success is not raises
    if raises:
        assert event.error_message is not None
        assert "\x00" not in event.error_message
        event.error_message.encode("utf-8")


@pytest.fixture
def thread_counter() -> Iterator[int]:
    return iter(range(100_000, 1_000_000))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(evaluations=evaluation_shapes, decision=decisions)
def test_every_backend_stores_whatever_round_the_decorator_records(
    tasklog: TaskLog, thread_counter: Iterator[int], evaluations: Any, decision: Any
) -> None:
    thread_ts = f"1700000000.{next(thread_counter)}"

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: Any) -> Any:
        return decision

    assert check_and_assign(thread_ts, evaluations) is decision
    expected = normalize_evaluations(evaluations) if not isinstance(evaluations, Broken | Raising) else None
    stored_rounds = query(tasklog, "SELECT id, agent FROM tasklog_assignments WHERE thread_ts = :ts", ts=thread_ts)
    if assigned(decision) is None:
        assert stored_rounds == []
        return
    [(round_id, _)] = stored_rounds
    stored = query(tasklog, "SELECT agent, confidence FROM tasklog_evaluations WHERE assignment_id = :id", id=round_id)
    assert sorted(stored, key=repr) == sorted(expected or (), key=repr)
    assert tasklog.health().rejected == 0


def test_unstorable_names_and_refused_confidences_are_read_as_the_strategies_expect() -> None:
    assert normalize_evaluations({"a": math.nan, "b\x00": 5, "\ud800": 10**400, "c": Fraction(1, 3)}) == (
        ("a", None),
        ("b", 5.0),
        ("\ufffd", None),
        ("c", 1 / 3),
    )


class Priced(Collected):
    def _prices(self) -> dict[str, tuple[float, float]]:
        return {"Grok": (3.0, 15.0)}


# What a token count may be in a return value of the bot's: numbers of every kind, text, nothing, broken objects.
counts = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.decimals(allow_nan=True)
    | st.text(max_size=4)
    | st.just(Broken())
)
usages = st.fixed_dictionaries(
    {}, optional={"input_tokens": counts, "output_tokens": counts, "prompt_tokens": counts, "completion_tokens": counts}
)
results = (
    usages
    | st.builds(lambda usage: {"usage": usage}, usages)
    | st.builds(lambda usage: SimpleNamespace(usage=SimpleNamespace(**usage)), usages)
    | st.just(Broken())
    | st.recursive(st.none() | st.integers() | st.text(max_size=3), lambda inner: st.lists(inner, max_size=3))
)


@settings(max_examples=300, deadline=None)
@given(result=results, getter=st.sampled_from([None, "pair", "raises"]))
def test_any_usage_goes_on_untouched_and_only_token_counts_are_kept(result: Any, getter: str | None) -> None:
    tracking = Priced()
    usage = {None: None, "pair": lambda r, args: (args["n"], r), "raises": lambda r, args: r.missing.attribute}[getter]

    @tracking.track_outcome(agent="Grok", usage=usage)
    def process_assignment(thread_ts: str, n: Any = 7) -> Any:
        return result

    assert process_assignment("1.000100") is result
    [event] = tracking.events
    assert isinstance(event, OutcomeRecorded)
    for tokens in (event.input_tokens, event.output_tokens):
        assert tokens is None or (type(tokens) is int and 0 <= tokens < 2**63)
    if event.cost is not None:
        assert math.isfinite(event.cost)
        assert event.cost == ((event.input_tokens or 0) * 3.0 + (event.output_tokens or 0) * 15.0) / 1_000_000
    else:
        assert (event.input_tokens, event.output_tokens) == (None, None)
