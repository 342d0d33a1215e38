"""The schema before migrations existed (revision ``0001``), frozen.

Before it had migrations, slack_tasklog created its tables on first use with ``create_all``; this is that schema,
copied from its ``_models.py`` (commit c39e93e) and never to be edited. It says what a database without a version
table must hold to be adopted (``_migrate``), and lets tests and benchmarks make such a database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

__all__ = ["REVISION", "baseline_metadata"]

REVISION = "0001"

_NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def baseline_metadata() -> MetaData:
    """A fresh ``MetaData`` holding the five tables exactly as that ``create_all`` made them."""
    slack_id = String(32)
    agent_name = String(191)
    event_id = String(32)
    long_text = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
    big_id = BigInteger().with_variant(Integer(), "sqlite")
    # What UTCDateTime rendered as: timestamptz on PostgreSQL, DATETIME(6) on MySQL.
    utc = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

    metadata = MetaData(naming_convention=_NAMING_CONVENTION)
    Table(
        "tasklog_tasks",
        metadata,
        Column("id", big_id, primary_key=True, autoincrement=True),
        Column("team_id", slack_id, nullable=False),
        Column("enterprise_id", slack_id, nullable=True),
        Column("channel_id", slack_id, nullable=False),
        Column("thread_ts", slack_id, nullable=False),
        Column("request_ts", slack_id, nullable=False),
        Column("user_id", slack_id, nullable=False),
        Column("request_text", long_text, nullable=True),
        Column("requested_at", utc, nullable=False),
        Column("recorded_at", utc, nullable=False),
        UniqueConstraint("team_id", "channel_id", "thread_ts"),
        Index("ix_tasklog_tasks_requested_at", "requested_at"),
        Index("ix_tasklog_tasks_team_id_requested_at", "team_id", "requested_at"),
        Index("ix_tasklog_tasks_thread_ts", "thread_ts"),
        Index("ix_tasklog_tasks_user_id", "user_id"),
    )
    Table(
        "tasklog_follow_ups",
        metadata,
        Column("id", big_id, primary_key=True, autoincrement=True),
        Column("task_id", big_id, ForeignKey("tasklog_tasks.id", ondelete="CASCADE"), nullable=False),
        Column("team_id", slack_id, nullable=False),
        Column("channel_id", slack_id, nullable=False),
        Column("ts", slack_id, nullable=False),
        Column("user_id", slack_id, nullable=False),
        Column("text", long_text, nullable=True),
        Column("posted_at", utc, nullable=False),
        UniqueConstraint("team_id", "channel_id", "ts"),
        Index("ix_tasklog_follow_ups_task_id", "task_id"),
    )
    Table(
        "tasklog_assignments",
        metadata,
        Column("id", event_id, primary_key=True),
        Column("task_id", big_id, ForeignKey("tasklog_tasks.id", ondelete="CASCADE"), nullable=True),
        Column("team_id", slack_id, nullable=True),
        Column("channel_id", slack_id, nullable=True),
        Column("thread_ts", slack_id, nullable=False),
        Column("agent", agent_name, nullable=True),
        Column("confidence", Float(), nullable=True),
        Column("recorded_at", utc, nullable=False),
        Index("ix_tasklog_assignments_task_id_recorded_at", "task_id", "recorded_at"),
        Index("ix_tasklog_assignments_thread_ts", "thread_ts"),
        Index("ix_tasklog_assignments_agent_recorded_at", "agent", "recorded_at"),
    )
    Table(
        "tasklog_evaluations",
        metadata,
        Column(
            "assignment_id",
            event_id,
            ForeignKey("tasklog_assignments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("agent", agent_name, primary_key=True),
        Column("confidence", Float(), nullable=True),
        Index("ix_tasklog_evaluations_agent", "agent"),
    )
    Table(
        "tasklog_outcomes",
        metadata,
        Column("id", event_id, primary_key=True),
        Column("task_id", big_id, ForeignKey("tasklog_tasks.id", ondelete="CASCADE"), nullable=True),
        Column("team_id", slack_id, nullable=True),
        Column("channel_id", slack_id, nullable=True),
        Column("thread_ts", slack_id, nullable=False),
        Column("agent", agent_name, nullable=True),
        Column("success", Boolean(), nullable=False),
        Column("execution_time", Float(), nullable=False),
        Column("error_message", long_text, nullable=True),
        Column("started_at", utc, nullable=False),
        Column("finished_at", utc, nullable=False),
        Index("ix_tasklog_outcomes_task_id_finished_at", "task_id", "finished_at"),
        Index("ix_tasklog_outcomes_thread_ts", "thread_ts"),
        Index("ix_tasklog_outcomes_agent_finished_at", "agent", "finished_at"),
    )
    return metadata
