"""Feedback: every vote on a task (``tasklog_feedback``), the votes' summary on the task, and its verdict in the
daily rollup (``voted``, ``approved``, ``disagreed``), so stats over a year read the rollup as before.

No task had votes before: the new table starts empty, the task columns NULL and the rollup's counts 0.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ON_TASKS = (("feedback_up", sa.Integer()), ("feedback_down", sa.Integer()), ("requester_feedback", sa.Boolean()))
_ON_DAILY = ("voted", "approved", "disagreed")


def _exact(length: int) -> sa.String:
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def upgrade() -> None:
    bind = op.get_bind()
    mysql_like = bind.dialect.name in ("mysql", "mariadb")
    # MySQL commits each DDL statement: a rerun after an interruption skips what is there.
    inspector = sa.inspect(bind)
    if not inspector.has_table("tasklog_feedback"):
        big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        op.create_table(
            "tasklog_feedback",
            sa.Column("id", big_id, primary_key=True, autoincrement=True),
            sa.Column(
                "task_id",
                big_id,
                sa.ForeignKey("tasklog_tasks.id", ondelete="CASCADE", name="fk_tasklog_feedback_task_id_tasklog_tasks"),
                nullable=False,
            ),
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("channel_id", _exact(32), nullable=False),
            sa.Column("item_ts", _exact(32), nullable=False),
            sa.Column("user_id", _exact(32), nullable=False),
            sa.Column("reaction", _exact(100), nullable=False),
            sa.Column("positive", sa.Boolean(), nullable=False),
            sa.Column("added", sa.Boolean(), nullable=False),
            sa.Column("ts", _exact(32), nullable=False),
            sa.Column(
                "given_at",
                sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
                nullable=False,
            ),
            sa.PrimaryKeyConstraint("id", name="pk_tasklog_feedback"),
            sa.UniqueConstraint(
                "task_id",
                "item_ts",
                "user_id",
                "reaction",
                "ts",
                name="uq_tasklog_feedback_task_id_item_ts_user_id_reaction_ts",
            ),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
        op.create_index("ix_tasklog_feedback_user_id", "tasklog_feedback", ["user_id"])
    present = {column["name"] for column in inspector.get_columns("tasklog_tasks")}
    with op.batch_alter_table("tasklog_tasks") as batch:
        for name, type_ in _ON_TASKS:
            if not (mysql_like and name in present):
                batch.add_column(sa.Column(name, type_, nullable=True))
    present = {column["name"] for column in inspector.get_columns("tasklog_daily_stats")}
    with op.batch_alter_table("tasklog_daily_stats") as batch:
        for name in _ON_DAILY:
            if not (mysql_like and name in present):
                batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("tasklog_daily_stats") as batch:
        for name in reversed(_ON_DAILY):
            batch.drop_column(name)
    with op.batch_alter_table("tasklog_tasks") as batch:
        for name, _ in reversed(_ON_TASKS):
            batch.drop_column(name)
    op.drop_index("ix_tasklog_feedback_user_id", table_name="tasklog_feedback")
    op.drop_table("tasklog_feedback")
