"""Each task's latest round on its row (``latest_*`` columns), the daily rollups (``tasklog_daily_stats``,
``tasklog_daily_calibration``, ``tasklog_daily_failures``) and ``tasklog_digests`` (which process posts a digest).

Stats and exports read these instead of searching every task's rounds and outcomes (see
``slack_tasklog.storage.summary``),
so the three indexes by agent on rounds, evaluations and outcomes that nothing reads any more go: every write paid
for them.
The upgrade fills them from the rounds and outcomes already stored, with the same code the writer uses
(``summary.rebuild``): about 70 s per million tasks on SQLite, most of it working out the rounds' ``others``
from their evaluations. That code reads and writes the summary columns of the newest schema, so it runs once the
upgrade has reached head (``migrate.upgrade``), in the same transaction, not here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _exact(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


_UTC = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_NUMBER = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
# (table, index, columns): no query reads them since stats come from the rollup.
_AGENT_INDEXES = (
    ("tasklog_assignments", "ix_tasklog_assignments_agent_recorded_at", ["agent", "recorded_at"]),
    ("tasklog_evaluations", "ix_tasklog_evaluations_agent", ["agent"]),
    ("tasklog_outcomes", "ix_tasklog_outcomes_agent_finished_at", ["agent", "finished_at"]),
)
_TASK_COLUMNS = (
    ("latest_round_id", _exact(32)),
    ("latest_outcome_id", _exact(32)),
    ("latest_agent", _exact(191)),
    ("latest_confidence", _NUMBER),
    ("latest_success", sa.Boolean()),
    ("latest_execution_time", _NUMBER),
    ("stats_bucket", sa.Integer()),
    ("latest_error_key", _exact(32)),
    ("latest_others", _LONG_TEXT),
    ("rounds", sa.Integer()),
    ("follow_ups", sa.Integer()),
)


def upgrade() -> None:
    mysql_like = op.get_context().dialect.name in ("mysql", "mariadb")
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("tasklog_tasks")}
    with op.batch_alter_table("tasklog_tasks") as batch:
        for name, type_ in _TASK_COLUMNS:
            # MySQL commits each DDL statement: a rerun after an interruption skips what is there.
            if not (mysql_like and name in present):
                batch.add_column(sa.Column(name, type_, nullable=True))
    rounds_present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("tasklog_assignments")}
    if not (mysql_like and "others" in rounds_present):
        with op.batch_alter_table("tasklog_assignments") as batch:
            batch.add_column(sa.Column("others", _LONG_TEXT, nullable=True))
    if not (mysql_like and sa.inspect(op.get_bind()).has_table("tasklog_daily_stats")):
        op.create_table(
            "tasklog_daily_stats",
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("enterprise_id", _exact(32), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("routed", sa.Boolean(), nullable=False),
            sa.Column("agent", _exact(191), nullable=False),
            sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("tasks", sa.BigInteger(), nullable=False),
            sa.Column("succeeded", sa.BigInteger(), nullable=False),
            sa.Column("confidence_sum", _NUMBER, nullable=False),
            sa.Column("confidence_count", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "team_id", "enterprise_id", "day", "routed", "agent", "bucket", name="pk_tasklog_daily_stats"
            ),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
        op.create_index("ix_tasklog_daily_stats_day", "tasklog_daily_stats", ["day"])
    if not (mysql_like and sa.inspect(op.get_bind()).has_table("tasklog_daily_calibration")):
        op.create_table(
            "tasklog_daily_calibration",
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("enterprise_id", _exact(32), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("agent", _exact(191), nullable=False),
            sa.Column("confidence", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("tasks", sa.BigInteger(), nullable=False),
            sa.Column("finished", sa.BigInteger(), nullable=False),
            sa.Column("succeeded", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "team_id", "enterprise_id", "day", "agent", "confidence", name="pk_tasklog_daily_calibration"
            ),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
    for table, index, _ in _AGENT_INDEXES:
        if not mysql_like or index in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.drop_index(index, table_name=table)
    if not (mysql_like and sa.inspect(op.get_bind()).has_table("tasklog_daily_failures")):
        op.create_table(
            "tasklog_daily_failures",
            sa.Column("team_id", _exact(32), nullable=False),
            sa.Column("enterprise_id", _exact(32), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("agent", _exact(191), nullable=False),
            sa.Column("error_key", _exact(32), nullable=False),
            sa.Column("error_message", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False),
            sa.Column("tasks", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "team_id", "enterprise_id", "day", "agent", "error_key", name="pk_tasklog_daily_failures"
            ),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )
    if not (mysql_like and sa.inspect(op.get_bind()).has_table("tasklog_digests")):
        op.create_table(
            "tasklog_digests",
            sa.Column("channel_id", _exact(32), nullable=False),
            sa.Column("period_start", _UTC, nullable=False),
            sa.Column("period_end", _UTC, nullable=False),
            sa.Column("claimed_by", sa.String(64), nullable=False),
            sa.Column("claimed_at", _UTC, nullable=False),
            sa.Column("posted_at", _UTC, nullable=True),
            sa.PrimaryKeyConstraint("channel_id", "period_start", name="pk_tasklog_digests"),
            mysql_charset="utf8mb4",
            mariadb_charset="utf8mb4",
        )


def downgrade() -> None:
    with op.batch_alter_table("tasklog_assignments") as batch:
        batch.drop_column("others")
    op.drop_table("tasklog_daily_failures")
    op.drop_table("tasklog_digests")
    op.drop_table("tasklog_daily_calibration")
    for table, index, columns in _AGENT_INDEXES:
        op.create_index(index, table, columns)
    op.drop_index("ix_tasklog_daily_stats_day", table_name="tasklog_daily_stats")
    op.drop_table("tasklog_daily_stats")
    with op.batch_alter_table("tasklog_tasks") as batch:
        for name, _ in reversed(_TASK_COLUMNS):
            batch.drop_column(name)
