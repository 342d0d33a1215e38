"""The write-ahead journal: every event is on local disk before it is queued for the database.

Each process appends to segment files of its own in the journal directory and holds an ``flock`` on each, so
another process can tell a live segment from one left behind by a process that died: the lock goes with the
process, however it ended (``kill -9`` included). A segment nobody holds is *orphaned*; the next ``TaskLog`` on the
same directory writes its events to the database and deletes it. Writes are idempotent, so replaying an event that
did reach the database before the crash changes nothing.

A segment is a file of ``segment_bytes`` whose disk space is reserved when it is created (``posix_fallocate``):
a header line, then one line per event (see ``records``), then zeros up to its end. The file is memory-mapped and
each record is copied into the map: appending is a copy into the page cache, with no system call, which keeps the
journal's share of the request path small. Once copied, a record is the kernel's: it survives the process being
killed at once, though not a power loss in the next seconds unless ``fsync=True`` (an ``msync`` per event, far
slower). A process killed in the middle of a copy leaves at most a torn last line before the zeros, which is
skipped.

Mapping a file is safe only over space the file system has already given it: writing into a sparse mapping on a
full disk kills the process with SIGBUS. So no byte is mapped before its space is reserved; when the reservation
fails (the disk is full, the folder read-only, a quota), the segment is not made and the event stays in memory.

While the database keeps up, the live segment is cleared back to its header (zeroed) whenever everything in it is
committed, so it is reused and never grows. When the database falls behind, the in-memory queue fills up and later
events *spill*: they are only in the journal until the writer reads them back. Memory stays bounded; the journal
grows, segment by segment, up to ``max_bytes``, and committed segments are deleted.

The journal never harms its host: when a segment cannot be made the event stays in memory, the failure is counted
and logged (once a minute), and the journal tries again a second later. Files it cannot read at start are set
aside as ``*.corrupt``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from slack_tasklog.events import Event
from slack_tasklog.logs import RateLimitedLog, logger
from slack_tasklog.writer.records import decode_record, encode_record

# The journal needs POSIX file locks to tell a live process's segments from a dead one's; elsewhere it is off.
_LOCKS = sys.platform != "win32"
if _LOCKS:
    import fcntl

__all__ = [
    "HEADER",
    "Journal",
    "JournalCursor",
    "SegmentContents",
    "UnreadableJournalError",
    "claimed",
    "is_journal",
    "make_private_dir",
    "read_segment",
    "rewrite_orphans",
    "scrub_set_aside",
]

#: The first line of every segment: the format and its version.
HEADER = b'{"format":"slack_tasklog journal","version":2}\n'
_SUFFIX = ".journal"
_CORRUPT_SUFFIX = ".corrupt"
#: After a failure, how long appends go to memory only before the journal tries the disk again.
RETRY_INTERVAL = 1.0
_READ_CHUNK = 1 << 20


class UnreadableJournalError(ValueError):
    """A file that is not a journal segment of this version (no header, truncated, garbage)."""


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int
    map: mmap.mmap  # the whole file, its space reserved
    size: int = len(HEADER)  # bytes up to the end of the last complete record
    last_index: int = 0  # the writer's index of the last event appended here

    @property
    def capacity(self) -> int:
        return len(self.map)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class JournalCursor:
    """Where the writer is reading spilled events back: a segment, a byte offset in it, and the index of the
    record there. Spilled events have consecutive indexes (an event the journal could not take while spilling is
    refused, its index not taken), so records are numbered by counting and do not hold their index."""

    segment: _Segment
    offset: int
    index: int


@dataclass
class SegmentContents:
    """What :func:`read_segment` found in a segment file."""

    events: list[Event]
    unreadable: int  # records in the middle that could not be decoded (a torn last record is not counted)


class Journal:
    """One process's segments in ``directory``. Every method is called under the writer's lock, except
    :meth:`read_spilled` (it reads records that were complete when its cursor and end were taken) and the recovery
    methods, which the writer thread calls before any event is appended."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = False,
        segment_bytes: int = 4 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.disabled = not _LOCKS
        self._segments: list[_Segment] = []  # oldest first
        self._live: _Segment | None = None  # the one appended to; None until opened, or after a failure
        self._bytes = 0  # record bytes in _segments (headers not counted)
        self._retry_at = 0.0  # while broken: when to try the disk again (time.monotonic)
        self._broken = False
        self._log = RateLimitedLog()
        self.failures = 0  # events the journal could not take (they stayed in memory, or were dropped when spilling)
        self.set_aside = 0  # unreadable files renamed to *.corrupt

    # -- appending ------------------------------------------------------------------------------------------

    def append(self, event: Event, index: int) -> bool:
        """Append one event; False if the journal could not take it (counted and logged; never raises)."""
        try:
            record = encode_record(event)
        except (TypeError, ValueError) as error:
            return self._failed(error)
        segment = self._live
        if segment is None or segment.size + len(record) > segment.capacity:
            segment = self._segment_with_room(len(record))
            if segment is None:
                if not self.disabled:  # broken: counted, and logged when it broke
                    self.failures += 1
                return False
        if self._bytes + len(record) > self.max_bytes:
            return self._failed(f"it is full, at {self.max_bytes} bytes")
        end = segment.size + len(record)
        segment.map[segment.size : end] = record
        if self.fsync:
            try:
                _sync(segment.map, segment.size, end)
            except OSError as error:
                return self._failed(error)
        segment.size = end
        segment.last_index = index
        self._bytes += len(record)
        return True

    def _segment_with_room(self, record_bytes: int = 0) -> _Segment | None:
        """A fresh segment once the live one is full (or there is none); None while broken or disabled."""
        if self.disabled or (self._broken and time.monotonic() < self._retry_at):
            return None
        try:
            # A record bigger than a segment gets a segment of its own size.
            segment = self._open_segment(max(self.segment_bytes, len(HEADER) + record_bytes))
        except OSError as error:
            self._failed(error, count=False)
            return None
        if self._broken:
            self._broken = False
            # Rate-limited too: a disk that stays nearly full may take a few records after each retry.
            self._log.warning("resumed", "slack_tasklog: the journal in %s is writable again", self.directory)
        return segment

    def _failed(self, why: object, *, count: bool = True) -> bool:
        if isinstance(why, OSError):
            # Broken (a full disk, a read-only folder): memory only until the retry time, not a system call per event.
            self._broken = True
            self._retry_at = time.monotonic() + RETRY_INTERVAL
        if count:
            self.failures += 1
        self._log.warning(
            "append",
            "slack_tasklog: cannot write the journal in %s (%s); events are held in memory only until it can",
            self.directory,
            why,
        )
        return False

    def _open_segment(self, capacity: int) -> _Segment:
        make_private_dir(self.directory)
        path = self.directory / f"tasklog-{os.getpid()}-{time.time_ns()}{_SUFFIX}"
        # 0600: the journal holds what people asked the bot, like the database does.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.posix_fallocate(fd, 0, capacity)  # the space, before any of it is mapped (see the module's docstring)
            segment_map = mmap.mmap(fd, capacity)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        segment_map[: len(HEADER)] = HEADER
        segment = _Segment(path, fd, segment_map)
        if self._segments:
            segment.last_index = self._segments[-1].last_index
        self._segments.append(segment)
        self._live = segment
        return segment

    # -- trimming -------------------------------------------------------------------------------------------

    def committed(self, index: int, *, caught_up: bool) -> None:
        """Every event up to ``index`` is in the database: drop what no longer needs keeping. ``caught_up``:
        nothing accepted after ``index``, so the live segment can start over."""
        while self._segments and self._segments[0] is not self._live and self._segments[0].last_index <= index:
            self._remove(self._segments.pop(0))
        live = self._live
        if caught_up and live is not None and live.size > len(HEADER) and live.last_index <= index:
            # Zeroed, not truncated: truncating a mapped file is what turns a later write into SIGBUS. Readers stop
            # at the first zero, and a crash mid-way leaves only records already committed.
            live.map[len(HEADER) : live.size] = bytes(live.size - len(HEADER))
            self._bytes -= live.size - len(HEADER)
            live.size = len(HEADER)

    def _remove(self, segment: _Segment) -> None:
        self._bytes -= segment.size - len(HEADER)
        with contextlib.suppress(OSError):
            segment.path.unlink()
        segment.close()

    @property
    def size(self) -> int:
        """Bytes of records not yet known to be committed."""
        return self._bytes

    def close(self, *, everything_committed: bool) -> Path | None:
        """Stop appending. Delete the segments if nothing in them is pending; else keep them for the next start
        (releasing the lock is what marks them orphaned) and return the directory."""
        segments, self._segments, self._live = self._segments, [], None
        self.disabled = True
        pending = not everything_committed and any(segment.size > len(HEADER) for segment in segments)
        for segment in segments:
            if pending:
                segment.close()
            else:
                self._remove(segment)
        self._bytes = 0
        return self.directory if pending else None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's segments and locks are the parent's. Close our copies only."""
        for segment in self._segments:
            segment.close()
        self._segments, self._live, self._bytes = [], None, 0
        self.failures = self.set_aside = 0

    # -- reading spilled events back ------------------------------------------------------------------------

    def spill_cursor(self, index: int) -> JournalCursor | None:
        """Where the next record will go, ``index`` its index: taken just before the first spilled event. None if
        the journal cannot take events now."""
        segment = self._live or self._segment_with_room()
        if segment is None:
            return None
        return JournalCursor(segment, segment.size, index)

    def spilled_until(self, cursor: JournalCursor) -> list[tuple[_Segment, int, int]]:
        """The byte ranges from ``cursor`` to the last complete record, segment by segment."""
        if cursor.segment not in self._segments:  # deleted: every record in it was committed
            return [(segment, len(HEADER), segment.size) for segment in self._segments]
        start = self._segments.index(cursor.segment)
        return [(cursor.segment, cursor.offset, cursor.segment.size)] + [
            (segment, len(HEADER), segment.size) for segment in self._segments[start + 1 :]
        ]

    def at_end(self, cursor: JournalCursor) -> bool:
        return all(start >= end for _, start, end in self.spilled_until(cursor))

    def read_spilled(
        self, ranges: list[tuple[_Segment, int, int]], limit: int, index: int
    ) -> tuple[list[Event], JournalCursor | None]:
        """Up to ``limit`` events from ``ranges`` (see :meth:`spilled_until`), and the cursor after the last record
        read; ``index`` is the index of the first one. An unreadable record is skipped, and logged."""
        events: list[Event] = []
        cursor: JournalCursor | None = None
        for segment, start, end in ranges:
            cursor = JournalCursor(segment, start, index)
            for after, line in _lines(segment.fd, start, end):
                try:
                    events.append(decode_record(line))
                except ValueError as error:
                    self._log.warning("spill", "slack_tasklog: skipped a record in %s: %s", segment.path, error)
                index += 1
                cursor = JournalCursor(segment, after, index)
                if len(events) >= limit:
                    return events, cursor
        return events, cursor

    # -- recovery -------------------------------------------------------------------------------------------

    def orphans(self) -> list[Path]:
        """Segments left by processes that are gone (nobody holds their lock), oldest first."""
        return _orphans_in(self.directory, mine={segment.path for segment in self._segments})

    def set_aside_file(self, path: Path, why: object) -> None:
        """Rename a file the journal cannot use to ``*.corrupt`` (for someone to look at), and count it."""
        target = path.with_name(path.name + _CORRUPT_SUFFIX)
        try:
            path.rename(target)
        except OSError as error:
            logger.warning("slack_tasklog: cannot set the unreadable journal %s aside (%s)", path, error)
            return
        self.set_aside += 1
        logger.warning("slack_tasklog: the journal %s is unreadable (%s); moved it to %s", path, why, target.name)


def _orphans_in(directory: Path, *, mine: set[Path]) -> list[Path]:
    if not _LOCKS:
        return []
    try:
        paths = sorted(directory.glob(f"*{_SUFFIX}"), key=_segment_order)
    except OSError:
        return []
    return [path for path in paths if path not in mine and not _is_locked(path)]


def rewrite_orphans(directory: Path, change: Callable[[list[Event]], list[Event]]) -> int:
    """Rewrite the segments that stopped processes left in ``directory`` with ``change`` applied to their events
    (an erasure: their replay must not bring back what was erased). Returns how many records changed. A segment
    is replaced whole (written beside it, then renamed over it), so a crash leaves the old or the new one; records
    that could not be read are not kept. Segments of live processes are theirs, and left alone."""
    changed = 0
    for path in _orphans_in(directory, mine=set()):
        with claimed(path) as ours:
            if not ours:
                continue  # replayed right now by another process, or gone
            try:
                contents = read_segment(path)
            except (OSError, UnreadableJournalError):
                continue  # unreadable: the next start sets it aside
            events = change(contents.events)
            differ = sum(before != after for before, after in zip(contents.events, events, strict=True))
            if not differ and not contents.unreadable:
                continue
            _replace_privately(path, HEADER + b"".join(encode_record(event) for event in events))
            changed += differ
    return changed


def scrub_set_aside(directory: Path, change: Callable[[list[Event]], list[Event]], mentions: str) -> int:
    """Rewrite the files set aside as ``*.corrupt`` in ``directory``, which still hold people's messages: ``change``
    applied to the records that can be read, and every other line that names ``mentions`` (the id of the person
    erased, as a whole id: erasing ``U2`` keeps a line naming only ``U20``) dropped, whatever its workspace (an
    unreadable line cannot be trusted to say); the rest is kept for whoever looks at the file. Returns how many
    records changed or went."""
    changed = 0
    needle = re.compile(rb"(?<![A-Za-z0-9])" + re.escape(mentions.encode()) + rb"(?![A-Za-z0-9])")
    for path in sorted(directory.glob(f"*{_CORRUPT_SUFFIX}")):
        try:
            lines = path.read_bytes().rstrip(b"\0").split(b"\n")
        except OSError:
            continue
        events: list[Event] = []
        others: list[bytes] = []
        for line in lines:
            try:
                events.append(decode_record(line))
            except ValueError:
                if needle.search(line):
                    changed += 1
                else:
                    others.append(line)
        kept = change(events)
        before = set(events)
        differ = len(events) - len(kept) + sum(event not in before for event in kept)
        if not differ and len(others) == len(lines) - len(events):
            continue
        changed += differ
        _replace_privately(path, b"\n".join(others + [encode_record(event).rstrip(b"\n") for event in kept]))
    return changed


def _replace_privately(path: Path, data: bytes) -> None:
    """Replace ``path`` whole with ``data``, owner-only (written beside it, then renamed: a crash leaves one or the
    other)."""
    temporary = path.with_name(path.name + ".rewriting")  # not *.journal: no process replays it
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(fd)
    os.replace(temporary, path)


def make_private_dir(directory: Path) -> None:
    """Create ``directory`` and any missing parents, each 0700 (the umask can only take bits away)."""
    if directory.is_dir():
        return
    missing = [directory, *(parent for parent in directory.parents if not parent.exists())]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def _lines(fd: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, the line) for every complete line in ``[start, end)`` of the file."""
    offset, pending = start, b""  # offset: where ``pending``, the start of an incomplete line, begins
    while offset + len(pending) < end:
        position = offset + len(pending)
        chunk = os.pread(fd, min(_READ_CHUNK, end - position), position)
        if not chunk:
            return
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            offset += len(line) + 1
            yield offset, line


