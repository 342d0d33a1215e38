"""The write-ahead journal: every event is on local disk before it is queued for the database.

Each process appends to segment files of its own in the journal directory and holds an ``flock`` on the one it is
writing, so another process can tell a live segment from one left behind by a process that died: the lock goes
with the process, however it ended (``kill -9`` included). A segment nobody holds is *orphaned*; the next
``TaskLog`` on the same journal directory writes its events to the database and deletes it. Writes are
idempotent, so replaying an event that did reach the database before the crash changes nothing.

While the database keeps up, the live segment is emptied each time every event in it is committed, so the journal
stays a few kilobytes. When the database falls behind (down, slow, a burst), the in-memory queue fills up and later
events *spill*: they are only in the journal until the writer reads them back. Memory stays bounded; the journal
grows, in segments of ``segment_bytes`` that are deleted as soon as they are committed.

What survives what: lines are written with one ``write(2)`` each, without ``fsync`` unless asked, so they survive
the process being killed (the kernel has them) but not a power loss or kernel crash in the following seconds;
``fsync=True`` survives those too, at the cost of a disk flush per event.

Line format: a header line ``{"slack_tasklog_journal": 1, ...}`` then one JSON array per event (see
``_events.encode_event``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ._events import FORMAT_VERSION, Event, decode_event
from ._internal import RateLimitedLog, logger

__all__ = ["Journal", "JournalCursor", "claimed", "read_segment", "read_spilled"]

_SUFFIX = ".journal"
_failures = RateLimitedLog()


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int
    header_bytes: int
    size: int
    # The writer's count of accepted events when this segment's last line was appended.
    last_index: int = 0


@dataclass
class JournalCursor:
    """Where the writer is reading spilled events back: a segment and a byte offset in it."""

    segment: _Segment
    offset: int


@dataclass
class Journal:
    """One process's segments in ``directory``. Every method is called under the writer's lock, except
    :meth:`read_spilled` and the recovery helpers, which only read files nobody appends to concurrently."""

    directory: Path
    fsync: bool = False
    segment_bytes: int = 16 * 1024 * 1024
    _segments: list[_Segment] = field(default_factory=list)  # oldest first; the last one is live
    disabled: bool = False

    # -- appending ------------------------------------------------------------------------------------------

    def append(self, line: bytes, index: int) -> bool:
        """Append one event line; False if the journal could not take it (the event is then memory-only)."""
        if self.disabled:
            return False
        try:
            segment = self._live()
            if segment.size >= self.segment_bytes:
                segment = self._open_segment()
            written = os.write(segment.fd, line)
            if written != len(line):  # a full disk can write part of a line: never leave half an event
                os.ftruncate(segment.fd, segment.size)
                raise OSError(errno.ENOSPC, "short write to the journal")
            if self.fsync:
                os.fsync(segment.fd)
        except OSError as error:
            _failures.warning(
                "append",
                "slack_tasklog: cannot write the journal in %s (%s); events are held in memory only",
                self.directory,
                error,
            )
            return False
        segment.size += written
        segment.last_index = index
        return True

    def _live(self) -> _Segment:
        if self._segments:
            return self._segments[-1]
        return self._open_segment()

    def _open_segment(self) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"tasklog-{os.getpid()}-{time.time_ns()}{_SUFFIX}"
        path = self.directory / name
        # 0600: the journal holds what people asked the bot, like the database does.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = (json.dumps({"slack_tasklog_journal": FORMAT_VERSION, "pid": os.getpid()}) + "\n").encode()
            os.write(fd, header)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        segment = _Segment(path, fd, len(header), len(header))
        if self._segments:
            segment.last_index = self._segments[-1].last_index
        self._segments.append(segment)
        return segment

    # -- trimming -------------------------------------------------------------------------------------------

    def committed(self, index: int, *, caught_up: bool) -> None:
        """Every event up to ``index`` is in the database: drop what no longer needs keeping."""
        while len(self._segments) > 1 and self._segments[0].last_index <= index:
            self._remove(self._segments.pop(0))
        if caught_up and self._segments:
            live = self._segments[-1]
            if live.size > live.header_bytes and live.last_index <= index:
                try:
                    os.ftruncate(live.fd, live.header_bytes)
                except OSError as error:
                    _failures.warning("truncate", "slack_tasklog: cannot trim the journal %s: %s", live.path, error)
                else:
                    live.size = live.header_bytes

    def _remove(self, segment: _Segment) -> None:
        with contextlib.suppress(OSError):
            segment.path.unlink()
        with contextlib.suppress(OSError):
            os.close(segment.fd)

    @property
    def size(self) -> int:
        return sum(segment.size - segment.header_bytes for segment in self._segments)

    def close(self, *, everything_committed: bool) -> Path | None:
        """Stop appending. Delete the segments if nothing in them is pending; else keep them for the next start
        (releasing the lock is what marks them orphaned) and return the directory."""
        segments, self._segments = self._segments, []
        self.disabled = True
        pending = any(s.size > s.header_bytes for s in segments) and not everything_committed
        for segment in segments:
            if pending:
                with contextlib.suppress(OSError):
                    os.close(segment.fd)
            else:
                self._remove(segment)
        return self.directory if pending else None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's segments and locks are the parent's. Close our copies only."""
        for segment in self._segments:
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        self._segments = []

    # -- reading spilled events back ------------------------------------------------------------------------

    def spill_cursor(self) -> JournalCursor | None:
        """Where the next appended line will start: taken just before the first spilled event."""
        if self.disabled:
            return None
        try:
            segment = self._live()
            if segment.size >= self.segment_bytes:
                segment = self._open_segment()
        except OSError:
            return None
        return JournalCursor(segment, segment.size)

    def snapshot(self, cursor: JournalCursor) -> list[tuple[_Segment, int, int]]:
        """The byte ranges from ``cursor`` to the current end, segment by segment (taken under the lock, so every
        line in them is complete)."""
        ranges = []
        started = False
        for segment in self._segments:
            if segment is cursor.segment:
                started = True
                ranges.append((segment, cursor.offset, segment.size))
            elif started:
                ranges.append((segment, segment.header_bytes, segment.size))
        return ranges

    def at_end(self, cursor: JournalCursor) -> bool:
        return bool(self._segments) and cursor.segment is self._segments[-1] and cursor.offset >= cursor.segment.size

    # -- recovery -------------------------------------------------------------------------------------------

    def orphans(self) -> list[Path]:
        """Segments left by processes that are gone (nobody holds their lock), oldest first."""
        try:
            paths = sorted(self.directory.glob(f"*{_SUFFIX}"), key=_segment_order)
        except OSError:
            return []
        mine = {segment.path for segment in self._segments}
        return [path for path in paths if path not in mine and not _is_locked(path)]


