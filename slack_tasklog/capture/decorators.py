"""``track_assignment`` and ``track_outcome``: record what the bot's own functions decide and how they end.

Each decorator is one :class:`_Recorder` (what to read from a call and what to record) and one of two thin
wrappers, sync or async, picked with ``inspect.iscoroutinefunction`` — so async functions are timed across their
awaits, and neither body is written twice. Reading the arguments and recording never raise into the bot: a
misshapen argument is logged (once a minute) and the call goes on untouched; the bot's own exceptions are re-raised
as they were.
"""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from numbers import Real
from typing import Any, TypeVar, cast, overload

from slack_tasklog.events import AssignmentRecorded, Event, OutcomeRecorded
from slack_tasklog.logs import RateLimitedLog, internal_error

__all__ = ["ArgumentGetter", "Tracking"]

F = TypeVar("F", bound=Callable[..., Any])

#: How a decorator finds a value in a call: the name of a parameter, or a function of the call's arguments
#: (a mapping of parameter name to value, as bound by ``inspect.Signature.bind``).
ArgumentGetter = str | Callable[[Mapping[str, Any]], Any]

_MAX_AGENT_NAME = 191  # the column's length (see _models.AgentName)


def new_event_id() -> str:
    """32 hex digits: nanoseconds since the epoch, then 64 random bits.

    Unique like a uuid4, but ordered by time, so the primary-key index grows at its end instead of being split
    at random places (a uuid4 key costs SQLite and MySQL a page split per insert once the table is large). The
    random module reseeds itself in a forked child, so two workers do not share a sequence.
    """
    return f"{time.time_ns():016x}{random.getrandbits(64):016x}"


_misshapen = RateLimitedLog()
_MISSING = object()


class _Arguments(Mapping[str, Any]):
    """A call's arguments by parameter name, read from ``args``/``kwargs`` by the parameters' positions (worked out
    once, at decoration). Iterating (a getter that wants everything) binds the whole signature, on demand."""

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
        return default

    def _all(self) -> Mapping[str, Any]:
        if self._bound is None:
            self._bound = self._recorder._signature.bind_partial(*self._args, **self._kwargs).arguments
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
        self._name = getattr(func, "__qualname__", repr(func))
        self._signature = inspect.signature(func)
        parameters = self._signature.parameters.values()
        # Names worth looking up: a parameter of that name, or anything when the function takes **kwargs.
        self._accepts = (
            None if any(p.kind == p.VAR_KEYWORD for p in parameters) else frozenset(self._signature.parameters)
        )
        self._positions: dict[str, int] = {}
        for position, parameter in enumerate(parameters):
            if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                break
            self._positions[parameter.name] = position

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, Any]:
        return _Arguments(self, args, kwargs)

    def get(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        where: Callable[[Mapping[str, Any]], Any] | tuple[str, ...],
    ) -> Any:
        """The value ``where`` says: the first of its parameter names the call has, or the getter's answer."""
        arguments = self.bind(args, kwargs)
        if isinstance(where, tuple):
            return next((arguments[name] for name in where if name in arguments), None)
        return where(arguments)

    def where(
        self, getter: ArgumentGetter | None, *fallbacks: str
    ) -> Callable[[Mapping[str, Any]], Any] | tuple[str, ...]:
        """Where :meth:`get` looks for a value: the getter function, or the parameter names worth trying (worked out
        once, at decoration: a name the function has no parameter for is never looked up). An empty tuple: nothing
        to look up, and the optional lookups (channel, team) skip the call to :meth:`get` altogether."""
        if callable(getter):
            return getter
        names = (getter, *fallbacks) if getter is not None else fallbacks
        return tuple(name for name in names if self._accepts is None or name in self._accepts)

    def warn(self, what: str) -> None:
        _misshapen.warning(f"{self._name}:{what}", "slack_tasklog: %s: %s", self._name, what)

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        raise NotImplementedError


