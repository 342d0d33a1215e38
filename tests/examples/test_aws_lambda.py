"""examples/aws_lambda.py: Bolt's Lambda adapter with API Gateway events, in process; and the FaaS guarantee in a
sandbox of its own that is frozen (SIGSTOP) each time the handler returns, then killed."""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, message
from sqlalchemy import create_engine, text

from tests.conftest import migrate_to_head, query
from tests.examples.slack_side import LambdaContext, api_gateway_event, ensure_boto3_importable

ROOT_DIR = Path(__file__).resolve().parents[2]
R1, R2, R3 = "1700000000.000100", "1700000100.000100", "1700000200.000100"


@pytest.fixture(scope="module")
def aws_lambda() -> ModuleType:
    ensure_boto3_importable()
    return importlib.import_module("examples.aws_lambda")


# -- in process -------------------------------------------------------------------------------------------------


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    "shape",
    [("2.0", True), ("2.0", False), ("1.0", False), ("1.0", True)],
    ids=["http-api-base64", "http-api", "rest-api", "rest-api-base64"],
)
def test_an_api_gateway_mention_is_a_task_with_its_round_and_outcome(
    aws_lambda: ModuleType,
    api: FakeSlackAPI,
    tasklog: TaskLog,
    monkeypatch: pytest.MonkeyPatch,
    shape: tuple[str, bool],
) -> None:
    version, base64_body = shape  # API Gateway's payload format, and whether it base64-encoded the body
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    handler = aws_lambda.build_handler(tasklog, client=api.client())
    body = event_body(app_mention("research Lambda cold starts", ts=R1))
    event = api_gateway_event(body, version=version, base64_body=base64_body)

    response = handler.handle(event, LambdaContext())

    assert response["statusCode"] == 200
    # process_before_response=True: the listener has finished, its answer posted, before Lambda returns.
    [reply] = api.calls_to("chat.postMessage")
    assert reply.params["thread_ts"] == R1
    assert query(tasklog, "SELECT thread_ts, request_text FROM tasklog_tasks") == [(R1, "research Lambda cold starts")]
    assert query(tasklog, "SELECT thread_ts, agent FROM tasklog_assignments") == [(R1, "Researcher")]
    assert query(tasklog, "SELECT thread_ts, agent, success FROM tasklog_outcomes") == [(R1, "Researcher", True)]


@pytest.mark.backends("sqlite")
def test_a_request_with_a_bad_signature_is_refused_and_not_recorded(
    aws_lambda: ModuleType, api: FakeSlackAPI, tasklog: TaskLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "another-secret")
    handler = aws_lambda.build_handler(tasklog, client=api.client())
    response = handler.handle(api_gateway_event(event_body(app_mention("research"))), LambdaContext())
    assert response["statusCode"] == 401
    assert tasklog.flush(10)
    with tasklog.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tasklog_tasks")).scalar_one() == 0


def test_nothing_is_built_at_import_and_the_cold_start_writes_through(
    aws_lambda: ModuleType, api: FakeSlackAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert aws_lambda._handler is None
    url = f"sqlite:///{tmp_path / 'tasklog.db'}"
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "tasklog-bot")
    monkeypatch.setenv("TASKLOG_DATABASE_URL", url)
    real_build_handler = aws_lambda.build_handler
    built: list[Any] = []

    def build_handler() -> Any:  # the example's own, with the fake Slack's client
        built.append(real_build_handler(client=api.client()))
        return built[-1]

    monkeypatch.setattr(aws_lambda, "build_handler", build_handler)
    monkeypatch.setattr(aws_lambda, "_handler", None)
    for count, ts in enumerate((R1, R2), start=1):
        event = api_gateway_event(event_body(app_mention("draft a haiku", ts=ts)))
        assert aws_lambda.handler(event, LambdaContext())["statusCode"] == 200
        # Nothing flushed: the default TaskLog wrote through, as $AWS_LAMBDA_FUNCTION_NAME is set.
        assert len(stored(url)["outcomes"]) == count
    assert len(built) == 1  # built on the cold start, reused while warm
    assert sorted(stored(url)["outcomes"]) == [(R1, "Writer", True), (R2, "Writer", True)]


# -- the FaaS guarantee: a sandbox frozen when the handler returns ----------------------------------------------


