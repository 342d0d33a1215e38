"""Values as the task log stores them, checked one way wherever they come from (the decorators, a journal, an
import): pure functions of plain values, below every other layer."""

from __future__ import annotations

import math

__all__ = ["MAX_CONFIDENCE", "amount", "confidence", "exception_type", "token_count", "ts_seconds"]

_MAX_TOKENS = 2**63 - 1  # the column is a BIGINT
#: Confidences are percents.
MAX_CONFIDENCE = 100.0

# The seconds datetime.fromtimestamp takes: 0001-01-01 up to 9999-12-31 (UTC).
_FIRST_SECOND = -62_135_596_800.0
_PAST_LAST_SECOND = 253_402_300_800.0


def ts_seconds(ts: str, fallback: float) -> float:
    """A Slack ts as seconds since the epoch, or ``fallback`` if it is not a time a datetime can hold (storage
    takes seconds for its datetime columns, see :mod:`~slack_tasklog.storage.bulk`).

    >>> ts_seconds("1700000000.000100", 0.0), ts_seconds("soon", 0.0)
    (1700000000.0001, 0.0)
    """
    try:
        seconds = float(ts)
    except ValueError:
        return fallback
    # The comparison is false for NaN too.
    return seconds if _FIRST_SECOND <= seconds < _PAST_LAST_SECOND else fallback


def token_count(value: object) -> int | None:
    """A token count as stored: a whole number (an ``int``, not a bool) from 0 up to a BIGINT's largest; None for
    anything else. Callers say, each in their own words, what they refused.

    >>> token_count(12), token_count(-1), token_count(12.0)
    (12, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_TOKENS else None


def amount(value: object) -> float | None:
    """An amount (a cost) as stored: a finite number, 0 or more, as a float; None for anything else (NaN, an
    infinity, a bool, an int too large for a float).

    >>> amount(3), amount(0.5), amount(float("nan"))
    (3.0, 0.5, None)
    """
    number = _number(value)
    return number if number is not None and 0.0 <= number < math.inf else None


def confidence(value: object) -> float | None:
    """A confidence as stored: a number from 0 to 100, as a float; None for anything else (NaN, an infinity, out of
    range, a bool, not a number). The decorators read a bot's text or Decimal as a number first.

    >>> confidence(80), confidence(100.5), confidence(float("nan"))
    (80.0, None, None)
    """
    number = _number(value)
    # The comparison is false for NaN too.
    return number if number is not None and 0.0 <= number <= MAX_CONFIDENCE else None


def _number(value: object) -> float | None:
    """An int or a float (not a bool) as a float; None for anything else, an int too large for a float included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


# Bounds on a name taken for an exception type: what an exception class is called, not a sentence.
_MAX_NAME_PARTS = 10
_MAX_NAME = 100


def exception_type(message: str) -> str | None:
    """The exception type of an error message as the decorators record it (``"ExcType: message"`` or
    ``"ExcType"``), or None if it does not start with one: the part before the first colon, a (dotted) Python name,
    such as ``requests.exceptions.HTTPError`` or ``FehlerÄ``.

    >>> exception_type("ValueError: cannot parse 'pay Bob'")
    'ValueError'
    """
    head = message.split(":", 1)[0].strip()
    parts = head.split(".")
    if len(parts) <= _MAX_NAME_PARTS and all(part.isidentifier() and len(part) <= _MAX_NAME for part in parts):
        return head
    return None
