"""The Bolt middleware: one object for ``App.use`` and ``AsyncApp.use``.

It is a ``slack_bolt.middleware.Middleware`` (``App`` calls ``process``) with an ``async_process`` for
``AsyncApp``. Importing Bolt's ``AsyncMiddleware`` base class imports aiohttp, which a sync app never needs, so the
class is registered as a virtual ``AsyncMiddleware`` only once that module is loaded anyway (by the time an
``AsyncApp`` exists, it is). Should it not be registered in time, ``AsyncApp`` still accepts the object as a
coroutine callable (``__call__``).

Both paths do the same: apply the capture rules to the body, queue what they record (never raising, never waiting
on the database), let the chain run, then decide the answer.

The answer: an app asks Slack for ``message`` events so that the task log sees follow-ups, DMs and deletions, and
Bolt answers 404 to an event no listener handled. Slack redelivers what failed, and turns an app's subscriptions off
when most deliveries fail. So every ``message``, ``reaction_added`` and ``reaction_removed`` event (subscribed to
for feedback) that no listener answered gets 200 from here, whatever it is; ``app_mention`` and every other request
keep Bolt's own answer.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from slack_tasklog.capture.rules import CAPTURED_EVENT_TYPES, CapturedMessage, CaptureRules
from slack_tasklog.capture.text import TextPolicy
from slack_tasklog.events import Event, FeedbackGiven
from slack_tasklog.logs import RateLimitedLog

__all__ = ["MessageRecorder", "TaskLogMiddleware", "register_async"]

_failures = RateLimitedLog()


@dataclass(frozen=True)
class MessageRecorder:
    """What the middleware needs from a task log: the capture rules, the text policy and where events go."""

    rules: CaptureRules
    policy: TextPolicy
    submit: Callable[[Event], object]
    #: Told the bot token (and Web API base URL) of a workspace whose reaction was recorded: the writer may have to
    #: ask Slack which thread the message is in (``SlackLookup.remember``).
    remember_token: Callable[[str, str, str | None], object] | None = None

    def record(self, body: Mapping[str, Any], context: Mapping[str, Any]) -> CapturedMessage | None:
        """Capture what ``body`` records and queue it; ``context`` is Bolt's for the request (the installation that
        received it: its workspace, enterprise, app user, and for reactions its token)."""
        captured = self.rules.capture(
            body,
            team_id=context.get("team_id"),
            enterprise_id=context.get("enterprise_id"),
            bot_user_id=context.get("bot_user_id"),
        )
        if captured is None:
            return None
        if isinstance(captured, FeedbackGiven) and self.remember_token is not None:
            bot_token = context.get("bot_token")
            if bot_token:
                base_url = getattr(context.get("client"), "base_url", None)
                self.remember_token(captured.team_id or "", bot_token, base_url)
        self.submit(self.policy.apply(captured))
        return captured


class TaskLogMiddleware(Middleware):
    """Records task requests and follow-ups from the events passing through a Bolt app.

    Get it from a :class:`~slack_tasklog.TaskLog` (``app.use(tasklog.middleware)``) or use the module default
    ``slack_tasklog.tasklog_middleware``. ``recorder`` is called on each event to find where it goes (the module
    default builds its ``TaskLog`` on the first event).
    """

    def __init__(self, recorder: Callable[[], MessageRecorder]) -> None:
        self._recorder = recorder

    @property
    def name(self) -> str:
        return "slack_tasklog.TaskLogMiddleware"

    def _record(self, req: Any) -> bool:
        """Record what the request carries; True if it is an event we subscribe to for ourselves (``message``,
        reactions): answered 200 if nobody else does."""
        try:
            body = req.body
            event = body.get("event") if body.get("type") == "event_callback" else None
            if not isinstance(event, Mapping) or event.get("type") not in CAPTURED_EVENT_TYPES:
                return False
            self._recorder().record(body, req.context)
            return event.get("type") != "app_mention"
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
        is_message = self._record(req)
        next()
        return _answer(is_message, resp)

    async def async_process(
        self, *, req: Any, resp: BoltResponse | None, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        is_message = self._record(req)
        await next()
        return _answer(is_message, resp)

    async def __call__(
        self, req: Any, resp: BoltResponse | None, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        return await self.async_process(req=req, resp=resp, next=next)


def _answer(is_message: bool, resp: BoltResponse | None) -> BoltResponse | None:
    # A listener's own response, when one ran, takes precedence as always.
    if is_message and resp is None:
        return BoltResponse(status=200, body="")
    return resp


def register_async() -> None:
    """Make ``TaskLogMiddleware`` a virtual ``AsyncMiddleware`` if Bolt's async side is loaded (no aiohttp import
    otherwise). Called when a ``TaskLog`` or its middleware is made, and at import."""
    module = sys.modules.get("slack_bolt.middleware.async_middleware")
    if module is not None and not issubclass(TaskLogMiddleware, module.AsyncMiddleware):
        module.AsyncMiddleware.register(TaskLogMiddleware)


register_async()
