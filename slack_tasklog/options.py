"""Checks for ``TaskLog``'s options, run when the object is made: a wrong option is refused at once, naming the
option, what it got and what it accepts, instead of failing later inside the writer thread."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, overload

from sqlalchemy import URL, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from slack_tasklog.durations import parse_duration, parse_retention
from slack_tasklog.logs import safe_url

__all__ = [
    "URL_EXAMPLES",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_duration",
    "check_engine",
    "check_feedback_emoji",
    "check_journal",
    "check_optional_bool",
    "check_optional_text",
    "check_positive_int",
    "check_prices",
    "check_seconds",
    "check_text",
    "check_user_ids",
    "parse_database_url",
]

#: What to write for a database URL, as the errors about one say.
URL_EXAMPLES = "sqlite:///PATH, postgresql+psycopg://USER@HOST/DB or mysql+pymysql://USER@HOST/DB"


def _refuse(name: str, value: object, accepts: str) -> TypeError:
    return TypeError(f"TaskLog({name}=...) takes {accepts}, not {type(value).__name__} {value!r}")


def check_bool(name: str, value: object) -> bool:
    # Strings like "no" are truthy: refuse them rather than guess.
    if not isinstance(value, bool):
        raise _refuse(name, value, "True or False")
    return value


def check_optional_bool(name: str, value: object) -> bool | None:
    return None if value is None else check_bool(name, value)


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(name, value, "a whole number")
    if value <= 0:
        raise ValueError(f"TaskLog({name}=...) must be at least 1, not {value}")
    return value


def check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(name, value, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"TaskLog({name}=...) must be a finite number of seconds, 0 or more, not {value!r}")
    return float(value)


def check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _refuse(name, value, "a string")
    return value


def check_optional_text(name: str, value: object) -> str | None:
    return None if value is None else check_text(name, value)


def check_callable(name: str, value: object) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise _refuse(name, value, "a function or None")
    return value


def check_choice(name: str, value: object, choices: Iterable[str]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"TaskLog({name}=...) must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_feedback_emoji(value: object) -> dict[str, bool]:
    """Emoji name -> True (vote up) or False (vote down), names as Slack gives them (``"+1"``, ``":tada:"``); a
    skin-tone variant given is taken as its base."""
    from slack_tasklog.capture.rules import emoji_base

    if not isinstance(value, Mapping):
        raise _refuse(
            "feedback_emoji", value, 'a mapping of emoji names to True (up) or False (down), like {"+1": True}'
        )
    emoji: dict[str, bool] = {}
    for name, positive in value.items():
        if not isinstance(name, str) or not emoji_base(name):
            raise _refuse("feedback_emoji", name, "emoji names as strings")
        if not isinstance(positive, bool):
            raise _refuse("feedback_emoji", positive, "True (a vote up) or False (a vote down) for each emoji")
        emoji[emoji_base(name)] = positive
    return emoji


def parse_database_url(value: str) -> URL:
    """``value`` as a URL SQLAlchemy has a dialect for; ValueError saying what to write instead. The value is never
    repeated whole: it may hold a password."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValueError(f"not a database URL: write {URL_EXAMPLES}") from None
    backend = url.get_backend_name()
    if backend == "postgres":  # Heroku's and libpq's spelling; SQLAlchemy dropped it
        fixed = safe_url(url.set(drivername="postgresql+psycopg"))
        raise ValueError(f"{url.drivername}:// is not SQLAlchemy's spelling: use {fixed}")
    try:
        url.get_dialect()  # the dialect only: a missing driver is reported, with its extra, when connecting
    except NoSuchModuleError:
        raise ValueError(f"no database type {backend!r}: write {URL_EXAMPLES}") from None
    return url


def check_engine(value: object) -> Engine | None:
    if value is not None and not isinstance(value, Engine):
        raise _refuse("engine", value, "a SQLAlchemy Engine (pass a URL as the first argument instead)")
    return value


def check_journal(value: object) -> bool | str | os.PathLike[str]:
    if not isinstance(value, bool | str | os.PathLike):
        raise _refuse("journal", value, "True, False or a folder path")
    return value


@overload
def check_duration(name: str, value: object) -> timedelta | None: ...


@overload
def check_duration(name: str, value: object, *, optional: Literal[False]) -> timedelta: ...


def check_duration(name: str, value: object, *, optional: bool = True) -> timedelta | None:
    if value is None and optional:
        return None
    if not isinstance(value, str | timedelta):
        raise _refuse(name, value, 'a duration like "90d" or a timedelta')
    try:
        return parse_retention(value) if name == "retention" else parse_duration(value)
    except ValueError as error:
        raise ValueError(f"TaskLog({name}=...): {error}") from None


def check_user_ids(name: str, value: object) -> Iterable[str] | str | None:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Iterable):
        raise _refuse(name, value, "Slack user IDs (a list, or a comma-separated string)")
    ids = list(value)
    for user in ids:
        if not isinstance(user, str):
            raise _refuse(name, user, "Slack user IDs as strings")
    return ids


#: The keys of one agent's prices: currency per million input (prompt) and output (completion) tokens.
PRICE_KEYS = ("input", "output")


def check_prices(name: str, value: object) -> dict[str, tuple[float, float]]:
    """``{"Grok": {"input": 3.0, "output": 15.0}}`` as ``{"Grok": (3.0, 15.0)}``: each agent's price per million
    input and output tokens, both given, finite and not negative."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _refuse(name, value, 'a mapping like {"Grok": {"input": 3.0, "output": 15.0}} (per million tokens)')
    prices: dict[str, tuple[float, float]] = {}
    for agent, price in value.items():
        if not isinstance(agent, str) or not agent:
            raise _refuse(name, agent, "agent names as keys")
        if not isinstance(price, Mapping) or set(price) != set(PRICE_KEYS):
            raise ValueError(
                f'TaskLog({name}=...): {agent!r} needs exactly "input" and "output" (per million tokens), not {price!r}'
            )
        pair = []
        for key in PRICE_KEYS:
            number = price[key]
            if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number < math.inf:
                raise ValueError(
                    f"TaskLog({name}=...): {agent!r} {key} must be a finite number, 0 or more, not {number!r}"
                )
            pair.append(float(number))
        prices[agent] = (pair[0], pair[1])
    return prices
