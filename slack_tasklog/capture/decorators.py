"""``track_assignment`` and ``track_outcome``: record what the bot's own functions decide and how they end.

Each decorator is one :class:`_Recorder` (what to read from a call and what to record) and one of four thin
wrappers, by what the function is: a plain function, a coroutine function (timed across its awaits), a generator or
an async generator function (timed over their whole iteration). A callable object counts as what its ``__call__``
is. Reading the arguments and recording never raise into the bot: a misshapen argument, or a getter of the bot's
own that raises, is logged (once a minute) and the call goes on untouched; the bot's own exceptions are re-raised
as they were. Only a decorator's options are checked at once, when it is applied: a wrong one raises ``TypeError``.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import re
import reprlib
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator, Mapping
from decimal import Decimal
from numbers import Integral, Real
from typing import Any, TypeVar, cast, overload

from slack_tasklog import values
from slack_tasklog.capture.text import storable
from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded
from slack_tasklog.logs import RateLimitedLog, internal_error
from slack_tasklog.values import amount, token_count

__all__ = ["ArgumentGetter", "RunGetter", "Tracking", "read_usage"]

F = TypeVar("F", bound=Callable[..., Any])

#: How a decorator finds a value in a call: the name of a parameter, or a function of the call's arguments
#: (a mapping of parameter name to value, as bound by ``inspect.Signature.bind``).
ArgumentGetter = str | Callable[[Mapping[str, Any]], Any]
#: How ``track_outcome`` finds a run's usage or cost: a function of its return value (None if it raised) and its
#: arguments (as for :data:`ArgumentGetter`).
RunGetter = Callable[[Any, Mapping[str, Any]], Any]

_MAX_AGENT_NAME = 191  # the column's length (see storage.models.AgentName)
_MAX_SLACK_ID = 32  # thread ts, channel and team ids (see storage.models.SlackId)


def new_event_id() -> str:
    """32 hex digits: nanoseconds since the epoch, then 64 random bits.

    Unique like a uuid4, but ordered by time, so the primary-key index grows at its end instead of being split
    at random places (a uuid4 key costs SQLite and MySQL a page split per insert once the table is large). The
    random module reseeds itself in a forked child, so two workers do not share a sequence.
    """
    return f"{time.time_ns():016x}{random.getrandbits(64):016x}"


_misshapen = RateLimitedLog()
_MISSING = object()
_NO_THREAD = "no thread_ts argument, nothing recorded (pass thread_ts= to the decorator to say where it is)"
#: What becomes of a call when the bot's getter for each option raises.
_WITHOUT = {
    "thread_ts": "nothing recorded",
    "evaluations": "the round is recorded without evaluations",
    "assigned": "the round is not recorded",
    "agent": "the outcome is recorded under the next name found",
    "channel": "recorded without a channel",
    "team": "recorded without a team",
    "usage": "the run is recorded without usage",
    "cost": "the run's cost comes from TaskLog(prices=...), if any",
}


class _Arguments(Mapping[str, Any]):
    """A call's arguments by parameter name, read from ``args``/``kwargs`` by the parameters' positions (worked out
    once, at decoration), or the parameter's default. Iterating (a getter that wants everything) binds the whole
    signature, on demand."""

    __slots__ = ("_args", "_bound", "_kwargs", "_recorder")

    def __init__(self, recorder: _Recorder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._recorder = recorder
        self._args = args
        self._kwargs = kwargs
        self._bound: Mapping[str, Any] | None = None

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._kwargs:
            return self._kwargs[name]
        position = self._recorder._positions.get(name)
        if position is not None and position < len(self._args):
            return self._args[position]
        return self._recorder._defaults.get(name, default)

    def _all(self) -> Mapping[str, Any]:
        if self._bound is None:
            bound = self._recorder._signature.bind_partial(*self._args, **self._kwargs)
            bound.apply_defaults()
            self._bound = bound.arguments
        return self._bound

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class _Recorder:
    """What a decorator records: ``start`` before the call, ``finish`` after it (with its result or error)."""

    def __init__(self, func: Callable[..., Any], submit: Callable[[Event], object]) -> None:
        self._func = func
        self._submit = submit
        self._name = getattr(func, "__qualname__", None) or type(func).__qualname__
        self._signature = inspect.signature(func)
        parameters = self._signature.parameters.values()
        # Names worth looking up: a parameter of that name, or anything when the function takes **kwargs.
        self._accepts = (
            None if any(p.kind == p.VAR_KEYWORD for p in parameters) else frozenset(self._signature.parameters)
        )
        self._defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        self._positions: dict[str, int] = {}
        for position, parameter in enumerate(parameters):
            if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                break
            self._positions[parameter.name] = position

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        return _Arguments(self, args, kwargs)

    def get(
        self, arguments: Mapping[str, Any], where: Callable[[Mapping[str, Any]], Any] | tuple[str, ...], option: str
    ) -> Any:
        """The value ``where`` says among the call's ``arguments`` (:meth:`bind`): the first of its parameter names
        the call has, or the getter's answer; ``_MISSING`` when the call has none of the names or the getter raised
        (see :meth:`call`)."""
        if isinstance(where, tuple):
            for name in where:
                value = arguments.get(name, _MISSING)
                if value is not _MISSING:
                    return value
            return _MISSING
        return self.call(option, where, arguments)

    def call(self, option: str, getter: Callable[..., Any], *values: Any) -> Any:
        """The answer of the bot's own getter for ``option``; if it raises, that is the bot's error, not ours: it is
        logged as such (once a minute, with its traceback) and ``_MISSING`` returned."""
        try:
            return getter(*values)
        except Exception as error:
            _misshapen.warning(
                f"{self._name}:{option}-getter",
                "slack_tasklog: your %s getter for %s raised %s; %s (the bot is unaffected)",
                option,
                self._name,
                _describe(error),
                _WITHOUT[option],
                exc_info=True,
            )
            return _MISSING

    def where(
        self, option: str, getter: ArgumentGetter | None, *fallbacks: str
    ) -> Callable[[Mapping[str, Any]], Any] | tuple[str, ...]:
        """Where :meth:`get` looks for a value: the getter function, or the parameter names worth trying (worked out
        once, at decoration: a name the function has no parameter for is never looked up). An empty tuple: nothing
        to look up, and the optional lookups (channel, team) skip the call to :meth:`get` altogether. A name the
        bot gave for ``option`` that the function has no parameter for is refused now, not at every call."""
        if callable(getter):
            return getter
        if getter is not None and self._accepts is not None and getter not in self._accepts:
            parameters = ", ".join(self._signature.parameters) or "none"
            raise TypeError(f"{option}={getter!r}: {self._name} has no such parameter (its parameters: {parameters})")
        names = (getter, *fallbacks) if getter is not None else fallbacks
        return tuple(name for name in names if self._accepts is None or name in self._accepts)

    def warn(self, key: str, message: str, *args: object) -> None:
        _misshapen.warning(f"{self._name}:{key}", "slack_tasklog: %s: " + message, self._name, *args)

    def thread_ts(self, arguments: Mapping[str, Any], where: Any) -> str | None:
        """The call's thread ts in Slack's form, or None (said once a minute: nothing can be recorded)."""
        value = self.get(arguments, where, "thread_ts")
        if value is _MISSING or value is None:
            if value is None or not callable(where):  # a getter that raised has said so already
                self.warn("thread_ts", _NO_THREAD)
            return None
        try:
            ts = slack_ts(value)
        except Exception:  # a number type of the bot's that fails to convert, an object whose __str__ fails
            ts = None
        if ts is None:
            self.warn("thread_ts", "thread_ts %s is not a Slack message ts; nothing recorded", _short(value))
        return ts

    def slack_id(self, arguments: Mapping[str, Any], where: Any, option: str) -> str | None:
        """A channel or team id, if the call has one; one that cannot be an id is said (once a minute) and left
        out."""
        if not where:
            return None
        value = self.get(arguments, where, option)
        if value is _MISSING or value is None:
            return None
        try:
            text = storable(value if isinstance(value, str) else str(value))
        except Exception:  # an object whose __str__ fails
            text = ""
        if 0 < len(text) <= _MAX_SLACK_ID:
            return text
        self.warn(option, "%s %s is not a Slack id; recorded without it", option, _short(value))
        return None

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        raise NotImplementedError


def slack_ts(value: Any) -> str | None:
    """A message ts in Slack's form, ``"1700000000.123400"``, from what the bot's code holds: a float, an int or a
    Decimal is written with six decimals, as is a string of a float (``str(1700000000.1234)``); other strings are
    kept as they are. None for what cannot be a ts (a bool, NaN, an empty or over-long string).

    >>> slack_ts(1700000000.1234), slack_ts(1700000000), slack_ts("1700000000.0001")
    ('1700000000.123400', '1700000000.000000', '1700000000.000100')
    """
    if isinstance(value, str):
        if _SHORT_TS.fullmatch(value):
            value = value.ljust(len(value.partition(".")[0]) + 7, "0")
        text = storable(value)
    elif isinstance(value, bool):
        return None
    elif isinstance(value, Integral):
        text = f"{int(value)}.000000"
    elif isinstance(value, Decimal):
        text = f"{value:.6f}" if value.is_finite() else ""
    elif isinstance(value, Real):
        number = float(value)
        text = f"{number:.6f}" if math.isfinite(number) else ""
    else:
        text = storable(str(value))
    return text if 0 < len(text) <= _MAX_SLACK_ID else None


# A ts written with fewer than six decimals, as str() of a float writes it.
_SHORT_TS = re.compile(r"[0-9]+\.[0-9]{1,5}")


def _kind(func: Callable[..., Any]) -> str:
    """What ``func`` is: "async generator", "coroutine", "generator" or "function". A callable object is what its
    ``__call__`` is."""
    candidates = (func, cast(Any, func).__call__) if _is_callable_object(func) else (func,)
    for candidate in candidates:
        if inspect.isasyncgenfunction(candidate):
            return "async generator"
        if inspect.iscoroutinefunction(candidate):
            return "coroutine"
        if inspect.isgeneratorfunction(candidate):
            return "generator"
    return "function"


def _is_callable_object(func: Callable[..., Any]) -> bool:
    """An instance of a class of the bot's that defines ``__call__`` (not a function, a method or a partial)."""
    return inspect.isfunction(inspect.getattr_static(type(func), "__call__", None))


