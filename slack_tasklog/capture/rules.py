"""Which Slack events are task requests and follow-ups: pure decisions, no I/O.

The rules, in the order they are applied:

- Only Events API ``event_callback`` bodies with an ``app_mention`` or ``message`` event.
- Never a bot's message (``bot_id`` is set on nearly all of them, with or without the ``bot_message`` subtype), the
  app's own messages, edits or other hidden subtypes; only people's plain messages, file shares, ``/me`` messages
  and replies also sent to the channel.
- An ``app_mention`` (in a channel or a group DM) is a :class:`TaskRequested` keyed on its thread: the writer makes
  it the task's request if the thread holds no task yet, or a follow-up if it does.
- A person's ``message`` in the app's direct-message channel (``channel_type: "im"``) is a :class:`TaskRequested`
  too, with the whole text (``direct_messages``): a top-level message opens a task on its own ts; in a thread (an
  assistant thread, or a reply) the first one opens the thread's task and later ones are its follow-ups.
- Any other ``message`` inside a thread is a :class:`MessageInThread`: a follow-up if the thread holds a task
  (``follow_ups``), or once its mention arrives (the writer keeps it a day: Slack does not promise order).
  Top-level messages in channels (chatter, and the ``message`` copy of a mention) are ignored.
- A ``message_deleted`` is a :class:`MessageDeleted`: if the deleted message is a task's request or a follow-up,
  its stored text is erased (the task's numbers stay).
- A ``reaction_added`` or ``reaction_removed`` on a message, with one of the feedback emoji (``feedback_emoji``;
  a skin-tone variant counts as its base), by anyone but the app, is a :class:`FeedbackGiven`: a vote on the task
  whose thread holds that message (which the writer finds). Other emoji, and reactions on files, are ignored.

Deciding whether a thread holds a task needs the database, so that part happens in the writer, off the request
path. Exactly-once rests on Slack's own key for a message, (team, channel, ts): retries and the ``message`` copy
of a mention carry the same key and are written once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_tasklog.events import FeedbackGiven, MessageDeleted, MessageInThread, TaskRequested

__all__ = [
    "CAPTURED_EVENT_TYPES",
    "DEFAULT_FEEDBACK_EMOJI",
    "CaptureRules",
    "CapturedMessage",
    "capture_event",
    "emoji_base",
    "strip_leading_mention",
]

CapturedMessage = TaskRequested | MessageInThread | MessageDeleted | FeedbackGiven

#: The Events API event types the rules look at.
CAPTURED_EVENT_TYPES = frozenset({"app_mention", "message", "reaction_added", "reaction_removed"})
_REACTIONS = ("reaction_added", "reaction_removed")

#: The emoji that are feedback by default: True for a vote up, False for a vote down (``TaskLog(feedback_emoji=...)``).
DEFAULT_FEEDBACK_EMOJI: Mapping[str, bool] = {
    **dict.fromkeys(("+1", "thumbsup", "white_check_mark", "heavy_check_mark", "tada"), True),
    **dict.fromkeys(("-1", "thumbsdown", "x", "no_entry"), False),
}

# Subtypes that are still a person talking. Everything else (message_changed, message_deleted, channel_join,
# bot_message, ...) is bookkeeping or a bot.
_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})
# The app's mention at the start of a text, ``<@U0BOT>`` or ``<@U0BOT|name>``, and what separates it from the rest.
_LEADING_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>[ \t\r\n,:]*")


@dataclass(frozen=True)
class CaptureRules:
    """The options of the rules above: follow-ups in task threads, and direct messages as requests."""

    follow_ups: bool = True
    direct_messages: bool = True
    #: Emoji base name -> True (vote up) or False (vote down); empty: reactions are not recorded.
    feedback_emoji: Mapping[str, bool] = field(default_factory=lambda: DEFAULT_FEEDBACK_EMOJI)

    def capture(  # noqa: PLR0911 - one early return per rule reads better than nested conditions
        self,
        body: Mapping[str, Any],
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        bot_user_id: str | None = None,
    ) -> CapturedMessage | None:
        """What, if anything, an Events API body records. ``team_id``, ``enterprise_id`` and ``bot_user_id`` come
        from Bolt's context when known (the installation that received the event); the body's fields are the
        fallback."""
        if body.get("type") != "event_callback":
            return None
        event = body.get("event")
        if not isinstance(event, Mapping) or event.get("type") not in CAPTURED_EVENT_TYPES:
            return None
        if event.get("type") in _REACTIONS:
            return self._feedback(body, event, team_id, bot_user_id)
        subtype = event.get("subtype")
        if subtype is not None and subtype not in _PERSON_SUBTYPES:
            return _deleted(body, event, team_id) if subtype == "message_deleted" else None
        if event.get("bot_id") or event.get("hidden"):
            return None
        user, channel, ts = _text(event.get("user")), _text(event.get("channel")), _text(event.get("ts"))
        if not (user and channel and ts) or user == bot_user_id:  # the app's own messages, should one lack bot_id
            return None
        thread_ts = _text(event.get("thread_ts"))
        text = event.get("text")
        if not isinstance(text, str):
            text = ""
        team = team_id or _text(body.get("team_id")) or _text(event.get("team")) or ""
        enterprise = enterprise_id or _text(body.get("enterprise_id"))
        if event.get("type") == "app_mention":
            text = strip_leading_mention(text, bot_user_id)
            return TaskRequested(team, enterprise, channel, thread_ts or ts, ts, user, text)
        if self.direct_messages and event.get("channel_type") == "im":
            return TaskRequested(team, enterprise, channel, thread_ts or ts, ts, user, text.strip())
        if not self.follow_ups or thread_ts is None or thread_ts == ts:
            return None
        return MessageInThread(team, channel, thread_ts, ts, user, text)

    def _feedback(
        self, body: Mapping[str, Any], event: Mapping[str, Any], team_id: str | None, bot_user_id: str | None
    ) -> FeedbackGiven | None:
        positive = self.feedback_emoji.get(emoji_base(_text(event.get("reaction")) or ""))
        item = event.get("item")
        if positive is None or not isinstance(item, Mapping) or item.get("type") != "message":
            return None
        user, channel, item_ts = _text(event.get("user")), _text(item.get("channel")), _text(item.get("ts"))
        # event_ts is what tells one reaction event from another; a retry carries the same.
        ts = _text(event.get("event_ts"))
        if not (user and channel and item_ts and ts) or user == bot_user_id or event.get("bot_id"):
            return None
        team = team_id or _text(body.get("team_id")) or ""
        added = event.get("type") == "reaction_added"
        return FeedbackGiven(team, channel, item_ts, None, user, emoji_base(event["reaction"]), positive, added, ts)


def capture_event(
    body: Mapping[str, Any],
    *,
    team_id: str | None = None,
    enterprise_id: str | None = None,
    bot_user_id: str | None = None,
    follow_ups: bool = True,
    direct_messages: bool = True,
) -> CapturedMessage | None:
    """Decide what, if anything, an Events API body records (the rules of this module, as the middleware applies
    them).

    >>> body = {"type": "event_callback", "team_id": "T1", "event": {"type": "app_mention", "user": "U1",
    ...         "channel": "C1", "ts": "1.000001", "text": "<@UBOT> write a poem"}}
    >>> capture_event(body, bot_user_id="UBOT").text
    'write a poem'
    """
    rules = CaptureRules(follow_ups=follow_ups, direct_messages=direct_messages)
    return rules.capture(body, team_id=team_id, enterprise_id=enterprise_id, bot_user_id=bot_user_id)


def emoji_base(name: str) -> str:
    """An emoji's name without colons or skin tone: ``"+1::skin-tone-3"`` → ``"+1"``, ``":tada:"`` → ``"tada"``.

    >>> emoji_base("+1::skin-tone-3")
    '+1'
    """
    return name.strip().partition("::")[0].strip(":")


def strip_leading_mention(text: str, bot_user_id: str | None) -> str:
    """Remove the app's own leading mention: ``"<@U0BOT> write a poem"`` → ``"write a poem"``.

    When the app's user id is unknown, the first leading mention is taken to be the app's (an ``app_mention``
    nearly always starts with it). A leading mention of someone else is kept.
    """
    text = text.strip()
    mention = _LEADING_MENTION.match(text)
    if mention is not None and (bot_user_id is None or mention[1] == bot_user_id):
        return text[mention.end() :]
    return text


def _deleted(body: Mapping[str, Any], event: Mapping[str, Any], team_id: str | None) -> MessageDeleted | None:
    channel = _text(event.get("channel"))
    deleted_ts = event.get("deleted_ts")
    previous = event.get("previous_message")
    if not isinstance(deleted_ts, str) and isinstance(previous, Mapping):
        deleted_ts = previous.get("ts")
    deleted_ts = _text(deleted_ts)
    if not (channel and deleted_ts):
        return None
    team = team_id or _text(body.get("team_id")) or ""
    return MessageDeleted(team_id=team, channel_id=channel, ts=deleted_ts)


def _text(value: object) -> str | None:
    """A non-empty string field, or None (Slack payloads are not always what they should be)."""
    return value if isinstance(value, str) and value else None
