"""``TaskLog``: the one object a bot creates (or the module default, built from the environment)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import URL, Connection, Engine

from slack_tasklog.capture.decorators import Tracking
from slack_tasklog.capture.middleware import MessageRecorder, TaskLogMiddleware, register_async
from slack_tasklog.capture.rules import DEFAULT_FEEDBACK_EMOJI, CaptureRules
from slack_tasklog.capture.text import TextPolicy
from slack_tasklog.durations import parse_retention
from slack_tasklog.events import Event, FeedbackGiven, OutcomeRecorded
from slack_tasklog.logs import RateLimitedLog, logger, safe_url
from slack_tasklog.options import (
    check_bool,
    check_callable,
    check_choice,
    check_duration,
    check_engine,
    check_feedback_emoji,
    check_journal,
    check_optional_bool,
    check_optional_text,
    check_positive_int,
    check_prices,
    check_seconds,
    check_text,
    check_user_ids,
    parse_database_url,
)
from slack_tasklog.reports.export import ExportFilter, write_csv
from slack_tasklog.slack.commands import DEFAULT_COMMAND, CommandFlow, RoleCache, admins_from
from slack_tasklog.slack.commands import register_app_home as _register_app_home
from slack_tasklog.slack.commands import register_commands as _register_commands
from slack_tasklog.slack.digest import Digests, DigestSchedule
from slack_tasklog.slack.lookup import SlackLookup
from slack_tasklog.storage.erasure import Erasure, forget_in_events
from slack_tasklog.storage.migrate import MIGRATE_MODES, MigrateMode
from slack_tasklog.storage.store import Store, create_tasklog_engine, sqlite_file
from slack_tasklog.writer.background import BackgroundWriter, Observer
from slack_tasklog.writer.journal import Journal, rewrite_orphans, scrub_set_aside

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_UNASSIGNED_ERROR", "Health", "TaskLog", "default_journal_dir"]

#: Where tasks go when neither an argument nor ``$TASKLOG_DATABASE_URL`` says otherwise.
DEFAULT_DATABASE_URL = "sqlite:///tasklog.db"
DEFAULT_UNASSIGNED_ERROR = "No agent confident enough"
#: How long a recording call waits for its commit with ``write_through``: well inside Slack's 3 s.
WRITE_THROUGH_TIMEOUT = 2.0

_write_through_failures = RateLimitedLog()
_feedback_failures = RateLimitedLog()


class _VoteClock:
    """Now, as a Slack-like ts, later than the last one this process gave: two votes by one person in the same
    microsecond are two votes, the second one counting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0

    def __call__(self) -> str:
        with self._lock:
            self._last = max(time.time(), self._last + 1e-6)
            return f"{self._last:.6f}"


_vote_time = _VoteClock()


def _vote_problem(thread_ts: object, positive: object, user: object) -> str | None:
    """What is wrong with ``record_feedback``'s arguments, if anything (bots pass what they have at hand)."""
    if not isinstance(thread_ts, str) or not isinstance(user, str) or not thread_ts or not user:
        return "thread_ts and user must be non-empty strings"
    if not isinstance(positive, bool):  # "no" is truthy: not to be taken for a vote up
        return f"positive must be True (a vote up) or False (a vote down), not a {type(positive).__name__}"
    return None


def default_journal_dir(url: URL) -> Path | None:
    """Where a restarted process finds its journal with no configuration: beside a SQLite file, else in the user's
    data directory under a name derived from the URL (without its password). None for in-memory SQLite."""
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        return None if path is None else path.absolute().with_name(path.name + ".tasklog-journal")
    import platformdirs

    key = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return Path(platformdirs.user_data_dir("slack_tasklog")) / "journal" / key


