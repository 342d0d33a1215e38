"""What the request path hands to the background writer.

Named tuples of plain values only (strings, numbers, tuples): the cheapest immutable record Python makes (a
frozen dataclass costs several times more to build, which matters on Bolt's request path), and one that
``marshal`` writes to the journal in well under a microsecond. Times are Unix seconds as floats: turning them
into datetimes is the writer's job, off the request path.
"""

from __future__ import annotations

import marshal
from typing import Any, NamedTuple

__all__ = [
    "AssignmentRecorded",
    "Event",
    "MessageDeleted",
    "MessageInThread",
    "OutcomeRecorded",
    "RawSlackEvent",
    "SlackEvent",
    "TaskRequested",
    "decode_event",
    "encode_event",
]


class TaskRequested(NamedTuple):
    """An app mention that opens a task, or, when its thread already holds one, is a follow-up of it."""

    team_id: str
    enterprise_id: str | None
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None
    # The app's user id while ``text`` still starts with its mention: the writer strips it (see ``stored_text``),
    # so the request path does not have to.
    mention: str | None = None

    def stored_text(self) -> str | None:
        """The text as stored: without the app's own leading mention."""
        if self.text is None or self.mention is None:
            return self.text
        from slack_tasklog.capture.rules import strip_leading_mention

        return strip_leading_mention(self.text, self.mention or None)


class MessageInThread(NamedTuple):
    """A person's message in a thread: a follow-up if the thread holds a task, otherwise nothing."""

    team_id: str
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str
    text: str | None


class AssignmentRecorded(NamedTuple):
    """One call of ``check_and_assign``: every agent's confidence and who (if anyone) got the task."""

    id: str
    thread_ts: str
    channel_id: str | None
    team_id: str | None
    agent: str | None
    confidence: float | None
    evaluations: tuple[tuple[str, float | None], ...]
    recorded_at: float
    # The failure recorded when nobody was assigned; kept on the event so every process agrees on it.
    unassigned_error: str


class OutcomeRecorded(NamedTuple):
    """One call of ``process_assignment``: success or the error, and the wall-clock time it took."""

    id: str
    thread_ts: str
    channel_id: str | None
    team_id: str | None
    agent: str | None
    success: bool
    execution_time: float
    error_message: str | None
    started_at: float
    finished_at: float


class MessageDeleted(NamedTuple):
    """Someone deleted a Slack message: if it is a task's request or a follow-up, its stored text is erased."""

    team_id: str
    channel_id: str
    ts: str


class SlackEvent(NamedTuple):
    """An Events API request, not yet looked at: the request path's fast lane.

    Deciding what a message records takes longer than Bolt's whole dispatch can spare, so when nothing needs the
    text before it is journaled (no ``redact``, text stored), the middleware hands over the body as Bolt parsed it
    (``body``, in memory only) and the raw request body (``raw``, for the journal), and the writer decides.

    The middleware queues these fields as a plain tuple (:data:`RawSlackEvent`): a tuple subclass costs a
    ``tuple.__new__`` call to build, and every index into it a generic lookup, where a plain tuple's are inline in the
    interpreter. What the journal gives back is a ``SlackEvent``; the writer takes either.
    """

    raw: str
    team_id: str | None
    enterprise_id: str | None
    bot_user_id: str | None
    follow_ups: bool
    body: Any = None


# A SlackEvent's fields as the middleware queues them: a plain tuple, told apart by ``type(event) is tuple`` (every
# other event is a NamedTuple).
RawSlackEvent = tuple[str, str | None, str | None, str | None, bool, Any]

Event = (
    TaskRequested | MessageInThread | AssignmentRecorded | OutcomeRecorded | MessageDeleted | SlackEvent | RawSlackEvent
)

# -- the journal's record format --------------------------------------------------------------------------------
# marshal of (index, kind, *fields), fields in the order above. marshal's format for str/float/None/bool/tuple has
# not changed since Python 3.4; the journal is a local, short-lived file read back by this package.
#
# Except for a SlackEvent, the request path's own record: text, "\x1d", then follow_ups (0/1), team, enterprise and
# bot user ids ("" for None), each after a "\x1f", then "\x1f" and the raw body, encoded once as UTF-8. Inside a
# Bolt dispatch, marshalling the tuple cost 4-7 µs of the dispatch against 1-2 µs for this (measured, see
# benchmarks/README.md): only string formatting and encoding, code that Bolt itself keeps warm. It holds no index:
# whoever reads the journal back counts records (see _journal.read_spilled), which spares formatting a number on the
# request path. Records of earlier versions start with "\x1e" and the index. A record starting with either is never
# marshal's (its first byte is a type code, from "(" to "{", possibly with 0x80 set).

