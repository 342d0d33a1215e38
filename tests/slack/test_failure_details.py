"""Failure texts are no way around the admin-only export (issue 18).

An agent's exception message often quotes the request (``ValueError: cannot parse 'wire 5000 EUR…'``), and the
"most frequent failures" of ``/tasklog stats`` (open to everyone), ``--public``, the App Home tab and the digests
show the recorded error messages. Only the people who may export see that text, in their own reply; everyone else,
and every message posted for others to see, gets the exception type (``TaskLog(failure_details=...)`` says
otherwise). The failing task here is recorded the way a bot records it: a mention through the middleware, then the
decorators, whose outcome records ``"ValueError: cannot parse '<the request>'"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.reports.stats import Failure
from slack_tasklog.slack.blocks import HIDDEN_FAILURE, failure_type, failures_by_type
from slack_tasklog.slack.digest import Digests, DigestSchedule
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, signed_request

from tests.conftest import query
from tests.seeding import Round, SeedTask, seed
from tests.slack.test_app_home import home_opened, published
from tests.slack.test_commands import ADMIN, Driver, build_driver

pytestmark = pytest.mark.backends("sqlite")

UTC = timezone.utc
#: A request's text, which the agent's exception quotes.
SECRET = "wire 5000 EUR to ACME before Friday"
MEMBER = "UMEMBER"  # a workspace member: may run stats, may not export
WORKSPACE_ADMIN = "UWSADMIN"  # may export (workspace_admins=True, the default)


def record_failing_task(app: App, tasklog: TaskLog) -> None:
    """A mention of the bot, routed to Grok, whose agent raises with the request's text in its message."""
    ts = f"{time.time():.6f}"

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return "Grok"

    @tasklog.track_outcome(agent="Grok")
    def process_assignment(thread_ts: str, text: str) -> None:
        raise ValueError(f"cannot parse {text!r}")

    assert app.dispatch(signed_request(event_body(app_mention(SECRET, ts=ts)))).status == 200
    check_and_assign(ts, {"Grok": 90})
    with pytest.raises(ValueError, match="cannot parse"):
        process_assignment(ts, SECRET)
    # The leak this is about is really in the data: the recorded error quotes the request.
    [(error,)] = query(tasklog, "SELECT error_message FROM tasklog_outcomes")
    assert error == f"ValueError: cannot parse {SECRET!r}"
    # And a round that assigned nobody: the unassigned error quotes nothing, and is shown as it is.
    seed(tasklog, [SeedTask(datetime.now(UTC) - timedelta(minutes=5), rounds=[Round(None)])])


@pytest.fixture
def failing(api: FakeSlackAPI, make_app: Callable[..., App]) -> Iterator[Callable[..., TaskLog]]:
    """``failing(**options)``: a TaskLog (admins=[ADMIN]) holding a failure that quotes a request."""
    api.add_user(MEMBER)
    api.add_user(WORKSPACE_ADMIN, is_admin=True)
    made: list[TaskLog] = []

    def make(database_url: str, **options: Any) -> TaskLog:
        tasklog = TaskLog(database_url, admins=[ADMIN], **options)
        made.append(tasklog)
        record_failing_task(make_app(tasklog), tasklog)
        return tasklog

    yield make
    for tasklog in made:
        tasklog.close()


@pytest.fixture
def tasklog_with_failure(failing: Callable[..., TaskLog], database_url: str) -> TaskLog:
    return failing(database_url)


async def stats_reply(driver: Driver, text: str, user: str) -> dict[str, Any]:
    before = len(driver.api.responses_for("reply"))
    await driver.send(text, user=user)
    return (await driver.replies(before + 1))[-1]


# -- /tasklog stats ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
async def test_a_members_stats_show_the_exception_type_not_the_request(
    api: FakeSlackAPI, tasklog_with_failure: TaskLog, kind: str
) -> None:
    driver = build_driver(api, tasklog_with_failure, kind)
    reply = await stats_reply(driver, "stats", MEMBER)
    assert reply["response_type"] == "ephemeral"
    rendered = str(reply)
    assert SECRET not in rendered
    assert "cannot parse" not in rendered
    assert "*Most frequent failures* (error types only)" in rendered
    assert "`ValueError`: 1 task" in rendered
    assert "`No agent confident enough`: 1 task" in rendered


@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
@pytest.mark.parametrize("user", [ADMIN, WORKSPACE_ADMIN])
async def test_people_who_may_export_see_the_full_text_in_their_own_reply(
    api: FakeSlackAPI, tasklog_with_failure: TaskLog, kind: str, user: str
) -> None:
    driver = build_driver(api, tasklog_with_failure, kind)
    reply = await stats_reply(driver, "stats", user)
    assert reply["response_type"] == "ephemeral"
    assert f"`ValueError: cannot parse '{SECRET}'`: 1 task" in str(reply["blocks"])
    assert "(error types only)" not in str(reply["blocks"])


@pytest.mark.parametrize("user", [ADMIN, MEMBER])
async def test_public_stats_show_only_the_exception_type_even_for_an_admin(
    api: FakeSlackAPI, tasklog_with_failure: TaskLog, user: str
) -> None:
    driver = build_driver(api, tasklog_with_failure, "App")
    reply = await stats_reply(driver, "stats --public", user)
    assert reply["response_type"] == "in_channel"
    assert SECRET not in str(reply)
    assert "`ValueError`: 1 task" in str(reply["blocks"])