def wrap(func: F, recorder: _Recorder) -> F:
    """Wrap ``func`` so that ``recorder`` sees every call; async functions stay async."""

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

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            state = start(args, kwargs)
            try:
                result = await func(*args, **kwargs)
            except BaseException as error:
                finish(state, None, error)
                raise
            finish(state, result, None)
            return result

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = start(args, kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            finish(state, None, error)
            raise
        finish(state, result, None)
        return result

    return cast(F, wrapper)


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
        self._thread_ts = self.where(thread_ts, "thread_ts")
        self._evaluations = self.where(evaluations, "evaluations")
        self._assigned = assigned
        self._channel = self.where(channel, "channel", "channel_id")
        self._team = self.where(team, "team_id", "team")

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (args, kwargs, time.time())

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        if error is not None:
            return  # check_and_assign itself failed: there is no decision to record
        args, kwargs, started = state
        thread_ts = _text(self.get(args, kwargs, self._thread_ts))
        if thread_ts is None:
            self.warn("no thread_ts argument, nothing recorded (pass thread_ts= to the decorator to say where it is)")
            return
        evaluations = normalize_evaluations(self.get(args, kwargs, self._evaluations))
        if evaluations is None:
            self.warn("evaluations not understood, recorded without them (pass evaluations= to the decorator)")
            evaluations = ()
        agent, confidence = normalize_assigned(self._assigned(result) if self._assigned else result)
        if agent is not None and confidence is None:
            confidence = dict(evaluations).get(agent)
        self._submit(
            AssignmentRecorded(
                id=new_event_id(),
                thread_ts=thread_ts,
                channel_id=_text(self.get(args, kwargs, self._channel)),
                team_id=_text(self.get(args, kwargs, self._team)),
                agent=agent,
                confidence=confidence,
                evaluations=evaluations,
                recorded_at=started,
                unassigned_error=self._unassigned_error(),
            )
        )


def normalize_evaluations(value: Any) -> tuple[tuple[str, float | None], ...] | None:
    """Read evaluations in any of the shapes bots use; None if the shape is not understood.

    >>> normalize_evaluations({"Grok": 92, "Writer": 30})
    (('Grok', 92.0), ('Writer', 30.0))
    >>> normalize_evaluations([("Grok", 92), {"agent": "Writer", "confidence": 30}])
    (('Grok', 92.0), ('Writer', 30.0))
    """
    if value is None:
        return ()
    if type(value) is dict:
        # The shape of the design document, {"Grok": 92, ...}: one pass, for the common case only.
        simple: list[tuple[str, float | None]] = []
        for agent, confidence in value.items():
            if type(confidence) is not int and type(confidence) is not float:
                break
            simple.append((str(agent)[:_MAX_AGENT_NAME], float(confidence)))
        else:
            return tuple(simple)
    if isinstance(value, Mapping):
        pairs: Iterable[Any] = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        pairs = value
    else:
        return None
    seen: dict[str, float | None] = {}
    for item in pairs:
        agent, confidence = _agent_and_confidence(item)
        if agent is None:
            return None
        seen[agent] = confidence
    return tuple(seen.items())


def normalize_assigned(value: Any) -> tuple[str | None, float | None]:
    """Who ``check_and_assign`` chose: a name, None, an (agent, confidence) pair, or a mapping/object with one."""
    if value is None:
        return None, None
    if type(value) is str:
        return value[:_MAX_AGENT_NAME] or None, None
    return _agent_and_confidence(value)


def _agent_and_confidence(item: Any) -> tuple[str | None, float | None]:
    if isinstance(item, tuple | list) and len(item) == 2:
        agent, rest = item
        name = _agent_name(agent)
        if isinstance(rest, Mapping) or _has(rest, "confidence"):
            return name, _number(_field(rest, "confidence"))
        return name, _number(rest)
    if isinstance(item, Mapping) or _has(item, "agent") or _has(item, "confidence"):
        agent = _field(item, "agent")
        if agent is None:
            agent = _field(item, "name")
        return _agent_name(agent), _number(_field(item, "confidence"))
    return _agent_name(item), None


def _agent_name(agent: Any) -> str | None:
    if agent is None:
        return None
    if not isinstance(agent, str):
        name = getattr(agent, "name", None)
        if not isinstance(name, str):
            return None
        agent = name
    return agent[:_MAX_AGENT_NAME] or None


def _has(obj: Any, name: str) -> bool:
    return not isinstance(obj, str | bytes | int | float) and hasattr(obj, name)


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


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
    ) -> None:
        super().__init__(func, submit)
        self._agent = agent
        self._thread_ts = self.where(thread_ts, "thread_ts")
        self._channel = self.where(channel, "channel", "channel_id")
        self._team = self.where(team, "team_id", "team")

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return (args, kwargs, time.time(), time.perf_counter())

    def finish(self, state: Any, result: Any, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - state[3]
        args, kwargs, started, _ = state
        thread_ts = _text(self.get(args, kwargs, self._thread_ts))
        if thread_ts is None:
            self.warn("no thread_ts argument, nothing recorded (pass thread_ts= to the decorator to say where it is)")
            return
        self._submit(
            OutcomeRecorded(
                id=new_event_id(),
                thread_ts=thread_ts,
                channel_id=_text(self.get(args, kwargs, self._channel)),
                team_id=_text(self.get(args, kwargs, self._team)),
                agent=self._agent_of(args, kwargs),
                success=error is None,
                execution_time=elapsed,
                error_message=None if error is None else _describe(error),
                started_at=started,
                finished_at=started + elapsed,
            )
        )

    def _agent_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if isinstance(self._agent, str):
            return self._agent[:_MAX_AGENT_NAME]
        if self._agent is not None:
            name = _agent_name(self._agent(self.bind(args, kwargs)))
            if name is not None:
                return name
        owner = self.get(args, kwargs, ("self",))
        name = _agent_name(owner)  # the method's instance (its .name): the usual case, one lookup
        if name is not None:
            return name
        name = _agent_name(self.get(args, kwargs, ("agent",)))
        if name is not None:
            return name
        if owner is not None:
            return type(owner).__name__
        self.warn("no agent name, recorded under the function's name (pass agent= to the decorator)")
        return self._name[:_MAX_AGENT_NAME]


def _describe(error: BaseException) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


class Tracking:
    """The two decorators, for anything that can record events: ``TaskLog`` and the module default."""

    def _record(self, event: Event) -> None:
        raise NotImplementedError

    def _unassigned_error(self) -> str:
        raise NotImplementedError

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
        nobody, an ``(agent, confidence)`` pair, or a mapping/object with ``agent``/``name``).

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

        def decorate(f: F) -> F:
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
    ) -> F | Callable[[F], F]:
        """Record each call of an agent's ``process_assignment``: success or failure, the error, the time taken.

        Returning is success; raising is failure, recorded as ``"ExceptionType: message"`` and re-raised untouched.
        Async functions are timed across their awaits. The agent is ``agent=`` (a name, or a function of the
        call's arguments), else ``self.name`` of the method's instance. The task is found by the ``thread_ts``
        argument as in :meth:`track_assignment`, and may have been captured by another process using the same
        database::

            class SpecialistAgent:
                name = "Grok"

                @tasklog.track_outcome
                def process_assignment(self, thread_ts, text): ...
        """

        def decorate(f: F) -> F:
            recorder = OutcomeRecorder(f, self._record, agent=agent, thread_ts=thread_ts, channel=channel, team=team)
            return wrap(f, recorder)

        return decorate if func is None else decorate(func)
