"""What request and follow-up texts are kept: ``TaskLog(store_text=..., redact=...)``, applied before anything is
queued or journaled, so a text that is not to be kept never reaches the disk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_tasklog.capture.rules import CapturedMessage
from slack_tasklog.events import MessageDeleted
from slack_tasklog.logs import RateLimitedLog

__all__ = ["TextPolicy"]

_redact_failures = RateLimitedLog()


@dataclass(frozen=True)
class TextPolicy:
    """``store_text=False`` keeps no text; ``redact`` maps each text to the text kept (None: none)."""

    store_text: bool = True
    redact: Callable[[str], str | None] | None = None

    def apply(self, message: CapturedMessage) -> CapturedMessage:
        if isinstance(message, MessageDeleted) or message.text is None:
            return message
        if not self.store_text:
            return message._replace(text=None)
        if self.redact is None:
            return message
        try:
            text = self.redact(message.text)
        except Exception:
            _redact_failures.warning(
                "redact", "slack_tasklog: the redact function raised; the text was not stored", exc_info=True
            )
            text = None
        return message._replace(text=text)
