"""An engine the host passes in (``TaskLog(engine=...)``) is the host's: when a write fails and the writer tries
again on a new connection, the task log drops only the connection that failed, never the host's pool."""

from __future__ import annotations

import time

import pytest
from slack_tasklog import TaskLog
from sqlalchemy import Engine, create_engine, text

pytestmark = pytest.mark.backends("postgresql", "mariadb")

THREAD = "1700000000.000100"


def _session_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return _own_id(conn)


def _own_id(conn: object) -> int:
    assert hasattr(conn, "execute")
    query = "SELECT pg_backend_pid()" if conn.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"  # type: ignore[attr-defined]
    return int(conn.execute(text(query)).scalar_one())


def _alive(url: str, sessions: set[int]) -> set[int]:
    admin = create_engine(url)
    try:
        with admin.connect() as conn:
            if conn.dialect.name == "postgresql":
                listed = "SELECT pid FROM pg_stat_activity"
            else:
                listed = "SELECT id FROM information_schema.processlist"
            return sessions & {int(row[0]) for row in conn.execute(text(listed))}
    finally:
        admin.dispose()


def test_a_failed_write_leaves_the_hosts_pooled_connections_open(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=5, isolation_level="READ COMMITTED")
    tasklog = TaskLog(engine=engine, journal=False)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return max(evaluations, key=evaluations.__getitem__)

    try:
        check_and_assign(THREAD, {"Builder": 90})
        assert tasklog.flush(10)
        # The host's own connections, idle in the pool it shares with the task log.
        held = [engine.connect() for _ in range(3)]
        sessions = {_own_id(conn) for conn in held}
        for conn in held:
            conn.close()
        with engine.begin() as conn:  # the table the writer needs is away for a moment
            conn.execute(text("ALTER TABLE tasklog_assignments RENAME TO tasklog_assignments_away"))
        check_and_assign("1700000001.000100", {"Builder": 90})
        deadline = time.monotonic() + 10
        while tasklog._writer.counters.retries == 0:
            assert time.monotonic() < deadline, "the write never failed"
            time.sleep(0.02)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE tasklog_assignments_away RENAME TO tasklog_assignments"))
        assert tasklog.flush(30)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tasklog_assignments")).scalar_one() == 2
        # The host's connections are open, in its pool (a table missing is no fault of the connection's).
        assert _alive(database_url, sessions) == sessions
        assert engine.pool.checkedin() >= len(sessions)  # type: ignore[attr-defined]
    finally:
        tasklog.close()
        engine.dispose()