_KINDS: tuple[type[Any], ...] = (
    TaskRequested,
    MessageInThread,
    AssignmentRecorded,
    OutcomeRecorded,
    MessageDeleted,
    SlackEvent,
)
_KIND_OF: dict[type[Any], int] = {cls: code for code, cls in enumerate(_KINDS)}
_SLACK_EVENT = _KIND_OF[SlackEvent]
_dumps = marshal.dumps
_TEXT = b"\x1d"  # first byte of a SlackEvent's text record (the f-string in encode_event starts with it)
_INDEXED_TEXT = b"\x1e"  # the same, with the index, as earlier versions wrote it
_SEPARATOR = "\x1f"
_NOTHING = object()


def encode_event(index: int, event: Event) -> bytes:
    """The journal record for ``event`` (``index`` is the writer's sequence number; a text record leaves it out)."""
    if type(event) is tuple or type(event) is SlackEvent:  # the parsed body stays in memory; the raw one is journaled
        # The same ids as the last request (nearly always: one workspace, or a burst from one): four comparisons
        # are cheaper on the request path than hashing fresh strings for the lookup in _MIDDLES.
        fields: RawSlackEvent = event  # type: ignore[assignment] # mypy does not narrow on ``type(x) is tuple``
        last = _LAST
        if fields[1] == last[0] and fields[2] == last[1] and fields[3] == last[2] and fields[4] is last[3]:
            middle = last[4]
        else:
            middle = _middle(fields[1:5])
        if middle is not None:  # else an id holds the separator itself, or is no string: marshal it
            try:
                return f"\x1d{middle}{fields[0]}".encode()
            except UnicodeEncodeError:  # a lone surrogate, which marshal keeps
                pass
        return _dumps((index, _SLACK_EVENT, *fields[:5]))
    return _dumps((index, _KIND_OF[type(event)], *event))


# A text record's fields between its first byte and the raw body, "\x1f<follow_ups>\x1f<team>\x1f<enterprise>\x1f<bot
# user>\x1f", by (team, enterprise, bot user, follow_ups): an app sees a few of these, so the request path looks its
# one up instead of formatting four fields (half of the record's cost). None: an id holds the separator.
_MIDDLES: dict[tuple[Any, ...], str | None] = {}
_MAX_MIDDLES = 1_024
# The last ids looked up and their middle, as one tuple: replaced whole, so a reader in another thread sees one pair.
_LAST: tuple[Any, ...] = (_NOTHING, _NOTHING, _NOTHING, _NOTHING, None)


def _middle(ids: tuple[Any, ...]) -> str | None:
    global _LAST  # noqa: PLW0603 - read on the request path as a plain global, the cheapest lookup
    team_id, enterprise_id, bot_user_id, follow_ups = ids
    if not all(value is None or type(value) is str for value in (team_id, enterprise_id, bot_user_id)):
        return None  # marshalled as they are, like the event kept in memory (and not remembered: maybe unhashable)
    try:
        middle = _MIDDLES[ids]
    except KeyError:
        flag = "1" if follow_ups else "0"
        text = f"\x1f{flag}\x1f{team_id or ''}\x1f{enterprise_id or ''}\x1f{bot_user_id or ''}\x1f"
        middle = text if text.count(_SEPARATOR) == 5 else None
        if len(_MIDDLES) >= _MAX_MIDDLES:  # a bound, for an app serving very many workspaces
            _MIDDLES.clear()
        _MIDDLES[ids] = middle
    _LAST = (*ids, middle)
    return middle


def decode_event(record: bytes) -> tuple[int | None, Event]:
    """The inverse of :func:`encode_event`, with the index if the record holds one; raises ValueError for anything
    else."""
    if record[:1] in (_TEXT, _INDEXED_TEXT):
        return _decode_text(record)
    try:
        index, kind, *values = marshal.loads(record)
        event: Event = _KINDS[kind](*values)
    except (TypeError, IndexError, ValueError, EOFError) as error:
        raise ValueError(f"not a journal record: {error}") from error
    if type(index) is not int:
        raise ValueError("not a journal record: bad sequence number")
    return index, event


def _decode_text(record: bytes) -> tuple[int | None, SlackEvent]:
    try:
        index, follow_ups, team_id, enterprise_id, bot_user_id, raw = record[1:].decode().split(_SEPARATOR, 5)
        if follow_ups not in ("0", "1"):
            raise ValueError(f"bad follow_ups flag {follow_ups!r}")
        if record[:1] == _TEXT:
            if index:
                raise ValueError("text before the first separator")
            number = None
        else:
            number = int(index)
        return number, SlackEvent(raw, team_id or None, enterprise_id or None, bot_user_id or None, follow_ups == "1")
    except ValueError as error:  # UnicodeDecodeError, too few fields, a bad number
        raise ValueError(f"not a journal record: {error}") from error
