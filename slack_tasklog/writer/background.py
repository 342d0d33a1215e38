"""The bounded background writer between the request path and the database.

Modelled on sentry-python's ``BackgroundWorker``: one daemon thread behind a bounded queue. ``submit`` never
blocks and never raises; when the queue is full the event is dropped and counted, and the count is logged at most
once a minute. The thread starts lazily on the first event and again in a child after ``fork`` (a pre-forking
server imports the app once and forks workers), so no lock or connection is shared across processes.

The thread lingers a few milliseconds after waking so that events arriving together are written in one
transaction, and so that the request path, which shares the GIL with it, is not interrupted once per event. It
never dies: an unexpected error in its loop is logged and counted, and the loop goes on after a pause.

With a journal (``journal.Journal``), every event is appended to local disk before it is queued, in the same
critical section, so the journal's order is the queue's order and "everything up to event N is committed" is one
number. When the queue is full, events spill: they go to the journal only, and the writer reads them back once the
queue is empty. Without a journal, a full queue drops events (counted, logged once a minute).

Observers (``add_observer``) see each batch once it is committed, from this thread: never on the request path.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from slack_tasklog.events import Event
from slack_tasklog.logs import RateLimitedLog, logger
from slack_tasklog.writer.journal import Journal, JournalCursor, UnreadableJournalError, claimed, read_segment

__all__ = ["BackgroundWriter", "BatchSink", "Observer", "WriterCounters"]

#: Called with the events of each committed batch (see ``TaskLog.add_observer``).
Observer = Callable[[Sequence[Event]], None]


class BatchSink(Protocol):
    """Where batches go. ``write`` is all-or-nothing: it commits the whole batch or raises."""

    def write(self, batch: Sequence[Event]) -> None: ...

    def is_transient(self, error: Exception) -> bool:
        """True for failures worth retrying (connection lost, database locked), False for bad data."""
        ...

    def maintain(self) -> None:
        """Periodic housekeeping, run by the writer thread when it is idle."""
        ...

    def after_fork(self) -> None:
        """Forget connections inherited from the parent process."""
        ...

    def reconnect(self) -> None:
        """After a failed write: drop the pooled connections, so the next attempt opens the database afresh (a
        permission or mount fixed, a file replaced, a server connection killed)."""
        ...

    def describe(self) -> str:
        """Where the events go, safe to log (no password)."""
        ...


@dataclass
class WriterCounters:
    """The writer's own counters (``TaskLog.health()`` is the public view). Plain ints: each is written by one
    thread only, or under the writer's lock."""

    written: int = 0
    dropped: int = 0  # refused: queue full with no journal to spill to, or the writer closed
    spilled: int = 0  # went to the journal only, because the queue was full
    rejected: int = 0  # the database refused the event itself (bad data); written alone, then skipped
    retries: int = 0  # failed attempts to write a batch that were tried again
    replayed: int = 0  # read back from journals left by processes that died
    errors: int = 0  # unexpected errors in the writer thread's loop (logged with their traceback)
    left_in_journal: int = 0  # not written at shutdown, kept in the journal for the next start
    lost_at_shutdown: int = 0  # not written at shutdown, and no journal to keep them


# Between attempts to write while the database fails: doubling from the first, capped.
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 30.0


