"""What the Slack side (commands, App Home, digests) needs from a task log: no more than a ``TaskLog`` offers
every user."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import IO, Protocol

from sqlalchemy import Connection

__all__ = ["TaskSource"]


class TaskSource(Protocol):
    def flush(self, timeout: float | None = None) -> bool: ...

    def connect(self) -> AbstractContextManager[Connection]: ...

    def export_csv(
        self,
        dest: str | os.PathLike[str] | IO[str],
        *,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        agent: str | None = None,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> int: ...
