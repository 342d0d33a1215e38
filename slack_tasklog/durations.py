"""Durations as people type them: ``90d``, ``24h``, ``2w``, ``30m``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration"]

_DURATION = re.compile(r"\A\s*(\d{1,6})\s*(s|m|h|d|w)\s*\Z", re.IGNORECASE)
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str | timedelta) -> timedelta:
    """``"90d"`` → ``timedelta(days=90)``; a ``timedelta`` is returned as is. Raises ValueError with an example.

    >>> parse_duration("24h")
    datetime.timedelta(days=1)
    """
    if isinstance(value, timedelta):
        duration = value
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration: write a number and a unit, like 90d, 24h, 2w or 30m")
        duration = timedelta(**{_UNIT[match.group(2).lower()]: int(match.group(1))})
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return duration
