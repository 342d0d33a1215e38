"""Tokens and cost: what each run used and cost (``tasklog_outcomes``), their sums per task (``tasklog_tasks``, kept
with the task's summary) and per day (``tasklog_daily_stats``; ``tasklog_daily_calibration`` for the daily series),
so stats over a year read the rollups as before.

Every column starts empty (runs recorded before had no usage): nothing to fill in, so the upgrade only adds columns.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NUMBER = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
_USAGE = (("input_tokens", sa.BigInteger()), ("output_tokens", sa.BigInteger()), ("cost", _NUMBER))
# The rollup's sums start at 0 on the rows there already (no task counted in them had a cost).
_DAILY = (*_USAGE, ("costed", sa.BigInteger()), ("costed_succeeded", sa.BigInteger()))
_CALIBRATION = (*_USAGE, ("costed", sa.BigInteger()))


def _add(table: str, columns: tuple[tuple[str, Any], ...], **options: Any) -> None:
    # MySQL commits each DDL statement: a rerun after an interruption skips the columns that are there.
    mysql_like = op.get_context().dialect.name in ("mysql", "mariadb")
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
    with op.batch_alter_table(table) as batch:
        for name, type_ in columns:
            if not (mysql_like and name in present):
                batch.add_column(sa.Column(name, type_, **options))


def upgrade() -> None:
    _add("tasklog_outcomes", _USAGE, nullable=True)
    _add("tasklog_tasks", _USAGE, nullable=True)
    _add("tasklog_daily_stats", _DAILY, nullable=False, server_default="0")
    _add("tasklog_daily_calibration", _CALIBRATION, nullable=False, server_default="0")


def downgrade() -> None:
    for table, columns in (
        ("tasklog_daily_calibration", _CALIBRATION),
        ("tasklog_daily_stats", _DAILY),
        ("tasklog_tasks", _USAGE),
        ("tasklog_outcomes", _USAGE),
    ):
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(columns):
                batch.drop_column(name)
