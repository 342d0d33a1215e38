"""Events out of order and erasures that outlive them: ``tasklog_waiting_messages`` (replies that arrived before
their thread's request), ``tasklog_deleted_messages`` (deletions kept a day, for a message that arrives after its
deletion) and ``tasklog_forgotten_users`` (what a forgotten person wrote, arriving later, is stored without text).

New tables only: nothing to fill in.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _exact(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


_UTC = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _missing(table: str) -> bool:
    # MySQL commits each DDL statement: a rerun after an interruption skips the tables that are there.
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _missing("tasklog_waiting_messages"):
        op.create_table(
            "tasklog_waiting_messages",
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("channel_id", _exact(32), nullable=False),
            sa.Column("ts", _exact(32), nullable=False),
            sa.Column("thread_ts", _exact(32), nullable=False),
            sa.Column("user_id", _exact(32), nullable=False),
            sa.Column("text", _LONG_TEXT, nullable=True),
            sa.Column("text_erased_at", _UTC, nullable=True),
            sa.Column("recorded_at", _UTC, nullable=False),
            sa.PrimaryKeyConstraint("team_id", "channel_id", "ts", name="pk_tasklog_waiting_messages"),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
        op.create_index("ix_tasklog_waiting_messages_thread_ts", "tasklog_waiting_messages", ["thread_ts"])
        op.create_index("ix_tasklog_waiting_messages_recorded_at", "tasklog_waiting_messages", ["recorded_at"])
    if _missing("tasklog_deleted_messages"):
        op.create_table(
            "tasklog_deleted_messages",
            sa.Column("ts", _exact(32), nullable=False),
            sa.Column("channel_id", _exact(32), nullable=False),
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("deleted_at", _UTC, nullable=False),
            sa.PrimaryKeyConstraint("ts", "channel_id", "team_id", name="pk_tasklog_deleted_messages"),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
        op.create_index("ix_tasklog_deleted_messages_deleted_at", "tasklog_deleted_messages", ["deleted_at"])
    if _missing("tasklog_forgotten_users"):
        op.create_table(
            "tasklog_forgotten_users",
            sa.Column("user_id", _exact(32), nullable=False),
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("forgotten_at", _UTC, nullable=False),
            sa.PrimaryKeyConstraint("user_id", "team_id", name="pk_tasklog_forgotten_users"),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )


def downgrade() -> None:
    op.drop_table("tasklog_forgotten_users")
    op.drop_index("ix_tasklog_deleted_messages_deleted_at", table_name="tasklog_deleted_messages")
    op.drop_table("tasklog_deleted_messages")
    op.drop_index("ix_tasklog_waiting_messages_recorded_at", table_name="tasklog_waiting_messages")
    op.drop_index("ix_tasklog_waiting_messages_thread_ts", table_name="tasklog_waiting_messages")
    op.drop_table("tasklog_waiting_messages")
