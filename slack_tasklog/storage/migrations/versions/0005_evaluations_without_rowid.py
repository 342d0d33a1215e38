"""SQLite only: ``tasklog_evaluations`` becomes a ``WITHOUT ROWID`` table, stored in the order of its key.

Its key is (round id, agent): as an ordinary SQLite table it was two B-trees, the rows by a hidden rowid and an index
for the key, and every evaluation written went into both. Clustered on its key it is one B-tree, so each insert
writes once; the rows are small, the case SQLite's documentation recommends ``WITHOUT ROWID`` for. PostgreSQL
and MySQL/MariaDB (whose InnoDB tables are clustered on their key already) are not touched.

The table is rebuilt: its rows copied to a new table declared like the old one, which then takes its name (a few
seconds per million rounds).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import re

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLE = "tasklog_evaluations"
_NEW = "_tasklog_evaluations_rebuilt"


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(with_rowid=False)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(with_rowid=True)


def _rebuild(*, with_rowid: bool) -> None:
    conn = op.get_bind()
    table_sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)
    ).scalar_one()
    indexes = (
        conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (_TABLE,)
        )
        .scalars()
        .all()
    )
    # The table as it is declared, under a new name, with or without its rowid.
    declared = re.sub(r"\s*WITHOUT\s+ROWID\s*$", "", table_sql, flags=re.IGNORECASE)
    declared = re.sub(rf'^CREATE TABLE\s+("?){_TABLE}\1', f"CREATE TABLE {_NEW}", declared, count=1)
    op.execute(declared if with_rowid else f"{declared} WITHOUT ROWID")
    op.execute(
        f"INSERT INTO {_NEW} (assignment_id, agent, confidence) SELECT assignment_id, agent, confidence FROM {_TABLE}"
    )
    op.execute(f"DROP TABLE {_TABLE}")
    op.execute(f"ALTER TABLE {_NEW} RENAME TO {_TABLE}")
    for index_sql in indexes:
        op.execute(index_sql)