def read_segment(path: Path) -> SegmentContents:
    """Every event in a segment file. A torn last record (a crash mid-write) is skipped; UnreadableJournalError if the
    file is not a segment of this version."""
    data = path.read_bytes()
    if not data.rstrip(b"\0"):
        return SegmentContents([], 0)  # created, and its process killed before it wrote the header
    if not data.startswith(HEADER):
        start = data.rstrip(b"\0")
        raise UnreadableJournalError("truncated" if HEADER.startswith(start) else "not a journal of this version")
    end = data.find(b"\0", len(HEADER))  # records end where the zeros of the reserved space begin
    if end != -1:
        data = data[:end]
    *lines, _torn = data[len(HEADER) :].split(b"\n")  # the last piece is empty, or a torn record
    events: list[Event] = []
    unreadable = 0
    for line in lines:
        try:
            events.append(decode_record(line))
        except ValueError:
            unreadable += 1
    return SegmentContents(events, unreadable)


def _sync(segment_map: mmap.mmap, start: int, end: int) -> None:
    """Flush ``[start, end)`` of a mapped segment to disk (``msync`` wants a page-aligned start)."""
    aligned = start - start % mmap.PAGESIZE
    segment_map.flush(aligned, end - aligned)


def is_journal(path: Path) -> bool:
    """Whether ``path`` starts like a journal segment of this version."""
    with path.open("rb") as file:
        return file.read(len(HEADER)) == HEADER


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
