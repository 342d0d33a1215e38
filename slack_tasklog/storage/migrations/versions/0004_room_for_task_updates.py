"""PostgreSQL only: leave a quarter of each new page of ``tasklog_tasks`` free (``fillfactor`` 75).

The writer updates a task's row when its latest round or outcome changes (``summary.refresh``), once or twice in
its life. With full pages (the default, 100) PostgreSQL writes the new version to another page and adds it to all
six indexes of the table; with room on the page it can keep it there without touching an index (a "HOT" update),
which makes the writer's update of a task's summary markedly cheaper. Pages written before keep their fill; new
tasks get the room. SQLite and MySQL/MariaDB have no such setting and are not touched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FILLFACTOR = 75


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE tasklog_tasks SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasklog_tasks RESET (fillfactor)")
