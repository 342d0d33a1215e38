"""The write-ahead journal: every event is on local disk before it is queued for the database.

Each process writes segment files of its own in the journal directory and holds an ``flock`` on each, so another
process can tell a live segment from one left behind by a process that died: the lock goes with the process,
however it ended (``kill -9`` included). A segment nobody holds is *orphaned*; the next ``TaskLog`` on the same
journal directory writes its events to the database and deletes it. Writes are idempotent, so replaying an event
that did reach the database before the crash changes nothing.

A segment is a preallocated file mapped into memory (``mmap``, shared): appending an event is a copy into the
mapping, with no system call on the request path — the kernel owns those pages, so they survive the process being
killed the moment the copy is done. They do not survive a power loss or kernel crash in the following seconds
unless ``fsync=True`` (an ``msync`` per event, far slower).

While the database keeps up, the writer marks everything committed and the segment is reused from its start, so
the journal stays small. When the database falls behind (down, slow, a burst), the in-memory queue fills up and
later events *spill*: they are only in the journal until the writer reads them back. Memory stays bounded; the
journal grows, segment by segment, up to ``max_bytes``; segments are deleted as soon as they are committed.

Layout: a 16-byte header (``SLTJ``, a format byte, three spare bytes, then the byte offset up to which everything is
known to be committed), then records: a 4-byte little-endian length and that many bytes of ``encode_event``
output. A zero length ends the segment. Everything past the last record is zero: a new segment is a sparse file,
and the writer zeroes what a segment held before starting it over. So an append writes the record's bytes, then
its length, which makes it visible: a process killed before that leaves a zero length, and nothing to replay. Two
copies into the mapping, and no end marker to write: the request path touches as little code as it can (inside
Bolt's dispatch, every C function it calls runs cold, see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slack_tasklog.events import Event, decode_event
from slack_tasklog.logs import RateLimitedLog

# The journal needs POSIX file locks to tell a live process's segments from a dead one's; elsewhere it is off.
_LOCKS = sys.platform != "win32"
if _LOCKS:
    import fcntl

__all__ = ["MAGIC", "Journal", "JournalCursor", "claimed", "read_segment", "read_spilled"]

MAGIC = b"SLTJ\x01"
_HEADER = 16
_COMMITTED_AT = 8  # where in the header the committed offset is
_LENGTH = struct.Struct("<I")
_LENGTH_SIZE = _LENGTH.size
_OFFSET = struct.Struct("<Q")
_END = b"\0\0\0\0"
_SUFFIX = ".journal"
# Linux's MADV_POPULATE_WRITE (5.14+; Python does not name it yet): fault pages in, writable, without touching them.
_POPULATE_WRITE: int | None = getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform == "linux" else None
# How far ahead of the write position the writer keeps pages faulted in, and how much it does per madvise call.
_PREFAULT_AHEAD = 2 * 1024 * 1024
_PREFAULT_STEP = 256 * 1024
_failures = RateLimitedLog()
# Record lengths as the 4 bytes written, by length: a dict lookup is cheaper on the request path than packing.
_LENGTHS: dict[int, bytes] = {}
_MAX_LENGTHS = 4_096
# Zeroes a reused segment in slices of this much (memoryview slices of one buffer: no allocation per reset).
_ZEROS = memoryview(bytes(256 * 1024))


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int
    map: mmap.mmap
    position: int = _HEADER  # where the next record goes
    # The writer's count of accepted events when this segment's last record was appended.
    last_index: int = 0
    # Bytes from the start whose pages the writer thread has already faulted in (see Journal.prefault).
    populated: int = 0
    # Where a record may end at most: room is left for the end marker after it.
    limit: int = 0

    def mark_committed(self, offset: int) -> None:
        self.map[_COMMITTED_AT : _COMMITTED_AT + 8] = _OFFSET.pack(offset)


@dataclass
class JournalCursor:
    """Where the writer is reading spilled events back: a segment, a byte offset in it, and the index of the record
    there. Spilled events have consecutive indexes (an event whose append failed was refused, its index not taken),
    so records are numbered by counting: the request path's records do not hold their index."""

    segment: _Segment
    offset: int
    index: int


