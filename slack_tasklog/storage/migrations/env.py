"""Alembic's environment for slack_tasklog: always online, on the connection ``_migrate`` hands over.

``_migrate`` opens the connection, takes the migration lock and the transaction, and passes the connection in
``config.attributes["connection"]``; this file only configures the context on it. The version is kept in
``tasklog_alembic_version`` so that a host app using Alembic with the default table in the same database never sees
our revisions, and autogenerate comparisons (``db check``) look at our tables only.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from slack_tasklog.storage.migrate import VERSION_TABLE, include_name
from slack_tasklog.storage.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "slack_tasklog's migrations run through `slack-tasklog db upgrade` (or slack_tasklog.storage.migrate), "
        "which pass them a connection; they cannot run from an alembic.ini of their own"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things: operations that need it copy the table (batch mode).
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)

with context.begin_transaction():
    context.run_migrations()
