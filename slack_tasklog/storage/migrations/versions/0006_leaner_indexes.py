"""Fewer index entries per task: none by user, and by thread only for rounds and outcomes still waiting for a task.

- ``ix_tasklog_tasks_user_id`` goes. Every task added an entry to it at its user's place, not at the end: past the
  cache, each insert read and rewrote a page of its own. Importing 1,000,000 lines (500 users) took 31.7 s with it
  and 25.6 s without (measured, SQLite). What it served is rare: ``forget --user`` and stats for one user, which
  now read the tasks (``forget``) or the window's tasks (stats).
- ``ix_tasklog_assignments_thread_ts`` and ``ix_tasklog_outcomes_thread_ts`` hold only the rows whose ``task_id``
  is NULL (SQLite and PostgreSQL; MySQL/MariaDB have no partial indexes and keep them whole): the writer looks rows
  up by thread only to link those to their task, and a row gets its task when it is written nearly always.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BY_THREAD = (
    ("ix_tasklog_assignments_thread_ts", "tasklog_assignments"),
    ("ix_tasklog_outcomes_thread_ts", "tasklog_outcomes"),
)


def upgrade() -> None:
    op.drop_index("ix_tasklog_tasks_user_id", table_name="tasklog_tasks")
    if op.get_context().dialect.name in ("sqlite", "postgresql"):
        waiting = sa.text("task_id IS NULL")
        for name, table in _BY_THREAD:
            op.drop_index(name, table_name=table)
            op.create_index(name, table, ["thread_ts"], sqlite_where=waiting, postgresql_where=waiting)


def downgrade() -> None:
    if op.get_context().dialect.name in ("sqlite", "postgresql"):
        for name, table in _BY_THREAD:
            op.drop_index(name, table_name=table)
            op.create_index(name, table, ["thread_ts"])
    op.create_index("ix_tasklog_tasks_user_id", "tasklog_tasks", ["user_id"])
