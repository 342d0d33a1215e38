"""Specialist agents are separate bots: outcomes recorded in another process attach to the same task."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable

from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.testing import app_mention, event_body, signed_request

from tests.conftest import query

ROOT = "1700000000.000100"

SPECIALIST = textwrap.dedent(
    """
    import sys, time
    from slack_tasklog import TaskLog

    tasklog = TaskLog(sys.argv[1])

    @tasklog.track_assignment
    def check_and_assign(thread_ts, evaluations):
        return max(evaluations, key=evaluations.get)

    class SpecialistAgent:
        name = "Builder"

        @tasklog.track_outcome
        def process_assignment(self, thread_ts, text):
            time.sleep(0.05)
            if text == "fail":
                raise ConnectionError("sandbox unreachable")

    for thread_ts in sys.argv[2:]:
        check_and_assign(thread_ts, {"Builder": 88, "Writer": 12})
        try:
            SpecialistAgent().process_assignment(thread_ts, "fail" if thread_ts.endswith("9") else "go")
        except ConnectionError:
            pass
    # No explicit flush or close: the exit hook writes what is queued.
    """
)


def run_specialist(database_url: str, *threads: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SPECIALIST, database_url, *threads],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_outcomes_from_another_process_attach_to_the_task(
    app: App, tasklog: TaskLog, database_url: str, make_app: Callable[..., App]
) -> None:
    for ts in (ROOT, "1700000001.000109"):
        app.dispatch(signed_request(event_body(app_mention("build it", ts=ts))))
    assert tasklog.flush(5)
    run_specialist(database_url, ROOT, "1700000001.000109")
    rows = query(
        tasklog,
        "SELECT t.thread_ts, o.agent, o.success, o.error_message, o.execution_time >= 0.05 "
        "FROM tasklog_outcomes o JOIN tasklog_tasks t ON t.id = o.task_id ORDER BY t.thread_ts",
    )
    assert rows == [
        (ROOT, "Builder", 1, None, 1),
        ("1700000001.000109", "Builder", 0, "ConnectionError: sandbox unreachable", 1),
    ]
    assert query(tasklog, "SELECT count(*) FROM tasklog_assignments WHERE task_id IS NOT NULL") == [(2,)]


def test_an_outcome_from_another_process_before_the_request_is_linked_later(
    app: App, tasklog: TaskLog, database_url: str
) -> None:
    run_specialist(database_url, ROOT)
    assert query(tasklog, "SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NULL") == [(1,)]
    app.dispatch(signed_request(event_body(app_mention("build it", ts=ROOT))))
    assert query(tasklog, "SELECT count(*) FROM tasklog_outcomes WHERE task_id IS NULL") == [(0,)]
    assert query(tasklog, "SELECT count(*) FROM tasklog_assignments WHERE task_id IS NULL") == [(0,)]
    assert query(tasklog, "SELECT count(*) FROM tasklog_evaluations") == [(2,)]
