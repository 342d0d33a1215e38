"""The package's own failures are logged here and never raised into the host app."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import URL

__all__ = ["RateLimitedLog", "internal_error", "logger", "safe_url"]

logger = logging.getLogger("slack_tasklog")


class RateLimitedLog:
    """Log a recurring problem once per ``interval`` seconds, with how often it happened meanwhile.

    A broken database or a misshapen argument repeats on every event; one line a minute says as much as
    ten thousand and keeps the host's logs readable.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " (and %d more times since the last report)"
            args = (*args, suppressed)
        logger.warning(message, *args, exc_info=exc_info)

    def reset(self, key: str) -> None:
        with self._lock:
            self._last.pop(key, None)
            self._suppressed.pop(key, None)


_internal_errors = RateLimitedLog()


def internal_error(where: str) -> None:
    """Our own code runs inside the host's: call this from ``except Exception`` around it, to log what went wrong
    (rate-limited) instead of raising it into the bot."""
    _internal_errors.warning(
        where, "slack_tasklog: internal error in %s; the host app is unaffected", where, exc_info=True
    )


_SECRET_KEYS = frozenset({"password", "passwd", "pwd", "secret", "token", "sslpassword", "sslkey", "access_key"})


def safe_url(url: URL) -> str:
    """A database URL as it may be logged or shown: no password, wherever it was given (also as a query
    parameter such as ``?password=``)."""
    query = {key: "***" if key.lower() in _SECRET_KEYS else value for key, value in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)
