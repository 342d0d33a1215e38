"""Fresh state per test: a Slack Web API stand-in, a TaskLog on a database of its own, Bolt apps wired to both.

Storage tests take ``database_url`` (or ``tasklog``, built on it) and run once per backend: SQLite (a file in the
test's folder), PostgreSQL (a schema of the test's own on the shared server) and MariaDB (a database of the test's
own), each dropped afterwards. ``--backend NAME`` (repeatable) or ``$TASKLOG_TEST_BACKENDS`` (comma-separated)
choose; by default all three run, servers that do not answer being skipped (a failure in CI, or when chosen
explicitly). ``@pytest.mark.backends("sqlite")`` keeps a test to the backends it is about.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.logs import RateLimitedLog
from slack_tasklog.storage.migrate import upgrade
from slack_tasklog.storage.store import create_tasklog_engine
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slack-events-bolt-python.json"


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals of server URLs go to the user's data directory: keep each test's in its own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """The package's module-level logs say a recurring problem once a minute: a test that expects the warning must
    not miss it because the same test just ran on another backend."""
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("slack_tasklog"):
            for value in list(vars(module).values()):
                if isinstance(value, RateLimitedLog):
                    with value._lock:
                        value._last.clear()
                        value._suppressed.clear()


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


BACKENDS = ("sqlite", "postgresql", "mariadb")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        dest="backends",
        choices=BACKENDS,
        help="run the storage tests against this database (repeatable); default $TASKLOG_TEST_BACKENDS "
        "(comma-separated), else all three",
    )


def selected_backends(config: pytest.Config) -> tuple[tuple[str, ...], bool]:
    """The backends to run, and whether they were chosen explicitly (then a server that does not answer fails)."""
    chosen: list[str] = config.getoption("backends") or []
    if not chosen:
        chosen = [name.strip() for name in os.environ.get("TASKLOG_TEST_BACKENDS", "").split(",") if name.strip()]
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    return (tuple(dict.fromkeys(chosen)), True) if chosen else (BACKENDS, False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes ``backend`` (directly or through ``database_url``/``tasklog``) runs once per backend."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    allowed = marker.args if marker is not None else BACKENDS
    backends = [name for name in selected_backends(metafunc.config)[0] if name in allowed]
    if not backends:
        reason = f"runs on {', '.join(allowed)} only, not among the backends chosen"
        metafunc.parametrize("backend", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["-"])
        return
    metafunc.parametrize("backend", backends, ids=backends)


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own with nothing in it: a SQLite file not yet created, a fresh PostgreSQL schema
    or MariaDB database (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'tasklog.db'}"
        return
    require_server(SERVER_URLS[backend], required=selected_backends(request.config)[1])
    with server_database(backend) as url:
        yield url


@pytest.fixture
def database_url(empty_database_url: str, backend: str) -> str:
    """This test's database, at this version's schema on servers (whose ``TaskLog`` default is
    ``migrate="check"``); a SQLite file is created and upgraded by the ``TaskLog`` itself, as a bot's would be."""
    if backend != "sqlite":
        migrate_to_head(empty_database_url)
    return empty_database_url


def migrate_to_head(url: str) -> None:
    engine = create_tasklog_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def tasklog(database_url: str) -> Iterator[TaskLog]:
    log = TaskLog(database_url)
    yield log
    log.close()


@pytest.fixture
def make_app(api: FakeSlackAPI) -> Callable[..., App]:
    def make(tasklog: TaskLog, *, process_before_response: bool = True, mention_listener: bool = True) -> App:
        app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=process_before_response)
        app.use(tasklog.middleware)
        if mention_listener:

            @app.event("app_mention")
            def on_mention() -> None:
                pass

        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., App], tasklog: TaskLog) -> App:
    return make_app(tasklog)


