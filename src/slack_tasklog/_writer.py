"""The bounded background writer between the request path and the database.

Modelled on sentry-python's ``BackgroundWorker``: one daemon thread behind a bounded queue. ``submit`` never
blocks and never raises; when the queue is full the event is dropped and counted, and the count is logged at most
once a minute. The thread starts lazily on the first event and again in a child after ``fork`` (a pre-forking
server imports the app once and forks workers), so no lock or connection is shared across processes.

The thread lingers a few milliseconds after waking so that events arriving together are written in one
transaction, and so that the request path, which shares the GIL with it, is not interrupted once per event.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ._events import Event
from ._internal import RateLimitedLog, logger

__all__ = ["BackgroundWriter", "BatchSink", "WriterStats"]


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

    def describe(self) -> str:
        """Where the events go, safe to log (no password)."""
        ...


@dataclass
class WriterStats:
    """Counters, for ``TaskLog.health()`` and the tests. Plain ints: each is written by one thread only, or under
    the writer's lock."""

    written: int = 0
    dropped: int = 0  # refused because the queue was full or the writer closed
    rejected: int = 0  # the database refused the event itself (bad data); written alone, then skipped
    retries: int = 0  # failed attempts to write a batch that were tried again
    lost_at_shutdown: int = 0


class _Marker:
    """Put into the queue by ``flush``: set once every event before it is committed."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_MAX_BACKOFF = 30.0


class BackgroundWriter:
    def __init__(
        self,
        sink: BatchSink,
        *,
        max_queue: int = 100_000,
        batch_size: int = 1_000,
        linger: float = 0.05,
        maintenance_interval: float = 30.0,
    ) -> None:
        self._sink = sink
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._linger = linger
        self._maintenance_interval = maintenance_interval
        self._drop_log = RateLimitedLog()
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
        self.stats = WriterStats()
        self._items: deque[Event | _Marker] = deque()
        self._wake = threading.Event()
        self._urgent = threading.Event()  # flush or close: skip the linger
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._deadline: float | None = None

    def _after_fork(self) -> None:
        # The parent's queued events are the parent's to write; its thread does not exist here.
        self._reset_state()
        self._sink.after_fork()

    # -- the request path -------------------------------------------------------------------------------------

    def submit(self, event: Event) -> bool:
        """Queue an event for writing. Never blocks; returns False if it had to be dropped."""
        if self._closed or len(self._items) >= self._max_queue:
            self._count_drop()
            return False
        self._items.append(event)
        if self._thread is None:
            self._start()
        # Checking first skips a lock on the hot path; see _run for why a stale True is harmless.
        if not self._wake.is_set():
            self._wake.set()
        return True

    def _count_drop(self) -> None:
        with self._lock:
            self.stats.dropped += 1
            dropped = self.stats.dropped
        self._drop_log.warning(
            "drop",
            "slack_tasklog: event dropped (%s); %d dropped so far",
            "writer closed" if self._closed else f"queue full at {self._max_queue} events",
            dropped,
        )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="slack_tasklog-writer", daemon=True)
                self._thread.start()

    # -- control ----------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(1 for item in self._items if not isinstance(item, _Marker))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted before this call is committed. False if ``timeout`` ran out."""
        if self._thread is None or not self._thread.is_alive():
            return self.pending == 0
        marker = _Marker()
        self._items.append(marker)
        self._urgent.set()
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Write what is queued (retrying for at most ``timeout`` seconds), then stop. True if nothing was lost."""
        with self._lock:
            if self._closed:
                return self.stats.lost_at_shutdown == 0
            self._closed = True
            thread = self._thread
            self._deadline = None if timeout is None else time.monotonic() + timeout
        if thread is None:
            return True
        self._stopping.set()
        self._urgent.set()
        self._wake.set()
        thread.join(None if timeout is None else timeout + 1.0)
        return self.stats.lost_at_shutdown == 0 and not thread.is_alive()

    # -- the writer thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        last_maintenance = time.monotonic()
        while True:
            woke = self._wake.wait(self._maintenance_interval)
            if woke and not self._urgent.is_set() and len(self._items) < self._batch_size:
                self._urgent.wait(self._linger)
            # Clear before draining: an event appended after this point sets the flag again, and one appended
            # before it is drained below, so none waits for the next wake-up.
            self._wake.clear()
            self._urgent.clear()
            self._drain()
            if self._stopping.is_set():
                self._drain()
                return
            now = time.monotonic()
            if now - last_maintenance >= self._maintenance_interval:
                last_maintenance = now
                try:
                    self._sink.maintain()
                except Exception:
                    logger.debug("slack_tasklog: maintenance failed; will try again later", exc_info=True)

    def _drain(self) -> None:
        while True:
            batch: list[Event] = []
            marker: _Marker | None = None
            while len(batch) < self._batch_size:
                try:
                    item = self._items.popleft()
                except IndexError:
                    break
                if isinstance(item, _Marker):
                    marker = item
                    break
                batch.append(item)
            if batch:
                self._write(batch)
            if marker is not None:
                marker.done.set()
            elif not batch:
                return

    def _write(self, batch: list[Event]) -> None:
        delay = 0.5
        failing = False
        while True:
            try:
                self._sink.write(batch)
            except Exception as error:
                if not self._sink.is_transient(error):
                    self._write_one_by_one(batch)
                    return
                if self._past_deadline():
                    self._give_up(batch)
                    return
                if not failing:
                    failing = True
                    logger.warning(
                        "slack_tasklog: cannot write to %s (%s: %s); holding %d events and retrying",
                        self._sink.describe(),
                        type(error).__name__,
                        _first_line(error),
                        len(batch) + self.pending,
                    )
                self.stats.retries += 1
                self._stopping.wait(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            else:
                self.stats.written += len(batch)
                if failing:
                    logger.warning("slack_tasklog: %s is writable again; held events written", self._sink.describe())
                return

    def _write_one_by_one(self, batch: list[Event]) -> None:
        # One bad event must not sink the batch, nor be retried forever.
        for event in batch:
            try:
                self._sink.write([event])
            except Exception as error:
                self.stats.rejected += 1
                logger.warning(
                    "slack_tasklog: the database refused one event (%s; %s: %s); it was skipped",
                    type(event).__name__,
                    type(error).__name__,
                    _first_line(error),
                )
            else:
                self.stats.written += 1

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._stopping.is_set() and time.monotonic() >= self._deadline

    def _give_up(self, batch: list[Event]) -> None:
        lost = len(batch) + self.pending
        while self._items:
            item = self._items.popleft()
            if isinstance(item, _Marker):
                item.done.set()
        self.stats.lost_at_shutdown += lost
        logger.warning(
            "slack_tasklog: shutting down with %s unreachable; %d events were not written",
            self._sink.describe(),
            lost,
        )


def _first_line(error: BaseException) -> str:
    # Driver errors carry the SQL and parameters on later lines; parameters are user data.
    return str(error).strip().split("\n", 1)[0][:200]
