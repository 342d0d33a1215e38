"""Writing events to the database: idempotent, batched, linked late.

Everything the writer thread does to the database is here, in SQLAlchemy Core (the ORM's unit of work costs more
than it gives for append-only rows). Every insert is an insert-or-ignore on a natural or minted key, so a batch
written twice lands once.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import StaticPool

from slack_tasklog.events import (
    AssignmentRecorded,
    Event,
    FeedbackGiven,
    MessageDeleted,
    MessageInThread,
    OutcomeRecorded,
    TaskRequested,
)
from slack_tasklog.logs import logger, safe_url
from slack_tasklog.storage import erasure, summary
from slack_tasklog.storage.bulk import Bulk, among, any_rows, insert_ignore
from slack_tasklog.storage.migrate import MigrateMode, SchemaNotReadyError, prepare_schema
from slack_tasklog.storage.models import (
    Assignment,
    Evaluation,
    Feedback,
    FollowUp,
    Outcome,
    Task,
    WaitingMessage,
    WaitingVote,
)
from slack_tasklog.storage.rounds import other_agents
from slack_tasklog.values import amount, confidence, exception_type, token_count, ts_seconds

__all__ = [
    "DatabaseFileChangedError",
    "SlackDirectory",
    "Store",
    "create_tasklog_engine",
    "insert_ignore",
    "sqlite_file",
]

_tasks: Table = Task.__table__  # type: ignore[assignment]
_follow_ups: Table = FollowUp.__table__  # type: ignore[assignment]
_assignments: Table = Assignment.__table__  # type: ignore[assignment]
_evaluations: Table = Evaluation.__table__  # type: ignore[assignment]
_outcomes: Table = Outcome.__table__  # type: ignore[assignment]
_waiting: Table = WaitingMessage.__table__  # type: ignore[assignment]
_feedback: Table = Feedback.__table__  # type: ignore[assignment]
_waiting_votes: Table = WaitingVote.__table__  # type: ignore[assignment]

# Threads whose tasks this process knows; enough for every thread active in the last days of a busy bot.
_CACHE_SIZE = 50_000
# How often the writer purges what retention no longer keeps.
_PURGE_INTERVAL = 3600.0
# How long a SQLite connection waits for another one's lock before giving up.
_BUSY_TIMEOUT_MS = 30_000
# Bound parameters per IN (...) list: far below every backend's limit.
_IN_CHUNK = 500
# Rows waiting for their task read whole, at most (see Store._threads_with_orphans).
_WAITING_READ = 1_000
# How long a deletion is kept for its message: Slack delivers out of order by seconds and retries for minutes, but a
# stopped bot's journal is replayed at its next start, which may be days later. One small row per deleted message;
# purge and retention drop older ones sooner.
WAIT_FOR_ORDER = timedelta(days=30)
# How long a reply or a vote waits for its thread's request. Shorter: most replies in threads with no task are
# people's chatter, which is not the task log's to keep; Slack's last retry of a mention comes about 5 minutes after
# it.
WAIT_FOR_MENTION = timedelta(minutes=15)


# backend: (the extra that installs its driver, that driver's name in a URL)
_EXTRAS = {"postgresql": ("postgres", "psycopg"), "mysql": ("mysql", "pymysql"), "mariadb": ("mysql", "pymysql")}


def create_tasklog_engine(url: str) -> Engine:
    """An engine with the settings the task log needs: SQLite in WAL mode with a busy timeout, write
    transactions that take the write lock up front, pre-ping for servers that drop idle connections, and a utf8mb4
    connection to MySQL/MariaDB (emoji)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        return _server_engine(parsed, backend)
    in_memory = _sqlite_in_memory(parsed)
    path = sqlite_file(parsed)
    if in_memory:
        # One connection shared by every thread, or the writer and a reader would see two different databases.
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        if path is not None:
            try:
                _create_private_file(path)
            except OSError as error:
                # Not fatal here: the writer will report it, and retry, like any other database it cannot open.
                logger.warning("slack_tasklog: cannot create %s: %s", path, error)
        engine = create_engine(parsed)

    if path is not None:

        @event.listens_for(engine, "do_connect")
        def _before_connect(*_: Any) -> None:
            # A file deleted under the bot is created again by the next connection: private, as the first one was.
            with contextlib.suppress(OSError):
                _create_private_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: commits survive a process crash; only an OS crash can lose the last ones.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted and overwritten content is zeroed, not left in free space: erased texts must leave the file.
            cursor.execute("PRAGMA secure_delete=ON")
            # Other processes (each specialist bot) write to the same file: wait for the lock, do not fail.
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()
        if path is not None:
            _record.info[_OPENED_FILE] = _file_identity(path)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes can fail with "database is locked" without ever
        # waiting on busy_timeout; taking the write lock at BEGIN makes it wait instead.
        if connection.get_execution_options().get("tasklog_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def _server_engine(parsed: URL, backend: str) -> Engine:
    """A PostgreSQL or MySQL/MariaDB engine (see :func:`create_tasklog_engine`)."""
    connect_args = {}
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        # Some drivers still default to a 3-byte "utf8" (or latin1) connection, which cannot carry emoji. Not
        # added to the URL: the journal's directory is named after the URL the user gave.
        connect_args["charset"] = "utf8mb4"
    options: dict[str, Any] = {}
    if backend in ("mysql", "mariadb"):
        # InnoDB's default, REPEATABLE READ, would keep showing a writer the rows as they were at its first read,
        # even after it waited for another writer's lock on a task (see _summary); PostgreSQL's default is this.
        options["isolation_level"] = "READ COMMITTED"
    try:
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **options)
    except ImportError as error:
        extra, driver = _EXTRAS.get(backend, (None, None))
        hint = f"pip install 'slack-tasklog[{extra}]'" if extra else "install its driver"
        if driver and parsed.get_driver_name() != driver:
            # The extra installs this driver; a bare postgresql:// or mysql:// URL asks SQLAlchemy for another.
            hint += f" and use a {backend}+{driver}:// URL"
        raise ImportError(f"no driver for {parsed.drivername} databases: {hint} ({error})") from error
    if backend == "postgresql":
        event.listen(engine, "connect", _utc_session)
    return engine


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL: the session's time zone is UTC, the task log's own, so the driver returns times in UTC rather
    than converting each one to the server's zone (and the export and stats back again)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET outside any transaction: it lasts the session
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET TIME ZONE 'UTC'")
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit


def _sqlite_in_memory(url: URL) -> bool:
    """A SQLite URL of an in-memory database: none named, ``:memory:``, or a ``file:`` URI with ``mode=memory``."""
    return (url.database or "") in ("", ":memory:") or url.query.get("mode") == "memory"


