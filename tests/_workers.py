"""Bot processes for the multi-process tests: each one a real Bolt App, recording through the public API.

Run in child processes (``multiprocessing`` spawn, or ``python -m tests._workers``), so they import nothing from
the test process but this module.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, app_mention, event_body, message, signed_request

__all__ = ["build", "lifecycles", "message", "thread_ts", "worker_main"]

AGENTS = ("Grok", "Writer", "Builder")


def thread_ts(worker: int, i: int) -> str:
    # Unique per (worker, i); realistic shape.
    return f"{1_700_000_000 + worker * 100_000 + i}.{worker:03d}100"


def build(tasklog: TaskLog) -> tuple[App, Any, Any]:
    def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id="T111", bot_token="xoxb-x", bot_id="BBOT", bot_user_id="UBOT"
        )

    app = App(signing_secret=SIGNING_SECRET, authorize=authorize, process_before_response=True)
    app.use(tasklog.middleware)
    app.event("app_mention")(lambda: None)
    app.event("message")(lambda: None)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return max(evaluations, key=lambda agent: evaluations[agent])

    class Specialist:
        def __init__(self, name: str) -> None:
            self.name = name

        @tasklog.track_outcome
        def process_assignment(self, thread_ts: str, text: str) -> None:
            if text.endswith("7"):
                raise RuntimeError("flaky tool")

    def run(thread: str, text: str) -> None:
        agent = check_and_assign(thread, {"Grok": 90, "Writer": 40, "Builder": 10})
        with contextlib.suppress(RuntimeError):
            Specialist(agent).process_assignment(thread, text)

    return app, check_and_assign, run


def lifecycles(worker: int, count: int, tasklog: TaskLog, *, duplicates: bool = True, progress: bool = False) -> None:
    """``count`` tasks: a mention, a follow-up, an assignment with three evaluations and an outcome — plus, every
    tenth task, a Slack retry of the mention, the ``message`` copy of it and a redelivered follow-up."""
    app, _, run = build(tasklog)
    for i in range(count):
        ts = thread_ts(worker, i)
        mention = event_body(app_mention(f"task {worker}/{i}", ts=ts), event_id=f"Ev{worker}x{i}")
        app.dispatch(signed_request(mention))
        reply = event_body(message("more detail", ts=f"{ts[:-3]}200", thread_ts=ts))
        app.dispatch(signed_request(reply))
        if duplicates and i % 10 == 0:
            app.dispatch(signed_request(mention, retry_num=1, retry_reason="http_timeout"))
            app.dispatch(signed_request(event_body(message(f"<@UBOT> task {worker}/{i}", ts=ts))))
            app.dispatch(signed_request(reply, retry_num=1))
        run(ts, f"task {worker}/{i}")
        if progress:
            # Every record call for task i has returned: the parent may count on it.
            print(i, flush=True)


def worker_main(database_url: str, worker: int, count: int, journal: str | None = None) -> None:
    tasklog = TaskLog(database_url, journal=journal if journal else True)
    lifecycles(worker, count, tasklog)
    if not tasklog.close(timeout=120):
        raise SystemExit(f"worker {worker}: events left unwritten: {tasklog.health()}")


if __name__ == "__main__":
    # python -m tests._workers URL WORKER COUNT JOURNAL_DIR: records with progress until killed.
    url, worker, count, journal_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    log = TaskLog(url, journal=journal_dir)
    lifecycles(worker, count, log, progress=True)
    log.close()
