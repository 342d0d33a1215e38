"""What request and follow-up texts are kept: ``TaskLog(store_text=..., redact=...)``, applied before anything is
queued or journaled, so a text that is not to be kept never reaches the disk.

Every text kept is made storable first, whatever Unicode it holds: Slack's JSON may carry a lone surrogate
(``"\\ud800"``), which no database encodes, or a NUL, which PostgreSQL refuses. Either would cost the whole event on
some backends; :func:`storable` makes the text the same on all of them instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_tasklog.capture.rules import CapturedMessage
from slack_tasklog.events import Event, FeedbackGiven, MessageDeleted, MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.logs import RateLimitedLog
from slack_tasklog.values import exception_type

__all__ = ["TextPolicy", "storable"]

_redact_failures = RateLimitedLog()


def storable(text: str) -> str:
    """``text`` as every backend stores it: NULs removed, a lone surrogate replaced by U+FFFD (two halves of a
    pair that met in a Python string become their character). The text itself when there is nothing to change.

    >>> storable("a\\x00b \\ud800 \\ud83d\\ude00")
    'ab \\ufffd 😀'
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():  # a flag the string carries, no scan: most texts end here
        return text
    try:
        text.encode("utf-8")  # refuses exactly the surrogates
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


@dataclass(frozen=True)
class TextPolicy:
    """``store_text=False`` keeps no text, and of a run's error only its exception type; ``redact`` maps each text
    to the text kept (None: none)."""

    store_text: bool = True
    redact: Callable[[str], str | None] | None = None

    def apply(self, message: CapturedMessage) -> CapturedMessage:
        if isinstance(message, MessageDeleted | FeedbackGiven) or message.text is None:
            return message
        if not self.store_text:
            return message._replace(text=None)
        text = storable(message.text)
        kept = text if self.redact is None else self._redacted(text)
        return message if kept is message.text else message._replace(text=kept)

    def outcome(self, outcome: OutcomeRecorded) -> OutcomeRecorded:
        """``store_text=False`` keeps only the exception type of a run's error: an exception may quote the request
        (``ValueError: cannot parse 'pay Bob'`` → ``ValueError``), as a deleted request's runs keep."""
        if self.store_text or not outcome.error_message:
            return outcome
        return outcome._replace(error_message=exception_type(outcome.error_message))

    def replayed(self, event: Event) -> Event:
        """An event read back from the journal of a process that died, journaled under that process's options: with
        ``store_text=False`` it keeps no text now either. (``redact`` was applied when it was journaled; a second
        pass could change a text again.)"""
        if self.store_text:
            return event
        if isinstance(event, TaskRequested | MessageInThread) and event.text is not None:
            return event._replace(text=None)
        if isinstance(event, OutcomeRecorded):
            return self.outcome(event)
        return event

    def _redacted(self, text: str) -> str | None:
        assert self.redact is not None
        try:
            kept: object = self.redact(text)
        except Exception:
            _redact_failures.warning(
                "redact", "slack_tasklog: the redact function raised; the text was not stored", exc_info=True
            )
            return None
        if kept is None:
            return None
        if not isinstance(kept, str):
            _redact_failures.warning(
                "redact type",
                "slack_tasklog: the redact function returned %s, not a str or None; the text was not stored",
                type(kept).__name__,
            )
            return None
        return storable(kept)
