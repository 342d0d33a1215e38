"""The first schema, which slack_tasklog created on first use before it had migrations: tasks, follow-ups, rounds,
evaluations, outcomes.

A database made then has exactly these tables and no version table; ``_migrate`` adopts it by checking its
tables and columns against ``migrations/_baseline.py`` and stamping this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The types as they were rendered then, frozen here rather than imported: later model changes must not rewrite history.
_SLACK_ID = sa.String(32)
_AGENT = sa.String(191)
_EVENT_ID = sa.String(32)
_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "tasklog_tasks",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("team_id", _SLACK_ID, nullable=False),
        sa.Column("enterprise_id", _SLACK_ID, nullable=True),
        sa.Column("channel_id", _SLACK_ID, nullable=False),
        sa.Column("thread_ts", _SLACK_ID, nullable=False),
        sa.Column("request_ts", _SLACK_ID, nullable=False),
        sa.Column("user_id", _SLACK_ID, nullable=False),
        sa.Column("request_text", _LONG_TEXT, nullable=True),
        sa.Column("requested_at", _UTC, nullable=False),
        sa.Column("recorded_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tasklog_tasks"),
        sa.UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_tasklog_tasks_team_id_channel_id_thread_ts"),
    )
    op.create_index("ix_tasklog_tasks_requested_at", "tasklog_tasks", ["requested_at"])
    op.create_index("ix_tasklog_tasks_team_id_requested_at", "tasklog_tasks", ["team_id", "requested_at"])
    op.create_index("ix_tasklog_tasks_thread_ts", "tasklog_tasks", ["thread_ts"])
    op.create_index("ix_tasklog_tasks_user_id", "tasklog_tasks", ["user_id"])

    op.create_table(
        "tasklog_follow_ups",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("task_id", _BIG_ID, nullable=False),
        sa.Column("team_id", _SLACK_ID, nullable=False),
        sa.Column("channel_id", _SLACK_ID, nullable=False),
        sa.Column("ts", _SLACK_ID, nullable=False),
        sa.Column("user_id", _SLACK_ID, nullable=False),
        sa.Column("text", _LONG_TEXT, nullable=True),
        sa.Column("posted_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasklog_tasks.id"],
            name="fk_tasklog_follow_ups_task_id_tasklog_tasks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasklog_follow_ups"),
        sa.UniqueConstraint("team_id", "channel_id", "ts", name="uq_tasklog_follow_ups_team_id_channel_id_ts"),
    )
    op.create_index("ix_tasklog_follow_ups_task_id", "tasklog_follow_ups", ["task_id"])

    op.create_table(
        "tasklog_assignments",
        sa.Column("id", _EVENT_ID, nullable=False),
        sa.Column("task_id", _BIG_ID, nullable=True),
        sa.Column("team_id", _SLACK_ID, nullable=True),
        sa.Column("channel_id", _SLACK_ID, nullable=True),
        sa.Column("thread_ts", _SLACK_ID, nullable=False),
        sa.Column("agent", _AGENT, nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("recorded_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasklog_tasks.id"],
            name="fk_tasklog_assignments_task_id_tasklog_tasks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasklog_assignments"),
    )
    op.create_index("ix_tasklog_assignments_task_id_recorded_at", "tasklog_assignments", ["task_id", "recorded_at"])
    op.create_index("ix_tasklog_assignments_thread_ts", "tasklog_assignments", ["thread_ts"])
    op.create_index("ix_tasklog_assignments_agent_recorded_at", "tasklog_assignments", ["agent", "recorded_at"])

    op.create_table(
        "tasklog_evaluations",
        sa.Column("assignment_id", _EVENT_ID, nullable=False),
        sa.Column("agent", _AGENT, nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["tasklog_assignments.id"],
            name="fk_tasklog_evaluations_assignment_id_tasklog_assignments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", "agent", name="pk_tasklog_evaluations"),
    )
    op.create_index("ix_tasklog_evaluations_agent", "tasklog_evaluations", ["agent"])

    op.create_table(
        "tasklog_outcomes",
        sa.Column("id", _EVENT_ID, nullable=False),
        sa.Column("task_id", _BIG_ID, nullable=True),
        sa.Column("team_id", _SLACK_ID, nullable=True),
        sa.Column("channel_id", _SLACK_ID, nullable=True),
        sa.Column("thread_ts", _SLACK_ID, nullable=False),
        sa.Column("agent", _AGENT, nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("execution_time", sa.Float(), nullable=False),
        sa.Column("error_message", _LONG_TEXT, nullable=True),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasklog_tasks.id"],
            name="fk_tasklog_outcomes_task_id_tasklog_tasks",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasklog_outcomes"),
    )
    op.create_index("ix_tasklog_outcomes_task_id_finished_at", "tasklog_outcomes", ["task_id", "finished_at"])
    op.create_index("ix_tasklog_outcomes_thread_ts", "tasklog_outcomes", ["thread_ts"])
    op.create_index("ix_tasklog_outcomes_agent_finished_at", "tasklog_outcomes", ["agent", "finished_at"])


def downgrade() -> None:
    # Children first: their foreign keys point at the tables dropped after them.
    for table in ("tasklog_evaluations", "tasklog_outcomes", "tasklog_assignments", "tasklog_follow_ups"):
        op.drop_table(table)
    op.drop_table("tasklog_tasks")