class BackgroundWriter:
    def __init__(
        self,
        sink: BatchSink,
        *,
        journal: Journal | None = None,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        linger: float = 0.05,
        maintenance_interval: float = 30.0,
        replayed: Callable[[Event], Event] | None = None,
    ) -> None:
        self._sink = sink
        self.journal = journal
        # What an event read back from a dead process's journal becomes before it is written: it was journaled
        # under that process's options (TaskLog passes its text policy's view of them).
        self._replayed = replayed
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._linger = linger
        self._maintenance_interval = maintenance_interval
        self._observers: tuple[Observer, ...] = ()
        self._drop_log = RateLimitedLog()
        self._error_log = RateLimitedLog()
        self._reset_state()
        # A weak reference: the fork hook must not keep a discarded TaskLog (and its engine) alive.
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            writer = ref()
            if writer is not None:
                writer._after_fork()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def _reset_state(self) -> None:
        # A forked child starts afresh: its counters are its own, like its queue and thread.
        self.counters = WriterCounters()
        self._items: deque[tuple[int, Event]] = deque()
        self._in_flight: list[tuple[int, Event]] = []  # taken from _items, not yet committed
        self._lock = threading.Lock()  # orders journal appends with queueing; guards the indexes below
        self._progress = threading.Condition()  # notified when _committed moves
        self._accepted = 0  # index of the last event accepted (queued or spilled)
        self._committed = 0  # every accepted event up to this index is written, or was rejected
        self._spill: JournalCursor | None = None  # while spilling: where to read spilled events back
        self._wake = threading.Event()
        self._urgent = threading.Event()  # flush or close: skip the linger
        self._stopping = threading.Event()
        # Set by flush() and close(): a write waiting out its backoff tries again now (the database may just
        # have come back, or been upgraded, and someone is waiting).
        self._retry_now = threading.Event()
        self._thread: threading.Thread | None = None
        self._recovered = self.journal is None  # orphaned journals written (flush waits for them too)
        self._finished = False
        self._closed = False
        self._deadline: float | None = None

    def _after_fork(self) -> None:
        # The parent's queued events and journal segments are the parent's to write.
        if self.journal is not None:
            self.journal.forget_after_fork()
        self._reset_state()
        self._sink.after_fork()

    # -- the request path -------------------------------------------------------------------------------------

    def submit(self, event: Event) -> bool:
        """Journal and queue an event. Never blocks on the database; returns False if it had to be dropped."""
        if self._closed:
            self._count_drop("the writer is closed")
            return False
        # Journal, then queue, in one critical section so both keep one order ("everything up to event N is
        # committed" is one number).
        with self._lock:
            index = self._accepted + 1
            if self._spill is None and len(self._items) < self._max_queue:
                if self.journal is not None:
                    self.journal.append(event, index)  # False: in memory only (the journal counts and logs why)
                self._accepted = index
                self._items.append((index, event))
                accepted = True
            else:
                accepted = self._spill_event(index, event)
        if not accepted:
            self._count_drop(f"queue full at {self._max_queue} events")
            return False
        if self._thread is None:
            self._start()
        if not self._wake.is_set():  # set() takes a lock even when already set; the writer clears it, then drains
            self._wake.set()
        return True

    def _spill_event(self, index: int, event: Event) -> bool:
        """The queue is full, or spilling has begun: the event goes to the journal only, if it can take it."""
        journal = self.journal
        if journal is None:
            return False  # nowhere to spill to
        if self._spill is None:
            self._spill = journal.spill_cursor(index)
            if self._spill is None:
                return False
        if not journal.append(event, index):
            return False
        self._accepted = index
        self.counters.spilled += 1
        return True

    def _count_drop(self, why: str) -> None:
        with self._lock:
            self.counters.dropped += 1
            dropped = self.counters.dropped
        self._drop_log.warning("drop", "slack_tasklog: event dropped (%s); %d dropped so far", why, dropped)

    def add_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers = (*self._observers, observer)

    def start(self) -> None:
        """Start the writer thread now (it otherwise starts with the first event): to replay orphaned journals."""
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="slack_tasklog-writer", daemon=True)
                self._thread.start()

    # -- control ----------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Accepted and not yet written: in memory, or spilled to the journal."""
        return self._accepted - self._committed

    @property
    def in_memory(self) -> int:
        return len(self._items) + len(self._in_flight)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted before this call is committed. False if ``timeout`` ran out."""
        with self._lock:
            target = self._accepted
        started = self._thread is not None
        if self._committed >= target and (self._recovered or not started):
            return True
        if not started or self._finished or threading.current_thread() is self._thread:
            return False  # nothing to wait for; or called by an observer, in the thread that would do the writing
        self._urgent.set()
        self._retry_now.set()
        self._wake.set()

        def done() -> bool:
            return self._committed >= target and self._recovered

        with self._progress:
            return self._progress.wait_for(lambda: done() or self._finished, timeout) and done()

    def close(self, timeout: float | None = 10.0) -> bool:
        """Write what is pending (retrying for at most ``timeout`` seconds), then stop.

        True if everything was written. What could not be written stays in the journal for the next start (see
        ``counters.left_in_journal``), or, without a journal, is lost (``counters.lost_at_shutdown``).
        """
        with self._lock:
            if self._closed:
                return self.pending == 0
            self._closed = True
            thread = self._thread
            self._deadline = None if timeout is None else time.monotonic() + timeout
        if thread is None:
            self._finish()
            return self.pending == 0
        self._stopping.set()
        self._retry_now.set()
        self._urgent.set()
        self._wake.set()
        thread.join(None if timeout is None else timeout + 1.0)
        return self.pending == 0 and not thread.is_alive()

    # -- the writer thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._guarded(self._recover)
            with self._progress:
                self._recovered = True
                self._progress.notify_all()
            last_maintenance = time.monotonic()
            backoff = _FIRST_BACKOFF
            while True:
                woke = self._wake.wait(self._maintenance_interval)
                if woke and not self._urgent.is_set() and len(self._items) < self._batch_size:
                    self._urgent.wait(self._linger)
                # Cleared before draining: an event queued from here on sets it again, one queued before is drained.
                self._wake.clear()
                self._urgent.clear()
                drained = self._guarded(self._drain)
                if self._stopping.is_set():
                    self._guarded(self._drain)  # once more: what arrived while the last batch was written
                    return
                if not drained:
                    # Try again after a pause that grows while the error repeats, rather than at the next event.
                    self._pause(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    self._wake.set()
                    continue
                backoff = _FIRST_BACKOFF
                now = time.monotonic()
                if now - last_maintenance >= self._maintenance_interval:
                    last_maintenance = now
                    try:
                        self._sink.maintain()
                    except Exception:
                        logger.debug("slack_tasklog: maintenance failed; will try again later", exc_info=True)
        finally:
            self._finish()

    def _guarded(self, step: Callable[[], object]) -> bool:
        """Run one step of the loop; an unexpected error is logged with its traceback and counted, never fatal.
        False if it raised."""
        try:
            step()
        except Exception:
            self.counters.errors += 1
            self._error_log.warning(
                "loop", "slack_tasklog: unexpected error in the writer thread; it goes on", exc_info=True
            )
            return False
        return True

    def _drain(self) -> bool:
        """Write everything pending: the queue first, then what spilled. False if it had to give up (shutdown)."""
        while True:
            # A batch leaves memory only once committed: after an unexpected error it is written again.
            if not self._in_flight:
                while len(self._in_flight) < self._batch_size and self._items:
                    self._in_flight.append(self._items.popleft())
            if self._in_flight:
                if not self._write([event for _, event in self._in_flight]):
                    return False
                last = self._in_flight[-1][0]
                self._in_flight = []
                self._advance(last)
                continue
            if self._spill is None:
                return True
            more = self._read_back_spilled()
            if more is None:
                return False
            if not more:
                return True

    def _read_back_spilled(self) -> bool | None:
        """One batch of spilled events from the journal. True: maybe more; False: caught up; None: gave up."""
        journal = self.journal
        with self._lock:
            cursor = self._spill
            if cursor is None or journal is None:
                return False
            if journal.at_end(cursor):
                self._spill = None  # caught up: new events go to the queue again
                journal.committed(self._committed, caught_up=self._accepted == self._committed)
                return False
            ranges = journal.spilled_until(cursor)
        events, after = journal.read_spilled(ranges, self._batch_size, cursor.index)
        if events and not self._write(events):
            return None
        if after is not None:
            with self._lock:
                self._spill = after
            if after.index > cursor.index:
                self._advance(after.index - 1)  # unreadable records included: they are skipped for good
        return True

    def _advance(self, index: int) -> None:
        with self._lock:
            if self.journal is not None:
                self.journal.committed(index, caught_up=self._accepted == index and self._spill is None)
        with self._progress:
            self._committed = index
            self._progress.notify_all()

    def _write(self, batch: list[Event]) -> bool:
        """Commit ``batch``, retrying while the database is unavailable. False only when shutting down."""
        delay = _FIRST_BACKOFF
        failing = False
        while True:
            try:
                self._sink.write(batch)
            except Exception as error:
                if not self._sink.is_transient(error):
                    self._write_one_by_one(batch)
                    return True
                # A connection that failed may be the problem itself (opened read-only, on a file since replaced,
                # killed by the server): the next attempt gets a new one.
                self._sink.reconnect()
                if self._past_deadline():
                    return False
                if not failing:
                    failing = True
                    logger.warning(
                        "slack_tasklog: cannot write to %s (%s: %s); holding %d events and retrying",
                        self._sink.describe(),
                        type(error).__name__,
                        _first_line(error),
                        max(self.pending, len(batch)),
                    )
                self.counters.retries += 1
                logger.debug(
                    "slack_tasklog: write attempt failed (%s); next one in %.1f s", type(error).__name__, delay
                )
                self._pause(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            else:
                self.counters.written += len(batch)
                if failing:
                    logger.warning("slack_tasklog: %s is writable again; held events written", self._sink.describe())
                self._notify(batch)
                return True

    def _write_one_by_one(self, batch: list[Event]) -> None:
        # One bad event must not sink the batch, nor be retried forever.
        written: list[Event] = []
        for event in batch:
            try:
                self._sink.write([event])
            except Exception as error:
                self.counters.rejected += 1
                logger.warning(
                    "slack_tasklog: the database refused one event (%s; %s: %s); it was skipped",
                    type(event).__name__,
                    type(error).__name__,
                    _first_line(error),
                )
            else:
                self.counters.written += 1
                written.append(event)
        if written:
            self._notify(written)

    def _notify(self, batch: Sequence[Event]) -> None:
        for observer in self._observers:
            try:
                observer(batch)
            except Exception:
                self._error_log.warning(
                    "observer", "slack_tasklog: an observer raised; the writer goes on", exc_info=True
                )

    def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds before trying again, or less: until flush() or close() asks for an attempt now, or
        until close()'s deadline, so that shutting down backs off too and still makes its last attempt in time."""
        if self._deadline is not None and self._stopping.is_set():
            delay = min(delay, max(self._deadline - time.monotonic(), 0.0))
        self._retry_now.wait(delay)
        self._retry_now.clear()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._stopping.is_set() and time.monotonic() >= self._deadline

    def _recover(self) -> None:
        """Write the events of journal segments whose processes died, then delete the segments. A file that is no
        readable segment is set aside as ``*.corrupt``."""
        journal = self.journal
        if journal is None:
            return
        for path in journal.orphans():
            with claimed(path) as ours:
                if not ours:
                    continue
                try:
                    contents = read_segment(path)
                except UnreadableJournalError as error:
                    journal.set_aside_file(path, error)
                    continue
                except OSError as error:
                    logger.warning(
                        "slack_tasklog: cannot read the journal %s (%s); left for the next start", path, error
                    )
                    continue
                events = contents.events
                if self._replayed is not None:
                    events = [self._replayed(event) for event in events]
                for start in range(0, len(events), self._batch_size):
                    if not self._write(events[start : start + self._batch_size]):
                        return  # shutting down: the segment stays for the next start
                self.counters.replayed += len(events)
                if contents.unreadable:
                    journal.set_aside_file(path, f"{contents.unreadable} unreadable records; the others were written")
                else:
                    path.unlink(missing_ok=True)
            if events:
                logger.warning(
                    "slack_tasklog: recovered %d events from %s, left by a process that stopped before writing them",
                    len(events),
                    path,
                )

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            left = self._accepted - self._committed
            kept = None
            if self.journal is not None:
                kept = self.journal.close(everything_committed=left == 0)
        if left:
            if kept is not None:
                self.counters.left_in_journal = left
                logger.warning(
                    "slack_tasklog: %s unreachable at shutdown; %d events left in the journal %s, "
                    "to be written on the next start",
                    self._sink.describe(),
                    left,
                    kept,
                )
            else:
                self.counters.lost_at_shutdown = left
                logger.warning(
                    "slack_tasklog: shutting down with %s unreachable; %d events were not written",
                    self._sink.describe(),
                    left,
                )
        with self._progress:
            self._finished = True
            self._progress.notify_all()


def _first_line(error: BaseException) -> str:
    # Driver errors carry the SQL and parameters on later lines; parameters are user data.
    return str(error).strip().split("\n", 1)[0][:200]
