"""Big task logs for the read-side figures (export, stats, scaling), built once and cached.

SQLite: ``bench_commands.cached_database(count)``: a file under ``$TMPDIR/slack_tasklog_bench/`` keyed by the task
count and a fingerprint of the schema, generated with SQLAlchemy Core ``executemany`` (90 days of tasks, 1.1 rounds
a task with three evaluations each, an outcome per finished round; see ``bench_commands.py``).

PostgreSQL: the same rows, copied from that SQLite file with Core ``executemany`` into a schema of their own,
``bench_tasks_<count>_<fingerprint>`` in the server's ``test`` database, which is kept as the cache (a schema
comment marks it complete; a half-built one is dropped and rebuilt). ``drop_postgres_caches()`` removes them all.

Scratch PostgreSQL schemas for writing benchmarks come from :func:`scratch_schema`, dropped afterwards together
with the write-ahead journal directory a ``TaskLog`` keeps for that URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from slack_tasklog import TaskLog
from slack_tasklog.storage.models import Base
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = [
    "POSTGRES_URL",
    "drop_postgres_caches",
    "postgres_available",
    "postgres_dataset",
    "remove_journal",
    "schema_url",
    "scratch_schema",
    "sqlite_dataset",
]

#: The server database the benchmarks use (a schema of their own in it).
POSTGRES_URL = os.environ.get("TASKLOG_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_CACHE_PREFIX = "bench_tasks_"
_COPY_CHUNK = 20_000
_TABLES = (
    "tasklog_tasks",
    "tasklog_follow_ups",
    "tasklog_assignments",
    "tasklog_evaluations",
    "tasklog_outcomes",
    "tasklog_daily_stats",
)


def sqlite_dataset(count: int) -> Path:
    """The cached SQLite task log of ``count`` tasks (generated the first time: ~9 s per 100,000 tasks)."""
    from bench_commands import cached_database

    return cached_database(count)


def schema_url(schema: str, base: str = POSTGRES_URL) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def postgres_available(base: str = POSTGRES_URL) -> str | None:
    """None if the server answers, else why not."""
    engine = create_engine(base)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as error:  # any failure means "skip PostgreSQL"
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    finally:
        engine.dispose()


def _admin_engine(base: str = POSTGRES_URL) -> Engine:
    return create_engine(base, isolation_level="AUTOCOMMIT")


def remove_journal(url: str) -> None:
    """Delete the journal directory the TaskLogs on ``url`` kept by default (a per-user directory for servers)."""
    from slack_tasklog.tasklog import default_journal_dir

    directory = default_journal_dir(make_url(url))
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def scratch_schema(prefix: str, base: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema; yields a URL whose ``search_path`` is it. Dropped afterwards."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _admin_engine(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = schema_url(name, base)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
        remove_journal(url)


def _postgres_fingerprint() -> str:
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    parts = []
    for table in Base.metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)))
        parts.extend(str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=str))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def postgres_dataset(count: int, base: str = POSTGRES_URL) -> str:
    """A URL to the cached PostgreSQL copy of ``sqlite_dataset(count)``; built the first time (~1.5 min per
    1,000,000 tasks, on top of the SQLite file's)."""
    source = sqlite_dataset(count)
    name = f"{_CACHE_PREFIX}{count}_{_postgres_fingerprint()}_{source.stem.rsplit('-', 1)[-1]}"
    admin = _admin_engine(base)
    try:
        with admin.connect() as conn:
            done = conn.execute(
                text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = :n"), {"n": name}
            ).scalar()
            if done == "complete":
                print(f"Using the cached PostgreSQL schema {name}", file=sys.stderr)
                return schema_url(name, base)
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = schema_url(name, base)
        print(f"Copying {count:,} tasks into PostgreSQL schema {name} (once) ...", file=sys.stderr)
        started = time.perf_counter()
        _copy(source, url)
        with admin.connect() as conn:
            conn.execute(text(f"COMMENT ON SCHEMA \"{name}\" IS 'complete'"))
        print(f"... done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return url
    finally:
        admin.dispose()


def _copy(source: Path, url: str) -> None:
    tasklog = TaskLog(url, migrate="upgrade", journal=False)
    tasklog._store.ensure_schema()
    tasklog.close()
    src = create_engine(f"sqlite:///{source}")
    dest = create_engine(url)
    try:
        with src.connect() as read, dest.begin() as write:
            for name in _TABLES:
                table = Base.metadata.tables[name]
                result = read.execution_options(yield_per=_COPY_CHUNK).execute(select(table))
                for chunk in result.mappings().partitions():
                    write.execute(insert(table), [dict(row) for row in chunk])
            for name in ("tasklog_tasks", "tasklog_follow_ups"):
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                write.execute(text(f"SELECT setval({sequence}, coalesce(max(id), 0) + 1, false) FROM {name}"))
        with dest.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        src.dispose()
        dest.dispose()


def drop_postgres_caches(base: str = POSTGRES_URL) -> list[str]:
    """Drop every cached ``bench_tasks_*`` schema; returns their names."""
    admin = _admin_engine(base)
    try:
        with admin.connect() as conn:
            names = [
                row[0]
                for row in conn.execute(
                    text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": _CACHE_PREFIX + "%"}
                )
            ]
            for name in names:
                conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        return names
    finally:
        admin.dispose()
