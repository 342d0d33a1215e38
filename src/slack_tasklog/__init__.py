"""slack_tasklog: a task log and analytics for multi-agent Slack Bolt apps.

Record every task a bot is asked to do — who asked, what, which agent got it and how confident each agent was,
whether it succeeded, how long it took and why it failed — and read it back as CSV.

Example::

    from slack_bolt import App
    from slack_tasklog import TaskLog

    app = App(token=..., signing_secret=...)
    tasklog = TaskLog("sqlite:///tasklog.db")
    app.use(tasklog.middleware)

Or, against a default ``TaskLog`` built lazily from ``$TASKLOG_DATABASE_URL``::

    from slack_tasklog import tasklog_middleware, track_assignment, track_outcome

    app.use(tasklog_middleware)
"""

from ._capture import capture_event, strip_leading_mention
from ._decorators import ArgumentGetter
from ._default import get_default_tasklog, tasklog_middleware, track_assignment, track_outcome
from ._export import CSV_COLUMNS
from ._middleware import TaskLogMiddleware
from ._migrate import MigrationRequiredError, SchemaNotReadyError
from ._tasklog import DEFAULT_DATABASE_URL, DEFAULT_UNASSIGNED_ERROR, Health, TaskLog
from ._version import __version__
from ._writer import WriterStats

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_UNASSIGNED_ERROR",
    "ArgumentGetter",
    "Health",
    "MigrationRequiredError",
    "SchemaNotReadyError",
    "TaskLog",
    "TaskLogMiddleware",
    "WriterStats",
    "__version__",
    "capture_event",
    "get_default_tasklog",
    "strip_leading_mention",
    "tasklog_middleware",
    "track_assignment",
    "track_outcome",
]
