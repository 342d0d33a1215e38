"""Drop the index of tasks by user (``ix_tasklog_tasks_user_id``).

Every task added an entry to it at the place of its user, not at the end: with more users than the cache holds pages,
each insert read and rewrote a page of its own. Importing 1,000,000 lines (500 users) took 31.7 s with it and 25.6 s
without (measured, SQLite). What it served is rare: ``forget --user`` and stats for one user, which now read the
tasks (``forget``) or the window's tasks (stats) instead.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasklog_tasks_user_id", table_name="tasklog_tasks")


def downgrade() -> None:
    op.create_index("ix_tasklog_tasks_user_id", "tasklog_tasks", ["user_id"])
