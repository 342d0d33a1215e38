"""The module-level one-liners, backed by a ``TaskLog`` built on first use from the environment.

``from slack_tasklog import tasklog_middleware, track_assignment, track_outcome`` works at import time without
touching a database: the default ``TaskLog`` is made on the first event or decorated call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from slack_tasklog.capture.decorators import Tracking
from slack_tasklog.capture.middleware import TaskLogMiddleware
from slack_tasklog.events import Event
from slack_tasklog.tasklog import TaskLog

__all__ = ["get_default_tasklog", "tasklog_middleware", "track_assignment", "track_outcome"]

_default: TaskLog | None = None
_lock = threading.Lock()


def get_default_tasklog() -> TaskLog:
    """The ``TaskLog`` behind the one-liners: ``$TASKLOG_DATABASE_URL``, else ``sqlite:///tasklog.db``."""
    global _default  # noqa: PLW0603 - the lazily built module default is the point of this module
    if _default is None:
        with _lock:
            if _default is None:
                _default = TaskLog()
    return _default


class _DefaultTracking(Tracking):
    """The decorators, each call recording into whatever the default ``TaskLog`` is by then."""

    def _unassigned_error(self) -> str:
        return get_default_tasklog().unassigned_error

    def _record(self, event: Event) -> None:
        get_default_tasklog()._record(event)

    def _prices(self) -> Mapping[str, tuple[float, float]]:
        return get_default_tasklog().prices


_tracking = _DefaultTracking()

#: ``app.use(tasklog_middleware)`` records into the default ``TaskLog``.
tasklog_middleware = TaskLogMiddleware(lambda: get_default_tasklog().recorder)
#: :meth:`TaskLog.track_assignment` on the default ``TaskLog``.
track_assignment = _tracking.track_assignment
#: :meth:`TaskLog.track_outcome` on the default ``TaskLog``.
track_outcome = _tracking.track_outcome