def forget_everywhere(store: Store, journal_dir: Path | None, user_id: str, *, team_id: str | None = None) -> Erasure:
    """Erase what ``user_id`` wrote in the database, then in the journals stopped processes left in ``journal_dir``
    (their replay would bring it back) and in the files set aside there as unreadable: what
    ``TaskLog.forget_user`` and ``slack-tasklog forget`` do."""
    erased = store.forget_user(user_id, team_id=team_id)
    if journal_dir is None or not journal_dir.is_dir():
        return erased

    def change(events: list[Event]) -> list[Event]:
        return forget_in_events(events, user_id, team_id, erased.threads)

    scrubbed = rewrite_orphans(journal_dir, change) + scrub_set_aside(journal_dir, change, user_id)
    return replace(erased, journal_records=scrubbed)


@dataclass(frozen=True)
class Health:
    """A snapshot of :meth:`TaskLog.health`."""

    queued: int  #: recorded, not yet in the database (in memory or spilled to the journal)
    in_memory: int  #: of which held in memory
    written: int  #: events committed to the database by this process
    retried: int  #: batch writes retried after the database failed
    spilled: int  #: events that went to the journal only, because the queue was full
    dropped: int  #: events lost: the queue was full and there was no journal, or the log was closed
    rejected: int  #: events the database refused as invalid (logged, skipped)
    replayed: int  #: events recovered from journals left by processes that died
    journal_bytes: int  #: the size of this process's journal
    journal_dir: str | None  #: where the journal is (None: no journal)
    journal_failures: int  #: events the journal could not take (disk full, not writable): held in memory only
    corrupt_journals: int  #: unreadable journal files found at start, set aside as ``*.corrupt``
    writer_errors: int  #: unexpected errors in the writer thread (logged with their traceback; it went on)
    left_in_journal: int  #: not written at shutdown, kept in the journal for the next start
    lost_at_shutdown: int  #: not written at shutdown, with no journal to keep them


