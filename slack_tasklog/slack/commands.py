"""``/tasklog`` in Slack: the Bolt listeners, for ``App`` and ``AsyncApp``, over one flow.

How a command runs
------------------
1. **The ack** answers Slack's request itself, within its 3 seconds whatever the database holds: it only parses
   the text (pure, no I/O). Help and unreadable lines are answered right there; an export says it is coming; stats
   ack silently (the answer follows in well under a second).
2. **A lazy listener** then does the work, in Bolt's thread pool (``App``) or as an asyncio task (``AsyncApp``;
   database work goes to a thread). Lazy listeners are what makes ``process_before_response=True`` (FaaS) work.

The work is written once, as a generator (:meth:`CommandFlow.run`) that *yields* what it needs done — call a Web API
method, post to the ``response_url``, wait, run database work — and is sent back the result (or has the exception
thrown into it). :func:`run_flow` and :func:`run_flow_async` are the only sync/async code: a dozen lines each. Every
decision (access, retries, fallbacks, wording) therefore exists once, like bolt-python's sync/async pairs sharing
their non-I/O logic.

The ``response_url`` budget
---------------------------
Slack allows five posts to a command's ``response_url`` within 30 minutes. A command spends **at most one**: the
ack's own reply is free (it is the HTTP response), the stats or the refusal or the "empty"/"sent to your DM"/failure
note is the one post, and a successful export speaks through the file's own comment. If that one post fails, the
note goes out with ``chat.postEphemeral`` (``chat.postMessage`` for ``--public`` stats) instead.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import IO, Any, Literal, TypeVar

from slack_sdk.errors import SlackApiError

from slack_tasklog.logs import logger
from slack_tasklog.reports import chart
from slack_tasklog.reports.stats import Stats, compute_stats
from slack_tasklog.slack import blocks
from slack_tasklog.slack.blocks import FailureDetails
from slack_tasklog.slack.grammar import CommandSyntaxError, ExportRequest, HelpRequest, StatsRequest, parse_command
from slack_tasklog.slack.source import TaskSource

__all__ = [
    "DEFAULT_COMMAND",
    "CallSlack",
    "CommandFlow",
    "Invocation",
    "PostResponse",
    "RoleCache",
    "RunBlocking",
    "Wait",
    "register_commands",
    "run_flow",
    "run_flow_async",
]

DEFAULT_COMMAND = "/tasklog"
StatsAccess = Literal["everyone", "admins"]

#: The bot cannot post where the command was typed: the file goes to the user's DM instead.
_FALLBACK_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
# users.info role answers are reused this long: roles change rarely, and Slack rate-limits users.info (Tier 4).
_ROLE_TTL = 600.0
_ROLE_ENTRIES = 10_000
_MAX_RETRIES = 3
# A Retry-After longer than this is not waited out in a listener: the user is told when to try again.
_MAX_RETRY_AFTER = 30.0
_STATS_FLUSH_TIMEOUT = 2.0
# Every distinct failure message, in practice: shown by type, they are summed per type (blocks.failures_by_type).
ALL_FAILURES = 100_000

T = TypeVar("T")


# -- what the flow asks for ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSlack:
    """Call a Web API method of Bolt's client (``"files_upload_v2"``); the flow is sent the response's data."""

    method: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class PostResponse:
    """Post a message to the command's ``response_url`` (Bolt's ``respond``)."""

    message: Mapping[str, Any]


@dataclass(frozen=True)
class Wait:
    """Sleep (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


@dataclass(frozen=True)
class RunBlocking:
    """Run blocking work (the database); the flow is sent its result. ``AsyncApp`` runs it in a thread."""

    function: Callable[[], Any]


Effect = CallSlack | PostResponse | Wait | RunBlocking
Flow = Generator[Effect, Any, T]


class ResponseUrlError(Exception):
    """The ``response_url`` did not answer 200 (expired, or used up)."""


def run_flow(flow: Flow[T], client: Any, respond: Any) -> T:
    """Drive a flow synchronously with Bolt's ``WebClient`` and ``Respond``."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        try:
            if isinstance(effect, CallSlack):
                result = getattr(client, effect.method)(**effect.arguments).data
            elif isinstance(effect, PostResponse):
                _check_response(respond(**effect.message))
            elif isinstance(effect, Wait):
                time.sleep(effect.seconds)
            else:
                result = effect.function()
        except Exception as failure:
            error = failure


async def run_flow_async(flow: Flow[T], client: Any, respond: Any) -> T:
    """Drive a flow with Bolt's ``AsyncWebClient`` and ``AsyncRespond``; blocking work goes to a thread."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        try:
            if isinstance(effect, CallSlack):
                result = (await getattr(client, effect.method)(**effect.arguments)).data
            elif isinstance(effect, PostResponse):
                _check_response(await respond(**effect.message))
            elif isinstance(effect, Wait):
                await asyncio.sleep(effect.seconds)
            else:
                result = await asyncio.to_thread(effect.function)
        except Exception as failure:
            error = failure


def _check_response(response: Any) -> None:
    status = getattr(response, "status_code", 200)
    if status != 200:
        raise ResponseUrlError(f"response_url answered HTTP {status}")


# -- pure decisions --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """Who typed the command, where: the parts of Slack's slash-command payload the flow needs."""

    text: str
    user_id: str
    team_id: str
    enterprise_id: str | None
    channel_id: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Invocation:
        """Read Slack's payload; missing fields become empty strings rather than errors."""
        return cls(
            text=str(body.get("text") or ""),
            user_id=str(body.get("user_id") or ""),
            team_id=str(body.get("team_id") or ""),
            enterprise_id=str(body["enterprise_id"]) if body.get("enterprise_id") else None,
            channel_id=str(body.get("channel_id") or ""),
        )


def is_workspace_admin(user: Mapping[str, Any] | None) -> bool:
    """A ``users.info`` user who is an admin, owner or primary owner of the workspace (and not deactivated)."""
    if not user or user.get("deleted"):
        return False
    return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))


