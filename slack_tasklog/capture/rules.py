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

from slack_tasklog.events import MessageDeleted, MessageInThread, TaskRequested

__all__ = ["capture", "capture_event", "strip_leading_mention"]

# Subtypes that are still a person talking. Everything else (message_changed, message_deleted, channel_join,
# bot_message, ...) is bookkeeping or a bot.
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})

_new = tuple.__new__
_USER_ID = re.compile(r"[A-Z0-9]+")
_AFTER_MENTION = " \t\r\n,:"


def strip_leading_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the app's own leading mention: ``"<@U0BOT> write a poem"`` → ``"write a poem"``.

    When the app's user id is unknown, the first leading mention is taken to be the app's (an ``app_mention``
    nearly always starts with it). A leading mention of someone else is kept.
    """
    text = text.strip()
    if text.startswith("<@"):
        end = text.find(">")
        mentioned = text[2:end].partition("|")[0] if end > 2 else ""
        if _USER_ID.fullmatch(mentioned) and (bot_user_id is None or mentioned == bot_user_id):
            return text[end + 1 :].lstrip(_AFTER_MENTION).rstrip()
    return text


def capture_event(
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
    captured = capture(body, team_id, enterprise_id, bot_user_id, follow_ups)
    if type(captured) is TaskRequested:
        return captured._replace(text=captured.stored_text(), mention=None)
    return captured


def capture(  # noqa: PLR0911 - one early return per rule reads better than nested conditions
    body: Mapping[str, Any],
    team_id: str | None,
    enterprise_id: str | None,
    bot_user_id: str | None,
    follow_ups: bool,
) -> TaskRequested | MessageInThread | MessageDeleted | None:
    """:func:`capture_event` with positional arguments: the middleware's hot path, where every microsecond shows
    in Bolt's dispatch time (exact type checks first, the general ones only for unusual payloads)."""
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if type(event) is not dict and not isinstance(event, Mapping):
        return None
    kind = event.get("type")
    if kind != "app_mention" and kind != "message":  # noqa: PLR1714 - two compares beat building a tuple
        return None
    subtype = event.get("subtype")
    if subtype is not None and subtype not in _PERSON_SUBTYPES:
        return _deleted(body, event, team_id) if subtype == "message_deleted" else None
    if event.get("bot_id") or event.get("hidden"):
        return None
    user = event.get("user")
    channel = event.get("channel")
    ts = event.get("ts")
    if not (type(user) is str and user and type(channel) is str and channel and type(ts) is str and ts):
        return None
    if user == bot_user_id:  # the app's own messages, should one arrive without a bot_id
        return None
    thread_ts = event.get("thread_ts")
    if type(thread_ts) is not str or not thread_ts:
        thread_ts = None
    text = event.get("text")
    if type(text) is not str:
        text = ""
    team = team_id or _str_or_none(body.get("team_id")) or _str_or_none(event.get("team")) or ""
    # tuple.__new__ skips the named tuples' Python-level __new__; the app's mention is stripped by the writer
    # ("" when the app's user id is unknown: strip whichever user is mentioned first).
    if kind == "app_mention":
        enterprise = enterprise_id or _str_or_none(body.get("enterprise_id"))
        mention = bot_user_id or ""
        return _new(TaskRequested, (team, enterprise, channel, thread_ts or ts, ts, user, text, mention))
    if not follow_ups or thread_ts is None or thread_ts == ts:
        return None
    return _new(MessageInThread, (team, channel, thread_ts, ts, user, text))


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