@dataclass
class Journal:
    """One process's segments in ``directory``. Every method is called under the writer's lock, except
    :func:`read_spilled`, which reads records that were complete when its byte ranges were taken."""

    directory: Path
    fsync: bool = False
    segment_bytes: int = 16 * 1024 * 1024
    max_bytes: int = 1024 * 1024 * 1024
    _segments: list[_Segment] = field(default_factory=list)  # oldest first; the last one is live
    disabled: bool = not _LOCKS
    _populate: int | None = _POPULATE_WRITE
    _live: _Segment | None = None  # the last of _segments, None when there is none or the journal is disabled

    # -- appending ------------------------------------------------------------------------------------------

    def append(self, record: bytes, index: int) -> bool:
        """Append one event record; False if the journal could not take it (the event is then memory-only).

        On Bolt's request path: when the live segment has room (nearly always), a few bytecodes and two copies into
        the mapping (the record, then its length), with no intermediate bytes object."""
        size = len(record)
        segment = self._live
        if segment is None or (end := segment.position + _LENGTH_SIZE + size) > segment.limit:
            segment = self._segment_with_room(size)
            if segment is None:
                return False
            end = segment.position + _LENGTH_SIZE + size
        try:
            length = _LENGTHS[size]
        except KeyError:
            length = _length_bytes(size)
        start = segment.position
        mapped = segment.map
        try:
            mapped[start + _LENGTH_SIZE : end] = record
            mapped[start : start + _LENGTH_SIZE] = length  # last: this makes the record visible
            if self.fsync:
                mapped.flush()
        except (OSError, ValueError) as error:  # ValueError: the mapping was closed under us
            # Its bytes may be past the end now, where the next append expects zeroes: no more appends here.
            segment.limit = 0
            return self._failed(error)
        segment.position = end
        segment.last_index = index
        return True

    def _segment_with_room(self, record_size: int) -> _Segment | None:
        """The live segment, or a new one if it has no room for the record (or there is none); None if the journal
        is disabled or a segment cannot be opened."""
        if self.disabled:
            return None
        try:
            segment = self._live or self._open_segment()
            if segment.position + _LENGTH.size + record_size > segment.limit:
                segment = self._open_segment(record_size)
        except OSError as error:
            self._failed(error)
            return None
        return segment

    def _failed(self, error: Exception) -> bool:
        _failures.warning(
            "append",
            "slack_tasklog: cannot write the journal in %s (%s); events are held in memory only",
            self.directory,
            error,
        )
        return False

    def _open_segment(self, record_size: int = 0) -> _Segment:
        if len(self._segments) * self.segment_bytes >= self.max_bytes:
            raise OSError(f"the journal is full ({self.max_bytes} bytes)")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"tasklog-{os.getpid()}-{time.time_ns()}{_SUFFIX}"
        # 0600: the journal holds what people asked the bot, like the database does.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Sparse: disk is used only as records are written.
            os.ftruncate(fd, max(self.segment_bytes, _HEADER + record_size + 2 * _LENGTH.size))
            mapped = mmap.mmap(fd, 0)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        mapped[0 : len(MAGIC)] = MAGIC
        segment = _Segment(path, fd, mapped)
        segment.mark_committed(_HEADER)
        if self._segments:
            segment.last_index = self._segments[-1].last_index
        self._segments.append(segment)
        segment.limit = len(mapped) - _LENGTH.size
        self._live = segment
        return segment

    def prefault(self) -> None:
        """From the writer thread, between batches: fault in the live segment's pages ahead of the write position.

        A first write to a page of a fresh (sparse) segment costs a page fault and a block allocation, three times
        the copy itself (2.3 µs against 0.7 µs per 2 kB record, measured): that cost moves here, off the request
        path. Needs no lock: it does not change what the pages hold, and a segment closed meanwhile only makes
        madvise fail."""
        advice = self._populate
        if advice is None or self.disabled or not self._segments:
            return
        segment = self._segments[-1]
        # Whole steps (madvise wants page-aligned starts), up to the end of the segment.
        target = min(len(segment.map), (segment.position + _PREFAULT_AHEAD) // _PREFAULT_STEP * _PREFAULT_STEP)
        while segment.populated < target:
            length = min(_PREFAULT_STEP, target - segment.populated)
            try:
                segment.map.madvise(advice, segment.populated, length)
            except ValueError:  # closed meanwhile
                return
            except OSError:  # a kernel without MADV_POPULATE_WRITE: appends fault pages in themselves
                self._populate = None
                return
            segment.populated += length

    # -- trimming -------------------------------------------------------------------------------------------

    def committed(self, index: int, *, caught_up: bool) -> None:
        """Every event up to ``index`` is in the database: drop what no longer needs keeping."""
        while len(self._segments) > 1 and self._segments[0].last_index <= index:
            self._remove(self._segments.pop(0))
        if caught_up and self._segments:
            live = self._segments[-1]
            if live.position > _HEADER and live.last_index <= index:
                # Start the segment over: the first length first, so a crash from here on replays nothing; then
                # the rest of the old records, since appends expect zeroes past the end; then the header.
                live.map[_HEADER : _HEADER + _LENGTH_SIZE] = _END
                _zero(live.map, _HEADER + _LENGTH_SIZE, live.position)
                live.mark_committed(_HEADER)
                live.position = _HEADER

    def _remove(self, segment: _Segment) -> None:
        with contextlib.suppress(OSError):
            segment.path.unlink()
        self._close(segment)

    @staticmethod
    def _close(segment: _Segment) -> None:
        with contextlib.suppress(OSError, ValueError):
            segment.map.close()
        with contextlib.suppress(OSError):
            os.close(segment.fd)

    @property
    def size(self) -> int:
        """Bytes of records not yet known to be committed."""
        return sum(segment.position - _HEADER for segment in self._segments)

    def close(self, *, everything_committed: bool) -> Path | None:
        """Stop appending. Delete the segments if nothing in them is pending; else keep them for the next start
        (releasing the lock is what marks them orphaned) and return the directory."""
        segments, self._segments = self._segments, []
        self.disabled = True
        self._live = None
        pending = not everything_committed and any(s.position > _HEADER for s in segments)
        for segment in segments:
            if pending:
                with contextlib.suppress(OSError, ValueError):
                    segment.map.flush()
                self._close(segment)
            else:
                self._remove(segment)
        return self.directory if pending else None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's segments and locks are the parent's. Close our copies only."""
        for segment in self._segments:
            self._close(segment)
        self._segments = []
        self._live = None

    # -- reading spilled events back ------------------------------------------------------------------------

    def spill_cursor(self, index: int) -> JournalCursor | None:
        """Where the next appended record will start, ``index`` its index: taken just before the first spilled
        event."""
        if self.disabled:
            return None
        try:
            segment = self._segments[-1] if self._segments else self._open_segment()
        except OSError:
            return None
        return JournalCursor(segment, segment.position, index)

    def snapshot(self, cursor: JournalCursor) -> list[tuple[_Segment, int, int]]:
        """The byte ranges from ``cursor`` to the current end, segment by segment (taken under the lock, so every
        record in them is complete)."""
        ranges = []
        started = False
        for segment in self._segments:
            if segment is cursor.segment:
                started = True
                ranges.append((segment, cursor.offset, segment.position))
            elif started:
                ranges.append((segment, _HEADER, segment.position))
        return ranges

    def at_end(self, cursor: JournalCursor) -> bool:
        return (
            bool(self._segments) and cursor.segment is self._segments[-1] and cursor.offset >= cursor.segment.position
        )

    # -- recovery -------------------------------------------------------------------------------------------

    def orphans(self) -> list[Path]:
        """Segments left by processes that are gone (nobody holds their lock), oldest first."""
        if not _LOCKS:
            return []
        try:
            paths = sorted(self.directory.glob(f"*{_SUFFIX}"), key=_segment_order)
        except OSError:
            return []
        mine = {segment.path for segment in self._segments}
        return [path for path in paths if path not in mine and not _is_locked(path)]


def _length_bytes(size: int) -> bytes:
    if len(_LENGTHS) >= _MAX_LENGTHS:  # a bound: records of very many sizes
        _LENGTHS.clear()
    length = _LENGTHS[size] = _LENGTH.pack(size)
    return length


def _zero(mapped: mmap.mmap, start: int, end: int) -> None:
    while start < end:
        step = min(end - start, len(_ZEROS))
        mapped[start : start + step] = _ZEROS[:step]
        start += step


def _records(data: bytes | mmap.mmap, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the record, record bytes) from ``start`` until ``end`` or the end marker."""
    position = start
    while position + _LENGTH.size <= end:
        (length,) = _LENGTH.unpack_from(data, position)
        if length == 0 or position + _LENGTH.size + length > end:
            return
        record_start = position + _LENGTH.size
        position = record_start + length
        yield position, bytes(data[record_start:position])


def read_spilled(
    ranges: list[tuple[_Segment, int, int]], limit: int, index: int
) -> tuple[list[Event], JournalCursor | None]:
    """Up to ``limit`` events from the byte ranges, and the cursor after the last record read. ``index`` is the
    index of the first record (see JournalCursor); an unreadable record is skipped, and counted."""
    events: list[Event] = []
    cursor: JournalCursor | None = None
    for segment, start, end in ranges:
        cursor = JournalCursor(segment, start, index)
        for after, record in _records(segment.map, start, end):
            try:
                events.append(decode_event(record)[1])
            except ValueError:
                _failures.warning("spill", "slack_tasklog: skipped an unreadable record in %s", segment.path)
            index += 1
            cursor = JournalCursor(segment, after, index)
            if len(events) >= limit:
                return events, cursor
    return events, cursor


def read_segment(path: Path) -> tuple[list[Event], int]:
    """The events of a segment file not yet marked committed, and how many records could not be read."""
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < _HEADER:
        raise ValueError(f"{path} is not a slack_tasklog journal segment")
    (committed,) = _OFFSET.unpack_from(data, _COMMITTED_AT)
    events: list[Event] = []
    bad = 0
    for _, record in _records(data, max(committed, _HEADER), len(data)):
        try:
            events.append(decode_event(record)[1])
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