def slack_error(error: BaseException) -> str:
    """Slack's error code (``not_in_channel``) of a ``SlackApiError``, else the exception's type name."""
    if isinstance(error, SlackApiError):
        code = error.response.get("error") if error.response is not None else None
        if code:
            return str(code)
    return type(error).__name__


def retry_after(error: BaseException) -> float | None:
    """The seconds Slack asks to wait before retrying, for a rate-limited call (HTTP 429), else None."""
    if not isinstance(error, SlackApiError) or error.response is None:
        return None
    response = error.response
    if response.status_code != 429 and response.get("error") != "ratelimited":
        return None
    for name, value in (response.headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0


def retry_delay(error: BaseException, attempt: int) -> float | None:
    """How long to wait before retry number ``attempt + 1`` of a call that failed with ``error``; None: give up.

    Only rate limits are retried, at most ``_MAX_RETRIES`` times, and only when Slack's Retry-After is short enough
    to wait out in a listener.
    """
    wait = retry_after(error)
    if wait is None or attempt >= _MAX_RETRIES or wait > _MAX_RETRY_AFTER:
        return None
    return wait


def acknowledgement(text: str, command: str) -> dict[str, Any] | None:
    """What the ack says for this text (None: an empty ack). Pure: parses, never touches I/O."""
    try:
        request = parse_command(text)
    except CommandSyntaxError as error:
        return blocks.syntax_error_message(command, str(error))
    if isinstance(request, HelpRequest):
        return blocks.help_message(command)
    if isinstance(request, ExportRequest):
        return blocks.working_message(request)
    return None


class RoleCache:
    """``users.info`` answers (admin or not) for ``ttl`` seconds, at most ``max_entries`` users (least recent out).

    Thread-safe, and never held across an ``await``: ``App`` and ``AsyncApp`` listeners share it.
    """

    def __init__(
        self, ttl: float = _ROLE_TTL, max_entries: int = _ROLE_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str | None, str, str], tuple[float, bool]] = OrderedDict()

    def get(self, key: tuple[str | None, str, str]) -> bool | None:
        """The cached answer, or None if unknown or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, allowed = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return allowed

    def put(self, key: tuple[str | None, str, str], allowed: bool) -> None:
        """Remember an answer."""
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, allowed)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class _RoleUnknownError(Exception):
    """``users.info`` failed: the user's role cannot be checked."""


