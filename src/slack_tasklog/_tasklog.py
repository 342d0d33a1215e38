"""``TaskLog``: the one object a bot creates (or the module default, built from the environment)."""

from __future__ import annotations

import atexit
import os
import weakref
from datetime import date, datetime
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from ._decorators import Tracking
from ._events import Event
from ._export import ExportFilter, write_csv
from ._internal import logger
from ._middleware import TaskLogMiddleware
from ._store import Store, create_tasklog_engine
from ._writer import BackgroundWriter, WriterStats

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_UNASSIGNED_ERROR", "TaskLog"]

#: Where tasks go when neither an argument nor ``$TASKLOG_DATABASE_URL`` says otherwise.
DEFAULT_DATABASE_URL = "sqlite:///tasklog.db"
DEFAULT_UNASSIGNED_ERROR = "No agent confident enough"


class TaskLog(Tracking):
    """A task log for a Slack Bolt app.

    Example::

        from slack_bolt import App
        from slack_tasklog import TaskLog

        app = App(token=..., signing_secret=...)
        tasklog = TaskLog("sqlite:///tasklog.db")
        app.use(tasklog.middleware)          # also works with AsyncApp.use

        @tasklog.track_assignment
        def check_and_assign(thread_ts, evaluations):
            ...

    Args:
        database_url: any SQLAlchemy URL; default ``$TASKLOG_DATABASE_URL``, else ``sqlite:///tasklog.db``.
        engine: use this engine instead of making one from a URL.
        capture_thread_replies: record later messages in a task's thread as its follow-ups.
        unassigned_error: the error recorded when ``check_and_assign`` assigns nobody.
        max_queue: events held in memory while the database catches up; beyond it they are dropped and counted.
        shutdown_timeout: how long ``close()`` (and the exit hook) waits for the last events to be written.

    Recording never raises into the bot and never waits on the database: events go to a background writer. Call
    :meth:`flush` to wait for them, :meth:`close` when done (it is also called at interpreter exit).
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        capture_thread_replies: bool = True,
        unassigned_error: str = DEFAULT_UNASSIGNED_ERROR,
        max_queue: int = 100_000,
        shutdown_timeout: float = 10.0,
    ) -> None:
        self._owns_engine = engine is None
        if engine is None:
            url = database_url or os.environ.get("TASKLOG_DATABASE_URL") or DEFAULT_DATABASE_URL
            engine = create_tasklog_engine(url)
        self.engine = engine
        self.capture_thread_replies = capture_thread_replies
        self.unassigned_error = unassigned_error
        self.shutdown_timeout = shutdown_timeout
        self._store = Store(engine)
        self._writer = BackgroundWriter(self._store, max_queue=max_queue)
        self._middleware = TaskLogMiddleware(lambda: self)
        # Weakly: a TaskLog the program has let go of should not live on until exit.
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            tasklog = ref()
            if tasklog is not None:
                tasklog.close()

        atexit.register(close_at_exit)

    def __repr__(self) -> str:
        return f"TaskLog({self._store.describe()!r})"

    @property
    def middleware(self) -> TaskLogMiddleware:
        """The Bolt middleware: ``app.use(tasklog.middleware)`` for ``App`` and ``AsyncApp`` alike."""
        return self._middleware

    def _record(self, event: Event) -> None:
        self._writer.submit(event)

    def _unassigned_error(self) -> str:
        return self.unassigned_error

    # -- lifecycle --------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is in the database. False if ``timeout`` ran out first."""
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is still queued (waiting at most ``timeout``, default ``shutdown_timeout``) and stop.

        Also called at interpreter exit. True if nothing was left unwritten.
        """
        complete = self._writer.close(self.shutdown_timeout if timeout is None else timeout)
        if self._owns_engine:
            # Release pooled connections (and with them SQLite's file handles); reading later reconnects.
            self.engine.dispose()
        return complete

    @property
    def stats(self) -> WriterStats:
        """The writer's counters: written, dropped, rejected, retries, lost at shutdown."""
        return self._writer.stats

    # -- reading ----------------------------------------------------------------------------------------------

    def export_csv(
        self,
        dest: str | os.PathLike[str] | IO[str],
        *,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        agent: str | None = None,
        team_id: str | None = None,
        neutralize_formulas: bool = True,
    ) -> int:
        """Write the task log as CSV (one row per task, oldest first) and return the number of rows.

        ``dest`` is a path or a text file object (open it with ``newline=""``). ``since``/``until`` bound the
        request time (naive datetimes are UTC; ISO strings are accepted), ``agent`` keeps tasks whose latest
        assignment went to that agent, ``team_id`` one workspace. Free-text cells that a spreadsheet would run as a
        formula are prefixed with ``'`` unless ``neutralize_formulas=False``. Events recorded by this process are
        flushed first (waiting at most ``shutdown_timeout``).
        """
        self.flush(self.shutdown_timeout)
        self._store.ensure_schema()
        where = ExportFilter(since=since, until=until, agent=agent, team_id=team_id)
        if isinstance(dest, str | os.PathLike):
            path = Path(dest)
            with path.open("w", encoding="utf-8", newline="") as out, self.engine.connect() as conn:
                count = write_csv(conn, out, where, neutralize_formulas=neutralize_formulas)
            logger.debug("slack_tasklog: exported %d tasks to %s", count, path)
            return count
        with self.engine.connect() as conn:
            return write_csv(conn, dest, where, neutralize_formulas=neutralize_formulas)