async def test_a_member_whose_role_slack_cannot_tell_still_gets_the_stats_by_type(
    api: FakeSlackAPI, tasklog_with_failure: TaskLog
) -> None:
    driver = build_driver(api, tasklog_with_failure, "App")
    api.fail_next("users.info", "missing_scope")
    reply = await stats_reply(driver, "stats", MEMBER)
    assert reply["text"].startswith("Task log, the last 7 days: 2 tasks")
    assert SECRET not in str(reply)
    assert "`ValueError`: 1 task" in str(reply["blocks"])


# -- the option -----------------------------------------------------------------------------------------------------


async def test_failure_details_nobody_hides_the_text_from_admins_too(
    api: FakeSlackAPI, failing: Callable[..., TaskLog], database_url: str
) -> None:
    driver = build_driver(api, failing(database_url, failure_details="nobody"), "App")
    reply = await stats_reply(driver, "stats", ADMIN)
    assert SECRET not in str(reply)
    assert "`ValueError`: 1 task" in str(reply["blocks"])


async def test_failure_details_everyone_shows_the_text_to_members_and_in_public(
    api: FakeSlackAPI, failing: Callable[..., TaskLog], database_url: str
) -> None:
    driver = build_driver(api, failing(database_url, failure_details="everyone"), "App")
    reply = await stats_reply(driver, "stats", MEMBER)
    assert f"`ValueError: cannot parse '{SECRET}'`" in str(reply["blocks"])
    public = await stats_reply(driver, "stats --public", MEMBER)
    assert public["response_type"] == "in_channel"
    assert f"`ValueError: cannot parse '{SECRET}'`" in str(public["blocks"])
    assert [call.method for call in api.calls if call.method == "users.info"] == []  # nobody's role matters


@pytest.mark.parametrize("value", ["admins", "Everyone", True, None])
def test_a_wrong_failure_details_is_refused_naming_the_option(database_url: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"TaskLog\(failure_details=\.\.\.\) must be one of 'exporters', 'everyone'"):
        TaskLog(database_url, failure_details=value)


# -- App Home -------------------------------------------------------------------------------------------------------


def test_the_home_tab_shows_types_to_members_and_the_text_to_exporters(
    api: FakeSlackAPI, tasklog_with_failure: TaskLog
) -> None:
    app = App(signing_secret=SIGNING_SECRET, client=api.client())
    tasklog_with_failure.register_app_home(app)
    app.dispatch(signed_request(home_opened(MEMBER)))
    member_view = str(published(api, MEMBER)["blocks"])
    assert SECRET not in member_view
    assert "`ValueError`: 1 task" in member_view
    app.dispatch(signed_request(home_opened(ADMIN)))
    assert f"`ValueError: cannot parse '{SECRET}'`" in str(published(api, ADMIN)["blocks"])


# -- digests --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "shows_text"), [("exporters", False), ("nobody", False), ("everyone", True)])
def test_the_digest_in_its_channel_shows_types_unless_everyone_may_see_the_text(
    api: FakeSlackAPI, failing: Callable[..., TaskLog], database_url: str, option: str, shows_text: bool
) -> None:
    tasklog = failing(database_url)
    tomorrow = datetime.now(UTC) + timedelta(days=1)  # today has ended: its digest is due
    digests = Digests(tasklog, DigestSchedule("CDIGEST", timedelta(days=1)), api.client(),
                      failure_details=option, clock=lambda: tomorrow)  # type: ignore[arg-type]  # fmt: skip
    assert digests.run_once() == 1
    [post] = api.calls_to("chat.postMessage")
    posted = str(post.params)
    assert "ValueError" in posted
    assert (SECRET in posted) is shows_text


def test_tasklog_passes_failure_details_to_its_digests(api: FakeSlackAPI, database_url: str) -> None:
    tasklog = TaskLog(database_url, digest_channel="CDIGEST", digest_client=api.client(), failure_details="everyone")
    try:
        assert tasklog._digests is not None
        assert tasklog._digests.failure_details == "everyone"
    finally:
        tasklog.close()


# -- the reduction ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        (f"ValueError: cannot parse {SECRET!r}", "ValueError"),
        ("requests.exceptions.HTTPError: 500 for https://example.com/?q=secret", "requests.exceptions.HTTPError"),
        ("TimeoutError", "TimeoutError"),  # an exception without a message: its type is all there is
        ("KeyError: 'customer: ACME'", "KeyError"),  # the first colon
        (f"{SECRET}: it failed", HIDDEN_FAILURE),  # no type before the colon
        (SECRET, HIDDEN_FAILURE),
        ("No agent confident enough", HIDDEN_FAILURE),  # unless the caller keeps it (below)
        ("(no error message)", "(no error message)"),
        ("", HIDDEN_FAILURE),
    ],
)
def test_failure_type(recorded: str, shown: str) -> None:
    assert failure_type(recorded) == shown


def test_failures_by_type_sums_the_messages_of_one_type() -> None:
    failures = [
        Failure("ValueError: cannot parse 'a'", 2),
        Failure("No agent confident enough", 2),
        Failure("KeyError: 'b'", 3),
        Failure("ValueError: cannot parse 'c'", 2),
        Failure("pay Bob", 1),
    ]
    assert failures_by_type(failures, keep={"No agent confident enough"}) == (
        Failure("ValueError", 4),
        Failure("KeyError", 3),
        Failure("No agent confident enough", 2),
        Failure(HIDDEN_FAILURE, 1),
    )
