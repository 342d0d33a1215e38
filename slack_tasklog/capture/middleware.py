"""The Bolt middleware: one object for ``App.use`` and ``AsyncApp.use``.

It is a ``slack_bolt.middleware.Middleware`` (``App`` calls ``process``) with an ``async_process`` for
``AsyncApp``. Importing Bolt's ``AsyncMiddleware`` base class imports aiohttp, which a sync app never needs, so the
class is registered as a virtual ``AsyncMiddleware`` only once that module is loaded anyway (by the time an
``AsyncApp`` exists, it is). Should it not be registered in time, ``AsyncApp`` still accepts the object as a
coroutine callable (``__call__``), at the price of Bolt's argument injection on every request.

Both paths share ``_capture``: read the body, hand what it records to the writer, never raise, never wait. Bolt
runs every global middleware on every request, so this is the one place where each microsecond counts: the
classification is a handful of dict lookups, and everything that can wait (linking, storing) happens in the
writer thread.

Bolt answers 404 to an event no listener handled, and Slack redelivers what got a 404. A follow-up in a task thread
(or a deletion) is a ``message`` event that many bots have no listener for, so for those the middleware passes on
a 200 response when the chain has none: Bolt then still logs "Unhandled request" but answers 200, and Slack does
not retry. A listener's own response, when one runs, takes precedence as always.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from slack_tasklog.capture.rules import capture
from slack_tasklog.events import TaskRequested
from slack_tasklog.logs import RateLimitedLog

if TYPE_CHECKING:
    from slack_tasklog.tasklog import TaskLog

__all__ = ["TaskLogMiddleware", "register_async"]

_failures = RateLimitedLog()
# Queued events beyond which the middleware decides on the request path (see _capture): one writer batch.
_FAST_LANE_BACKLOG = 1_000


class TaskLogMiddleware(Middleware):
    """Records task requests and follow-ups from the events passing through a Bolt app.

    Get it from a :class:`~slack_tasklog.TaskLog` (``app.use(tasklog.middleware)``) or use the module default
    ``slack_tasklog.tasklog_middleware``.
    """

    def __init__(self, tasklog: Callable[[], TaskLog], *, bound: TaskLog | None = None) -> None:
        self._tasklog = tasklog
        # A TaskLog's own middleware knows it: a call fewer on every request than asking ``tasklog()``.
        self._bound = bound

    @property
    def name(self) -> str:
        return "slack_tasklog.TaskLogMiddleware"

    def _capture(self, req: Any) -> bool:  # noqa: PLR0911 - early returns keep the common path short
        """Record what the request carries; True if it is a message the app may have no listener for."""
        try:
            body = req.body
            if body.get("type") != "event_callback":
                return False
            event = body.get("event")
            try:
                kind = event.get("type")
            except AttributeError:  # not an object (a malformed body): nothing to record. No type() call per request
                return False
            if kind != "app_mention" and kind != "message":  # noqa: PLR1714 - cheaper than a tuple here
                return False
            tasklog = self._bound or self._tasklog()
            context = req.context
            raw = req.raw_body
            if raw and tasklog._fast_lane and len(tasklog._writer._items) < _FAST_LANE_BACKLOG:
                # Nothing needs the text before it is journaled: hand over the request as it is, and let the
                # writer thread decide what it records (see SlackEvent). A bot's message is obviously nothing.
                # Only while the writer keeps up: a whole request body weighs some kilobytes, so a backlog (the
                # database down or slow) is queued as the few fields that matter, decided here.
                if event.get("bot_id") is not None:
                    return False
                tasklog._writer.submit(
                    (  # a SlackEvent's fields, as a plain tuple: see RawSlackEvent
                        raw,
                        context.get("team_id"),
                        context.get("enterprise_id"),
                        context.get("bot_user_id"),
                        tasklog.capture_thread_replies,
                        body,
                    )
                )
                return kind == "message" and ("thread_ts" in event or event.get("subtype") == "message_deleted")
            captured = capture(
                body,
                context.get("team_id"),
                context.get("enterprise_id"),
                context.get("bot_user_id"),
                tasklog.capture_thread_replies,
            )
            if captured is None:
                return False
            tasklog._record_message(captured)
            return type(captured) is not TaskRequested
        except Exception:
            _failures.warning(
                "middleware",
                "slack_tasklog: internal error in the middleware; the host app is unaffected",
                exc_info=True,
            )
            return False

    def process(
        self, *, req: BoltRequest, resp: BoltResponse | None, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        answer_ok = self._capture(req)
        next()
        if answer_ok and resp is None:
            return BoltResponse(status=200, body="")
        return resp

    async def async_process(
        self, *, req: Any, resp: BoltResponse | None, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        answer_ok = self._capture(req)
        await next()
        if answer_ok and resp is None:
            return BoltResponse(status=200, body="")
        return resp

    async def __call__(
        self, req: Any, resp: BoltResponse | None, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        return await self.async_process(req=req, resp=resp, next=next)


def register_async() -> None:
    """Make ``TaskLogMiddleware`` a virtual ``AsyncMiddleware`` if Bolt's async side is loaded (no aiohttp import
    otherwise). Called when a ``TaskLog`` or its middleware is made, and at import."""
    module = sys.modules.get("slack_bolt.middleware.async_middleware")
    if module is not None and not issubclass(TaskLogMiddleware, module.AsyncMiddleware):
        module.AsyncMiddleware.register(TaskLogMiddleware)


register_async()