def wrap(func: F, recorder: _Recorder) -> F:
    """Wrap ``func`` so that ``recorder`` sees every call, as the same kind of function: async functions stay
    async; generators are timed from their first step to their end (their return, or their error)."""

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return recorder.start(args, kwargs)
        except Exception:
            internal_error(recorder._name)
            return None

    def finish(state: Any, result: Any, error: BaseException | None) -> None:
        if state is not None:
            try:
                recorder.finish(state, result, error)
            except Exception:
                internal_error(recorder._name)

    wrapper = _WRAPPERS.get(_kind(func), _function_wrapper)(func, start, finish)
    return cast(F, functools.wraps(func)(wrapper))


_Start = Callable[[tuple[Any, ...], dict[str, Any]], Any]
_Finish = Callable[[Any, Any, "BaseException | None"], None]


def _function_wrapper(func: Callable[..., Any], start: _Start, finish: _Finish) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = start(args, kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            finish(state, None, error)
            raise
        finish(state, result, None)
        return result

    return wrapper


def _coroutine_wrapper(func: Callable[..., Any], start: _Start, finish: _Finish) -> Callable[..., Any]:
    async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
        state = start(args, kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as error:
            finish(state, None, error)
            raise
        finish(state, result, None)
        return result

    return async_wrapper


def _generator_wrapper(func: Callable[..., Any], start: _Start, finish: _Finish) -> Callable[..., Any]:
    def generator_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        state = start(args, kwargs)
        try:
            result = yield from func(*args, **kwargs)  # passes send(), throw() and close() on
        except GeneratorExit:
            finish(state, None, None)  # closed early by its consumer: a success, of what ran
            raise
        except BaseException as error:
            finish(state, None, error)
            raise
        finish(state, result, None)
        return result

    return generator_wrapper


def _async_generator_wrapper(func: Callable[..., Any], start: _Start, finish: _Finish) -> Callable[..., Any]:
    async def async_generator_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        state = start(args, kwargs)
        inner = func(*args, **kwargs)
        try:
            # There is no "yield from" for async generators: asend(), athrow() and aclose() are passed on by hand.
            step = inner.asend(None)
            while True:
                try:
                    value = await step
                except StopAsyncIteration:
                    break
                try:
                    sent = yield value
                except GeneratorExit:
                    await inner.aclose()
                    raise
                except BaseException as thrown:
                    step = inner.athrow(thrown)
                else:
                    step = inner.asend(sent)
        except GeneratorExit:
            finish(state, None, None)  # closed early by its consumer: a success, of what ran
            raise
        except BaseException as error:
            finish(state, None, error)
            raise
        finish(state, None, None)

    return async_generator_wrapper


_WRAPPERS = {
    "coroutine": _coroutine_wrapper,
    "generator": _generator_wrapper,
    "async generator": _async_generator_wrapper,
}


# -- track_assignment -----------------------------------------------------------------------------------------


class AssignmentRecorder(_Recorder):
    def __init__(
        self,
        func: Callable[..., Any],
        submit: Callable[[Event], object],
        *,
        unassigned_error: Callable[[], str],
        thread_ts: ArgumentGetter | None = None,
        evaluations: ArgumentGetter | None = None,
        assigned: Callable[[Any], Any] | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
    ) -> None:
        super().__init__(func, submit)
        self._unassigned_error = unassigned_error
        self._thread_ts = self.where("thread_ts", thread_ts, "thread_ts")
        self._evaluations = self.where("evaluations", evaluations, "evaluations")
        self._assigned = assigned
        self._channel = self.where("channel", channel, "channel", "channel_id")
        self._team = self.where("team", team, "team_id", "team")

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (args, kwargs, time.time())

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        if error is not None:
            return  # check_and_assign itself failed: there is no decision to record
        args, kwargs, started = state
        arguments = self.bind(args, kwargs)
        thread_ts = self.thread_ts(arguments, self._thread_ts)
        if thread_ts is None:
            return
        decision = result if self._assigned is None else self.call("assigned", self._assigned, result)
        if decision is _MISSING:
            return
        problems: list[str] = []
        assigned = self._read(normalize_assigned, decision, problems)
        if assigned is None:
            self.warn(
                "assigned",
                "the decision %s names no agent, so the round is not recorded (return a name, None for nobody, an "
                "(agent, confidence) pair or an object with .agent or .name; or pass assigned= to the decorator)",
                _short(decision),
            )
            return
        agent, confidence = assigned
        evaluations = self._evaluations_of(arguments, problems)
        if agent is not None and confidence is None:
            confidence = dict(evaluations).get(agent)
        if problems:
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            self.warn(
                "confidences",
                "%s%s not kept (a confidence is a number from 0 to 100, an evaluation names its agent); the rest "
                "of the round is recorded",
                ", ".join(problems[:5]),
                more,
            )
        self._submit(
            AssignmentRecorded(
                id=new_event_id(),
                thread_ts=thread_ts,
                channel_id=self.slack_id(arguments, self._channel, "channel"),
                team_id=self.slack_id(arguments, self._team, "team"),
                agent=agent,
                confidence=confidence,
                evaluations=evaluations,
                recorded_at=started,
                unassigned_error=self._unassigned_error(),
            )
        )

    def _evaluations_of(
        self, arguments: Mapping[str, Any], problems: list[str]
    ) -> tuple[tuple[str, float | None], ...]:
        value = self.get(arguments, self._evaluations, "evaluations")
        if value is _MISSING:
            if not callable(self._evaluations):  # a getter that raised has said so already
                self.warn(
                    "evaluations",
                    "no evaluations argument, the round is recorded without them (pass evaluations= to the "
                    "decorator: the parameter's name, or a function of the call's arguments)",
                )
            return ()
        evaluations: tuple[tuple[str, float | None], ...] | None = self._read(normalize_evaluations, value, problems)
        if evaluations is None:
            self.warn(
                "evaluations",
                "evaluations %s not understood, the round is recorded without them (pass evaluations= to the "
                "decorator)",
                _short(value),
            )
            return ()
        return evaluations

    def _read(self, read: Callable[[Any, list[str]], Any], value: Any, problems: list[str]) -> Any:
        """``read(value)``; None if reading the bot's objects raised (a property that fails, an iterator that
        breaks): then they are not understood."""
        try:
            return read(value, problems)
        except Exception as error:
            problems.append(f"reading {_short(value)} raised {_describe(error)}")
            return None


def normalize_evaluations(value: Any, problems: list[str] | None = None) -> tuple[tuple[str, float | None], ...] | None:
    """Read evaluations in any of the shapes bots use; None if the shape is not understood.

    An evaluation naming no agent is left out, a confidence that is no number from 0 to 100 is read as None; both
    are noted in ``problems``.

    >>> normalize_evaluations({"Grok": 92, "Writer": 30})
    (('Grok', 92.0), ('Writer', 30.0))
    >>> normalize_evaluations([("Grok", 92), {"agent": "Writer", "confidence": 30}])
    (('Grok', 92.0), ('Writer', 30.0))
    >>> normalize_evaluations({"Grok": float("nan"), "Writer": 30})
    (('Grok', None), ('Writer', 30.0))
    """
    if value is None:
        return ()
    if type(value) is dict:
        # The shape of the design document, {"Grok": 92, ...}: one pass, for the common case only.
        simple: list[tuple[str, float | None]] = []
        for agent, confidence in value.items():
            if not (
                type(agent) is str
                and (type(confidence) is int or type(confidence) is float)
                and 0 <= confidence <= values.MAX_CONFIDENCE
                and 0 < len(agent) <= _MAX_AGENT_NAME
                and storable(agent) is agent
            ):
                break
            simple.append((agent, float(confidence)))
        else:
            return tuple(simple)
    if isinstance(value, Mapping):
        pairs: Iterable[Any] = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        pairs = value
    else:
        return None
    if problems is None:
        problems = []
    seen: dict[str, float | None] = {}
    for item in pairs:
        given_agent, given_confidence = _parts(item)
        agent = _agent_name(given_agent)
        if agent is None:
            problems.append(f"the evaluation {_short(item)}")
            continue
        seen[agent] = _confidence(given_confidence, agent, problems)
    return tuple(seen.items())


def normalize_assigned(value: Any, problems: list[str] | None = None) -> tuple[str | None, float | None] | None:
    """Who ``check_and_assign`` chose: a name, None (or "", False) for nobody, an (agent, confidence) pair, or a
    mapping/object with one. None if ``value`` names something that is no agent."""
    if value is None or value is False or (isinstance(value, str) and not value):
        return None, None
    given_agent, given_confidence = _parts(value)
    agent = _agent_name(given_agent)
    if agent is None and given_agent is not None:
        return None
    return agent, _confidence(given_confidence, agent, [] if problems is None else problems)


def _parts(item: Any) -> tuple[Any, Any]:
    """An evaluation's or a decision's agent and confidence, as given."""
    if isinstance(item, tuple | list) and len(item) == 2:
        agent, rest = item
        if isinstance(rest, Mapping) or _has(rest, "confidence"):
            return agent, _field(rest, "confidence")
        return agent, rest
    if isinstance(item, Mapping) or _has(item, "agent") or _has(item, "confidence"):
        agent = _field(item, "agent")
        if agent is None:
            agent = _field(item, "name")
        return agent, _field(item, "confidence")
    return item, None


def _agent_name(agent: Any) -> str | None:
    """An agent's name as stored: a string, or an object's ``.name``; None if there is none."""
    if agent is None:
        return None
    if not isinstance(agent, str):
        name = _field(agent, "name")
        if not isinstance(name, str):
            return None
        agent = name
    return storable(agent)[:_MAX_AGENT_NAME] or None


def _confidence(value: Any, agent: str | None, problems: list[str]) -> float | None:
    """A confidence as a float, None if there is none. Anything but a number from 0 to 100 (NaN, ±inf, an int too
    large for a float, text that is no number, ...) is refused: read as None, and noted in ``problems``."""
    if value is None:
        return None
    number: object = None
    if isinstance(value, bool):
        pass  # True is no confidence
    elif isinstance(value, Real | Decimal | str):
        try:
            number = float(value)
        except Exception:  # ValueError, OverflowError, or whatever a number type of the bot's raises
            number = None
    # Through its module, not imported by name: this module's locals are called confidence.
    kept = values.confidence(number)
    if kept is None:
        problems.append(f"{agent}={_short(value)}")
    return kept


def _has(obj: Any, name: str) -> bool:
    if isinstance(obj, str | bytes | int | float):
        return False
    try:
        return hasattr(obj, name)
    except Exception:  # an attribute that fails otherwise than with AttributeError
        return False


def _field(obj: Any, name: str) -> Any:
    """A mapping's item or an object's attribute; None if it has none, or reading it raises (a half-built object
    of the bot's)."""
    try:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    except Exception:
        return None


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def _short(value: Any) -> str:
    """``repr(value)``, kept short, for a log line (never raises)."""
    return _repr.repr(value)


# -- track_outcome --------------------------------------------------------------------------------------------


class OutcomeRecorder(_Recorder):
    def __init__(
        self,
        func: Callable[..., Any],
        submit: Callable[[Event], object],
        *,
        agent: str | Callable[[Mapping[str, Any]], Any] | None = None,
        thread_ts: ArgumentGetter | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
        usage: RunGetter | None = None,
        cost: RunGetter | None = None,
        prices: Callable[[], Mapping[str, tuple[float, float]]] = dict,
    ) -> None:
        super().__init__(func, submit)
        self._usage = usage
        self._cost = cost
        self._prices = prices
        self._agent = _agent_name(agent) if isinstance(agent, str) else agent
        self._thread_ts = self.where("thread_ts", thread_ts, "thread_ts")
        self._channel = self.where("channel", channel, "channel", "channel_id")
        self._team = self.where("team", team, "team_id", "team")
        # A callable object is its own agent, as a method's instance is.
        self._owner = func if _is_callable_object(func) else None
        self._is_plain_function = _kind(func) == "function"

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (args, kwargs, time.time(), time.perf_counter())

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - state[3]
        args, kwargs, started, _ = state
        arguments = self.bind(args, kwargs)
        thread_ts = self.thread_ts(arguments, self._thread_ts)
        if thread_ts is None:
            return
        if self._is_plain_function and error is None and _runs_later(result):
            self.warn(
                "runs later",
                "returned %s, which runs after the call: recorded as a success in no time (decorate the async or "
                "generator function itself)",
                _short(result),
            )
        agent = self._agent_of(arguments)
        input_tokens, output_tokens = self._usage_of(arguments, result)
        self._submit(
            OutcomeRecorded(
                id=new_event_id(),
                thread_ts=thread_ts,
                channel_id=self.slack_id(arguments, self._channel, "channel"),
                team_id=self.slack_id(arguments, self._team, "team"),
                agent=agent,
                success=error is None,
                execution_time=elapsed,
                error_message=None if error is None else storable(_describe(error)),
                started_at=started,
                finished_at=started + elapsed,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=self._cost_of(arguments, result, agent, (input_tokens, output_tokens)),
            )
        )

    def _usage_of(self, arguments: Mapping[str, Any], result: Any) -> tuple[int | None, int | None]:
        """The run's (input, output) tokens: from ``usage=``, else from the return value (None if it raised)."""
        if self._usage is None:
            found = read_usage(result)
        else:
            value = self.call("usage", self._usage, result, arguments)
            found = None if value is _MISSING else read_usage(value, pair=True)
            if found is None and value is not _MISSING and value is not None:
                self.warn("usage getter", "your usage getter returned %s, which holds no token counts", _short(value))
        if found is None:
            return None, None
        problems: list[str] = []
        tokens = (_token_count(found[0], "input", problems), _token_count(found[1], "output", problems))
        if problems:
            self.warn("usage", "%s not a token count; recorded without it", ", ".join(problems))
        return tokens

    def _cost_of(
        self, arguments: Mapping[str, Any], result: Any, agent: str, tokens: tuple[int | None, int | None]
    ) -> float | None:
        """``cost=``'s answer, else the agent's tokens at its price now (None without a price or tokens)."""
        if self._cost is not None:
            value = self.call("cost", self._cost, result, arguments)
            if value is not _MISSING and value is not None:
                cost = _money(value)
                if cost is not None:
                    return cost
                self.warn("cost getter", "your cost getter returned %s, not an amount; priced instead", _short(value))
        price = self._prices().get(agent)
        if price is None or tokens == (None, None):
            return None
        return ((tokens[0] or 0) * price[0] + (tokens[1] or 0) * price[1]) / 1_000_000

    def _agent_of(self, arguments: Mapping[str, Any]) -> str:
        """``agent=``, else the instance's ``.name``, else an ``agent`` argument's, else the instance's class name
        or the function's name (said once a minute: such outcomes match no round)."""
        if isinstance(self._agent, str):
            return self._agent
        if self._agent is not None:
            value = self.call("agent", self._agent, arguments)
            name = None if value is _MISSING else _agent_name(value)
            if name is not None:
                return name
            if value is not _MISSING:
                self.warn(
                    "agent getter",
                    "your agent getter returned %s, not a name; the outcome is recorded under the next name found",
                    _short(value),
                )
        owner = self.get(arguments, ("self",), "agent")
        if owner is _MISSING:
            owner = self._owner
        name = _agent_name(owner)  # the method's instance (its .name): the usual case, one lookup
        if name is not None:
            return name
        name = _agent_name(self.get(arguments, ("agent",), "agent"))
        if name is not None:
            return name
        if owner is not None:
            name = type(owner).__name__[:_MAX_AGENT_NAME]
            self.warn(
                "agent",
                "%s has no .name, so its outcomes are recorded under its class name %r and match no round "
                "(pass agent= to the decorator: a name, or a function of the call's arguments such as "
                'agent=lambda args: args["self"].agent_name)',
                name,
                name,
            )
            return name
        self.warn("agent", "no agent name, recorded under the function's name (pass agent= to the decorator)")
        return self._name[:_MAX_AGENT_NAME]


#: Where a return value keeps its usage (OpenAI and Anthropic responses: ``.usage``; LangChain messages:
#: ``.usage_metadata``), or mapping keys of those names; failing those, the return value may be the usage itself.
_USAGE_HOLDERS = ("usage", "usage_metadata")
#: (input, output) token fields: Anthropic's and OpenAI's Responses API, then OpenAI's Chat Completions.
_TOKEN_FIELDS = (("input_tokens", "output_tokens"), ("prompt_tokens", "completion_tokens"))


def read_usage(value: Any, *, pair: bool = False) -> tuple[Any, Any] | None:
    """The (input, output) token counts in ``value``, as given (checked by the caller); None if it holds none.

    ``value`` is a run's return value, or what a ``usage=`` getter returned: an object or mapping with a ``usage``
    (or ``usage_metadata``) that has ``input_tokens``/``output_tokens`` or ``prompt_tokens``/``completion_tokens``,
    or such a usage itself. ``pair``: an ``(input, output)`` pair counts too (a getter's answer only: a return
    value of two numbers is no usage).

    >>> read_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 30}})
    (12, 30)
    """
    if value is None or isinstance(value, str | bytes | int | float):
        return None
    if pair and isinstance(value, tuple | list) and len(value) == 2:
        return value[0], value[1]
    for holder in _USAGE_HOLDERS:
        inner = _field(value, holder)
        if inner is not None and not isinstance(inner, str | bytes | int | float):
            found = _token_fields(inner)
            if found is not None:
                return found
    return _token_fields(value)


def _token_fields(usage: Any) -> tuple[Any, Any] | None:
    for input_name, output_name in _TOKEN_FIELDS:
        given = _field(usage, input_name), _field(usage, output_name)
        if given != (None, None):
            return given
    return None


def _token_count(value: Any, which: str, problems: list[str]) -> int | None:
    """A token count as stored: a whole number from 0 up (``12.0`` is 12); anything else is noted and None."""
    if value is None:
        return None
    whole = not isinstance(value, bool) and (
        isinstance(value, Integral) or (isinstance(value, float) and value.is_integer())
    )
    count = token_count(int(value)) if whole else None
    if count is None:
        problems.append(f"{which} tokens {_short(value)}")
    return count


def _money(value: Any) -> float | None:
    """An amount as stored: a finite number, 0 or more (a Decimal too); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return None
    try:
        number = float(value)
    except Exception:  # a number type of the bot's that fails to convert
        return None
    return amount(number)


def _runs_later(result: Any) -> bool:
    return inspect.isawaitable(result) or inspect.isgenerator(result) or inspect.isasyncgen(result)


def _describe(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # an exception whose __str__ fails is still recorded, by its type
        message = ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _check_run_getters(**options: Any) -> None:
    """Refuse, at decoration, a ``usage=`` or ``cost=`` that cannot take a run's return value and its arguments."""
    for option, getter in options.items():
        if getter is None:
            continue
        if not callable(getter):
            raise TypeError(f"{option}= takes a function of (return value, arguments), not {_short(getter)}")
        try:
            inspect.signature(getter).bind(None, {})
        except TypeError:
            raise TypeError(
                f"{option}= takes a function of two arguments, the run's return value (None if it raised) and the "
                f"call's arguments, such as {option}=lambda result, args: result.meta[{option!r}]; "
                f"{_short(getter)} cannot take them"
            ) from None
        except ValueError:  # no signature to check (a builtin): it will tell when called
            pass


def _check_getters(**options: Any) -> None:
    """Refuse, at decoration, an option that is neither a parameter name nor a function."""
    for option, value in options.items():
        if value is not None and not (isinstance(value, str) and value) and not callable(value):
            raise TypeError(
                f"{option}= takes a parameter name or a function of the call's arguments, not {_short(value)}"
            )


class Tracking:
    """The two decorators, for anything that can record events: ``TaskLog`` and the module default."""

    def _record(self, event: Event) -> None:
        raise NotImplementedError

    def _unassigned_error(self) -> str:
        raise NotImplementedError

    def _prices(self) -> Mapping[str, tuple[float, float]]:
        """Each agent's (input, output) price per million tokens now; none by default."""
        return {}

    # -- the decorators -------------------------------------------------------------------------------------------

    @overload
    def track_assignment(self, func: F, /) -> F: ...

    @overload
    def track_assignment(
        self,
        func: None = None,
        /,
        *,
        thread_ts: ArgumentGetter | None = None,
        evaluations: ArgumentGetter | None = None,
        assigned: Callable[[Any], Any] | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
    ) -> Callable[[F], F]: ...

    def track_assignment(
        self,
        func: F | None = None,
        /,
        *,
        thread_ts: ArgumentGetter | None = None,
        evaluations: ArgumentGetter | None = None,
        assigned: Callable[[Any], Any] | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
    ) -> F | Callable[[F], F]:
        """Record each call of the bot's ``check_and_assign``: every agent's confidence and who got the task.

        By default the task is found by the ``thread_ts`` argument (``channel``/``channel_id`` and
        ``team_id`` arguments narrow it when present), the confidences come from the ``evaluations`` argument
        (``{"Grok": 92}``, ``[("Grok", 92)]``, ``[{"agent": "Grok", "confidence": 92}]`` or objects with
        ``agent``/``name`` and ``confidence``), and the assigned agent is the return value (a name, ``None`` for
        nobody, an ``(agent, confidence)`` pair, or a mapping/object with ``agent``/``name``). Confidences are
        percents: one that is no number from 0 to 100 (NaN, infinity, -5) is left out, said in the log, and the rest
        of the round kept. A ``thread_ts`` given as a number (``1700000000.1234``) is read in Slack's form
        (``"1700000000.123400"``). ``check_and_assign`` may be async, not a generator (``TypeError``).

        Code shaped differently says where to look: ``thread_ts=``, ``evaluations=``, ``channel=`` and
        ``team=`` take a parameter name or a function of the call's arguments (a mapping of parameter name to
        value); ``assigned=`` takes a function of the return value::

            @tasklog.track_assignment(
                thread_ts=lambda args: args["message"]["thread_ts"],
                evaluations="scores",
                assigned=lambda result: result.agent,
            )
            def route(message, scores): ...
        """

        _check_getters(thread_ts=thread_ts, evaluations=evaluations, channel=channel, team=team)
        if assigned is not None and not callable(assigned):
            raise TypeError(f"assigned= takes a function of check_and_assign's return value, not {_short(assigned)}")

        def decorate(f: F) -> F:
            kind = _kind(f)
            if kind in ("generator", "async generator"):
                raise TypeError(
                    f"track_assignment cannot record {getattr(f, '__qualname__', f)!r}: it is a {kind} function, "
                    "and a round is what check_and_assign returns"
                )
            recorder = AssignmentRecorder(
                f,
                self._record,
                unassigned_error=self._unassigned_error,
                thread_ts=thread_ts,
                evaluations=evaluations,
                assigned=assigned,
                channel=channel,
                team=team,
            )
            return wrap(f, recorder)

        return decorate if func is None else decorate(func)

    @overload
    def track_outcome(self, func: F, /) -> F: ...

    @overload
    def track_outcome(
        self,
        func: None = None,
        /,
        *,
        agent: str | Callable[[Mapping[str, Any]], Any] | None = None,
        thread_ts: ArgumentGetter | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
        usage: RunGetter | None = None,
        cost: RunGetter | None = None,
    ) -> Callable[[F], F]: ...

    def track_outcome(
        self,
        func: F | None = None,
        /,
        *,
        agent: str | Callable[[Mapping[str, Any]], Any] | None = None,
        thread_ts: ArgumentGetter | None = None,
        channel: ArgumentGetter | None = None,
        team: ArgumentGetter | None = None,
        usage: RunGetter | None = None,
        cost: RunGetter | None = None,
    ) -> F | Callable[[F], F]:
        """Record each call of an agent's ``process_assignment``: success or failure, the error, the time taken, and
        the tokens it used and their cost.

        Returning is success; raising is failure, recorded as ``"ExceptionType: message"`` and re-raised untouched.
        Async functions are timed across their awaits; generators and async generators from their first step to
        their end: exhausted is success, raising is failure, and closed early by their consumer (``close()``, a
        ``break``) is a success of what ran. The agent is ``agent=`` (a name, or a function of the call's
        arguments), else ``self.name`` of the method's instance (or of a callable object); without one, the outcome
        is recorded under the class's name, which matches no round, and the log says so. The task is found by the
        ``thread_ts`` argument as in :meth:`track_assignment`, and may have been captured by another process using
        the same database::

            class SpecialistAgent:
                name = "Grok"

                @tasklog.track_outcome
                def process_assignment(self, thread_ts, text): ...

        Tokens are read from the return value when it carries them: ``.usage`` (or a ``"usage"`` key, or LangChain's
        ``usage_metadata``) with ``input_tokens``/``output_tokens`` (Anthropic, OpenAI Responses) or
        ``prompt_tokens``/``completion_tokens`` (OpenAI Chat Completions), or a return value that is such a usage
        itself. ``usage=`` reads them from anywhere else: a function of the return value (None if the run raised;
        a run that raises has no usage otherwise) and the call's arguments, returning any of those shapes or an
        ``(input, output)`` pair. The cost is ``cost=`` (a function of the same two, returning an amount), else the
        tokens at ``TaskLog(prices=...)``'s price for the agent, when recorded::

            @tasklog.track_outcome(usage=lambda result, args: args["self"].client.last_usage)
            def process_assignment(self, thread_ts, text): ...
        """

        _check_getters(thread_ts=thread_ts, channel=channel, team=team)
        _check_run_getters(usage=usage, cost=cost)
        if agent is not None and not (isinstance(agent, str) and _agent_name(agent)) and not callable(agent):
            raise TypeError(f"agent= takes an agent's name or a function of the call's arguments, not {_short(agent)}")

        def decorate(f: F) -> F:
            recorder = OutcomeRecorder(
                f,
                self._record,
                agent=agent,
                thread_ts=thread_ts,
                channel=channel,
                team=team,
                usage=usage,
                cost=cost,
                prices=self._prices,
            )
            return wrap(f, recorder)

        return decorate if func is None else decorate(func)
