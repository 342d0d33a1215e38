"""Scheduled digests: the stats of each day (or week) posted in a channel once, whatever the number of processes.

Periods are whole UTC days, or weeks from Monday 00:00 UTC; a period's digest is due once it has ended. A thread per
``TaskLog`` wakes at each period's end (and every few minutes, to notice claims left by dead processes) and, for
each due period, asks the database who posts: the process whose insert of the period's ``tasklog_digests`` row took
posts it, then marks it posted. A process that dies between claiming and posting leaves a claim that another takes
over after ``_STALE_CLAIM``. After downtime, the periods missed since the last one posted are posted in order, at
most ``_MAX_CATCH_UP`` of them (the rest are logged as skipped: a week-old daily digest is noise).

Slack or database failures are logged (rate-limited) and retried at the next wake; nothing raises into the bot.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, func, select, update

from slack_tasklog.logs import RateLimitedLog, logger
from slack_tasklog.reports.export import ExportFilter, write_csv
from slack_tasklog.reports.stats import Stats, compute_stats
from slack_tasklog.slack import blocks
from slack_tasklog.slack.blocks import FailureDetails
from slack_tasklog.slack.commands import ALL_FAILURES, plain_failures
from slack_tasklog.slack.source import TaskSource
from slack_tasklog.storage.models import DigestPost
from slack_tasklog.storage.store import insert_ignore

__all__ = ["DigestSchedule", "Digests", "due_periods"]

_digests: Table = DigestPost.__table__  # type: ignore[assignment]
_STALE_CLAIM = timedelta(minutes=10)
_MAX_CATCH_UP = 7
_RECHECK = 300.0  # seconds between wakes when no period ends sooner
# How long a digest waits for the events this process recorded to be written before it reads its figures and CSV:
# longer than a command may (no one is waiting on this thread), yet a database that stays busy must not hold it.
FLUSH_TIMEOUT = 10.0
_failures = RateLimitedLog()
_EPOCH_MONDAY = datetime(2024, 1, 1, tzinfo=timezone.utc)  # a Monday


@dataclass(frozen=True)
class DigestSchedule:
    """Where and how often: ``channel``, ``every`` one day or seven; ``team_id``: only that workspace's tasks (None:
    every task in the database); ``csv``/``chart``: attach the period's CSV or chart."""

    channel: str
    every: timedelta
    team_id: str | None = None
    csv: bool = False
    chart: bool = False

    def __post_init__(self) -> None:
        if self.every not in (timedelta(days=1), timedelta(days=7)):
            raise ValueError("digest_every must be '1d' or '7d'")
        if not self.channel:
            raise ValueError("digest_channel must be a channel id (C…)")


def period_containing(moment: datetime, every: timedelta) -> tuple[datetime, datetime]:
    """The UTC day, or the week from Monday, that ``moment`` falls in."""
    periods = (moment - _EPOCH_MONDAY) // every
    start = _EPOCH_MONDAY + periods * every
    return start, start + every


def due_periods(now: datetime, every: timedelta, last_posted: datetime | None) -> list[tuple[datetime, datetime]]:
    """The ended periods not posted yet, oldest first: after ``last_posted`` (a period's start), or just the last
    ended one when nothing was ever posted; at most ``_MAX_CATCH_UP``."""
    current, _ = period_containing(now, every)
    latest = current - every  # the last period that has ended
    first = latest if last_posted is None else last_posted + every
    periods = []
    start = first
    while start <= latest:
        periods.append((start, start + every))
        start += every
    if len(periods) > _MAX_CATCH_UP:
        logger.info("slack_tasklog: %d digest periods were missed; posting the last %d", len(periods), _MAX_CATCH_UP)
        periods = periods[-_MAX_CATCH_UP:]
    return periods