def sqlite_file(url: URL, *, uri: bool = False) -> Path | None:
    """The file a SQLite URL names; None for other backends and in-memory databases.

    A ``file:`` URI (``sqlite:///file:tasks.db?mode=ro&uri=true``) gives its file only with ``uri=True`` (the CLI,
    which checks a file before it opens it): the writer neither creates nor watches a file that SQLite opens by URI,
    read-only perhaps."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):
        if not uri or url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser()


# Where a connection keeps the identity of the SQLite file it opened (see Store._check_same_file).
_OPENED_FILE = "tasklog_opened_file"


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``: what tells the file a connection opened from one put in its place."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


class DatabaseFileChangedError(Exception):
    """The SQLite file a connection had open was deleted or replaced: what it committed reached no one who reads
    the path. The writer reopens the database and writes the batch again (inserts are idempotent)."""


def _create_private_file(path: Path) -> None:
    """Create a missing SQLite file empty, 0600, and its missing folders 0700, whatever the umask: SQLite gives the
    ``-wal`` and ``-shm`` files the database file's mode, and the task log holds what people asked the bot."""
    if path.exists():
        return
    missing = [parent for parent in path.parents if not parent.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    try:
        path.touch(mode=0o600, exist_ok=False)  # os.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
    except FileExistsError:
        return  # another process made it first


class _KnownTask(NamedTuple):
    """A task the writer has seen: what tells the tasks of one thread ts apart."""

    id: int
    team_id: str
    channel_id: str
    request_ts: str


class SlackDirectory(Protocol):
    """What the writer asks Slack about a reaction (:class:`slack_tasklog.slack.lookup.SlackLookup`): called from the
    writer thread, before the write's transaction; never raises."""

    def thread_of(self, team_id: str, channel_id: str, ts: str) -> str | None:
        """The ts of the thread a message is in (its own ts if it starts one), None if that cannot be known."""
        ...

    def is_bot(self, team_id: str, user_id: str) -> bool:
        """Whether a user is a bot (False if that cannot be known)."""
        ...


class Store:
    """The database side of the writer (see ``BatchSink``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        cache_size: int = _CACHE_SIZE,
        migrate: MigrateMode | None = None,
        owns_engine: bool = True,
    ) -> None:
        self.engine = engine
        # False: the host's engine (TaskLog(engine=...)), whose pool is the host's to close (see reconnect).
        self._owns_engine = owns_engine
        self._sqlite_file = sqlite_file(engine.url)
        url = engine.url
        self._sqlite = url.get_backend_name() == "sqlite"
        self._in_memory = isinstance(engine.pool, StaticPool) or (self._sqlite and _sqlite_in_memory(url))
        if self._sqlite_file is not None and not owns_engine:
            # As the task log's own engines do: each new connection notes the file it opened, so that one opened
            # on a file since replaced is told apart (_check_same_file). One listener per file: SQLAlchemy adds a
            # function to an engine once, however many task logs the host makes on it.
            event.listen(engine, "connect", _noting_file(self._sqlite_file))
        self._written_file: tuple[int, int] | None = None  # the SQLite file (device, inode) last committed to
        # What ensure_schema may do to the schema (see _migrate.prepare_schema); None: the backend's default.
        self._migrate: MigrateMode | None = migrate
        self._cache_size = cache_size
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._threads: OrderedDict[str, tuple[_KnownTask, ...]] = OrderedDict()
        self._orphans_possible = False
        # Threads of replies this process put to wait since the last maintain: another process may have written
        # their request meanwhile, unseen by either transaction.
        self._parked: set[str] = set()
        # Threads (or, not known yet, messages) of votes this process put to wait since the last maintain: likewise.
        self._parked_votes: set[str] = set()
        self._forget_cache = False
        self._checkpoint_pending = False  # a checkpoint after a deletion that a reader kept from completing
        #: Purge tasks older than this, from the writer thread, once an hour (None: keep everything).
        self.retention: timedelta | None = None
        self._next_purge = 0.0
        #: Finds the thread of a message reacted to that is no task's request or follow-up (None: not looked for).
        self.slack: SlackDirectory | None = None
        self._insert_task = _bulk_insert(
            _tasks,
            ("team_id", "enterprise_id", "channel_id", "thread_ts", "request_ts", "user_id", "request_text",
             "requested_at", "recorded_at", "follow_ups", "text_erased_at"),
            engine.dialect,
        )  # fmt: skip
        self._insert_follow_up = _bulk_insert(
            _follow_ups,
            ("task_id", "team_id", "channel_id", "ts", "user_id", "text", "posted_at", "text_erased_at"),
            engine.dialect,
        )
        self._insert_waiting = _bulk_insert(
            _waiting,
            ("team_id", "channel_id", "ts", "thread_ts", "user_id", "text", "text_erased_at", "recorded_at"),
            engine.dialect,
        )
        self._insert_assignment = _bulk_insert(
            _assignments,
            ("id", "task_id", "team_id", "channel_id", "thread_ts", "agent", "confidence", "recorded_at", "others"),
            engine.dialect,
        )
        self._insert_evaluation = _bulk_insert(_evaluations, ("assignment_id", "agent", "confidence"), engine.dialect)
        self._insert_outcome = _bulk_insert(
            _outcomes,
            ("id", "task_id", "team_id", "channel_id", "thread_ts", "agent", "success", "execution_time",
             "error_message", "started_at", "finished_at", "input_tokens", "output_tokens", "cost"),
            engine.dialect,
        )  # fmt: skip
        self._insert_feedback = _bulk_insert(
            _feedback,
            ("task_id", "team_id", "channel_id", "item_ts", "user_id", "reaction", "positive", "added", "ts",
             "given_at"),
            engine.dialect,
        )  # fmt: skip
        self._insert_waiting_vote = _bulk_insert(
            _waiting_votes,
            ("item_ts", "channel_id", "team_id", "user_id", "reaction", "ts", "thread_ts", "positive", "added",
             "recorded_at"),
            engine.dialect,
        )  # fmt: skip
        self._link_assignments = _link_statement(_assignments)
        self._link_outcomes = _link_statement(_outcomes)

    # -- BatchSink --------------------------------------------------------------------------------------------

    def describe(self) -> str:
        return safe_url(self.engine.url)

    def is_transient(self, error: Exception) -> bool:
        # Held and retried until fixed, never thrown away: the database unreachable or locked, a schema that needs
        # an upgrade someone has to run (SchemaNotReadyError), a table or column missing or a privilege revoked.
        # Anything else is the batch's: it is written one by one and the event the database refuses set aside.
        if isinstance(error, OperationalError | DisconnectionError | SchemaNotReadyError | DatabaseFileChangedError):
            return True
        return isinstance(error, DBAPIError) and (error.connection_invalidated or _schema_or_privilege(error.orig))

    def after_fork(self) -> None:
        # Connections are sockets or file handles shared with the parent: never use them here.
        self.engine.dispose(close=False)

    def reconnect(self) -> None:
        if isinstance(self.engine.pool, StaticPool):
            return  # the one connection is the in-memory database itself
        if self._owns_engine:
            try:
                # Closing every idle connection also lets SQLite fold a deleted file's WAL into that file and
                # remove the -wal and -shm, before a new connection would take them for the new file's.
                self.engine.dispose()
            except Exception:
                logger.debug("slack_tasklog: closing the pooled connections failed", exc_info=True)
        # The host's engine keeps its pool, and the host its connections: at most the one that failed was closed
        # (_write_connection).
        # The database may be another one now (a file replaced or re-created, a server restored): check its schema
        # again, and forget the task ids of the old one.
        self._schema_ready = False
        self._forget_cache = True

    @contextlib.contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """A connection for a write. A SQLite connection the write failed on is closed, not handed back to the pool:
        it may be the fault itself (opened read-only, or on a file since replaced), and the writer's next attempt
        gets a new one. (One a server dropped, SQLAlchemy has closed already; the others are sound.)"""
        with self.engine.connect().execution_options(tasklog_write=True) as conn:
            try:
                yield conn
            except (OperationalError, DatabaseFileChangedError):
                # An in-memory database's connection is the database itself: kept.
                if self._sqlite and not self._in_memory and not conn.invalidated:
                    with contextlib.suppress(Exception):
                        conn.invalidate()
                raise

    def _check_same_file(self, conn: Connection) -> None:
        """Raise :class:`DatabaseFileChangedError` if the SQLite file ``conn`` opened is no longer the one at its
        path: SQLite goes on writing to a deleted file without a word."""
        path = self._sqlite_file
        if path is None:
            return
        current = _file_identity(path)
        # A connection the host's engine (TaskLog(engine=...)) opened before the task log had it did not note it on
        # connect: the first check does.
        opened = conn.info.setdefault(_OPENED_FILE, current)
        if current is None or current != opened:
            raise DatabaseFileChangedError(f"{path} was deleted or replaced while open; opening it again")
        self._written_file = current

    def warn_if_file_changed(self) -> None:
        """At shutdown: say so if the SQLite file last written to is no longer the one at its path (what was
        written to it went with it). Opens nothing, so creates nothing."""
        if self._sqlite_file is None or self._written_file is None:
            return
        written, self._written_file = self._written_file, None  # said once: the close at exit has nothing new to say
        if _file_identity(self._sqlite_file) != written:
            logger.warning(
                "slack_tasklog: %s was deleted or replaced after the task log last wrote to it; what it wrote is not "
                "in the file now at that path",
                self._sqlite_file,
            )

    def _reopen_if_changed(self) -> None:
        """When idle: a SQLite file deleted or replaced since it was opened is opened again (and created, at the
        current schema, if it is missing), so that readers see it and it is there before the next event."""
        if self._sqlite_file is None:
            return
        try:
            with self.engine.connect() as conn:
                self._check_same_file(conn)
        except DatabaseFileChangedError as error:
            logger.warning("slack_tasklog: %s", error)
            self.reconnect()
            self.ensure_schema()

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                prepare_schema(self.engine, self._migrate)
                self._schema_ready = True

    def write(self, batch: Sequence[Event]) -> None:
        # A deadlock rolled the whole transaction back and left the connection sound (and this object as before:
        # what a write learns is kept only after it commits), so the batch is written again at once. Other
        # failures, and a deadlock that keeps coming back, go to the writer, which reconnects and backs off.
        for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
            try:
                self._write(batch)
            except DBAPIError as error:
                if attempt == _DEADLOCK_ATTEMPTS or not _deadlock(error.orig):
                    raise
                logger.debug("slack_tasklog: a write was chosen as a deadlock's victim; writing it again")
            else:
                return

    def _write(self, batch: Sequence[Event]) -> None:
        self.ensure_schema()
        if self._forget_cache:
            self._forget_cache = False
            self._threads.clear()
        requests, messages, assignments, outcomes, deletions, feedback = self._partition(batch)
        now = datetime.now(timezone.utc)
        now_seconds = now.timestamp()
        # What this transaction learns about tasks joins the cache only once it commits.
        learned: dict[str, tuple[_KnownTask, ...]] = {}
        orphans = False
        parked: set[str] = set()  # threads of replies put to wait
        # Tasks whose latest round may have changed (or that are new): their summaries are refreshed last.
        touched: set[int] = set()
        with self._write_connection() as conn:
            with conn.begin():
                requests, messages, erased = _without_erased_texts(conn, requests, messages)
                # The tasks this transaction has locked. First every stored task this batch may change, in one
                # step in id order before any row changes (each later step locks only what this missed): two
                # writers then never each hold a task the other waits for (see summary.lock).
                locked = self._lock_batch_tasks(
                    conn, (requests, messages, assignments, outcomes, deletions, feedback), learned
                )
                follow_up_rows: list[dict[str, Any]] = []
                if requests:
                    touched.update(
                        self._write_requests(conn, requests, now_seconds, learned, locked=locked, erased=erased)
                    )
                    # A mention in a thread that already held a task is one of its follow-ups.
                    follow_up_rows.extend(self._follow_up_rows(requests, learned, now_seconds, erased))
                    # Replies that arrived before their thread's request.
                    follow_up_rows.extend(
                        self._adopt_waiting(conn, {r.thread_ts for r in requests}, learned, now_seconds)
                    )
                if messages:
                    self._load_threads(conn, {m.thread_ts for m in messages}, learned)
                    homeless: list[MessageInThread] = []
                    follow_up_rows.extend(
                        self._follow_up_rows(messages, learned, now_seconds, erased, homeless=homeless)
                    )
                    parked = self._park(conn, homeless, now_seconds, erased)
                if follow_up_rows:
                    self._insert_follow_up.execute(conn, follow_up_rows)
                    counted = {row["task_id"] for row in follow_up_rows}
                    touched.update(counted)  # locked in order with the others before they are counted again
                if assignments or outcomes:
                    threads = {a.thread_ts for a in assignments} | {o.thread_ts for o in outcomes}
                    self._load_threads(conn, threads, learned)
                    orphans = self._write_rounds(
                        conn, assignments, outcomes, learned=learned, touched=touched, locked=locked
                    )
                if touched:
                    summary.refresh(conn, touched, locked=locked)
                if follow_up_rows:
                    summary.count_follow_ups(conn, sorted(counted))
                # Votes that arrived before this batch's requests or messages are stored with the batch's own;
                # those of threads (or messages) with no task yet wait for it.
                stamps = {r.thread_ts for r in requests} | {r.ts for r in requests} | {m.ts for m in messages}
                waited = self._waiting_votes(conn, stamps)
                parked_votes = self._write_feedback(conn, feedback, learned, now_seconds, locked=locked, waited=waited)
                if deletions:
                    # Last: a message deleted right after it was written, in the same batch, is erased too.
                    self._erase_deleted(conn, deletions, now, locked=locked)
            # After the commit: SQLite commits into a file deleted or replaced meanwhile as if nothing happened.
            self._check_same_file(conn)
        self._remember(learned)
        self._parked.update(parked)
        self._parked_votes.update(parked_votes)
        if orphans:
            self._orphans_possible = True
        if deletions:
            # Without waiting: the writer must not stall behind another process's long read. If one is in the
            # way, maintenance tries again when the writer is idle.
            self._checkpoint_pending = not self.checkpoint(wait=False)

    def _lock_batch_tasks(
        self,
        conn: Connection,
        parts: _Partition,
        learned: dict[str, tuple[_KnownTask, ...]],
    ) -> set[int]:
        """Lock (:func:`summary.lock`) the stored tasks of the batch's threads, and those whose request or follow-up
        it deletes; returns their ids. Votes whose thread is not known yet, and tasks this transaction creates, are
        locked where they are found (another writer cannot wait on a task that is not committed yet). Nothing to
        find on SQLite, where a write transaction has the whole database (each step loads the threads it needs)."""
        if self._sqlite:
            return set()
        requests, messages, assignments, outcomes, deletions, feedback = parts
        threads = {r.thread_ts for r in requests} | {m.thread_ts for m in messages}
        threads.update(*({e.thread_ts for e in events} for events in (assignments, outcomes)))
        threads.update(f.thread_ts for f in feedback if f.thread_ts is not None)
        self._load_threads(conn, threads, learned)
        ids = {task.id for thread in threads for task in learned.get(thread) or self._threads.get(thread, ())}
        places = ((_tasks, _tasks.c.request_ts, _tasks.c.id), (_follow_ups, _follow_ups.c.ts, _follow_ups.c.task_id))
        for d in deletions:
            for table, ts, task in places:
                ids.update(
                    conn.execute(
                        select(task).where(table.c.team_id == d.team_id, table.c.channel_id == d.channel_id, ts == d.ts)
                    ).scalars()
                )
        summary.lock(conn, ids)
        return ids

    def _partition(self, batch: Sequence[Event]) -> _Partition:
        """The batch by kind of event, the votes placed in their threads (:meth:`_place_feedback`): before the
        transaction, because placing may ask Slack, which must not hold the database's write lock meanwhile."""
        requests, messages, assignments, outcomes, deletions, feedback = _partition(batch)
        if feedback:
            feedback = self._place_feedback(feedback, [*requests, *messages])
        return requests, messages, assignments, outcomes, deletions, feedback

    def _place_feedback(
        self, feedback: list[FeedbackGiven], batch_messages: Sequence[TaskRequested | MessageInThread]
    ) -> list[FeedbackGiven]:
        """The votes with their task's thread: reactions on a task's request or follow-up are found in the database;
        on any other message (the bot's answers) Slack is asked (``self.slack``). Reactions by bots are left out;
        those on messages in no thread we can find keep ``thread_ts`` None: their message may not be written yet."""
        reactions = [f for f in feedback if f.thread_ts is None]
        if not reactions:
            return feedback
        with self.engine.connect() as conn:
            known = self._threads_of_messages(conn, reactions)
        # A message of this very batch (a reaction right after it was written) is not in the database yet.
        known.update({(m.team_id, m.channel_id, m.ts): m.thread_ts for m in batch_messages})
        placed = [f for f in feedback if f.thread_ts is not None]
        for f in reactions:
            key = _message_of(f)
            thread = known.get(key)
            if thread is None and self.slack is not None:
                thread = self.slack.thread_of(*key)
            if self.slack is not None and self.slack.is_bot(key[0], f.user_id):
                continue
            placed.append(f._replace(thread_ts=thread))
        return placed

    def _threads_of_messages(self, conn: Connection, reactions: list[FeedbackGiven]) -> dict[tuple[str, str, str], str]:
        """(team, channel, ts) -> thread ts, for the messages reacted to that are a task's request or follow-up, or a
        reply waiting for its request."""
        stamps: dict[tuple[str, str], set[str]] = {}
        for reaction in reactions:
            stamps.setdefault((reaction.team_id or "", reaction.channel_id or ""), set()).add(reaction.item_ts)
        found: dict[tuple[str, str, str], str] = {}
        t, f, w = _tasks.c, _follow_ups.c, _waiting.c
        # By workspace and channel first: the (team, channel, ts) indexes of requests and follow-ups lead with them.
        for (team, channel), wanted in stamps.items():
            ordered = sorted(wanted)
            for start in range(0, len(ordered), _IN_CHUNK):
                chunk = ordered[start : start + _IN_CHUNK]
                queries = (
                    select(t.request_ts, t.thread_ts).where(
                        t.team_id == team, t.channel_id == channel, among(conn, t.request_ts, chunk)
                    ),
                    select(t.thread_ts, t.thread_ts).where(
                        t.team_id == team, t.channel_id == channel, among(conn, t.thread_ts, chunk)
                    ),
                    select(f.ts, t.thread_ts)
                    .select_from(_follow_ups.join(_tasks, t.id == f.task_id))
                    .where(f.team_id == team, f.channel_id == channel, among(conn, f.ts, chunk)),
                    select(w.ts, w.thread_ts).where(
                        w.team_id == team, w.channel_id == channel, among(conn, w.ts, chunk)
                    ),
                )
                for statement in queries:
                    for ts, thread in conn.execute(statement):
                        found[(team, channel, ts)] = thread
        return found

    def _write_feedback(
        self,
        conn: Connection,
        feedback: list[FeedbackGiven],
        learned: dict[str, tuple[_KnownTask, ...]],
        now: float,
        *,
        locked: set[int],
        waited: Sequence[FeedbackGiven] = (),
    ) -> set[str]:
        """Insert the votes of known tasks (each event once), locked first, and tally those tasks' votes again. The
        others wait for their task in ``tasklog_waiting_votes``; ``waited``: votes read from there, taken out once
        stored. Returns the threads (or messages) of the votes put to wait."""
        # Keyed on the vote event: a Slack retry that arrives with its waiting first copy is one vote, in the thread
        # either copy found.
        votes: dict[tuple[str, str, str, str, str, str], FeedbackGiven] = {}
        for vote in [*waited, *feedback]:
            held = votes.get(_vote_key(vote))
            if held is None or held.thread_ts is None:
                votes[_vote_key(vote)] = vote
        was_waiting = {_vote_key(v) for v in waited}
        kept = erasure.votes_after_forget(conn, list(votes.values())) if votes else []
        if not kept:
            return set()
        self._load_threads(conn, {f.thread_ts for f in kept if f.thread_ts is not None}, learned)
        rows: list[tuple[Any, ...]] = []
        homeless: list[FeedbackGiven] = []
        adopted: list[FeedbackGiven] = []
        for f in kept:
            task = self._task_of_vote(f, learned)
            if task is None:
                if _vote_key(f) not in was_waiting:
                    homeless.append(f)
                continue
            if _vote_key(f) in was_waiting:
                adopted.append(f)
            rows.append(
                (task.id, task.team_id, task.channel_id, f.item_ts, f.user_id, f.reaction, f.positive, f.added,
                 f.ts, ts_seconds(f.ts, now))
            )  # fmt: skip
        voted = {row[0] for row in rows}
        summary.lock(conn, voted - locked)
        locked.update(voted)
        if rows:
            self._insert_feedback.execute_tuples(conn, rows)
        summary.refresh_feedback(conn, voted, locked=locked)
        if adopted:
            v = _waiting_votes.c
            conn.execute(
                delete(_waiting_votes).where(
                    v.item_ts == bindparam("b_item"),
                    v.channel_id == bindparam("b_channel"),
                    v.team_id == bindparam("b_team"),
                    v.user_id == bindparam("b_user"),
                    v.reaction == bindparam("b_reaction"),
                    v.ts == bindparam("b_ts"),
                ),
                [dict(zip(("b_item", "b_channel", "b_team", "b_user", "b_reaction", "b_ts"), _vote_key(f), strict=True))
                 for f in adopted],
            )  # fmt: skip
        if homeless:
            self._insert_waiting_vote.execute_tuples(
                conn,
                [(*_vote_key(f), f.thread_ts, f.positive, f.added, now) for f in homeless],
            )
        return {f.thread_ts or f.item_ts for f in homeless}

    def _task_of_vote(self, vote: FeedbackGiven, learned: Mapping[str, tuple[_KnownTask, ...]]) -> _KnownTask | None:
        """The task a vote is on, None if its thread holds none (yet)."""
        if vote.thread_ts is None:
            return None
        known = learned.get(vote.thread_ts) or self._threads.get(vote.thread_ts, ())
        if vote.team_id is not None and vote.channel_id is not None:
            return _exact(known, vote.team_id, vote.channel_id)
        # record_feedback without a channel or team: as for rounds.
        task_id = self._resolve(learned, vote.thread_ts, vote.channel_id, vote.team_id)
        return next((k for k in known if k.id == task_id), None)

    def _waiting_votes(self, conn: Connection, stamps: AbstractSet[str]) -> list[FeedbackGiven]:
        """The votes waiting for a task whose thread, or the message they were given on, has one of these ts; with
        their thread where it is known now (their message written since)."""
        v = _waiting_votes.c
        found: dict[tuple[str, str, str, str, str, str], FeedbackGiven] = {}
        listed = sorted(stamps) if stamps and any_rows(conn, _waiting_votes) else []
        for start in range(0, len(listed), _IN_CHUNK):
            chunk = listed[start : start + _IN_CHUNK]
            for column in (v.thread_ts, v.item_ts):
                query = select(
                    v.team_id, v.channel_id, v.item_ts, v.thread_ts, v.user_id, v.reaction, v.positive, v.added, v.ts
                ).where(among(conn, column, chunk))
                for row in conn.execute(query):
                    vote = FeedbackGiven(*row)
                    # Stored as "" when record_feedback named no channel or workspace.
                    found[_vote_key(vote)] = vote._replace(
                        team_id=vote.team_id or None, channel_id=vote.channel_id or None
                    )
        votes = list(found.values())
        unplaced = [vote for vote in votes if vote.thread_ts is None]
        if not unplaced:
            return votes
        known = self._threads_of_messages(conn, unplaced)
        return [
            vote if vote.thread_ts is not None else vote._replace(thread_ts=known.get(_message_of(vote)))
            for vote in votes
        ]

    def _erase_deleted(
        self, conn: Connection, deletions: list[MessageDeleted], now: datetime, *, locked: set[int]
    ) -> None:
        """Erase the deleted messages' texts, and error messages that may copy them: every error of a task whose
        request was deleted (the agent was given the request, and an error may quote any part of it), and the errors
        of a deleted follow-up's task that quote its text (the package gives agents no follow-ups)."""
        keys = [{"b_team": d.team_id, "b_channel": d.channel_id, "b_ts": d.ts} for d in deletions]
        requests: set[int] = set()
        quoting: dict[int, list[str]] = {}
        # The deleted message may be a task's request or one of its follow-ups.
        for table, ts, text, task in (
            (_tasks, _tasks.c.request_ts, _tasks.c.request_text, _tasks.c.id),
            (_follow_ups, _follow_ups.c.ts, _follow_ups.c.text, _follow_ups.c.task_id),
        ):
            matching = and_(
                table.c.team_id == bindparam("b_team"),
                table.c.channel_id == bindparam("b_channel"),
                ts == bindparam("b_ts"),
            )
            for key in keys:
                for task_id, stored in conn.execute(select(task, text).where(matching, text.is_not(None)), key):
                    if table is _tasks:
                        requests.add(task_id)
                    else:
                        quoting.setdefault(task_id, []).append(stored)
            conn.execute(update(table).where(matching).values({text: None, table.c.text_erased_at: now}), keys)
        erasure.reduce_errors(conn, whole=requests, quoting=quoting, locked=locked)
        erasure.remember_deletions(conn, (_key(d) for d in deletions), now)

    def checkpoint(self, *, wait: bool = True) -> bool | None:
        """SQLite: move the WAL into the database file and empty it, so erased texts are left in neither (with
        ``secure_delete``, their old pages are zeroed). False if a reader kept it from completing; None for other
        backends. Never raises: an erasure is already committed when this runs. ``wait=False``: give up at once
        (False) rather than wait for other connections to finish."""
        if self.engine.dialect.name != "sqlite":
            return None
        try:
            # The DB-API connection, not a Connection: a checkpoint cannot run inside the transaction one begins.
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                if not wait:
                    cursor.execute("PRAGMA busy_timeout=0")
                try:
                    busy: int = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                finally:
                    if not wait:
                        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
                cursor.close()
            finally:
                raw.close()
        except DBAPIError as error:
            logger.warning("slack_tasklog: cannot checkpoint %s after an erasure: %s", safe_url(self.engine.url), error)
            return False
        return busy == 0

    def maintain(self) -> None:
        """Periodic work: reopen a SQLite file replaced under the bot, purge what is past retention and what waited
        too long for its order, link rounds and replies written before their task."""
        self._reopen_if_changed()
        if self._checkpoint_pending:
            self._checkpoint_pending = not self.checkpoint(wait=False)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + _PURGE_INTERVAL
            if self.retention is not None:
                purged = self.purge(datetime.now(timezone.utc) - self.retention)
                if purged:
                    logger.info("slack_tasklog: purged %d tasks older than %s (retention)", purged, self.retention)
            else:
                with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
                    summary.drop_empty(conn)
                    now = datetime.now(timezone.utc)
                    _log_dropped(erasure.drop_waits(conn, now - WAIT_FOR_MENTION, now - WAIT_FOR_ORDER))
        if self._orphans_possible:
            self._link_orphans()
        if self._parked:
            self._adopt_parked()
        if self._parked_votes:
            self._adopt_parked_votes()

    def _adopt_parked(self) -> None:
        """Make follow-ups of the replies this process put to wait whose request another process has written since."""
        threads, self._parked = self._parked, set()
        learned: dict[str, tuple[_KnownTask, ...]] = {}
        with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
            self._load_threads(conn, threads, learned, reload=True)
            rows = self._adopt_waiting(conn, set(learned), learned, time.time())
            if rows:
                counted = sorted({row["task_id"] for row in rows})
                summary.lock(conn, counted)  # before the inserts, as in write
                self._insert_follow_up.execute(conn, rows)
                summary.count_follow_ups(conn, counted)
        self._remember(learned)

    def _adopt_parked_votes(self) -> None:
        """Store the votes this process put to wait whose task another process has written since."""
        stamps, self._parked_votes = self._parked_votes, set()
        learned: dict[str, tuple[_KnownTask, ...]] = {}
        with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
            waited = self._waiting_votes(conn, stamps)
            self._load_threads(conn, {v.thread_ts for v in waited if v.thread_ts is not None}, learned, reload=True)
            self._write_feedback(conn, [], learned, time.time(), locked=set(), waited=waited)
        self._remember(learned)

    def purge(self, before: datetime, *, chunk: int = 5_000) -> int:
        """Delete every task requested before ``before`` with its follow-ups, rounds, evaluations and outcomes, in
        transactions of ``chunk`` tasks (a long delete must not hold the lock other writers wait for). Rounds and
        outcomes never linked to a task go too once older than ``before``. Returns the number of tasks deleted."""
        self.ensure_schema()
        deleted = 0
        while True:
            with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
                ids = list(
                    conn.execute(select(_tasks.c.id).where(_tasks.c.requested_at < before).limit(chunk)).scalars()
                )
                if not ids:
                    break
                summary.remove(conn, ids)
                rounds = select(_assignments.c.id).where(_assignments.c.task_id.in_(ids))
                conn.execute(delete(_evaluations).where(_evaluations.c.assignment_id.in_(rounds)))
                for table in (_assignments, _outcomes, _follow_ups, _feedback):
                    conn.execute(delete(table).where(table.c.task_id.in_(ids)))
                conn.execute(delete(_tasks).where(_tasks.c.id.in_(ids)))
            deleted += len(ids)
        with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
            stale_rounds = select(_assignments.c.id).where(
                _assignments.c.task_id.is_(None), _assignments.c.recorded_at < before
            )
            conn.execute(delete(_evaluations).where(_evaluations.c.assignment_id.in_(stale_rounds)))
            conn.execute(
                delete(_assignments).where(_assignments.c.task_id.is_(None), _assignments.c.recorded_at < before)
            )
            conn.execute(delete(_outcomes).where(_outcomes.c.task_id.is_(None), _outcomes.c.finished_at < before))
            summary.drop_empty(conn)
            now = datetime.now(timezone.utc)
            _log_dropped(
                erasure.drop_waits(conn, max(before, now - WAIT_FOR_MENTION), max(before, now - WAIT_FOR_ORDER))
            )
        if deleted:
            self._forget_cache = True  # the writer thread drops its thread -> task cache before its next write
        return deleted

    def has_any_event(self, *, rounds: Sequence[str] = (), outcomes: Sequence[str] = ()) -> bool:
        """Whether a round or an outcome with one of these ids is stored (an import's check for a file imported
        before)."""
        self.ensure_schema()
        with self.engine.connect() as conn:
            for table, ids in ((_assignments, rounds), (_outcomes, outcomes)):
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = list(ids[start : start + _IN_CHUNK])
                    if conn.execute(select(table.c.id).where(table.c.id.in_(chunk)).limit(1)).first() is not None:
                        return True
        return False

    def forget_user(self, user_id: str, *, team_id: str | None = None) -> erasure.Erasure:
        """Erase the texts a user wrote (a data-subject request) wherever the database copied them (see
        :mod:`~slack_tasklog.storage.erasure`), then empty SQLite's WAL; the numbers stay. Returns what was erased
        (journals are the caller's: :func:`~slack_tasklog.writer.journal.forget_in_orphans`)."""
        self.ensure_schema()
        now = datetime.now(timezone.utc)
        with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
            erased = erasure.forget_user(conn, user_id, team_id, now)
        return replace(erased, checkpointed=self.checkpoint())

    def _link_orphans(self) -> None:
        """Link rounds and outcomes that were written before their task (another process, a race)."""
        self._orphans_possible = False
        touched: set[int] = set()
        with self.engine.connect().execution_options(tasklog_write=True) as conn, conn.begin():
            links: list[tuple[Table, Any, Any]] = []
            for table in (_assignments, _outcomes):
                matching = and_(
                    _tasks.c.thread_ts == table.c.thread_ts,
                    or_(table.c.channel_id.is_(None), _tasks.c.channel_id == table.c.channel_id),
                    or_(table.c.team_id.is_(None), _tasks.c.team_id == table.c.team_id),
                )
                newest = select(func.max(_tasks.c.id)).where(matching).scalar_subquery()
                touched.update(
                    conn.execute(
                        select(newest).select_from(table).where(table.c.task_id.is_(None)).distinct()
                    ).scalars()
                )
                links.append((table, matching, newest))
            touched.discard(None)
            # Both tables' tasks in one step, before either update (see summary.lock).
            summary.lock(conn, touched)
            for table, matching, newest in links:
                conn.execute(
                    update(table)
                    .where(table.c.task_id.is_(None), exists(select(_tasks.c.id).where(matching)))
                    .values(task_id=newest)
                )
            _reduce_erased_errors(conn, touched, touched)
            summary.refresh(conn, touched, locked=touched)  # every one of them locked above

    # -- the parts of a write ---------------------------------------------------------------------------------

    def _write_requests(
        self,
        conn: Connection,
        requests: list[TaskRequested],
        now: float,
        learned: dict[str, tuple[_KnownTask, ...]],
        *,
        locked: set[int],
        erased: AbstractSet[erasure.MessageKey],
    ) -> set[int]:
        """Insert the tasks (each once), link what was waiting for them; returns the ids of the tasks, and adds
        those it locked to ``locked``. ``erased``: requests whose text was erased before they arrived."""
        # Tuples in the order the statement names its columns (see __init__).
        rows: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        for r in requests:
            key = (r.team_id, r.channel_id, r.thread_ts)
            if key not in rows:
                rows[key] = (
                    r.team_id, r.enterprise_id, r.channel_id, r.thread_ts, r.ts, r.user_id,
                    r.text, ts_seconds(r.ts, now), now, 0, now if _key(r) in erased else None,
                )  # fmt: skip
        self._insert_task.execute_tuples(conn, list(rows.values()))
        # Reload rather than trust the cache: the insert may have been ignored in favour of another process's.
        self._load_threads(conn, {key[2] for key in rows}, learned, reload=True)
        # Rounds and outcomes that some process recorded before this request was written: look for them first
        # (one indexed query per table), since linking every request blindly costs two updates per task.
        waiting = self._threads_with_orphans(conn, [key[2] for key in rows])
        links: list[dict[str, Any]] = []
        linked: list[int] = []
        ids: set[int] = set()
        for team, channel, thread_ts in rows:
            task = _exact(learned.get(thread_ts, ()), team, channel)
            if task is None:
                continue
            ids.add(task.id)
            if thread_ts in waiting:
                links.append({"b_task_id": task.id, "b_thread_ts": thread_ts, "b_channel": channel, "b_team": team})
                linked.append(task.id)
        if links:
            summary.lock(conn, set(linked) - locked)
            locked.update(linked)
            conn.execute(self._link_assignments, links)
            conn.execute(self._link_outcomes, links)
            _reduce_erased_errors(conn, linked, locked)
        return ids

    def _threads_with_orphans(self, conn: Connection, threads: list[str]) -> set[str]:
        """Which of ``threads`` have rounds or outcomes waiting for their task. Few rows ever wait (a round recorded
        by another process just before the request was written), so the waiting rows are read whole and matched
        here, one small query per table, rather than looking up every new task's thread to find nothing. Only if
        many are waiting (rounds of threads that will never hold a task) are the threads looked up instead."""
        found: set[str] = set()
        wanted = set(threads)
        for table in (_assignments, _outcomes):
            waiting = (
                conn.execute(select(table.c.thread_ts).where(table.c.task_id.is_(None)).limit(_WAITING_READ + 1))
                .scalars()
                .all()
            )
            if len(waiting) <= _WAITING_READ:
                found.update(wanted.intersection(waiting))
                continue
            for start in range(0, len(threads), _IN_CHUNK):
                chunk = threads[start : start + _IN_CHUNK]
                found.update(
                    conn.execute(
                        select(table.c.thread_ts).where(
                            table.c.task_id.is_(None), among(conn, table.c.thread_ts, chunk)
                        )
                    ).scalars()
                )
        return found

    def _follow_up_rows(
        self,
        messages: Iterable[TaskRequested | MessageInThread],
        learned: Mapping[str, tuple[_KnownTask, ...]],
        now: float,
        erased: AbstractSet[erasure.MessageKey],
        *,
        homeless: list[MessageInThread] | None = None,
    ) -> list[dict[str, Any]]:
        """The follow-up rows of ``messages`` whose thread holds a task; the replies whose thread holds none are
        added to ``homeless`` (chatter in somebody else's thread, or a reply before its request)."""
        rows: list[dict[str, Any]] = []
        for m in messages:
            task = _exact(learned.get(m.thread_ts) or self._threads.get(m.thread_ts, ()), m.team_id, m.channel_id)
            if task is None:
                if homeless is not None and isinstance(m, MessageInThread):
                    homeless.append(m)
                continue
            if task.request_ts == m.ts:
                continue  # the request's other copy
            rows.append({
                "task_id": task.id,
                "team_id": m.team_id,
                "channel_id": m.channel_id,
                "ts": m.ts,
                "user_id": m.user_id,
                "text": m.text,
                "posted_at": ts_seconds(m.ts, now),
                "text_erased_at": now if _key(m) in erased else None,
            })  # fmt: skip
        return rows

    def _park(
        self, conn: Connection, replies: list[MessageInThread], now: float, erased: AbstractSet[erasure.MessageKey]
    ) -> set[str]:
        """Keep replies in threads with no task yet: their request may still be on its way (or never come).
        Returns their threads."""
        if replies:
            self._insert_waiting.execute_tuples(
                conn,
                [(m.team_id, m.channel_id, m.ts, m.thread_ts, m.user_id, m.text,
                  now if _key(m) in erased else None, now) for m in replies],
            )  # fmt: skip
        return {m.thread_ts for m in replies}

    def _adopt_waiting(
        self, conn: Connection, threads: AbstractSet[str], learned: dict[str, tuple[_KnownTask, ...]], now: float
    ) -> list[dict[str, Any]]:
        """The follow-up rows of replies that were waiting for a request of ``threads`` (which ``learned`` holds),
        taken out of ``tasklog_waiting_messages``; those whose thread still has no task of theirs stay."""
        waiting: list[MessageInThread] = []
        erased: set[erasure.MessageKey] = set()
        listed = sorted(threads) if threads and any_rows(conn, _waiting) else []
        for start in range(0, len(listed), _IN_CHUNK):
            query = select(
                _waiting.c.team_id, _waiting.c.channel_id, _waiting.c.thread_ts, _waiting.c.ts, _waiting.c.user_id,
                _waiting.c.text, _waiting.c.text_erased_at,
            ).where(among(conn, _waiting.c.thread_ts, listed[start : start + _IN_CHUNK]))  # fmt: skip
            for team, channel, thread_ts, ts, user, text, erased_at in conn.execute(query).all():
                message = MessageInThread(team, channel, thread_ts, ts, user, text)
                waiting.append(message)
                if erased_at is not None:
                    erased.add(_key(message))
        adopted = [
            m
            for m in waiting
            if _exact(learned.get(m.thread_ts) or self._threads.get(m.thread_ts, ()), m.team_id, m.channel_id)
        ]
        if adopted:
            conn.execute(
                delete(_waiting).where(
                    _waiting.c.team_id == bindparam("b_team"),
                    _waiting.c.channel_id == bindparam("b_channel"),
                    _waiting.c.ts == bindparam("b_ts"),
                ),
                [{"b_team": m.team_id, "b_channel": m.channel_id, "b_ts": m.ts} for m in adopted],
            )
        return self._follow_up_rows(adopted, learned, now, erased)

    def _write_rounds(
        self,
        conn: Connection,
        assignments: list[AssignmentRecorded],
        outcomes: list[OutcomeRecorded],
        *,
        learned: Mapping[str, tuple[_KnownTask, ...]],
        touched: set[int],
        locked: set[int],
    ) -> bool:
        """Insert rounds, evaluations and outcomes; adds the tasks they belong to to ``touched`` and ``locked``
        (they are locked first); returns whether some belong to no known task yet."""
        orphans = False
        # Tuples in the order the statements name their columns (see __init__).
        assignment_rows: list[tuple[Any, ...]] = []
        evaluation_rows: list[tuple[Any, ...]] = []
        outcome_rows: list[tuple[Any, ...]] = []
        for a in assignments:
            task_id = self._resolve(learned, a.thread_ts, a.channel_id, a.team_id)
            orphans = orphans or task_id is None
            # Events that skipped the decorators' checks (journals, the importer) may carry NaN or infinities, which
            # some backends refuse or store as is: such a confidence is stored as NULL, the rest of the round kept.
            evaluations = [(agent, confidence(value)) for agent, value in a.evaluations]
            assignment_rows.append(
                (a.id, task_id, a.team_id, a.channel_id, a.thread_ts, a.agent, confidence(a.confidence),
                 a.recorded_at, other_agents(evaluations, a.agent))
            )  # fmt: skip
            evaluation_rows += [(a.id, agent, value) for agent, value in evaluations]
            if a.agent is None:
                # Nobody was confident enough: the round fails here and now, with no agent to run it.
                outcome_rows.append(
                    (a.id, task_id, a.team_id, a.channel_id, a.thread_ts, None, False, 0.0,
                     a.unassigned_error, a.recorded_at, a.recorded_at, None, None, None)
                )  # fmt: skip
        resolved = [(o, self._resolve(learned, o.thread_ts, o.channel_id, o.team_id)) for o in outcomes]
        # Runs of tasks whose request was deleted or whose author was forgotten meanwhile (a running bot's queue, a
        # journal replayed): an error message can quote the request, so only its exception type is kept.
        erased = erasure.erased_tasks(
            conn, {task_id for o, task_id in resolved if task_id is not None and o.error_message and o.agent}
        )
        for o, task_id in resolved:
            orphans = orphans or task_id is None
            error = o.error_message
            if task_id in erased and error and o.agent:
                error = exception_type(error)
            outcome_rows.append(
                (o.id, task_id, o.team_id, o.channel_id, o.thread_ts, o.agent, o.success, o.execution_time,
                 error, o.started_at, o.finished_at, token_count(o.input_tokens), token_count(o.output_tokens),
                 amount(o.cost))
            )  # fmt: skip
        linked = {row[1] for row in assignment_rows} | {row[1] for row in outcome_rows}
        linked.discard(None)
        # Before the inserts: see _summary on why the order of locks matters.
        summary.lock(conn, linked - locked)
        touched.update(linked)
        locked.update(linked)
        if assignment_rows:
            self._insert_assignment.execute_tuples(conn, assignment_rows)
        if evaluation_rows:
            self._insert_evaluation.execute_tuples(conn, evaluation_rows)
        if outcome_rows:
            self._insert_outcome.execute_tuples(conn, outcome_rows)
        return orphans

    # -- which task is a thread's ------------------------------------------------------------------------------

    def _load_threads(
        self,
        conn: Connection,
        threads: set[str],
        learned: dict[str, tuple[_KnownTask, ...]],
        *,
        reload: bool = False,
    ) -> None:
        wanted = sorted(threads if reload else {t for t in threads if t not in learned and t not in self._threads})
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            found: dict[str, list[_KnownTask]] = {}
            query = select(
                _tasks.c.id, _tasks.c.team_id, _tasks.c.channel_id, _tasks.c.thread_ts, _tasks.c.request_ts
            ).where(among(conn, _tasks.c.thread_ts, chunk))
            for task_id, team_id, channel_id, thread_ts, request_ts in conn.execute(query).all():
                found.setdefault(thread_ts, []).append(_KnownTask(task_id, team_id, channel_id, request_ts))
            for thread_ts, tasks in found.items():
                learned[thread_ts] = tuple(tasks)

    def _resolve(
        self,
        learned: Mapping[str, tuple[_KnownTask, ...]],
        thread_ts: str,
        channel_id: str | None,
        team_id: str | None,
    ) -> int | None:
        known = learned.get(thread_ts) or self._threads.get(thread_ts, ())
        matches = [
            task
            for task in known
            if (channel_id is None or task.channel_id == channel_id) and (team_id is None or task.team_id == team_id)
        ]
        if not matches:
            return None
        # Two channels can share a thread ts; without a channel to tell them apart, the newest request is the
        # one a bot is working on.
        return max(matches, key=lambda task: task.request_ts).id

    def _remember(self, learned: Mapping[str, tuple[_KnownTask, ...]]) -> None:
        for thread_ts, tasks in learned.items():
            self._threads[thread_ts] = tasks
            self._threads.move_to_end(thread_ts)
        while len(self._threads) > self._cache_size:
            self._threads.popitem(last=False)


# Times a write chosen as a deadlock's victim is tried again at once before the writer's own retries take over.
_DEADLOCK_ATTEMPTS = 3
# PostgreSQL: deadlock detected, serialization failure; MySQL/MariaDB: ER_LOCK_DEADLOCK.
_PG_DEADLOCK = frozenset({"40P01", "40001"})
_MYSQL_DEADLOCK = frozenset({1213})


def _reduce_erased_errors(conn: Connection, task_ids: Iterable[int], locked: Iterable[int]) -> None:
    """Runs recorded before their task arrived, linked to it now: if its request was deleted or its author forgotten
    meanwhile, their error messages keep only the exception type, as :meth:`Store._write_rounds` keeps a later run's."""
    erased = erasure.erased_tasks(conn, task_ids)
    if erased:
        erasure.reduce_errors(conn, whole=erased, locked=locked)


@functools.cache
def _noting_file(path: Path) -> Callable[[Any, Any], None]:
    """A ``connect`` listener that notes the identity of the SQLite file a new connection opened: the same function
    for the same file, so that an engine is given it once."""

    def note(_dbapi_connection: Any, record: Any) -> None:
        record.info[_OPENED_FILE] = _file_identity(path)

    return note


def _deadlock(error: BaseException | None) -> bool:
    """Whether a driver's error says the transaction was rolled back to break a deadlock."""
    return _driver_error_in(error, _PG_DEADLOCK, _MYSQL_DEADLOCK)


# PostgreSQL: undefined table, undefined column, insufficient privilege, invalid schema name.
_PG_SCHEMA_OR_PRIVILEGE = frozenset({"42P01", "42703", "42501", "3F000"})
# MySQL/MariaDB: no such table, unknown column, table or column access denied, database access denied.
_MYSQL_SCHEMA_OR_PRIVILEGE = frozenset({1146, 1054, 1142, 1143, 1044})


def _schema_or_privilege(error: BaseException | None) -> bool:
    """Whether a driver's error says a table or column is missing or access to it was taken away."""
    return _driver_error_in(error, _PG_SCHEMA_OR_PRIVILEGE, _MYSQL_SCHEMA_OR_PRIVILEGE)


def _driver_error_in(error: BaseException | None, sqlstates: AbstractSet[str], mysql_codes: AbstractSet[int]) -> bool:
    """Whether a driver's error is one of these: psycopg's by SQLSTATE, PyMySQL's by its code, ``(code, msg)``."""
    if getattr(error, "sqlstate", None) in sqlstates:
        return True
    args: tuple[object, ...] = getattr(error, "args", ())
    return bool(args) and isinstance(args[0], int) and args[0] in mysql_codes


_Partition = tuple[
    list[TaskRequested],
    list[MessageInThread],
    list[AssignmentRecorded],
    list[OutcomeRecorded],
    list[MessageDeleted],
    list[FeedbackGiven],
]


def _partition(batch: Sequence[Event]) -> _Partition:
    feedback: list[FeedbackGiven] = []
    requests: list[TaskRequested] = []
    messages: list[MessageInThread] = []
    assignments: list[AssignmentRecorded] = []
    outcomes: list[OutcomeRecorded] = []
    deletions: list[MessageDeleted] = []
    for item in batch:
        if isinstance(item, TaskRequested):
            requests.append(item)
        elif isinstance(item, MessageInThread):
            messages.append(item)
        elif isinstance(item, AssignmentRecorded):
            assignments.append(item)
        elif isinstance(item, OutcomeRecorded):
            outcomes.append(item)
        elif isinstance(item, MessageDeleted):
            deletions.append(item)
        elif isinstance(item, FeedbackGiven):
            feedback.append(item)
    return requests, messages, assignments, outcomes, deletions, feedback


def _without_erased_texts(
    conn: Connection, requests: list[TaskRequested], messages: list[MessageInThread]
) -> tuple[list[TaskRequested], list[MessageInThread], set[erasure.MessageKey]]:
    """Messages deleted, or whose author was forgotten, before they got here: stored without their text. Returns the
    requests and messages so, and the keys of those erased."""
    erased = erasure.erased_before_arrival(conn, [*requests, *messages]) if requests or messages else set()
    if erased:
        requests = [r._replace(text=None) if _key(r) in erased else r for r in requests]
        messages = [m._replace(text=None) if _key(m) in erased else m for m in messages]
    return requests, messages, erased


def _key(message: TaskRequested | MessageInThread | MessageDeleted) -> erasure.MessageKey:
    return (message.team_id, message.channel_id, message.ts)


def _log_dropped(dropped: erasure.Dropped) -> None:
    if dropped.replies or dropped.votes:
        logger.info(
            "slack_tasklog: %d replies and %d votes waited %s for a task that never came; dropped",
            dropped.replies,
            dropped.votes,
            WAIT_FOR_MENTION,
        )


def _vote_key(vote: FeedbackGiven) -> tuple[str, str, str, str, str, str]:
    """A vote event's key in ``tasklog_waiting_votes`` (what makes a Slack retry land once), "" for no channel or
    workspace."""
    return (vote.item_ts, vote.channel_id or "", vote.team_id or "", vote.user_id, vote.reaction, vote.ts)


def _message_of(vote: FeedbackGiven) -> tuple[str, str, str]:
    """The (team, channel, ts) of the message a vote was given on."""
    return (vote.team_id or "", vote.channel_id or "", vote.item_ts)


def _exact(known: Iterable[_KnownTask], team_id: str, channel_id: str) -> _KnownTask | None:
    for task in known:
        if task.team_id == team_id and task.channel_id == channel_id:
            return task
    return None


def _bulk_insert(table: Table, columns: Sequence[str], dialect: Dialect) -> Bulk:
    """An insert-or-ignore of many rows of ``columns`` (see :class:`~slack_tasklog.storage.bulk.Bulk`)."""
    return Bulk(insert_ignore(table, dialect.name), dialect, columns)


def _link_statement(table: Table) -> Any:
    return (
        update(table)
        .where(
            table.c.task_id.is_(None),
            table.c.thread_ts == bindparam("b_thread_ts"),
            or_(table.c.channel_id.is_(None), table.c.channel_id == bindparam("b_channel")),
            or_(table.c.team_id.is_(None), table.c.team_id == bindparam("b_team")),
        )
        .values(task_id=bindparam("b_task_id"))
    )
