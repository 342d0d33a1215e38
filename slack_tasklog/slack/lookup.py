"""What the writer asks Slack about a reaction: which thread the message reacted to is in, and whether the person who
reacted is a bot.

A reaction names only its message. The request and the follow-ups are in the database; the bot's own answers are
not (Bolt keeps the app's own messages from global middlewares), so for those the writer asks
``conversations.replies`` with the message's ts (scopes ``channels:history``, ``groups:history``, ``im:history``,
``mpim:history``). Reaction events carry no bot marker, so ``users.info`` (``users:read``) tells bots apart.

Only the writer thread calls this, before its transaction, never the request path. Answers are cached (at most
``max_entries`` each, least recent out). Every failure is logged at most once a minute and answered with "unknown"
(no thread: the vote waits a while for its message to be recorded; not a bot); after ``missing_scope`` or a rate
limit the workspace is not asked again for a while. Nothing here raises.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from slack_tasklog.logs import RateLimitedLog

__all__ = ["SlackLookup"]

_ENTRIES = 10_000
_TIMEOUT = 5.0
# How long a workspace is not asked again after it refused for want of a scope (a reinstall takes minutes).
_SCOPE_PAUSE = 600.0
_failures = RateLimitedLog()

K = TypeVar("K")
V = TypeVar("V")


class _Cache(Generic[K, V]):
    """At most ``size`` answers, least recently used out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        if key not in self._entries:
            return False, None
        self._entries.move_to_end(key)
        return True, self._entries[key]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class SlackLookup:
    """The writer's questions to Slack (the :class:`~slack_tasklog.storage.store.SlackDirectory` of a ``TaskLog``).

    Each workspace is asked with the bot token its events came with (:meth:`remember`, called by the middleware:
    the token Bolt's authorization found, so OAuth installs work); ``fallback`` (a ``slack_sdk.WebClient``, such
    as ``digest_client`` or one with ``$SLACK_BOT_TOKEN``) answers for workspaces with none.
    """

    def __init__(
        self,
        fallback: Any = None,
        *,
        max_entries: int = _ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fallback = fallback
        self._clock = clock
        self._lock = threading.Lock()
        # team -> (token, base_url), as the middleware saw them
        self._tokens: dict[str, tuple[str, str | None]] = {}
        self._clients: dict[str, tuple[tuple[str, str | None], Any]] = {}
        self._threads: _Cache[tuple[str, str, str], str | None] = _Cache(max_entries)
        self._bots: _Cache[tuple[str, str], bool] = _Cache(max_entries)
        self._paused: dict[str, float] = {}

    @classmethod
    def from_environment(cls, fallback: Any = None) -> SlackLookup:
        """A lookup whose fallback is ``fallback``, else a ``WebClient`` with ``$SLACK_BOT_TOKEN`` if set."""
        if fallback is None and os.environ.get("SLACK_BOT_TOKEN"):
            from slack_sdk import WebClient

            fallback = WebClient(token=os.environ["SLACK_BOT_TOKEN"], timeout=int(_TIMEOUT))
        return cls(fallback)

    def remember(self, team_id: str, token: str, base_url: str | None = None) -> None:
        """The bot token (and Web API base URL) a workspace's events come with. Cheap: called on the request path."""
        if self._tokens.get(team_id) != (token, base_url):
            with self._lock:
                self._tokens[team_id] = (token, base_url)

    def thread_of(self, team_id: str, channel_id: str, ts: str) -> str | None:
        key = (team_id, channel_id, ts)
        known, thread = self._threads.get(key)
        if known:
            return thread
        answer, definitive = self._call(team_id, "conversations.replies", channel=channel_id, ts=ts, limit=1)
        if answer is None:
            if definitive:  # thread_not_found, not_in_channel...: asking again would not help
                self._threads.put(key, None)
            return None
        messages = answer.get("messages") or []
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        thread = first.get("thread_ts") or first.get("ts")
        thread = thread if isinstance(thread, str) and thread else None
        self._threads.put(key, thread)
        return thread

    def is_bot(self, team_id: str, user_id: str) -> bool:
        key = (team_id, user_id)
        known, bot = self._bots.get(key)
        if known:
            return bool(bot)
        answer, definitive = self._call(team_id, "users.info", user=user_id)
        if answer is None:
            if definitive:
                self._bots.put(key, False)
            return False
        user = answer.get("user") or {}
        bot = bool(user.get("is_bot")) or user_id == "USLACKBOT"
        self._bots.put(key, bot)
        return bot

    def _client(self, team_id: str) -> Any:
        with self._lock:
            learned = self._tokens.get(team_id)
            if learned is None:
                return self._fallback
            held = self._clients.get(team_id)
            if held is not None and held[0] == learned:
                return held[1]
        from slack_sdk import WebClient

        token, base_url = learned
        options: dict[str, Any] = {"token": token, "timeout": int(_TIMEOUT)}
        if base_url:
            options["base_url"] = base_url
        client = WebClient(**options)
        with self._lock:
            self._clients[team_id] = (learned, client)
        return client

    def _call(self, team_id: str, method: str, **params: Any) -> tuple[dict[str, Any] | None, bool]:
        """The answer's data, or None after logging why there is none; and whether that answer is final (Slack said
        no for a reason asking again will not change, as opposed to a rate limit, a missing scope or the network)."""
        if self._paused.get(team_id, 0.0) > self._clock():
            return None, False
        client = self._client(team_id)
        if client is None:
            _failures.warning(
                "no client",
                "slack_tasklog: reactions on the bot's own answers need a bot token ($SLACK_BOT_TOKEN, or events "
                "through TaskLog.middleware); such votes are skipped",
            )
            return None, False
        try:
            response = client.api_call(method, params=params)
            return (response.data if isinstance(response.data, dict) else None), True
        except Exception as error:
            return None, self._failed(team_id, method, error)

    def _failed(self, team_id: str, method: str, error: Exception) -> bool:
        """Log a failed call (at most once a minute per method and error); True if its answer is final."""
        response = getattr(error, "response", None)
        code = response.get("error") if response is not None else None
        final = code is not None
        if code in ("missing_scope", "not_allowed_token_type", "invalid_auth", "not_authed"):
            self._paused[team_id] = self._clock() + _SCOPE_PAUSE
            final = False
        elif code == "ratelimited" and response is not None:
            headers = response.headers
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            self._paused[team_id] = self._clock() + _seconds(retry_after, default=30.0)
            final = False
        consequence = (
            "the vote it was for is skipped unless its message is recorded soon"
            if method != "users.info"
            else "the reaction counts as a person's"
        )
        _failures.warning(
            f"{method} {code}",
            "slack_tasklog: %s failed (%s); %s%s",
            method,
            code or type(error).__name__,
            consequence,
            " (add the scope it names, see the README)" if code == "missing_scope" else "",
        )
        return final


def _seconds(value: object, *, default: float) -> float:
    """A ``Retry-After`` header's seconds; ``default`` when it is missing or not a number of seconds."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return seconds if 0 <= seconds < 3600 else default