def query(tasklog: TaskLog, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Flush, then read straight from the database."""
    assert tasklog.flush(10), "the writer did not flush in time"
    with tasklog.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def stored_utc(value: Any) -> datetime:
    """A timestamp column read with raw SQL, as an aware UTC datetime, whatever the backend hands back: SQLite
    text, MySQL's naive DATETIME (UTC wall time by our convention) or PostgreSQL's timestamptz."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), value
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def load_fixture_payloads() -> list[dict[str, Any]]:
    payloads: list[dict[str, Any]] = json.loads(FIXTURES.read_text())["payloads"]
    return payloads


POSTGRES_URL = os.environ.get("TASKLOG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TASKLOG_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4")
SERVER_URLS = {"postgresql": POSTGRES_URL, "mariadb": MARIADB_URL}


@functools.cache
def _server_error(url: str) -> str | None:
    """Why the server at ``url`` cannot be used (None: it answers); asked once per run."""
    engine = create_engine(url)
    try:
        with engine.connect():
            return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    finally:
        engine.dispose()


def require_server(url: str, *, required: bool = False) -> None:
    """Skip when a database server is missing on a developer's machine; in CI (CI=true), or when the backend was
    chosen explicitly, that is a failure."""
    error = _server_error(url)
    if error is None:
        return
    if required or os.environ.get("CI"):
        pytest.fail(f"database server {make_url(url).render_as_string()} not reachable: {error}")
    pytest.skip(f"database server not reachable: {error}")


@functools.cache
def _admin_engine(url: str) -> Engine:
    # One per server for the whole run: creating and dropping a schema per test should not cost a connection.
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


@contextlib.contextmanager
def server_database(backend: str) -> Iterator[str]:
    """A PostgreSQL schema or a MariaDB database of the caller's own (``tasklog_test_<hex>``), dropped afterwards.
    Yields its URL."""
    name = f"tasklog_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(SERVER_URLS[backend])
    if backend == "postgresql":
        create, drop, url = f'CREATE SCHEMA "{name}"', f'DROP SCHEMA "{name}" CASCADE', postgres_url(name)
    else:
        create, drop = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE `{name}`"
        url = make_url(MARIADB_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(create))
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(drop))


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own on the shared server, at this version's schema; dropped afterwards."""
    require_server(POSTGRES_URL)
    with server_database("postgresql") as url:
        migrate_to_head(url)
        yield str(make_url(url).query["options"]).removeprefix("-csearch_path=")


def postgres_url(schema: str, *, port: int | None = None) -> str:
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"8m"``) mounted at ``mount`` (created) for the block, unmounted after: a disk of the
    test's own to fill up or remount read-only, which root cannot ignore as it ignores file modes. Needs root;
    skips where mounting is not permitted."""
    mount.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                              check=False, capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot mount a tmpfs: {error}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=30)


class TcpForwarder:
    """A port that can be switched on and off in front of a real server: a database that is down, then back."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self.upstream = upstream
        self._server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> None:
        upstream = self.upstream

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(upstream) as remote:
                    sockets = [self.request, remote]
                    threading.Thread(target=_pump, args=(remote, self.request), daemon=True).start()
                    _pump(self.request, remote)
                    for s in sockets:
                        with contextlib.suppress(OSError):
                            s.shutdown(socket.SHUT_RDWR)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Pipe)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _pump(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


class ThrowawayPostgres:
    """A PostgreSQL server of the tests' own (initdb + pg_ctl from the machine's binaries, as the ``postgres``
    user, on a free port), so it can be stopped and started mid-test without touching the shared server."""

    def __init__(self) -> None:
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not binaries:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
        self.bin = binaries[-1].parent
        self.root = Path(tempfile.mkdtemp(prefix="tasklog-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_postgres, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off -c max_connections=50"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        # Immediate: like a crash or a kill, connections are cut without a goodbye.
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    try:
        server = ThrowawayPostgres()
        server.start()
    except (RuntimeError, OSError) as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot run a PostgreSQL server of our own here: {error}")
    try:
        yield server
    finally:
        server.destroy()
