"""The Bolt middleware: one object for ``App.use`` and ``AsyncApp.use``.

It is a ``slack_bolt.middleware.Middleware`` (``App`` calls ``process``) and a coroutine callable (``AsyncApp``
wraps it as a custom middleware and awaits ``__call__``), so one object serves both without importing aiohttp for
sync users. Both paths share ``_capture``: read the body, hand what it records to the writer, never raise, never
wait on I/O.

Bolt answers 404 to an event no listener handled, and Slack redelivers what got a 404. A follow-up in a task thread
is a ``message`` event that many bots have no listener for, so for every event it captures the middleware passes
on a 200 response when the chain has none: Bolt then still logs "Unhandled request" but answers 200, and Slack
does not retry. A listener's own response, when one runs, takes precedence as always.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from ._capture import capture_event
from ._internal import swallow_internal_errors

if TYPE_CHECKING:
    from ._tasklog import TaskLog

__all__ = ["TaskLogMiddleware"]


class TaskLogMiddleware(Middleware):
    """Records task requests and follow-ups from the events passing through a Bolt app.

    Get it from a :class:`~slack_tasklog.TaskLog` (``app.use(tasklog.middleware)``) or use the module default
    ``slack_tasklog.tasklog_middleware``.
    """

    def __init__(self, tasklog: Callable[[], TaskLog]) -> None:
        self._tasklog = tasklog

    @property
    def name(self) -> str:
        return "slack_tasklog.TaskLogMiddleware"

    def _capture(self, req: Any) -> bool:
        with swallow_internal_errors("middleware"):
            tasklog = self._tasklog()
            context = req.context
            captured = capture_event(
                req.body,
                team_id=context.team_id,
                enterprise_id=context.enterprise_id,
                bot_user_id=context.bot_user_id,
                follow_ups=tasklog.capture_thread_replies,
            )
            if captured is not None:
                tasklog._record_message(captured)
                return True
        return False

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        captured = self._capture(req)
        next()
        return _response(captured, resp)

    async def __call__(
        self, req: Any, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        captured = self._capture(req)
        await next()
        return _response(captured, resp)


def _response(captured: bool, resp: BoltResponse | None) -> BoltResponse | None:
    if captured and resp is None:
        return BoltResponse(status=200, body="")
    return resp
