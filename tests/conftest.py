"""Fresh state per test: a Slack Web API stand-in, a TaskLog on its own SQLite file, Bolt apps wired to both."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "slack-events-bolt-python.json"


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Journals of server URLs go to the user's data directory: keep each test's in its own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasklog.db'}"


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


def load_fixture_payloads() -> list[dict[str, Any]]:
    if not FIXTURES.exists():  # pragma: no cover - shared/ is laid beside the repo in CI and sessions
        pytest.skip(f"{FIXTURES} not found")
    payloads: list[dict[str, Any]] = json.loads(FIXTURES.read_text())["payloads"]
    return payloads


POSTGRES_URL = os.environ.get("TASKLOG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_server(url: str) -> None:
    """Skip when a database server is missing on a developer's machine; in CI (CI=true) that is a failure."""
    engine = create_engine(url)
    try:
        with engine.connect():
            pass
    except Exception as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"database server not reachable: {error}")
    finally:
        engine.dispose()


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own on the shared server, dropped afterwards."""
    require_server(POSTGRES_URL)
    schema = f"tasklog_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


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
