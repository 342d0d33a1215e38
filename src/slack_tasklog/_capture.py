"""Which Slack events are task requests and follow-ups: pure decisions, no I/O.

The rules, in the order they are applied:

- Only Events API ``event_callback`` bodies with an ``app_mention`` or ``message`` event.
- Never a bot's message (``bot_id`` is set on nearly all of them, with or without the ``bot_message`` subtype), the
  app's own messages, edits, deletions or other hidden subtypes; only people's plain messages, file shares,
  ``/me`` messages and replies also sent to the channel.
- An ``app_mention`` is a :class:`TaskRequested` keyed on its thread: the writer makes it the task's request if
  the thread holds no task yet, or a follow-up if it does.
- A ``message`` inside a thread is a :class:`MessageInThread`: a follow-up if the thread holds a task. Top-level
  messages (channel chatter, and the ``message`` copy of a top-level mention) are ignored.
- A ``message_deleted`` is a :class:`MessageDeleted`: if the deleted message is a task's request or a follow-up,
  its stored text is erased (the task's numbers stay).

Deciding whether a thread holds a task needs the database, so that part happens in the writer, off the request
path. Exactly-once rests on Slack's own key for a message, (team, channel, ts): retries and the ``message`` copy
of a mention carry the same key and are written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._events import MessageDeleted, MessageInThread, TaskRequested

__all__ = ["capture_event", "strip_leading_mention"]

# Subtypes that are still a person talking. Everything else (message_changed, message_deleted, channel_join,
# bot_message, ...) is bookkeeping or a bot.
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})

_LEADING_MENTION = re.compile(r"\A\s*<@([A-Z0-9]+)(?:\|[^>]*)?>[\s,:]*")


def strip_leading_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the app's own leading mention: ``"<@U0BOT> write a poem"`` → ``"write a poem"``.

    When the app's user id is unknown, the first leading mention is taken to be the app's (an ``app_mention``
    nearly always starts with it). A leading mention of someone else is kept.
    """
    match = _LEADING_MENTION.match(text)
    if match is None or (bot_user_id is not None and match.group(1) != bot_user_id):
        return text.strip()
    return text[match.end() :].strip()


def capture_event(  # noqa: PLR0911 - one early return per rule reads better than nested conditions
    body: Mapping[str, Any],
    *,
    team_id: str | None = None,
    enterprise_id: str | None = None,
    bot_user_id: str | None = None,
    follow_ups: bool = True,
) -> TaskRequested | MessageInThread | MessageDeleted | None:
    """Decide what, if anything, an Events API body records.

    ``team_id``, ``enterprise_id`` and ``bot_user_id`` come from Bolt's context when known (the
    installation that received the event); the body's own fields are the fallback.
    """
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, Mapping):
        return None
    kind = event.get("type")
    if kind not in ("app_mention", "message"):
        return None
    if event.get("subtype") == "message_deleted":
        return _deleted(body, event, team_id)
    if event.get("bot_id") or event.get("hidden"):
        return None
    subtype = event.get("subtype")
    if subtype is not None and subtype not in _PERSON_SUBTYPES:
        return None
    user = event.get("user")
    channel = event.get("channel")
    ts = event.get("ts")
    if not (isinstance(user, str) and user and isinstance(channel, str) and channel and isinstance(ts, str) and ts):
        return None
    if user == bot_user_id:  # the app's own messages, should one arrive without a bot_id
        return None
    thread_ts = event.get("thread_ts")
    if not isinstance(thread_ts, str) or not thread_ts:
        thread_ts = None
    text = event.get("text")
    if not isinstance(text, str):
        text = ""
    team = team_id or _str_or_none(body.get("team_id")) or _str_or_none(event.get("team")) or ""
    if kind == "app_mention":
        return TaskRequested(
            team_id=team,
            enterprise_id=enterprise_id or _str_or_none(body.get("enterprise_id")),
            channel_id=channel,
            thread_ts=thread_ts or ts,
            ts=ts,
            user_id=user,
            text=strip_leading_mention(text, bot_user_id),
        )
    if not follow_ups or thread_ts is None or thread_ts == ts:
        return None
    return MessageInThread(team_id=team, channel_id=channel, thread_ts=thread_ts, ts=ts, user_id=user, text=text)


def _deleted(body: Mapping[str, Any], event: Mapping[str, Any], team_id: str | None) -> MessageDeleted | None:
    channel = event.get("channel")
    deleted_ts = event.get("deleted_ts")
    previous = event.get("previous_message")
    if not isinstance(deleted_ts, str) and isinstance(previous, Mapping):
        deleted_ts = previous.get("ts")
    if not (isinstance(channel, str) and channel and isinstance(deleted_ts, str) and deleted_ts):
        return None
    team = team_id or _str_or_none(body.get("team_id")) or ""
    return MessageDeleted(team_id=team, channel_id=channel, ts=deleted_ts)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
