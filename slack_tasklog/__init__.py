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

from slack_tasklog._version import __version__
from slack_tasklog.capture.decorators import ArgumentGetter, RunGetter
from slack_tasklog.capture.middleware import TaskLogMiddleware
from slack_tasklog.capture.rules import capture_event, strip_leading_mention
from slack_tasklog.default import get_default_tasklog, tasklog_middleware, track_assignment, track_outcome
from slack_tasklog.reports.export import CSV_COLUMNS
from slack_tasklog.storage.erasure import Erasure
from slack_tasklog.storage.migrate import MigrationRequiredError, SchemaNotReadyError
from slack_tasklog.tasklog import DEFAULT_DATABASE_URL, DEFAULT_UNASSIGNED_ERROR, Health, TaskLog

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_UNASSIGNED_ERROR",
    "ArgumentGetter",
    "Erasure",
    "Health",
    "MigrationRequiredError",
    "RunGetter",
    "SchemaNotReadyError",
    "TaskLog",
    "TaskLogMiddleware",
    "__version__",
    "capture_event",
    "get_default_tasklog",
    "strip_leading_mention",
    "tasklog_middleware",
    "track_assignment",
    "track_outcome",
]
