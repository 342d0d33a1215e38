"""Schema migrations: upgrade, downgrade, check, and adopting databases made before migrations existed.

The migrations are Alembic's, shipped inside the package (``slack_tasklog/migrations``, found as a package resource)
and versioned in a table of our own, ``tasklog_alembic_version``: the host app may keep its own Alembic history in
the same database.

Several processes (the orchestrator and every specialist bot) may start at once on one database, so whatever
changes the schema runs under a lock: PostgreSQL's ``pg_advisory_lock``, MySQL's ``GET_LOCK``, SQLite's write lock
taken up front (``BEGIN IMMEDIATE``). Under the lock the revision is read again, so the processes that waited find
the work done.

Three starting points:

- an empty database: the tables are created from the models and stamped at head, in one go (Alembic's advice for
  a new database; ``tests/test_migrations.py`` proves the models and the migrations agree);
- tables made by the create-on-first-use of slack_tasklog before it had migrations (no version table): their
  tables and columns are checked against that schema, frozen in ``migrations/_baseline.py``, stamped ``0001``, then
  upgraded;
- a versioned database: upgraded by the migrations.

Example::

    from slack_tasklog.storage.migrate import current, upgrade
    from slack_tasklog.storage.store import create_tasklog_engine

    engine = create_tasklog_engine("postgresql+psycopg://bot@db/app")
    upgrade(engine)           # what `slack-tasklog db upgrade` does
    print(current(engine))    # "0002"
"""

from __future__ import annotations

import functools
import hashlib
import io
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.exc import DisconnectionError, OperationalError

from slack_tasklog.logs import RateLimitedLog, logger, safe_url
from slack_tasklog.storage.models import Base, Task

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "MIGRATE_MODES",
    "VERSION_TABLE",
    "MigrateMode",
    "MigrationRequiredError",
    "SchemaMismatchError",
    "SchemaNotReadyError",
    "UpgradeResult",
    "check",
    "current",
    "default_mode",
    "downgrade",
    "head",
    "include_name",
    "prepare_schema",
    "upgrade",
    "upgrade_command",
]

#: ``TaskLog(migrate=...)``: upgrade on start, refuse unless at head, or leave the schema alone.
MigrateMode = Literal["upgrade", "check", "off"]
MIGRATE_MODES: tuple[MigrateMode, ...] = get_args(MigrateMode)

#: Our own version table, so a host app's Alembic (``alembic_version``) never sees our revisions.
VERSION_TABLE = "tasklog_alembic_version"
_SCRIPT_LOCATION = "slack_tasklog.storage:migrations"
#: The revision of the schema slack_tasklog created on first use before it had migrations.
BASELINE = "0001"
#: The revision that added the task summaries and rollups: an upgrade from before it fills them once at head.
SUMMARIES = "0003"
# How long a process waits for another one's migration before giving up (a million-row SQLite upgrade takes
# seconds; a MySQL table copy of a big table, minutes).
_LOCK_TIMEOUT = 600.0

# Alembic's ``context``/``op`` proxies are module globals: one command at a time per process, even for two TaskLogs
# on two databases.
_alembic_lock = threading.Lock()
_refusals = RateLimitedLog()


class SchemaNotReadyError(RuntimeError):
    """The task log's tables are not what this version needs. Recording holds its events (in memory and in the
    journal) and retries; reading raises this."""


class MigrationRequiredError(SchemaNotReadyError):
    """The database is behind this version's schema, and ``TaskLog(migrate="check")`` does not upgrade it.

    ``str(error)`` names the command to run; ``current`` and ``head`` are the two revisions. Example::

        try:
            tasklog.export_csv("tasks.csv")
        except MigrationRequiredError as error:
            print(error)  # ... needs revision 0002: run slack-tasklog db upgrade --database-url '...'
    """

    def __init__(self, message: str, *, current: str | None, head: str) -> None:
        super().__init__(message)
        self.current = current
        self.head = head