class FrozenSandbox:
    """``tests/examples/lambda_sandbox.py`` in a child process whose ``/tmp``, home and data directory are a folder
    of its own: each :meth:`invoke` thaws it, hands it one event and returns the response once it has frozen itself
    again (SIGSTOP, right after the handler returned). :meth:`kill` recycles it."""

    def __init__(self, database_url: str, api: FakeSlackAPI, root: Path, *, write_through: bool = True) -> None:
        sandbox_tmp = root / "sandbox-tmp"
        sandbox_tmp.mkdir(parents=True)
        env = dict(os.environ)
        env.update(
            AWS_LAMBDA_FUNCTION_NAME="tasklog-bot",
            TASKLOG_DATABASE_URL=database_url,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            HOME=str(sandbox_tmp),
            XDG_DATA_HOME=str(sandbox_tmp),
            TMPDIR=str(sandbox_tmp),
        )
        command = [sys.executable, "-m", "tests.examples.lambda_sandbox", "--api-url", api.base_url]
        if not write_through:
            command.append("--no-write-through")
        self.stderr = root / "sandbox-stderr.txt"
        with self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(
                command, cwd=ROOT_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        self.frozen = False

    def invoke(self, body: dict[str, Any], retry_num: int | None = None) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if self.frozen:
            os.kill(self.process.pid, signal.SIGCONT)
        self.process.stdin.write(json.dumps(api_gateway_event(body, retry_num=retry_num)) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline() if ready else ""
        assert line, f"the sandbox did not answer:\n{self.stderr.read_text()}"
        _, status = os.waitpid(self.process.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"the sandbox did not freeze:\n{self.stderr.read_text()}"
        self.frozen = True
        response: dict[str, Any] = json.loads(line)
        return response

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGKILL works on a stopped process too
        self.process.wait(30)


def stored(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the database holds, read by this process alone: a plain engine, no TaskLog, no journal."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                "tasks": [tuple(r) for r in conn.execute(text("SELECT thread_ts, request_text FROM tasklog_tasks"))],
                "rounds": [tuple(r) for r in conn.execute(text("SELECT thread_ts, agent FROM tasklog_assignments"))],
                "outcomes": [
                    (thread_ts, agent, bool(success))  # SQLite hands back 0/1
                    for thread_ts, agent, success in conn.execute(
                        text("SELECT thread_ts, agent, success FROM tasklog_outcomes")
                    )
                ],
                "follow_ups": [tuple(r) for r in conn.execute(text("SELECT ts, text FROM tasklog_follow_ups"))],
            }
    finally:
        engine.dispose()


def sorted_state(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(rows, key=repr) for name, rows in state.items()}


DRAFT = event_body(app_mention("draft the post-mortem", ts=R3))

# Five invocations (the last one Slack's redelivery of the fourth), and what the database holds once each has
# returned and the sandbox is frozen.
INVOCATIONS: list[tuple[dict[str, Any], int | None, dict[str, list[tuple[Any, ...]]]]] = [
    (
        event_body(app_mention("research Lambda cold starts", ts=R1)),
        None,
        {
            "tasks": [(R1, "research Lambda cold starts")],
            "rounds": [(R1, "Researcher")],
            "outcomes": [(R1, "Researcher", True)],
            "follow_ups": [],
        },
    ),
    (
        event_body(app_mention("what's the weather?", ts=R2)),
        None,
        {
            "tasks": [(R1, "research Lambda cold starts"), (R2, "what's the weather?")],
            "rounds": [(R1, "Researcher"), (R2, None)],
            "outcomes": [(R1, "Researcher", True), (R2, None, False)],  # nobody assigned: a failed round
            "follow_ups": [],
        },
    ),
    (
        event_body(message("and compare them with Cloud Run", ts="1700000050.000100", thread_ts=R1)),
        None,
        {
            "tasks": [(R1, "research Lambda cold starts"), (R2, "what's the weather?")],
            "rounds": [(R1, "Researcher"), (R2, None)],
            "outcomes": [(R1, "Researcher", True), (R2, None, False)],
            "follow_ups": [("1700000050.000100", "and compare them with Cloud Run")],
        },
    ),
    *[
        (
            DRAFT,
            retry_num,
            {
                "tasks": [
                    (R1, "research Lambda cold starts"),
                    (R2, "what's the weather?"),
                    (R3, "draft the post-mortem"),
                ],
                "rounds": [(R1, "Researcher"), (R2, None), (R3, "Writer")],
                "outcomes": [(R1, "Researcher", True), (R2, None, False), (R3, "Writer", True)],
                "follow_ups": [("1700000050.000100", "and compare them with Cloud Run")],
            },
        )
        for retry_num in (None, 1)
    ],
]


@pytest.fixture
def shared_database(empty_database_url: str) -> str:
    """The database the sandbox and this process share (a SQLite file outside the sandbox, a PostgreSQL schema or a
    MariaDB database), at this version's schema: deployed before the function runs."""
    migrate_to_head(empty_database_url)
    return empty_database_url


@pytest.mark.slow
def test_a_sandbox_frozen_when_the_handler_returns_has_written_every_event_exactly_once(
    shared_database: str, api: FakeSlackAPI, tmp_path: Path
) -> None:
    sandbox = FrozenSandbox(shared_database, api, tmp_path / "sandbox")
    try:
        for body, retry_num, expected in INVOCATIONS:
            assert sandbox.invoke(body, retry_num)["statusCode"] == 200
            # Frozen: no thread of the sandbox runs now, yet everything the invocation recorded is in the database.
            assert sorted_state(stored(shared_database)) == sorted_state(expected)
    finally:
        sandbox.kill()
    # Recycled: still exactly what was recorded, once.
    assert sorted_state(stored(shared_database)) == sorted_state(INVOCATIONS[-1][2])
    assert len(api.calls_to("chat.postMessage")) == 3


@pytest.mark.backends("sqlite")
@pytest.mark.slow
def test_negative_control_without_write_through_the_frozen_sandbox_loses_events(
    shared_database: str, api: FakeSlackAPI, tmp_path: Path
) -> None:
    """NEGATIVE CONTROL: the same sandbox and freeze with ``write_through=False``. The background writer waits a few
    milliseconds to batch events, so what an invocation recorded is still in memory when the sandbox freezes, and
    is gone when it is recycled: this is what write-through prevents (and shows the freeze above is real)."""
    sandbox = FrozenSandbox(shared_database, api, tmp_path / "sandbox", write_through=False)
    try:
        body, _, expected = INVOCATIONS[0]
        assert sandbox.invoke(body)["statusCode"] == 200
        frozen_state = stored(shared_database)
    finally:
        sandbox.kill()
    assert frozen_state != expected
    assert stored(shared_database) != expected
