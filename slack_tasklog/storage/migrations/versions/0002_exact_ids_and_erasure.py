"""Exact ids and numbers on MySQL/MariaDB, utf8mb4 tables; indexes and ``text_erased_at`` for erasing texts.

- MySQL/MariaDB only: Slack ids, ts and agent names get the binary collation ``utf8mb4_bin`` (the default
  collations are case-insensitive, so ``C1`` and ``c1``, or agents ``Grok`` and ``grok``, collided in unique keys
  and lookups); numbers become DOUBLE (FLOAT keeps about 7 significant digits: 1234.56789 s read back as 1234.57;
  existing values keep what FLOAT stored); the tables' default character set becomes utf8mb4 and text columns are
  converted to it (emoji in requests). SQLite and PostgreSQL already behave this way and are not touched.
- Everywhere: ``text_erased_at`` on tasks and follow-ups (when a text was erased on request), an index to find a
  task by its request message (a deleted Slack message) and one to find a user's follow-ups (``forget --user``).

MySQL commits every DDL statement on its own, so each MySQL step checks whether an interrupted earlier run already
did it: running this revision again after a failure finishes the job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

# MySQL/MariaDB column definitions, table by table: (column, VARCHAR length, or "text" / "number", nullable).
_MYSQL_COLUMNS: dict[str, list[tuple[str, int | str, bool]]] = {
    "tasklog_tasks": [
        ("team_id", 32, False),
        ("enterprise_id", 32, True),
        ("channel_id", 32, False),
        ("thread_ts", 32, False),
        ("request_ts", 32, False),
        ("user_id", 32, False),
        ("request_text", "text", True),
    ],
    "tasklog_follow_ups": [
        ("team_id", 32, False),
        ("channel_id", 32, False),
        ("ts", 32, False),
        ("user_id", 32, False),
        ("text", "text", True),
    ],
    "tasklog_assignments": [
        ("id", 32, False),
        ("team_id", 32, True),
        ("channel_id", 32, True),
        ("thread_ts", 32, False),
        ("agent", 191, True),
        ("confidence", "number", True),
    ],
    "tasklog_evaluations": [
        ("assignment_id", 32, False),
        ("agent", 191, False),
        ("confidence", "number", True),
    ],
    "tasklog_outcomes": [
        ("id", 32, False),
        ("team_id", 32, True),
        ("channel_id", 32, True),
        ("thread_ts", 32, False),
        ("agent", 191, True),
        ("execution_time", "number", False),
        ("error_message", "text", True),
    ],
}
# MySQL refuses to change the collation of a column a foreign key joins on: this one is dropped and made again.
_STRING_FK = "fk_tasklog_evaluations_assignment_id_tasklog_assignments"

_ERASURE_INDEXES = (
    ("tasklog_tasks", "ix_tasklog_tasks_team_id_channel_id_request_ts", ["team_id", "channel_id", "request_ts"]),
    ("tasklog_follow_ups", "ix_tasklog_follow_ups_user_id", ["user_id"]),
)


def _is_mysql() -> bool:
    return op.get_context().dialect.name in ("mysql", "mariadb")


def _mysql_definition(kind: int | str, nullable: bool, *, exact: bool) -> str:
    if kind == "number":
        definition = "DOUBLE" if exact else "FLOAT"
    elif kind == "text":
        definition = "MEDIUMTEXT CHARACTER SET utf8mb4"
    elif exact:
        definition = f"VARCHAR({kind}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    else:
        definition = f"VARCHAR({kind})"  # the table's default character set and collation
    return f"{definition} {'NULL' if nullable else 'NOT NULL'}"


def _has_string_fk() -> bool:
    # A fresh inspector each time: it caches what it reflected.
    return any(fk["name"] == _STRING_FK for fk in sa.inspect(op.get_bind()).get_foreign_keys("tasklog_evaluations"))


def _alter_mysql_columns(*, exact: bool) -> None:
    if _has_string_fk():
        op.drop_constraint(_STRING_FK, "tasklog_evaluations", type_="foreignkey")
    for table, columns in _MYSQL_COLUMNS.items():
        # One ALTER per table: MySQL copies the table for each statement that changes a collation.
        clauses = ["DEFAULT CHARACTER SET utf8mb4"] if exact else []
        clauses += [
            f"MODIFY {name} {_mysql_definition(kind, nullable, exact=exact)}" for name, kind, nullable in columns
        ]
        op.execute(f"ALTER TABLE {table} {', '.join(clauses)}")
    if not _has_string_fk():
        op.create_foreign_key(
            _STRING_FK, "tasklog_evaluations", "tasklog_assignments", ["assignment_id"], ["id"], ondelete="CASCADE"
        )


def upgrade() -> None:
    mysql_like = _is_mysql()
    if mysql_like:
        _alter_mysql_columns(exact=True)
    inspector = sa.inspect(op.get_bind())
    for table, index, columns in _ERASURE_INDEXES:
        present_columns = {column["name"] for column in inspector.get_columns(table)}
        present_indexes = {ix["name"] for ix in inspector.get_indexes(table)}
        with op.batch_alter_table(table) as batch:
            if not (mysql_like and "text_erased_at" in present_columns):
                batch.add_column(sa.Column("text_erased_at", _UTC, nullable=True))
            if not (mysql_like and index in present_indexes):
                batch.create_index(index, columns)


def downgrade() -> None:
    for table, index, _ in _ERASURE_INDEXES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(index)
            batch.drop_column("text_erased_at")
    if _is_mysql():
        # Back to the tables' default collation and FLOAT; the tables keep utf8mb4, which loses nothing.
        _alter_mysql_columns(exact=False)