class SchemaMismatchError(SchemaNotReadyError):
    """The tables are not what any revision describes: unversioned tables that are not the pre-migration schema, or a
    database at head that differs from the models (``db check``)."""


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` did."""

    before: str | None  #: the revision found (None: no version table, or an empty one)
    after: str | None  #: the revision now
    created: bool = False  #: the database was empty: tables created at head
    adopted: bool = False  #: unversioned tables from before migrations found, and stamped 0001 before upgrading


# -- what the package knows ------------------------------------------------------------------------------------------


def default_mode(engine: Engine) -> MigrateMode:
    """``"upgrade"`` for SQLite (the file is the bot's own), ``"check"`` for servers (their schema is an operator's
    decision, and the bot's database user may not be allowed DDL)."""
    return "upgrade" if engine.dialect.name == "sqlite" else "check"


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None))


def head() -> str:
    """The revision this version of slack_tasklog needs."""
    revision = _script().get_current_head()
    if revision is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("slack_tasklog ships no migrations")
    return revision


def _known(revision: str) -> bool:
    return any(script.revision == revision for script in _script().walk_revisions())


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter for comparisons: only our tables (the host app's live in the same database)."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def upgrade_command(engine: Engine) -> str:
    """The shell command that upgrades this database (password hidden: the operator supplies it)."""
    url = safe_url(engine.url)
    return f"slack-tasklog db upgrade --database-url {shlex.quote(url)}"


def _describe(engine: Engine) -> str:
    return safe_url(engine.url)


# -- reading the state -----------------------------------------------------------------------------------------------


def _current(conn: Connection) -> str | None:
    # Plain SQL rather than Alembic's MigrationContext: this runs on every start, and should neither import Alembic
    # nor log its "Context impl" lines into the bot's logs.
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    revisions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(revisions) > 1:
        raise SchemaMismatchError(f"{VERSION_TABLE} holds several revisions ({', '.join(revisions)}), not one")
    return revisions[0] if revisions else None


def _our_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) & set(Base.metadata.tables)


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has no version table (an empty database, or one made before migrations)."""
    with engine.connect() as conn:
        return _current(conn)


@dataclass(frozen=True)
class _State:
    current: str | None
    head: str
    unversioned_tables: bool  # our tables without a revision: made before migrations

    @property
    def ready(self) -> bool:
        return self.current == self.head


def _state(engine: Engine) -> _State:
    with engine.connect() as conn:
        revision = _current(conn)
        unversioned = revision is None and bool(_our_tables(conn))
    return _State(revision, head(), unversioned)


def _run_upgrade(engine: Engine) -> str:
    command = f"run {upgrade_command(engine)}"
    return command + " (with the real password)" if engine.url.password else command


def _behind(engine: Engine, state: _State) -> MigrationRequiredError:
    """The refusal: what is wrong and exactly what to run. The URL comes last: the writer's own warning (which
    names the database already) keeps only the first 200 characters."""
    if state.current is not None and not _known(state.current):
        return MigrationRequiredError(
            f"the task log schema is at revision {state.current}, which this slack_tasklog does not know (it needs "
            f"{state.head}): a newer slack_tasklog upgraded it; upgrade this one",
            current=state.current,
            head=state.head,
        )
    if state.current is not None:
        found = f"the task log schema is at revision {state.current}"
    elif state.unversioned_tables:
        found = "the task log tables were made before slack_tasklog had migrations (no version table)"
    else:
        found = "there are no task log tables yet"
    return MigrationRequiredError(
        f"{found} and this slack_tasklog needs revision {state.head}: {_run_upgrade(engine)}",
        current=state.current,
        head=state.head,
    )


def _refuse(engine: Engine, error: SchemaNotReadyError) -> SchemaNotReadyError:
    _refusals.warning(
        str(engine.url),
        "slack_tasklog: not writing to %s yet (events are kept and retried): %s",
        _describe(engine),
        error,
    )
    return error


# -- the lock --------------------------------------------------------------------------------------------------------


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, held by one process per database at a time."""
    backend = engine.dialect.name
    with engine.connect() as conn:
        if backend == "sqlite":
            with _sqlite_write_lock(conn):
                yield conn
        elif backend == "postgresql":
            with _postgresql_lock(conn), conn.begin():
                yield conn
        elif backend in ("mysql", "mariadb"):
            with _mysql_lock(conn), conn.begin():
                yield conn
        else:  # pragma: no cover - the store refuses other backends first
            with conn.begin():
                yield conn


@contextmanager
def _sqlite_write_lock(conn: Connection) -> Iterator[None]:
    raw = conn.connection.driver_connection
    assert raw is not None
    # Batch migrations copy a table and drop the original: with foreign keys on, dropping tasklog_tasks would
    # cascade into every follow-up and outcome. The pragma only applies outside a transaction, hence here.
    was_on = raw.execute("PRAGMA foreign_keys").fetchone()[0]
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        # create_tasklog_engine's begin hook turns this option into BEGIN IMMEDIATE: the write lock, up front,
        # waiting for other processes' (busy_timeout) instead of failing.
        conn.execution_options(tasklog_write=True)
        with conn.begin():
            yield
    finally:
        if was_on:
            raw.execute("PRAGMA foreign_keys=ON")


def _lock_key(conn: Connection, query: str) -> bytes:
    scope = conn.exec_driver_sql(query).scalar()
    conn.commit()
    return hashlib.sha256(f"slack_tasklog migrate {scope}".encode()).digest()


def _wait_for(acquire: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _LOCK_TIMEOUT
    delay = 0.05
    while not acquire():
        if time.monotonic() >= deadline:
            raise SchemaNotReadyError(f"waited {_LOCK_TIMEOUT:.0f} s for another process's migration of {what}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


@contextmanager
def _postgresql_lock(conn: Connection) -> Iterator[None]:
    # One lock per database and schema: tests and tenants in other schemas need not wait for each other.
    digest = _lock_key(conn, "SELECT current_database() || '.' || current_schema()")
    key = int.from_bytes(digest[:8], "big", signed=True)

    def acquire() -> bool:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
        conn.commit()  # a session lock: it outlives this transaction, and the migration's
        return got

    _wait_for(acquire, "this PostgreSQL schema")
    try:
        yield
    finally:
        _release(conn, text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _mysql_lock(conn: Connection) -> Iterator[None]:
    # GET_LOCK names are server-wide (64 characters at most): one per database.
    name = "slack_tasklog.migrate." + _lock_key(conn, "SELECT DATABASE()").hex()[:32]
    got = conn.execute(text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": int(_LOCK_TIMEOUT)}).scalar()
    conn.commit()
    if got != 1:
        raise SchemaNotReadyError(f"waited {_LOCK_TIMEOUT:.0f} s for another process's migration of this database")
    try:
        yield
    finally:
        _release(conn, text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _release(conn: Connection, statement: Any, params: dict[str, Any]) -> None:
    try:
        conn.execute(statement, params)
        conn.commit()
    except Exception:
        # The connection is gone: so is its session lock. Do not hide the error that brought us here.
        logger.debug("slack_tasklog: could not release the migration lock", exc_info=True)


# -- running Alembic -------------------------------------------------------------------------------------------------


def _config(conn: Connection | None, *, stdout: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    # "package:folder" is resolved with importlib.resources: the migrations are found wherever the package is.
    config = Config(stdout=stdout or io.StringIO())
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    config.attributes["connection"] = conn
    return config


def _run(conn: Connection, command: Callable[..., Any], *args: Any) -> None:
    from alembic.util import CommandError

    with _alembic_lock:
        try:
            command(_config(conn), *args)
        except CommandError as error:
            raise SchemaNotReadyError(str(error)) from error


def _is_head(revision: str) -> bool:
    return revision in ("head", "heads") or revision == head()


def upgrade(engine: Engine, revision: str = "head") -> UpgradeResult:
    """Bring the database to ``revision`` (default: this version's head), creating or adopting tables as needed.

    Raises :class:`SchemaMismatchError` when the database holds task log tables that no revision describes.
    """
    from alembic import command

    with _exclusive(engine) as conn:
        before = _current(conn)
        if before is not None and not _known(before):
            raise SchemaNotReadyError(
                f"{_describe(engine)} is at revision {before}, newer than this slack_tasklog knows ({head()})"
            )
        if before is None and _our_tables(conn):
            _verify_baseline(conn, engine)
            _run(conn, command.stamp, BASELINE)
            _run(conn, command.upgrade, revision)
            _fill_summaries(conn, BASELINE)
            return UpgradeResult(before, _current(conn), adopted=True)
        if before is None and _is_head(revision):
            # A new database: the models are head (tests prove it), and one CREATE per table beats replaying history.
            Base.metadata.create_all(conn)
            _run(conn, command.stamp, "head")
            return UpgradeResult(before, _current(conn), created=True)
        _run(conn, command.upgrade, revision)
        _fill_summaries(conn, before)
        return UpgradeResult(before, _current(conn))


def _fill_summaries(conn: Connection, before: str | None) -> None:
    """Fill the task summaries and rollups after an upgrade that added them, with the writer's own code (what the
    upgrade fills in is exactly what the writer would have kept). That code knows the newest schema only, so it runs
    once the upgrade has reached head: an upgrade in steps (to 0004, later to head) fills them at its last step,
    where tasks the writer never summarised (``stats_bucket`` still NULL) show they are missing."""
    if before is None or _current(conn) != head():
        return
    from slack_tasklog.storage import summary

    tasks = Task.__table__.c
    unsummarised = conn.execute(select(tasks.id).where(tasks.stats_bucket.is_(None)).limit(1)).first()
    if before < SUMMARIES or unsummarised is not None:
        summary.rebuild(conn)


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    """Take the database back to ``revision`` (``"base"`` drops every task log table). Returns (before, after)."""
    from alembic import command

    with _exclusive(engine) as conn:
        before = _current(conn)
        if before is None:
            raise SchemaNotReadyError(f"{_describe(engine)} has no task log revision to downgrade from")
        _run(conn, command.downgrade, revision)
        return before, _current(conn)


def check(engine: Engine) -> str:
    """Raise unless the database is at head and its tables match the models; return the head revision.

    Raises :class:`MigrationRequiredError` (behind, with the command to run) or :class:`SchemaMismatchError` (at
    head, but Alembic's autogenerate comparison finds differences, listed in the message).
    """
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    state = _state(engine)
    if not state.ready:
        raise _behind(engine, state)
    with engine.connect() as conn, _alembic_lock:
        try:
            command.check(_config(conn))
        except AutogenerateDiffsDetected as error:
            raise SchemaMismatchError(
                f"{_describe(engine)} is at {state.head} but differs from the models: {error}".replace("\n", " ")
            ) from error
    return state.head


def _verify_baseline(conn: Connection, engine: Engine) -> None:
    """Unversioned tables must be the pre-migration schema, table for table and column for column, to be stamped
    0001."""
    from slack_tasklog.storage.migrations._baseline import baseline_metadata

    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    problems: list[str] = []
    for table in baseline_metadata().sorted_tables:
        if table.name not in present:
            problems.append(f"{table.name} is missing")
            continue
        found = {column["name"] for column in inspector.get_columns(table.name)}
        wanted = {column.name for column in table.columns}
        if wanted - found:
            problems.append(f"{table.name} lacks {', '.join(sorted(wanted - found))}")
        if found - wanted:
            problems.append(f"{table.name} has unexpected {', '.join(sorted(found - wanted))}")
    if problems:
        raise SchemaMismatchError(
            f"{_describe(engine)} has task log tables but no {VERSION_TABLE}, and they are not what slack_tasklog "
            f"made before migrations ({'; '.join(problems)}): nothing was changed. Fix or drop those tables, then "
            f"run `slack-tasklog db upgrade`"
        )


# -- the store's hook ------------------------------------------------------------------------------------------------


def prepare_schema(engine: Engine, mode: MigrateMode | None = None) -> None:
    """Make the schema ready before the first write or read, as ``mode`` (default: :func:`default_mode`) allows.

    Raises :class:`SchemaNotReadyError` (a :class:`MigrationRequiredError` in ``"check"`` mode) after logging what
    to do; the writer treats it as transient, keeps the events and tries again later. A database that is down
    raises the driver's ``OperationalError``, as any write would. Anything else that goes wrong here (a permission
    refused, a lock timeout) is a ``SchemaNotReadyError`` too: events must wait, not be rejected one by one.
    """
    try:
        _prepare(engine, mode or default_mode(engine))
    except (OperationalError, DisconnectionError):
        raise
    except SchemaNotReadyError as error:
        raise _refuse(engine, error) from None
    except Exception as error:
        logger.debug("slack_tasklog: preparing the schema failed", exc_info=True)
        first_line = str(error).strip().split("\n", 1)[0]
        failure = SchemaNotReadyError(
            f"cannot prepare the task log schema ({type(error).__name__}: {first_line}); {_run_upgrade(engine)} "
            f"to see the whole error"
        )
        raise _refuse(engine, failure) from error


def _prepare(engine: Engine, mode: MigrateMode) -> None:
    if mode == "off":
        with engine.connect() as conn:
            missing = set(Base.metadata.tables) - _our_tables(conn)
        if missing:
            # Not ours to create; but writing into missing tables would reject (lose) every event.
            raise SchemaNotReadyError(
                f"TaskLog(migrate='off') and the task log tables are missing ({', '.join(sorted(missing))}): "
                f"create them, or {_run_upgrade(engine)}"
            )
        return
    state = _state(engine)
    if state.ready:
        return
    if mode == "check" or (state.current is not None and not _known(state.current)):
        raise _behind(engine, state)
    result = upgrade(engine)
    if result.created:
        logger.info("slack_tasklog: created the task log tables in %s (revision %s)", _describe(engine), result.after)
    else:
        logger.info(
            "slack_tasklog: upgraded the task log schema of %s from %s to %s%s",
            _describe(engine),
            "unversioned tables" if result.adopted else result.before,
            result.after,
            " (adopted the tables made before migrations)" if result.adopted else "",
        )