# -- the flow ---------------------------------------------------------------------------------------------------


class CommandFlow:
    """Everything ``/tasklog`` decides, as flows of effects (see the module docstring); no I/O of its own."""

    def __init__(
        self,
        tasklog: TaskSource,
        command: str = DEFAULT_COMMAND,
        *,
        admins: Collection[str] = (),
        workspace_admins: bool = True,
        stats_access: StatsAccess = "everyone",
        failure_details: FailureDetails = "exporters",
        roles: RoleCache | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.tasklog = tasklog
        self.command = command
        self.admins = frozenset(admins)
        self.workspace_admins = workspace_admins
        self.stats_access = stats_access
        self.failure_details = failure_details
        self.plain_failures = plain_failures(tasklog)
        self.roles = roles if roles is not None else RoleCache()
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def acknowledgement(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """What the ack says (see :func:`acknowledgement`); an internal error still gets an answer."""
        try:
            return acknowledgement(str(body.get("text") or ""), self.command)
        except Exception:
            logger.warning("slack_tasklog: internal error while acknowledging %s", self.command, exc_info=True)
            return blocks.internal_error_message("command")

    def run(self, who: Invocation) -> Flow[None]:
        """The work after the ack. Never raises: every failure is logged and answered."""
        try:
            request = parse_command(who.text)
        except CommandSyntaxError:
            return  # the ack explained it
        if isinstance(request, HelpRequest):
            return
        verb = "stats" if isinstance(request, StatsRequest) else "export"
        try:
            if isinstance(request, StatsRequest):
                yield from self._stats(who, request)
            else:
                yield from self._export(who, request)
        except Exception:
            logger.warning(
                "slack_tasklog: %s %s failed for user %s in team %s",
                self.command,
                verb,
                who.user_id,
                who.team_id,
                exc_info=True,
            )
            yield from self._reply(who, blocks.internal_error_message(verb))

    def home(self, user_id: str, team_id: str, enterprise_id: str | None, *, days: int = 7) -> Flow[None]:
        """Publish the App Home tab of ``user_id``: the last ``days`` days of their workspace. Never raises."""
        who = Invocation(text="", user_id=user_id, team_id=team_id, enterprise_id=enterprise_id, channel_id="")
        try:
            allowed = self.stats_access == "everyone" or user_id in self.admins
            if not allowed and self.workspace_admins:
                try:
                    allowed = yield from self._is_workspace_admin(who)
                except _RoleUnknownError as error:
                    logger.warning("slack_tasklog: users.info failed for user %s (%s); App Home restricted", user_id,
                                   error)  # fmt: skip
            if allowed:
                now = self._clock()
                stats: Stats = yield RunBlocking(
                    partial(self._read_stats, since=now - timedelta(days=days), until=now, who=who, agent=None)
                )
                details = yield from self._failure_details(who, stats, public=False)
                view = blocks.home_view(
                    stats, days=days, updated=now, failure_details=details, plain_failures=self.plain_failures
                )
            else:
                view = blocks.home_restricted_view()
            yield from self._call("views_publish", {"user_id": user_id, "view": view})
        except Exception:
            logger.warning(
                "slack_tasklog: could not publish the App Home of user %s in team %s", user_id, team_id, exc_info=True
            )

    # -- access -----------------------------------------------------------------------------------------------

    def _allowed(self, who: Invocation, verb: str) -> Flow[bool]:
        """Whether ``who`` may run ``verb``; a refusal is logged (who, when — never the text) and answered."""
        if who.user_id in self.admins:
            return True
        allowed = False
        if self.workspace_admins:
            try:
                allowed = yield from self._is_workspace_admin(who)
            except _RoleUnknownError as error:
                logger.warning(
                    "slack_tasklog: users.info failed for user %s in team %s (%s); %s %s refused",
                    who.user_id,
                    who.team_id,
                    error,
                    self.command,
                    verb,
                )
                yield from self._reply(who, blocks.role_unknown_message(str(error)))
                return False
        if not allowed:
            logger.info(
                "slack_tasklog: refused %s %s to user %s (team %s, enterprise %s, channel %s) at %s: not an admin",
                self.command,
                verb,
                who.user_id,
                who.team_id,
                who.enterprise_id or "-",
                who.channel_id,
                self._clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            yield from self._reply(who, blocks.refusal_message(verb, workspace_admins=self.workspace_admins))
        return allowed

    def _failure_details(self, who: Invocation, stats: Stats, *, public: bool) -> Flow[bool]:
        """Whether ``who`` sees the failures' full text (they can quote requests, as the export does) rather than
        their types: ``failure_details="everyone"``, or, by default, people who may export, in their own reply."""
        if self.failure_details != "exporters":
            return self.failure_details == "everyone"
        if public:
            return False
        # Nothing to hide (no failure, or none that quotes anything), or stats_access="admins" let only the people
        # who may export this far: no need to ask Slack who this is.
        if (
            all(blocks.failure_type(f.message, self.plain_failures) == f.message for f in stats.failures)
            or self.stats_access == "admins"
            or who.user_id in self.admins
        ):
            return True
        details = False
        if self.workspace_admins:
            try:
                details = yield from self._is_workspace_admin(who)
            except _RoleUnknownError as error:
                logger.info("slack_tasklog: users.info failed for user %s in team %s (%s); failures shown by type",
                            who.user_id, who.team_id, error)  # fmt: skip
        return details

    def _is_workspace_admin(self, who: Invocation) -> Flow[bool]:
        key = (who.enterprise_id, who.team_id, who.user_id)
        cached = self.roles.get(key)
        if cached is not None:
            return cached
        try:
            data = yield from self._call("users_info", {"user": who.user_id})
        except Exception as error:
            raise _RoleUnknownError(slack_error(error)) from error
        user = data.get("user")
        allowed = is_workspace_admin(user if isinstance(user, Mapping) else None)
        self.roles.put(key, allowed)
        return allowed

    # -- stats ------------------------------------------------------------------------------------------------

    def _stats(self, who: Invocation, request: StatsRequest) -> Flow[None]:
        if self.stats_access == "admins" and not (yield from self._allowed(who, "stats")):
            return
        since, until = request.time_filter.bounds(self._clock())
        stats: Stats = yield RunBlocking(
            partial(self._read_stats, since=since, until=until, who=who, agent=request.agent)
        )
        if not request.chart:
            details = yield from self._failure_details(who, stats, public=request.public)
            message = blocks.stats_message(
                stats, request, user_id=who.user_id, failure_details=details, plain_failures=self.plain_failures
            )
            yield from self._reply(who, message)
            return
        if stats.tasks == 0:
            yield from self._reply(who, blocks.stats_message(stats, request, user_id=who.user_id))
            return
        try:
            title = blocks.chart_title(request, for_slack=False)
            png: bytes = yield RunBlocking(partial(chart.render_png, stats, title))
        except chart.ChartsUnavailableError as error:
            logger.warning("slack_tasklog: %s", error)
            yield from self._reply(who, blocks.charts_unavailable_message())
            return
        with tempfile.TemporaryFile() as spool:
            spool.write(png)
            spool.seek(0)
            upload = {
                "filename": blocks.chart_filename(who.team_id, since, until),
                "title": blocks.chart_title(request),
            }
            comment = partial(blocks.chart_comment, request, user_id=who.user_id)
            yield from self._deliver(who, spool, upload, comment, what="chart")

    def _read_stats(
        self, *, since: datetime | None, until: datetime | None, who: Invocation, agent: str | None
    ) -> Stats:
        # What this process recorded a moment ago should be in the figures, but a busy writer must not hold the
        # answer up for long.
        self.tasklog.flush(_STATS_FLUSH_TIMEOUT)
        with self.tasklog.connect() as conn:
            return compute_stats(
                conn,
                since=since,
                until=until,
                team_id=who.team_id,
                enterprise_id=who.enterprise_id,
                agent=agent,
                top_failures=ALL_FAILURES,
            )

    # -- export -----------------------------------------------------------------------------------------------

    def _export(self, who: Invocation, request: ExportRequest) -> Flow[None]:
        if not (yield from self._allowed(who, "export")):
            return
        since, until = request.time_filter.bounds(self._clock())
        # The CSV is spooled to a temporary file (on disk beyond a few MB), so a large export is never held in
        # memory twice; slack_sdk reads it once to upload it.
        with tempfile.TemporaryFile() as spool:
            try:
                rows: int = yield RunBlocking(
                    partial(self._write_csv, spool, since=since, until=until, who=who, agent=request.agent)
                )
            except TimeoutError as error:
                # The database is busy or away: not a fault of the task log's, and worth trying again soon.
                logger.warning("%s", error)
                yield from self._reply(who, blocks.export_busy_message())
                return
            if rows == 0:
                yield from self._reply(who, blocks.empty_export_message(request, since, until))
                return
            upload = {
                "filename": blocks.export_filename(who.team_id, since, until),
                "title": blocks.export_title(request),
            }
            comment = partial(blocks.export_comment, request, rows=rows, since=since, until=until, user_id=who.user_id)
            yield from self._deliver(who, spool, upload, comment, what="export", rows=rows)

    def _deliver(
        self,
        who: Invocation,
        spool: IO[bytes],
        upload: Mapping[str, Any],
        comment: Callable[..., str],
        *,
        what: str,
        rows: int | None = None,
    ) -> Flow[None]:
        """Upload a file into the conversation the command came from; where the bot cannot post, into the user's
        DM with the bot, telling them where it went."""
        try:
            yield from self._upload(spool, channel=who.channel_id, initial_comment=comment(), **upload)
        except Exception as error:
            if slack_error(error) not in _FALLBACK_ERRORS:
                yield from self._upload_failed(who, error, "the conversation", what)
                return
            logger.info(
                "slack_tasklog: cannot post in %s (%s); sending the %s to user %s's DM",
                who.channel_id,
                slack_error(error),
                what,
                who.user_id,
            )
        else:
            return
        try:
            opened = yield from self._call("conversations_open", {"users": who.user_id})
            dm = str(opened["channel"]["id"])
            where = f"<#{who.channel_id}>" if who.channel_id[:1] in ("C", "G") else "a conversation"
            sent = yield from self._upload(spool, channel=dm, initial_comment=comment(elsewhere=where), **upload)
        except Exception as error:
            yield from self._upload_failed(who, error, "your DM", what)
            return
        permalink = (sent.get("file") or {}).get("permalink")
        yield from self._reply(who, blocks.dm_fallback_message(permalink, rows))

    def _write_csv(
        self,
        spool: IO[bytes],
        *,
        since: datetime | None,
        until: datetime | None,
        who: Invocation,
        agent: str | None,
    ) -> int:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        try:
            return self.tasklog.export_csv(
                text, since=since, until=until, agent=agent, team_id=who.team_id, enterprise_id=who.enterprise_id
            )
        finally:
            text.flush()
            text.detach()  # keep the spool open for the upload

    def _upload(self, spool: IO[bytes], **arguments: Any) -> Flow[dict[str, Any]]:
        data: dict[str, Any] = yield from self._call("files_upload_v2", {"file": spool, **arguments}, rewind=spool)
        return data

    def _upload_failed(self, who: Invocation, error: Exception, where: str, what: str) -> Flow[None]:
        code = slack_error(error)
        wait = retry_after(error)
        logger.warning("slack_tasklog: could not upload the %s for user %s to %s: %s", what, who.user_id, where, code)
        yield from self._reply(who, blocks.failure_message(code, retry_after=wait))

    # -- talking to Slack -------------------------------------------------------------------------------------

    def _call(self, method: str, arguments: Mapping[str, Any], *, rewind: IO[bytes] | None = None) -> Flow[Any]:
        """Call a Web API method, retrying rate limits (bounded, honouring Retry-After)."""
        attempt = 0
        while True:
            if rewind is not None:
                rewind.seek(0)
            try:
                return (yield CallSlack(method, arguments))
            except Exception as error:
                wait = retry_delay(error, attempt)
                if wait is None:
                    raise
                attempt += 1
                logger.warning(
                    "slack_tasklog: Slack rate-limited %s; retrying in %.0f s (retry %d of %d)",
                    method,
                    wait,
                    attempt,
                    _MAX_RETRIES,
                )
                yield Wait(wait)

    def _reply(self, who: Invocation, message: Mapping[str, Any]) -> Flow[None]:
        """The command's one ``response_url`` post; if that fails, the Web API. Never raises."""
        try:
            yield PostResponse(message)
            return
        except Exception as error:
            logger.warning(
                "slack_tasklog: %s's response_url failed (%s); answering through the Web API",
                self.command,
                slack_error(error),
            )
        public = message.get("response_type") == "in_channel"
        arguments = {key: value for key, value in message.items() if key in ("text", "blocks")}
        arguments["channel"] = who.channel_id
        if not public:
            arguments["user"] = who.user_id
        try:
            yield from self._call("chat_postMessage" if public else "chat_postEphemeral", arguments)
        except Exception as error:
            logger.warning(
                "slack_tasklog: could not answer %s for user %s in %s: %s",
                self.command,
                who.user_id,
                who.channel_id,
                slack_error(error),
            )


# -- Bolt wiring -----------------------------------------------------------------------------------------------


def register_commands(app: Any, flow: CommandFlow) -> None:
    """Add ``flow.command`` to a Bolt ``App`` or ``AsyncApp``: an ack listener and a lazy listener."""
    if hasattr(app, "async_dispatch"):
        _register_async(app, flow)
    else:
        _register_sync(app, flow)


def _register_sync(app: Any, flow: CommandFlow) -> None:
    def tasklog_command_ack(ack: Any, body: dict[str, Any]) -> None:
        message = flow.acknowledgement(body)
        if message is None:
            ack()
        else:
            ack(**message)

    def tasklog_command_work(body: dict[str, Any], client: Any, respond: Any) -> None:
        run_flow(flow.run(Invocation.from_body(body)), client, respond)

    app.command(flow.command)(ack=tasklog_command_ack, lazy=[tasklog_command_work])


def _register_async(app: Any, flow: CommandFlow) -> None:
    async def tasklog_command_ack(ack: Any, body: dict[str, Any]) -> None:
        message = flow.acknowledgement(body)
        if message is None:
            await ack()
        else:
            await ack(**message)

    async def tasklog_command_work(body: dict[str, Any], client: Any, respond: Any) -> None:
        await run_flow_async(flow.run(Invocation.from_body(body)), client, respond)

    app.command(flow.command)(ack=tasklog_command_ack, lazy=[tasklog_command_work])


def register_app_home(app: Any, flow: CommandFlow, *, days: int = 7) -> None:
    """Publish the App Home tab (``app_home_opened``, the Home tab only) of whoever opens it."""

    def viewer(body: Mapping[str, Any], event: Mapping[str, Any]) -> tuple[str, str, str | None] | None:
        if event.get("tab", "home") != "home" or not event.get("user"):
            return None
        team = str(body.get("team_id") or event.get("view", {}).get("team_id") or "")
        enterprise = body.get("enterprise_id")
        return str(event["user"]), team, str(enterprise) if enterprise else None

    if hasattr(app, "async_dispatch"):

        async def tasklog_app_home_async(body: dict[str, Any], event: dict[str, Any], client: Any) -> None:
            who = viewer(body, event)
            if who is not None:
                await run_flow_async(flow.home(*who, days=days), client, None)

        app.event("app_home_opened")(tasklog_app_home_async)
        return

    def tasklog_app_home(body: dict[str, Any], event: dict[str, Any], client: Any) -> None:
        who = viewer(body, event)
        if who is not None:
            run_flow(flow.home(*who, days=days), client, None)

    app.event("app_home_opened")(tasklog_app_home)


def plain_failures(tasklog: object) -> frozenset[str]:
    """Failure texts that quote no request, shown as they are to everyone: the task log's unassigned error."""
    unassigned = getattr(tasklog, "unassigned_error", None)
    return frozenset([unassigned]) if isinstance(unassigned, str) and unassigned else frozenset()


def admins_from(value: Iterable[str] | str | None, environ: Mapping[str, str]) -> frozenset[str]:
    """The ``admins=`` user IDs: the given ones, else ``$TASKLOG_ADMINS`` (comma- or space-separated)."""
    if value is None:
        value = environ.get("TASKLOG_ADMINS", "")
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return frozenset(user.strip() for user in value if user and user.strip())