class Digests:
    """The digest thread of one ``TaskLog``: ``start()``, ``stop()``; ``run_once()`` does one round (tests).

    The digest is posted in a channel, so its failures show their exception types only, unless
    ``failure_details="everyone"`` (their messages can quote requests, which only the export should show).
    """

    def __init__(
        self,
        tasklog: TaskSource,
        schedule: DigestSchedule,
        client: Any,
        *,
        failure_details: FailureDetails = "exporters",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.tasklog = tasklog
        self.schedule = schedule
        self.client = client
        self.failure_details = failure_details
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._me = f"{socket.gethostname()[:40]}:{os.getpid()}:{id(self) % 10_000}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slack_tasklog-digest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            now = self._clock()
            _, end = period_containing(now, self.schedule.every)
            self._stop.wait(min(_RECHECK, max(1.0, (end - now).total_seconds() + 1)))

    def run_once(self) -> int:
        """Post every due period this process wins. Returns how many it posted. Never raises."""
        posted = 0
        try:
            now = self._clock()
            for start, end in due_periods(now, self.schedule.every, self._last_posted()):
                if self._claim(start, end, now):
                    self._post(start, end)
                    self._mark_posted(start)
                    posted += 1
        except Exception as error:
            _failures.warning("digest", "slack_tasklog: the digest for %s was not posted yet (%s); will retry",
                              self.schedule.channel, error)  # fmt: skip
        return posted

    # -- the database decides ---------------------------------------------------------------------------------

    def _last_posted(self) -> datetime | None:
        d = _digests.c
        with self.tasklog.connect() as conn:
            value: datetime | None = conn.execute(
                select(func.max(d.period_start)).where(d.channel_id == self.schedule.channel, d.posted_at.is_not(None))
            ).scalar_one()
        return value

    def _claim(self, start: datetime, end: datetime, now: datetime) -> bool:
        """Whether this process posts the period: its insert took, or it took over a claim gone stale."""
        d = _digests.c
        row = {"channel_id": self.schedule.channel, "period_start": start, "period_end": end,
               "claimed_by": self._me, "claimed_at": now, "posted_at": None}  # fmt: skip
        with self.tasklog.connect() as conn, conn.begin():
            conn.execute(insert_ignore(_digests, conn.dialect.name), [row])
            claimed_by, posted_at, claimed_at = conn.execute(
                select(d.claimed_by, d.posted_at, d.claimed_at).where(
                    d.channel_id == self.schedule.channel, d.period_start == start
                )
            ).one()
            if posted_at is not None:
                return False
            if claimed_by == self._me:
                return True
            if claimed_at > now - _STALE_CLAIM:
                return False
            # Its process died before posting: one process takes over (the update's condition decides which).
            taken = conn.execute(
                update(_digests)
                .where(
                    d.channel_id == self.schedule.channel,
                    d.period_start == start,
                    d.posted_at.is_(None),
                    d.claimed_by == claimed_by,
                )
                .values(claimed_by=self._me, claimed_at=now)
            )
            return bool(taken.rowcount == 1)

    def _mark_posted(self, start: datetime) -> None:
        d = _digests.c
        with self.tasklog.connect() as conn, conn.begin():
            conn.execute(
                update(_digests)
                .where(d.channel_id == self.schedule.channel, d.period_start == start)
                .values(posted_at=self._clock())
            )

    # -- Slack --------------------------------------------------------------------------------------------------

    def _post(self, start: datetime, end: datetime) -> None:
        schedule = self.schedule
        # The figures and the CSV both come after this, so they agree; posted anyway if the wait runs out (a late
        # digest helps no one), saying what it may miss.
        if not self.tasklog.flush(FLUSH_TIMEOUT):
            logger.warning(
                "slack_tasklog: the digest for %s is posted without waiting longer for the events this process "
                "recorded: the database did not take them within %g s; its figures and CSV may miss the latest",
                schedule.channel,
                FLUSH_TIMEOUT,
            )
        with self.tasklog.connect() as conn:
            stats: Stats = compute_stats(conn, since=start, until=end, team_id=schedule.team_id,
                                         top_failures=ALL_FAILURES)  # fmt: skip
        message = blocks.digest_message(stats, start, end, failure_details=self.failure_details == "everyone",
                                        plain_failures=plain_failures(self.tasklog))  # fmt: skip
        self.client.chat_postMessage(channel=schedule.channel, text=message["text"], blocks=message["blocks"])
        if stats.tasks == 0:
            return
        name = blocks.export_filename(schedule.team_id or "all", start, end)
        if schedule.csv:
            with tempfile.TemporaryFile() as spool:
                text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
                with self.tasklog.connect() as conn:
                    write_csv(conn, text, ExportFilter(since=start, until=end, team_id=schedule.team_id))
                text.flush()
                text.detach()
                spool.seek(0)
                self.client.files_upload_v2(channel=schedule.channel, file=spool, filename=name,
                                            title=f"Task log: {message['text']}")  # fmt: skip
        if schedule.chart:
            from slack_tasklog.reports.chart import ChartsUnavailableError, render_png

            try:
                png = render_png(stats, f"Task log: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
            except ChartsUnavailableError as error:
                _failures.warning("digest-chart", "slack_tasklog: digest without its chart: %s", error)
                return
            chart_name = name.removesuffix(".csv") + ".png"
            self.client.files_upload_v2(channel=schedule.channel, content=png, filename=chart_name,
                                        title="Task log chart")  # fmt: skip
