"""Votes out of order: ``tasklog_waiting_votes`` keeps a vote that arrived before its task (a reaction on a mention
not written yet, a ``record_feedback`` call ahead of it) until the task arrives.

A new table only: nothing to fill in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _exact(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


_UTC = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    # MySQL commits each DDL statement: a rerun after an interruption skips the table if it is there.
    if sa.inspect(op.get_bind()).has_table("tasklog_waiting_votes"):
        return
    op.create_table(
        "tasklog_waiting_votes",
        sa.Column("item_ts", _exact(32), nullable=False),
        sa.Column("channel_id", _exact(32), nullable=False),
        sa.Column("team_id", _exact(32), nullable=False),
        sa.Column("user_id", _exact(32), nullable=False),
        sa.Column("reaction", _exact(100), nullable=False),
        sa.Column("ts", _exact(32), nullable=False),
        sa.Column("thread_ts", _exact(32), nullable=True),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint(
            "item_ts", "channel_id", "team_id", "user_id", "reaction", "ts", name="pk_tasklog_waiting_votes"
        ),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_index("ix_tasklog_waiting_votes_thread_ts", "tasklog_waiting_votes", ["thread_ts"])
    op.create_index("ix_tasklog_waiting_votes_recorded_at", "tasklog_waiting_votes", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_tasklog_waiting_votes_recorded_at", table_name="tasklog_waiting_votes")
    op.drop_index("ix_tasklog_waiting_votes_thread_ts", table_name="tasklog_waiting_votes")
    op.drop_table("tasklog_waiting_votes")
