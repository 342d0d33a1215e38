"""The schema, in one place.

One row per Slack thread in ``tasklog_tasks``; every message that later lands in that thread is a
``tasklog_follow_ups`` row. Each call of the bot's ``check_and_assign`` is a ``tasklog_assignments`` row (a
*round*) with one ``tasklog_evaluations`` row per agent that was asked; each call of ``process_assignment`` is a
``tasklog_outcomes`` row. Rounds and outcomes carry the lookup keys the bot's code gave (``thread_ts`` and
optionally channel/team) and a nullable ``task_id``: an assignment recorded by a process that has not seen the
request yet is stored at once and linked when the task arrives, so nothing waits and nothing is lost.

Rounds and outcomes are keyed by an id made when the event is recorded, so writing the same event twice (a retried
batch, a replayed journal) is a no-op. Tasks and follow-ups are keyed by what Slack guarantees unique: the
(team, channel, ts) of a message.

Tables are prefixed ``tasklog_`` because teams point us at the database their app already uses.

The schema is versioned: every change here needs a migration in ``migrations/versions/`` (``tests/test_migrations.py``
fails until models and migrations agree).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Assignment",
    "Base",
    "DailyCalibration",
    "DailyFailures",
    "DailyStats",
    "DeletedMessage",
    "DigestPost",
    "Evaluation",
    "Feedback",
    "FollowUp",
    "ForgottenUser",
    "Outcome",
    "Task",
    "UTCDateTime",
    "WaitingMessage",
    "WaitingVote",
]

# Explicit constraint and index names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# MySQL/MariaDB compare strings case-insensitively by default ('C1' = 'c1', 'Grok' = 'grok'), which would merge
# two Slack channels or two agents in unique keys and lookups: ids, ts and agent names get the binary collation
# there. SQLite and PostgreSQL already compare them exactly, and keep their plain VARCHAR.
MYSQL_BINARY_COLLATION = "utf8mb4_bin"


def _exact_string(length: int) -> String:
    return String(length).with_variant(mysql.VARCHAR(length, collation=MYSQL_BINARY_COLLATION), "mysql", "mariadb")


# Slack ids (T…, C…, U…) and ts strings are short; 32 leaves room and stays index-friendly everywhere.
SlackId = _exact_string(32)
# 191 characters is the longest utf8mb4 string MySQL/MariaDB can index with the default row format.
AgentName = _exact_string(191)
# A Slack message can be 40,000 characters (160 kB in utf8mb4): MySQL's TEXT stops at 64 kB.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere we want 64 bits for years of tasks.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# An id minted when the event is recorded (uuid4 hex).
EventId = _exact_string(32)
# MySQL's FLOAT is single precision (about 7 digits: 1234.56789 s reads back as 1234.57): DOUBLE there. SQLite's
# REAL and PostgreSQL's FLOAT are 8 bytes already.
Number = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
# Whatever the database's default character set, our tables hold any Unicode text, emoji included (MySQL's "utf8"
# is 3 bytes a character and refuses them).
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

#: Rounds and outcomes recorded before their task was (another process, a race): the only ones the writer looks up
#: by thread, to link them. A partial index holds just those, where the backend has them (SQLite, PostgreSQL): a
#: linked row, nearly every row, then costs no entry (migration 0006).
WAITING = sql_text("task_id IS NULL")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the backend.

    PostgreSQL keeps ``timestamptz``; SQLite and MySQL have no zone, so we store UTC wall time and put the zone
    back when reading. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            # Microseconds: Slack ts and execution times are finer than a second.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("slack_tasklog stores timezone-aware datetimes only")
        value = value.astimezone(timezone.utc)
        if dialect.name != "postgresql":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Task(Base):
    """A Slack thread whose opening app mention asked the bot to do something."""

    __tablename__ = "tasklog_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(SlackId, default="")
    enterprise_id: Mapped[str | None] = mapped_column(SlackId)
    channel_id: Mapped[str] = mapped_column(SlackId)
    # The thread's root ts: what the bot's code passes around as ``thread_ts``.
    thread_ts: Mapped[str] = mapped_column(SlackId)
    # The mention's own ts; equal to thread_ts for a top-level mention.
    request_ts: Mapped[str] = mapped_column(SlackId)
    user_id: Mapped[str] = mapped_column(SlackId)
    request_text: Mapped[str | None] = mapped_column(LongText)
    # When the user wrote it (from the message ts), not when we stored it.
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the text was erased on request (the message was deleted, or its author asked to be forgotten).
    text_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The task's latest round and that round's outcome (the rule of ``_export.latest_round_join``), kept by the
    # writer in the transaction that changes them (``summary.refresh``) so that stats and exports read one row per
    # task instead of searching its rounds and outcomes.
    latest_round_id: Mapped[str | None] = mapped_column(EventId)
    latest_outcome_id: Mapped[str | None] = mapped_column(EventId)
    latest_agent: Mapped[str | None] = mapped_column(AgentName)
    latest_confidence: Mapped[float | None] = mapped_column(Number)
    latest_success: Mapped[bool | None] = mapped_column(Boolean)
    latest_execution_time: Mapped[float | None] = mapped_column(Number)
    # The execution-time bucket this task is counted under in ``tasklog_daily_stats`` (-1: no outcome yet); NULL
    # while it is not counted there yet.
    stats_bucket: Mapped[int | None] = mapped_column(Integer)
    # The failure it is counted under in ``tasklog_daily_failures`` (``summary.failure_of``), if it failed.
    latest_error_key: Mapped[str | None] = mapped_column(EventId)
    # What the CSV shows, kept so an export reads one row per task: the latest round's ``others`` (below), how many
    # rounds, how many follow-ups. NULL where not known (rows from before they existed): the export counts then.
    latest_others: Mapped[str | None] = mapped_column(LongText)
    rounds: Mapped[int | None] = mapped_column(Integer)
    follow_ups: Mapped[int | None] = mapped_column(Integer)
    # Sums over the task's runs (``tasklog_outcomes``), kept with the summary above; NULL while no run reported any.
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Number)
    # The people's verdict (``tasklog_feedback``), kept by the writer as votes change: how many people other than
    # the requester vote up and down, and the requester's own vote (NULL: none). NULL counts: no votes.
    feedback_up: Mapped[int | None] = mapped_column(Integer)
    feedback_down: Mapped[int | None] = mapped_column(Integer)
    requester_feedback: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts"),
        Index("ix_tasklog_tasks_requested_at", "requested_at"),
        Index("ix_tasklog_tasks_team_id_requested_at", "team_id", "requested_at"),
        Index("ix_tasklog_tasks_thread_ts", "thread_ts"),
        # A deleted Slack message is found by its own (team, channel, ts) to erase its text.
        Index("ix_tasklog_tasks_team_id_channel_id_request_ts", "team_id", "channel_id", "request_ts"),
        # PostgreSQL: room on each page for the summary updates (TASKS_FILLFACTOR, below).
        TABLE_OPTIONS,
    )


#: PostgreSQL: leave a quarter of each page of ``tasklog_tasks`` free for the summary updates, so they need not touch
#: the indexes (migration 0004). Set right after the table is created, with the migration's own statement, rather
#: than with ``postgresql_with``: SQLAlchemy accepts that on a table only from 2.1, and we support 2.0.
TASKS_FILLFACTOR = 75


@event.listens_for(Task.__table__, "after_create")
def _leave_room_on_task_pages(table: Table, connection: Connection, **kw: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ALTER TABLE {table.name} SET (fillfactor = {TASKS_FILLFACTOR})")


class FollowUp(Base):
    """A later message from a person in a task's thread."""

    __tablename__ = "tasklog_follow_ups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasklog_tasks.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(SlackId, default="")
    channel_id: Mapped[str] = mapped_column(SlackId)
    ts: Mapped[str] = mapped_column(SlackId)
    user_id: Mapped[str] = mapped_column(SlackId)
    text: Mapped[str | None] = mapped_column(LongText)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "ts"),
        Index("ix_tasklog_follow_ups_task_id", "task_id"),
        # forget --user: a user's texts.
        Index("ix_tasklog_follow_ups_user_id", "user_id"),
        TABLE_OPTIONS,
    )


