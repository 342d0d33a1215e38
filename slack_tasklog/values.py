"""Values as the task log stores them, checked one way wherever they come from (the decorators, a journal, an
import): pure functions of plain values, below every other layer."""

from __future__ import annotations

__all__ = ["ts_seconds"]

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