class TaskLog(Tracking):
    """A task log for a Slack Bolt app.

    Example::

        from slack_bolt import App
        from slack_tasklog import TaskLog

        app = App(token=..., signing_secret=...)
        tasklog = TaskLog("sqlite:///tasklog.db")
        app.use(tasklog.middleware)          # also works with AsyncApp.use

        @tasklog.track_assignment
        def check_and_assign(thread_ts, evaluations):
            ...

    Args:
        database_url: any SQLAlchemy URL; default ``$TASKLOG_DATABASE_URL``, else ``sqlite:///tasklog.db``.
        engine: use this engine instead of making one from a URL.
        migrate: what to do when the database's schema is not this version's, checked before the first write or
            read: ``"upgrade"`` it (the default for SQLite; under a lock, so processes starting together migrate
            once), ``"check"`` and refuse with the command to run (the default for PostgreSQL and MySQL,
            whose schema an operator upgrades: ``slack-tasklog db upgrade``; events are kept meanwhile and written
            once it is done), or ``"off"`` (you manage the schema).
        capture_thread_replies: record later messages in a task's thread as its follow-ups.
        capture_direct_messages: a person's message in the app's direct messages (Messages tab, assistant
            threads) is a task request, its thread's later messages follow-ups.
        feedback_emoji: the reactions that are people's votes on a task, by emoji name: ``True`` up, ``False``
            down (default: ``+1``, ``thumbsup``, ``white_check_mark``, ``heavy_check_mark``, ``tada`` up; ``-1``,
            ``thumbsdown``, ``x``, ``no_entry`` down; skin tones count as their base). ``{}`` records none. A
            reaction on a message that is no request or follow-up (the bot's answers) is placed with
            ``conversations.replies`` (see the README for the scopes).
        unassigned_error: the error recorded when ``check_and_assign`` assigns nobody.
        max_queue: events held in memory while the database catches up; beyond it they spill to the journal
            (or, without one, are dropped and counted).
        shutdown_timeout: how long ``close()`` (and the exit hook) waits for the last events to be written.
        journal: the write-ahead journal, on by default: ``True`` keeps it beside a SQLite file
            (``tasklog.db.tasklog-journal/``) or, for a database server, in a per-user data directory; a path puts
            it there; ``False`` keeps events only in memory until written. In-memory SQLite gets none. A process
            that dies leaves its journal behind, and the next ``TaskLog`` on the same journal writes those events.
            If the journal cannot be written (disk full), events are held in memory and ``health()`` counts it.
        journal_fsync: flush every journal line to disk: survives power loss too, at the cost of a disk write per
            event. Without it the journal survives the process being killed, not the machine.
        redact: applied to every request and follow-up text before it is stored or journaled (return the text to
            keep, or None to keep none); if it raises, no text is kept. Example: ``redact=scrub_emails``.
        store_text: False stores no request or follow-up text at all (only who, when, which agent, the outcome), and
            of a run's error only its exception type (an error may quote the request).
        retention: delete tasks older than this (``"90d"``, ``"6mo"`` or a ``timedelta``; a text under a day is
            refused as a likely slip) once an hour, from the writer.
        admins: Slack user IDs who may always export with ``/tasklog`` (and see its stats when
            ``stats_access="admins"``); default ``$TASKLOG_ADMINS`` (comma-separated).
        workspace_admins: also let the workspace's admins and owners export (``users.info``, cached 10 minutes).
        stats_access: who may run ``/tasklog stats``: ``"everyone"`` or ``"admins"`` (the people who may export).
        failure_details: who sees the full text of the most frequent failures in Slack (error messages can quote
            requests, as the export does): ``"exporters"`` (the default: the people who may export, in their own
            replies and App Home), ``"everyone"`` (``--public`` stats and digests too) or ``"nobody"``. The others
            see the exception types only (``ValueError``). The CLI always shows the full text.
        digest_channel: post each period's stats in this channel (``C…``), once per period however many bot
            processes run (the database decides which posts), catching up after downtime.
        digest_every: ``"1d"`` (UTC days) or ``"7d"`` (weeks from Monday 00:00 UTC).
        digest_team: only this workspace's tasks in the digest (default: every task in the database).
        digest_csv: attach the period's CSV (it holds every request's text: post it where that is fine).
        digest_chart: attach the period's chart (the ``charts`` extra).
        digest_client: the ``slack_sdk.WebClient`` to post with (default: one with ``$SLACK_BOT_TOKEN``).
        write_through: write each event to the database before the call that recorded it returns, for FaaS
            runtimes that freeze the process once the handler returns (run Bolt with
            ``process_before_response=True`` there). Default: on where ``$AWS_LAMBDA_FUNCTION_NAME`` is set (AWS
            Lambda), off elsewhere. Each event then waits for its commit, at most 2 s; while the database does not
            answer, later events are queued (and journaled) without waiting until it catches up.
        prices: each agent's price per **million** tokens, in your currency, ``{"Grok": {"input": 3.0, "output":
            15.0}}``: a run of an agent listed here that reports tokens (see :meth:`track_outcome`) is stored with its
            cost at the price in force when it was recorded; a later change (:attr:`prices`) leaves stored costs
            as they were.

    Recording never raises into the bot and never waits on the database: events go to a background writer. Call
    :meth:`flush` to wait for them, :meth:`close` when done (it is also called at interpreter exit).
    """

    def __init__(  # noqa: PLR0915 - one check and one assignment per option
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        migrate: MigrateMode | None = None,
        capture_thread_replies: bool = True,
        capture_direct_messages: bool = True,
        feedback_emoji: Mapping[str, bool] | None = None,
        unassigned_error: str = DEFAULT_UNASSIGNED_ERROR,
        max_queue: int = 100_000,
        shutdown_timeout: float = 10.0,
        journal: bool | str | os.PathLike[str] = True,
        journal_fsync: bool = False,
        redact: Callable[[str], str | None] | None = None,
        store_text: bool = True,
        retention: str | timedelta | None = None,
        admins: Iterable[str] | None = None,
        workspace_admins: bool = True,
        stats_access: Literal["everyone", "admins"] = "everyone",
        failure_details: Literal["exporters", "everyone", "nobody"] = "exporters",
        digest_channel: str | None = None,
        digest_every: str = "1d",
        digest_team: str | None = None,
        digest_csv: bool = False,
        digest_chart: bool = False,
        digest_client: Any = None,
        write_through: bool | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        # Every option is checked here, before anything starts: a wrong one fails now, naming itself.
        if database_url is not None:
            check_text("database_url", database_url)
        engine = check_engine(engine)
        if migrate is not None:
            check_choice("migrate", migrate, MIGRATE_MODES)
        capture_thread_replies = check_bool("capture_thread_replies", capture_thread_replies)
        capture_direct_messages = check_bool("capture_direct_messages", capture_direct_messages)
        feedback = DEFAULT_FEEDBACK_EMOJI if feedback_emoji is None else check_feedback_emoji(feedback_emoji)
        unassigned_error = check_text("unassigned_error", unassigned_error)
        max_queue = check_positive_int("max_queue", max_queue)
        shutdown_timeout = check_seconds("shutdown_timeout", shutdown_timeout)
        journal = check_journal(journal)
        journal_fsync = check_bool("journal_fsync", journal_fsync)
        redact = check_callable("redact", redact)
        store_text = check_bool("store_text", store_text)
        retention_period = check_duration("retention", retention)
        admins = check_user_ids("admins", admins)
        workspace_admins = check_bool("workspace_admins", workspace_admins)
        stats_access = check_choice("stats_access", stats_access, ("everyone", "admins"))
        failure_details = check_choice("failure_details", failure_details, ("exporters", "everyone", "nobody"))
        digest_channel = check_optional_text("digest_channel", digest_channel)
        digest_period = check_duration("digest_every", digest_every, optional=False)
        digest_team = check_optional_text("digest_team", digest_team)
        digest_csv = check_bool("digest_csv", digest_csv)
        digest_chart = check_bool("digest_chart", digest_chart)
        write_through = check_optional_bool("write_through", write_through)
        self._price_list = check_prices("prices", prices)

        self.admins = admins_from(admins, os.environ)
        self.workspace_admins = workspace_admins
        self.stats_access = stats_access
        self.failure_details = failure_details
        # One users.info answer per user for a while, shared by every app this TaskLog serves.
        self._roles = RoleCache()
        self._owns_engine = engine is None
        if engine is None:
            url = database_url or os.environ.get("TASKLOG_DATABASE_URL") or DEFAULT_DATABASE_URL
            try:
                parse_database_url(url)
            except ValueError as error:
                given = "TaskLog(database_url=...)" if database_url else "$TASKLOG_DATABASE_URL"
                raise ValueError(f"{given}: {error}") from None
            engine = create_tasklog_engine(url)
        self.engine = engine
        self.unassigned_error = unassigned_error
        self.shutdown_timeout = shutdown_timeout
        # A FaaS runtime may freeze the process, writer thread included, as soon as the handler returns.
        self.write_through = "AWS_LAMBDA_FUNCTION_NAME" in os.environ if write_through is None else write_through
        self._write_through_stalled = False
        self._store = Store(engine, migrate=migrate, owns_engine=self._owns_engine)
        self._store.retention = retention_period
        journal_dir = default_journal_dir(engine.url) if journal is True else (Path(journal) if journal else None)
        policy = TextPolicy(store_text=store_text, redact=redact)
        self._writer = BackgroundWriter(
            self._store,
            journal=Journal(journal_dir, fsync=journal_fsync) if journal_dir is not None else None,
            max_queue=max_queue,
            replayed=policy.replayed,
        )
        if self._writer.journal is not None and self._writer.journal.orphans():
            # A previous process died with events only in its journal: write them now, not at the next event.
            self._writer.start()
        # Which thread a reaction's message is in, when the database cannot say (the bot's own answers).
        self._slack_lookup = SlackLookup.from_environment(digest_client) if feedback else None
        self._store.slack = self._slack_lookup
        #: What the middleware records through: the capture rules, the text policy and this log's writer.
        self.recorder = MessageRecorder(
            CaptureRules(
                follow_ups=capture_thread_replies, direct_messages=capture_direct_messages, feedback_emoji=feedback
            ),
            policy,
            self._record,
            None if self._slack_lookup is None else self._slack_lookup.remember,
        )
        self._middleware = TaskLogMiddleware(lambda: self.recorder)
        register_async()  # if Bolt's async side is loaded by now
        self._digests: Digests | None = None
        if digest_channel is not None:
            schedule = DigestSchedule(digest_channel, digest_period, digest_team, digest_csv, digest_chart)
            client = digest_client if digest_client is not None else _default_slack_client()
            if client is None:
                logger.warning("slack_tasklog: digests need digest_client= or $SLACK_BOT_TOKEN; none will be posted")
            else:
                self._digests = Digests(self, schedule, client, failure_details=failure_details)
                self._digests.start()
        # Weakly: a TaskLog the program has let go of should not live on until exit.
        ref = weakref.ref(self)

        def close_at_exit() -> None:
            tasklog = ref()
            if tasklog is not None:
                tasklog.close()

        atexit.register(close_at_exit)

    def __repr__(self) -> str:
        return f"TaskLog({safe_url(self.engine.url)!r})"

    @property
    def middleware(self) -> TaskLogMiddleware:
        """The Bolt middleware: ``app.use(tasklog.middleware)`` for ``App`` and ``AsyncApp`` alike."""
        register_async()  # by now an AsyncApp's module is loaded, if there is one
        return self._middleware

    def _record(self, event: Event) -> None:
        # The middleware's messages come through the text policy already (MessageRecorder); the decorators' runs here.
        if isinstance(event, OutcomeRecorded):
            event = self.recorder.policy.outcome(event)
        self._writer.submit(event)
        if not self.write_through:
            return
        # While the database is unreachable, waiting on every event would hold each request past Slack's 3 s: wait
        # once, then not again until the writer has caught up (the events stay queued and journaled meanwhile).
        if self._write_through_stalled and self._writer.pending > 1:
            return
        self._write_through_stalled = not self._writer.flush(WRITE_THROUGH_TIMEOUT)
        if self._write_through_stalled:
            _write_through_failures.warning(
                "stalled",
                "slack_tasklog: %s did not take an event within %.0f s; later events are queued without waiting "
                "until it catches up",
                safe_url(self.engine.url),
                WRITE_THROUGH_TIMEOUT,
            )

    def record_feedback(
        self,
        thread_ts: str,
        positive: bool,
        *,
        user: str,
        channel: str | None = None,
        team: str | None = None,
    ) -> None:
        """Record a person's vote on the task of ``thread_ts``, for bots with their own feedback buttons or modal: the
        same as a feedback reaction, and like one the person's latest vote counts (the requester's kept apart).

        Example::

            @app.action("feedback_up")
            def on_up(ack, body):
                ack()
                message = body["message"]
                tasklog.record_feedback(message.get("thread_ts", message["ts"]), True, user=body["user"]["id"],
                                        channel=body["channel"]["id"], team=body["team"]["id"])

        Never raises and never waits on the database (a vote for a thread that holds no task yet waits for it as
        long as a reply does, then is dropped by the writer). ``channel`` and ``team`` tell apart threads of the same
        ts in two channels or workspaces.
        """
        try:
            problem = _vote_problem(thread_ts, positive, user)
            if problem is not None:
                _feedback_failures.warning(problem, "slack_tasklog: record_feedback recorded no vote: %s", problem)
                return
            self._record(FeedbackGiven(team, channel, thread_ts, thread_ts, user, "", positive, True, _vote_time()))
        except Exception:
            _feedback_failures.warning(
                "record_feedback", "slack_tasklog: record_feedback could not record a vote", exc_info=True
            )

    def _unassigned_error(self) -> str:
        return self.unassigned_error

    @property
    def prices(self) -> Mapping[str, tuple[float, float]]:
        """Each agent's (input, output) price per million tokens, as checked from ``TaskLog(prices=...)``.

        Setting it (the same shape as the option) prices the runs recorded from then on; stored costs stay::

            tasklog.prices = {"Grok": {"input": 2.5, "output": 10.0}}
        """
        return self._price_list

    @prices.setter
    def prices(self, value: Mapping[str, Mapping[str, float]] | None) -> None:
        self._price_list = check_prices("prices", value)

    def _prices(self) -> Mapping[str, tuple[float, float]]:
        return self._price_list

    def register_commands(self, app: Any, command: str = DEFAULT_COMMAND) -> None:
        """Add ``/tasklog stats | export | help`` to a Bolt ``App`` or ``AsyncApp``.

        Example::

            tasklog = TaskLog(admins=["U0ADMIN"])
            tasklog.register_commands(app)               # or command="/agents"

        Declare the command in the Slack app's settings too (see ``manifest.yml``). Works with
        ``process_before_response=True``: the ack only parses the text, the work runs in a lazy listener.
        """
        flow = CommandFlow(
            self,
            command,
            admins=self.admins,
            workspace_admins=self.workspace_admins,
            stats_access=self.stats_access,
            failure_details=self.failure_details,
            roles=self._roles,
        )
        _register_commands(app, flow)

    def register_app_home(self, app: Any, *, days: int = 7) -> None:
        """Show the last ``days`` days' figures per agent in the app's Home tab, for the viewer's workspace.

        Example::

            tasklog.register_app_home(app)   # App or AsyncApp

        Needs the ``app_home_opened`` event subscription and the Home tab enabled (see ``manifest.yml``). The view
        is published (``views.publish``) each time someone opens the tab. ``stats_access="admins"`` applies: others
        see a short note instead.
        """
        flow = CommandFlow(
            self,
            admins=self.admins,
            workspace_admins=self.workspace_admins,
            stats_access=self.stats_access,
            failure_details=self.failure_details,
            roles=self._roles,
        )
        _register_app_home(app, flow, days=days)

    # -- lifecycle --------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything recorded so far is in the database. False if ``timeout`` ran out first."""
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is still queued (waiting at most ``timeout``, default ``shutdown_timeout``) and stop.

        Also called at interpreter exit. True if nothing was left unwritten.
        """
        if self._digests is not None:
            self._digests.stop()
        complete = self._writer.close(self.shutdown_timeout if timeout is None else timeout)
        self._store.warn_if_file_changed()
        if self._owns_engine:
            # Release pooled connections (and with them SQLite's file handles); reading later reconnects.
            self.engine.dispose()
        return complete

    def purge(self, older_than: str | timedelta) -> int:
        """Delete tasks requested more than ``older_than`` ago (``"90d"``, ``"6mo"``; a text under a day is refused,
        pass a ``timedelta`` to mean it), with everything recorded about them.

        Returns the number of tasks deleted. See also ``TaskLog(retention=...)``.
        """
        return self._store.purge(datetime.now(timezone.utc) - parse_retention(older_than))

    def forget_user(self, user_id: str, *, team_id: str | None = None) -> Erasure:
        """Erase every request and follow-up text ``user_id`` wrote (a data-subject request) wherever it was copied:
        the database (error messages that quote it and the failure rollup included), SQLite's WAL, and journals
        that stopped bots left in this log's journal folder, and every vote they gave; the task's other numbers
        stay. Flushes first, so nothing this process recorded earlier escapes it; other running processes' queues
        are theirs (see ``docs/operations.md``). Returns what was erased, place by place::

            erased = tasklog.forget_user("U0123")
            print(erased.texts, erased.error_messages, erased.journal_records)
        """
        self.flush(self.shutdown_timeout)
        journal = self._writer.journal
        return forget_everywhere(
            self._store, journal.directory if journal is not None else None, user_id, team_id=team_id
        )

    def health(self) -> Health:
        """What the writer is holding and has done, for a bot to log or report::

        logger.info("task log: %s", tasklog.health())
        """
        writer = self._writer
        journal = writer.journal
        counters = writer.counters
        return Health(
            queued=writer.pending,
            in_memory=writer.in_memory,
            written=counters.written,
            retried=counters.retries,
            spilled=counters.spilled,
            dropped=counters.dropped,
            rejected=counters.rejected,
            replayed=counters.replayed,
            journal_bytes=journal.size if journal is not None else 0,
            journal_dir=str(journal.directory) if journal is not None else None,
            journal_failures=journal.failures if journal is not None else 0,
            corrupt_journals=journal.set_aside if journal is not None else 0,
            writer_errors=counters.errors,
            left_in_journal=counters.left_in_journal,
            lost_at_shutdown=counters.lost_at_shutdown,
        )

    def add_observer(self, callback: Observer) -> None:
        """Call ``callback`` with the events of each batch once it is committed to the database.

        It runs in the writer thread, never on the request path, so a slow callback delays writing, not the bot. An
        exception in it is logged (at most once a minute) and the writer goes on. Events recovered from a journal
        left by a process that died are included. Example::

            def count_failures(events):
                failures.inc(sum(isinstance(e, OutcomeRecorded) and not e.success for e in events))

            tasklog.add_observer(count_failures)
        """
        self._writer.add_observer(callback)

    # -- reading ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to the task log's database, its schema checked first (and upgraded, if ``migrate`` says so),
        for reading it yourself. Raises :class:`SchemaNotReadyError` if the schema is not this version's.

        Example::

            from slack_tasklog.reports import compute_stats

            with tasklog.connect() as conn:
                stats = compute_stats(conn, since=datetime.now(timezone.utc) - timedelta(days=7))
        """
        self._store.ensure_schema()
        with self.engine.connect() as conn:
            yield conn

    def export_csv(
        self,
        dest: str | os.PathLike[str] | IO[str],
        *,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        agent: str | None = None,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        neutralize_formulas: bool = True,
    ) -> int:
        """Write the task log as CSV (one row per task, oldest first) and return the number of rows.

        ``dest`` is a path or a text file object (open it with ``newline=""``). ``since``/``until`` bound the
        request time (naive datetimes are UTC; ISO strings are accepted), ``agent`` keeps tasks whose latest
        assignment went to that agent, ``team_id`` one workspace (``enterprise_id``: of that Grid organisation).
        Free-text cells that a spreadsheet would run as a formula are prefixed with ``'`` unless
        ``neutralize_formulas=False``. Events recorded by this process are
        flushed first (waiting at most ``shutdown_timeout``); if the database does not take them in that time (another
        process holds its write lock, or it is unreachable), raises ``TimeoutError`` rather than export without them.
        """
        # First: a schema that needs an upgrade is why events wait, and the clearer answer.
        self._store.ensure_schema()
        if not self.flush(self.shutdown_timeout):
            raise TimeoutError(
                f"slack_tasklog: {self._writer.pending} events recorded by this process are not in "
                f"{safe_url(self.engine.url)} yet (it did not take them within {self.shutdown_timeout:g} s: another "
                "process holds its write lock, or it is unreachable); no export was written, as it would miss them. "
                "Try again later."
            )
        where = ExportFilter(since=since, until=until, agent=agent, team_id=team_id, enterprise_id=enterprise_id)
        if isinstance(dest, str | os.PathLike):
            path = Path(dest)
            with path.open("w", encoding="utf-8", newline="") as out, self.connect() as conn:
                count = write_csv(conn, out, where, neutralize_formulas=neutralize_formulas)
            logger.debug("slack_tasklog: exported %d tasks to %s", count, path)
            return count
        with self.connect() as conn:
            return write_csv(conn, dest, where, neutralize_formulas=neutralize_formulas)


def _default_slack_client() -> Any:
    token = os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        return None
    from slack_sdk import WebClient

    return WebClient(token=token)