class Assignment(Base):
    """One round of routing: the agents were asked how confident they are, and one (or none) got the task."""

    __tablename__ = "tasklog_assignments"

    id: Mapped[str] = mapped_column(EventId, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasklog_tasks.id", ondelete="CASCADE"))
    # The keys the bot's code gave, kept so a round recorded before its task can be linked later.
    team_id: Mapped[str | None] = mapped_column(SlackId)
    channel_id: Mapped[str | None] = mapped_column(SlackId)
    thread_ts: Mapped[str] = mapped_column(SlackId)
    agent: Mapped[str | None] = mapped_column(AgentName)
    confidence: Mapped[float | None] = mapped_column(Number)
    # When check_and_assign was called: an outcome that started after this belongs to this round.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The CSV's other_agents_confidence ("Writer:8;Builder:6"), made once when the round is written.
    others: Mapped[str | None] = mapped_column(LongText)

    __table_args__ = (
        Index("ix_tasklog_assignments_task_id_recorded_at", "task_id", "recorded_at"),
        # Only rounds no task claimed yet are looked up by thread (see WAITING; MySQL indexes every row).
        Index("ix_tasklog_assignments_thread_ts", "thread_ts", sqlite_where=WAITING, postgresql_where=WAITING),
        TABLE_OPTIONS,
    )


class Evaluation(Base):
    """One agent's confidence in one round."""

    __tablename__ = "tasklog_evaluations"

    assignment_id: Mapped[str] = mapped_column(
        ForeignKey("tasklog_assignments.id", ondelete="CASCADE"), primary_key=True
    )
    agent: Mapped[str] = mapped_column(AgentName, primary_key=True)
    confidence: Mapped[float | None] = mapped_column(Number)

    # SQLite: clustered on its key, one B-tree instead of a rowid table and its key's index (migration 0005).
    __table_args__ = ({**TABLE_OPTIONS, "sqlite_with_rowid": False},)


class Outcome(Base):
    """One run of an agent on a task: success or failure, and how long it took.

    A round that assigned nobody also gets an outcome (agent NULL, failed, with the configured "No agent confident
    enough" message), so that every round is answered the same way in exports and stats.
    """

    __tablename__ = "tasklog_outcomes"

    id: Mapped[str] = mapped_column(EventId, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasklog_tasks.id", ondelete="CASCADE"))
    team_id: Mapped[str | None] = mapped_column(SlackId)
    channel_id: Mapped[str | None] = mapped_column(SlackId)
    thread_ts: Mapped[str] = mapped_column(SlackId)
    agent: Mapped[str | None] = mapped_column(AgentName)
    success: Mapped[bool] = mapped_column(Boolean)
    execution_time: Mapped[float] = mapped_column(Number)
    error_message: Mapped[str | None] = mapped_column(LongText)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the run used, if it said (``track_outcome``'s ``usage=``), and what that cost at the prices in force when
    # it was recorded (a later price change leaves it as it was).
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[float | None] = mapped_column(Number)

    __table_args__ = (
        Index("ix_tasklog_outcomes_task_id_finished_at", "task_id", "finished_at"),
        Index("ix_tasklog_outcomes_thread_ts", "thread_ts", sqlite_where=WAITING, postgresql_where=WAITING),
        TABLE_OPTIONS,
    )


class Feedback(Base):
    """One vote event on a task: a feedback reaction added or removed by a person on a message of its thread, or a
    ``record_feedback`` call. Kept as they come (a retry lands once, on its key); a person's vote on a task is their
    latest reaction still in place (:func:`slack_tasklog.storage.votes.votes_of`)."""

    __tablename__ = "tasklog_feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasklog_tasks.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(SlackId)
    channel_id: Mapped[str] = mapped_column(SlackId)
    # The message reacted to (the thread's ts for record_feedback).
    item_ts: Mapped[str] = mapped_column(SlackId)
    user_id: Mapped[str] = mapped_column(SlackId)
    # The emoji's base name; "" for record_feedback. Slack's names are at most 100 characters.
    reaction: Mapped[str] = mapped_column(_exact_string(100))
    positive: Mapped[bool] = mapped_column(Boolean)
    added: Mapped[bool] = mapped_column(Boolean)
    # Slack's event_ts: with the columns before it, what makes a redelivered event land once.
    ts: Mapped[str] = mapped_column(SlackId)
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("task_id", "item_ts", "user_id", "reaction", "ts"),
        # forget --user: a person's votes.
        Index("ix_tasklog_feedback_user_id", "user_id"),
        TABLE_OPTIONS,
    )


class DailyStats(Base):
    """Every task counted once, by the day it was requested (UTC) and its latest round: the rollup that makes stats
    over months cost a few thousand rows.

    One row per (workspace, day, latest round's agent, execution-time bucket): how many tasks, how many succeeded,
    the sum and count of their confidences, and their tokens and cost (all of a task's runs, counted under its latest
    round's agent, like its success). ``routed`` is false for tasks with no round yet; ``agent`` is ``""`` for those
    and for rounds that assigned nobody; ``bucket`` is -1 for tasks without an outcome yet, else the execution
    time's bucket (``summary.bucket_of``: 1% wide, so percentiles come out within 1%). The writer moves a task from
    one row to another as its latest round or its usage changes, in the same transaction (``summary.refresh``).
    """

    __tablename__ = "tasklog_daily_stats"

    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    # "" outside Enterprise Grid: part of the key, and NULLs never collide in a unique key.
    enterprise_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    routed: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    agent: Mapped[str] = mapped_column(AgentName, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tasks: Mapped[int] = mapped_column(BigInteger)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    confidence_sum: Mapped[float] = mapped_column(Number)
    confidence_count: Mapped[int] = mapped_column(BigInteger)
    # The tasks' tokens and cost (their ``input_tokens``, ``output_tokens``, ``cost``), and how many of them, and of
    # those how many succeeded, have a cost: cost per task divides by those, not by tasks that never said.
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost: Mapped[float] = mapped_column(Number, server_default="0")
    costed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    costed_succeeded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The people's verdict (``verdict_of`` the task's votes): tasks with one, approved, and reported successful yet
    # voted down (the agent and the people disagree).
    voted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    approved: Mapped[int] = mapped_column(BigInteger, server_default="0")
    disagreed: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (
        Index("ix_tasklog_daily_stats_day", "day"),
        TABLE_OPTIONS,
    )


class DailyCalibration(Base):
    """How tasks assigned at each confidence turned out: per (workspace, day, agent, whole confidence percent), the
    tasks whose latest round gave them to that agent at that confidence, how many finished, how many succeeded.

    Confidences are on the design document's 0-100 scale, floored to a whole number and kept within 0-100; any
    banding (0-49, 50-69, 70-84, 85-100, or deciles) is done when reading. Tasks with no agent (``""``) or no
    confidence (-1) are counted too: the daily series groups this table, a few rows per agent and day. Kept by the
    writer like :class:`DailyStats`.
    """

    __tablename__ = "tasklog_daily_calibration"

    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agent: Mapped[str] = mapped_column(AgentName, primary_key=True)
    confidence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tasks: Mapped[int] = mapped_column(BigInteger)
    finished: Mapped[int] = mapped_column(BigInteger)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    # The tasks' tokens and cost, as in DailyStats: the daily series reads them here, a few rows per agent and day.
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost: Mapped[float] = mapped_column(Number, server_default="0")
    costed: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (TABLE_OPTIONS,)


class DailyFailures(Base):
    """What failed, per (workspace, day, agent): failed tasks by their latest outcome's error, the first line of its
    message (``summary.failure_of``: ``error_key`` is its hash). Kept by the writer like :class:`DailyStats`."""

    __tablename__ = "tasklog_daily_failures"

    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    agent: Mapped[str] = mapped_column(AgentName, primary_key=True)
    error_key: Mapped[str] = mapped_column(EventId, primary_key=True)
    error_message: Mapped[str] = mapped_column(LongText)
    tasks: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (TABLE_OPTIONS,)


class DigestPost(Base):
    """One scheduled digest: which process claimed the period's post, and when it was posted.

    The primary key is what makes several bot processes post once: each tries to insert the period's row, and the
    one whose insert took posts. A claim not posted after a while (its process died) is taken over.
    """

    __tablename__ = "tasklog_digests"

    channel_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (TABLE_OPTIONS,)


class WaitingMessage(Base):
    """A reply that arrived before its thread's request (Slack does not promise order): kept here, then made a
    follow-up when the request arrives. Rows that waited 15 minutes are dropped (``Store.maintain``): a request that
    late is not coming."""

    __tablename__ = "tasklog_waiting_messages"

    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    channel_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    ts: Mapped[str] = mapped_column(SlackId, primary_key=True)
    thread_ts: Mapped[str] = mapped_column(SlackId)
    user_id: Mapped[str] = mapped_column(SlackId)
    text: Mapped[str | None] = mapped_column(LongText)
    text_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_tasklog_waiting_messages_thread_ts", "thread_ts"),
        Index("ix_tasklog_waiting_messages_recorded_at", "recorded_at"),
        TABLE_OPTIONS,
    )


class WaitingVote(Base):
    """A vote that arrived before its task (a reaction on a mention not written yet, a ``record_feedback`` call
    ahead of it): kept here, then stored with the task's votes when the task arrives. Dropped after as long as a
    waiting reply (``Store.maintain``)."""

    __tablename__ = "tasklog_waiting_votes"

    # The vote event's own key, as in tasklog_feedback; item ts first: the writer looks votes up by message.
    item_ts: Mapped[str] = mapped_column(SlackId, primary_key=True)
    # "" when record_feedback named no channel or workspace.
    channel_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    user_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    reaction: Mapped[str] = mapped_column(_exact_string(100), primary_key=True)
    ts: Mapped[str] = mapped_column(SlackId, primary_key=True)
    # NULL: the thread of the message reacted to is not known yet (found once its message is written).
    thread_ts: Mapped[str | None] = mapped_column(SlackId)
    positive: Mapped[bool] = mapped_column(Boolean)
    added: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_tasklog_waiting_votes_thread_ts", "thread_ts"),
        Index("ix_tasklog_waiting_votes_recorded_at", "recorded_at"),
        TABLE_OPTIONS,
    )


class DeletedMessage(Base):
    """A Slack message deleted, kept a day so that the message itself, arriving later (a retried mention, a reply
    before its request, a journal replayed), is stored without its text."""

    __tablename__ = "tasklog_deleted_messages"

    # ts first: the writer looks up a batch's messages by ts.
    ts: Mapped[str] = mapped_column(SlackId, primary_key=True)
    channel_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_tasklog_deleted_messages_deleted_at", "deleted_at"),
        TABLE_OPTIONS,
    )


class ForgottenUser(Base):
    """A person forgotten (``forget --user``): what they wrote before ``forgotten_at`` that reaches the writer later (a
    running bot's queue, a journal replayed) is stored without its text. ``team_id`` is ``""`` for every workspace."""

    __tablename__ = "tasklog_forgotten_users"

    # user first: the writer looks up a batch's authors.
    user_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    team_id: Mapped[str] = mapped_column(SlackId, primary_key=True)
    forgotten_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (TABLE_OPTIONS,)
