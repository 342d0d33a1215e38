"""Durations as people type them: ``90d``, ``24h``, ``2w``, ``6mo``, ``30min``.

Units: ``s`` (seconds), ``min`` (minutes), ``h``, ``d``, ``w``, ``mo`` (a month is 30 days) and ``y`` (a year is 365
days), also as words (``6 months``, ``90 days``). A bare ``m`` is refused: ``6m`` means six minutes to some people and
six months to others, and a purge that guesses wrong deletes everything.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["ONE_DAY", "describe_duration", "parse_duration", "parse_retention"]

ONE_DAY = timedelta(days=1)

_DURATION = re.compile(r"\A\s*(\d{1,6})\s*([a-z]*)\s*\Z", re.IGNORECASE)
_UNITS: dict[str, timedelta] = {}
for _words, _span in (
    (("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    (("min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    (("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    (("d", "day", "days"), timedelta(days=1)),
    (("w", "wk", "wks", "week", "weeks"), timedelta(weeks=1)),
    (("mo", "mos", "month", "months"), timedelta(days=30)),
    (("y", "yr", "yrs", "year", "years"), timedelta(days=365)),
):
    _UNITS.update(dict.fromkeys(_words, _span))
_EXAMPLES = "like 90d, 24h, 2w, 6mo or 30min"


def parse_duration(value: str | timedelta) -> timedelta:
    """``"90d"`` → ``timedelta(days=90)``; a ``timedelta`` is returned as is. Raises ValueError saying what to write.

    ``mo`` is 30 days and ``y`` 365; a bare ``m`` is ambiguous (minutes or months?) and refused.

    >>> parse_duration("24h")
    datetime.timedelta(days=1)
    >>> parse_duration("6mo")
    datetime.timedelta(days=180)
    """
    if isinstance(value, timedelta):
        duration = value
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{value!r} is not a duration: write a number and a unit, {_EXAMPLES}")
        count, unit = int(match.group(1)), match.group(2).lower()
        if unit == "m":
            raise ValueError(f"{value.strip()} is ambiguous: write {count}min for minutes or {count}mo for months")
        if unit not in _UNITS:
            raise ValueError(f"{value!r} is not a duration: write a number and a unit, {_EXAMPLES}")
        duration = count * _UNITS[unit]
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return duration


def parse_retention(value: str | timedelta) -> timedelta:
    """:func:`parse_duration` for how long to keep tasks (``TaskLog(retention=...)``): a text under one day is
    refused, as a slip (``12h`` for ``12d``) would delete tasks still being worked on. A ``timedelta`` is taken as
    meant, whatever its length."""
    duration = parse_duration(value)
    if isinstance(value, str) and duration < ONE_DAY:
        raise ValueError(
            f"a retention of {value.strip()} is under a day and would delete tasks still in progress; "
            f"to mean it, pass a timedelta (retention=timedelta(hours=12))"
        )
    return duration


def describe_duration(duration: timedelta) -> str:
    """Words for a message, in the largest whole unit: ``"180 days"``, ``"12 hours"``, ``"1 minute"``."""
    seconds = int(duration.total_seconds())
    for noun, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if seconds % size == 0 or size == 1:
            count = seconds // size
            return f"{count:,} {noun}{'' if count == 1 else 's'}"
    raise AssertionError("unreachable")  # pragma: no cover - size 1 divides everything