def read_spilled(
    ranges: list[tuple[_Segment, int, int]], limit: int
) -> tuple[list[tuple[int, Event]], JournalCursor | None]:
    """Up to ``limit`` (index, event) pairs from the byte ranges, and the cursor after the last line read."""
    events: list[tuple[int, Event]] = []
    cursor: JournalCursor | None = None
    for segment, start, end in ranges:
        if start >= end:
            cursor = JournalCursor(segment, start)
            continue
        with open(segment.path, "rb") as file:
            file.seek(start)
            offset = start
            for line in file.read(end - start).splitlines(keepends=True):
                offset += len(line)
                try:
                    events.append(decode_event(line))
                except ValueError:
                    logger.warning("slack_tasklog: skipped an unreadable line in the journal %s", segment.path)
                cursor = JournalCursor(segment, offset)
                if len(events) >= limit:
                    return events, cursor
    return events, cursor


def read_segment(path: Path) -> tuple[list[Event], int]:
    """Every event in a segment file, and how many lines could not be read (a line cut short by a crash)."""
    events: list[Event] = []
    bad = 0
    with open(path, "rb") as file:
        for number, line in enumerate(file):
            if number == 0 and line.startswith(b"{"):
                continue  # the header
            if not line.endswith(b"\n"):
                bad += 1  # the process died in the middle of this write: the call never returned
                continue
            try:
                events.append(decode_event(line)[1])
            except ValueError:
                bad += 1
    return events, bad


def _segment_order(path: Path) -> tuple[int, str]:
    parts = path.stem.split("-")
    try:
        return int(parts[2]), path.name
    except (IndexError, ValueError):
        return 0, path.name


def _is_locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True  # gone already, or not ours to read
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def claimed(path: Path) -> Iterator[bool]:
    """Hold an orphaned segment while replaying it, so two processes starting together do not both replay it (a
    double replay would be harmless, only wasted work). Yields False if someone else has it or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield os.fstat(fd).st_nlink > 0
    finally:
        os.close(fd)
