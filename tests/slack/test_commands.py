"""``/tasklog`` through real Bolt ``App`` and ``AsyncApp``, signed slash-command requests, a real SQLite file, and
the Slack Web API stand-in (real HTTP, the real files_upload_v2 flow).

Lazy listeners run after the ack (in Bolt's threads, or as asyncio tasks): the tests wait for what the stand-in
records, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_bolt import App, BoltResponse
from slack_tasklog import TaskLog
from slack_tasklog.events import TaskRequested
from slack_tasklog.slack.commands import RoleCache, acknowledgement, is_workspace_admin, retry_delay
from slack_tasklog.testing import (
    SIGNING_SECRET,
    FakeSlackAPI,
    RecordedCall,
    UploadedFile,
    async_signed_request,
    signed_request,
    slash_command_body,
)

from tests.seeding import Round, SeedTask, bulk_tasks, seed

# Slack scenarios: the storage backends are covered by test_stats and test_export.
pytestmark = pytest.mark.backends("sqlite")

UTC = timezone.utc
ADMIN = "UADMIN"
JAN = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


@dataclass
class Driver:
    """One Bolt app (``App`` or ``AsyncApp``) and how to talk to it from an async test."""

    app: Any
    api: FakeSlackAPI
    is_async: bool

    async def send(self, text: str, *, user: str = ADMIN, channel: str = "C111", team: str = "T111",
                   enterprise: str | None = None, response_url: str | None = None) -> BoltResponse:  # fmt: skip
        body = slash_command_body(
            text,
            user_id=user,
            channel_id=channel,
            team_id=team,
            enterprise_id=enterprise,
            response_url=response_url or self.api.response_url("reply"),
        )
        if self.is_async:
            response: BoltResponse = await self.app.async_dispatch(async_signed_request(body))
        else:
            response = self.app.dispatch(signed_request(body))
        assert response.status == 200, response.body
        return response

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[RecordedCall]:
        # AsyncApp's lazy listener runs on this event loop: wait in a thread so that it can.
        return await asyncio.to_thread(self.api.wait_for, method, count, timeout)

    async def replies(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.api.responses_for("reply")) < count:
            assert time.monotonic() < deadline, f"expected {count} response_url post(s), got {self.api.responses}"
            await asyncio.sleep(0.01)
        return self.api.responses_for("reply")

    async def upload(self, timeout: float = 10.0) -> UploadedFile:
        await self.wait_for("files.completeUploadExternal", timeout=timeout)
        deadline = time.monotonic() + timeout
        while not self.api.uploads:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        [uploaded] = self.api.uploads
        return uploaded


def build_driver(api: FakeSlackAPI, tasklog: TaskLog, kind: str, *, process_before_response: bool = True) -> Driver:
    if kind == "AsyncApp":
        from slack_bolt.async_app import AsyncApp

        async_app = AsyncApp(
            signing_secret=SIGNING_SECRET, client=api.async_client(), process_before_response=process_before_response
        )
        tasklog.register_commands(async_app)
        return Driver(async_app, api, is_async=True)
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=process_before_response)
    tasklog.register_commands(app)
    return Driver(app, api, is_async=False)


@pytest.fixture
def admin_tasklog(database_url: str) -> Any:
    log = TaskLog(database_url, admins=[ADMIN])
    yield log
    log.close()


@pytest.fixture(params=["App", "AsyncApp"])
def driver(request: pytest.FixtureRequest, api: FakeSlackAPI, admin_tasklog: TaskLog) -> Driver:
    return build_driver(api, admin_tasklog, request.param)


def csv_of(tasklog: TaskLog, **filters: Any) -> bytes:
    out = io.StringIO(newline="")
    tasklog.export_csv(out, **filters)
    return out.getvalue().encode("utf-8")


def seed_january(
    tasklog: TaskLog, team: str = "T111", enterprise: str | None = None, *, prefix: str = "", channel: str = "C111"
) -> None:
    seed(
        tasklog,
        [
            SeedTask(
                JAN + timedelta(hours=i),
                team_id=team,
                enterprise_id=enterprise,
                channel_id=channel,
                text=f'{prefix}request {i}, "quoted"',
                rounds=rounds,
            )
            for i, rounds in enumerate(
                [
                    [Round("Grok", 92, [("Grok", 92), ("Writer", 30)], runs=[(True, 4.5, timedelta(seconds=1), None)])],
                    [Round(None, None, [("Grok", 20)])],
                    [Round("Writer", 75, runs=[(False, 2.0, timedelta(seconds=1), None)])],
                    [],
                ]
            )
        ],
    )


# -- help and errors: the ack answers, nothing else happens -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("help", "reads your agents' task log"),
        ("", "reads your agents' task log"),
        ("export --since banana", "'banana' is not a date"),
        ("stats 99999d", "longer than ten years"),
        ("stats 0h", "empty window"),
        ("export -3d", "'-3d' is not a window"),
        ("make me a sandwich", "I don't know the command 'make'"),
        ('stats --agent "unbalanced', "No closing quotation"),
    ],
)
async def test_help_and_unreadable_lines_get_an_ephemeral_explanation_in_the_ack(
    driver: Driver, text: str, says: str
) -> None:
    response = await driver.send(text)
    assert says in response.body
    assert "Examples:" in response.body
    assert '"response_type": "ephemeral"' in response.body
    await asyncio.sleep(0.05)  # give a (wrong) lazy listener the chance to do something
    assert api_methods(driver) == []
    assert driver.api.responses == []


def test_the_ack_is_pure() -> None:
    assert acknowledgement("stats", "/tasklog") is None
    working = acknowledgement("export 30d --agent Grok", "/tasklog")
    assert working is not None
    assert working["text"].startswith("Preparing the CSV of tasks requested in the last 30 days and assigned to Grok")
    assert "/agents stats" in acknowledgement("help", "/agents")["text"]  # type: ignore[index]


# -- stats ---------------------------------------------------------------------------------------------------------


async def test_stats_reply_in_block_kit_through_the_response_url(driver: Driver, admin_tasklog: TaskLog) -> None:
    now = datetime.now(UTC)
    seed(
        admin_tasklog,
        [
            SeedTask(now - timedelta(hours=1), rounds=[Round("Grok", 90, runs=[(True, 3.0, timedelta(0), None)])]),
            SeedTask(now - timedelta(hours=2), rounds=[Round("Grok", 80, runs=[(False, 5.0, timedelta(0), None)])]),
            SeedTask(now - timedelta(hours=3), rounds=[Round(None)]),
            SeedTask(now - timedelta(days=10), rounds=[Round("Writer", 70)]),  # outside the default 7 days
            SeedTask(now - timedelta(hours=1), team_id="T999", rounds=[Round("Writer", 70)]),  # another workspace
        ],
    )
    response = await driver.send("stats", user="UANYONE")
    assert response.body == ""  # an empty ack: the answer follows
    [reply] = await driver.replies()
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Task log, the last 7 days: 3 tasks, 33.3% success, 1 with no agent confident")
    rendered = str(reply["blocks"])
    assert "*No agent confident enough*\\n1" in rendered
    assert "*Grok* · 2 tasks" in rendered
    assert "50.0% success (1 of 2 finished) · median 4.0 s · p95 4.9 s · mean confidence 85.0" in rendered
    assert "Writer" not in rendered
    # Stats are open to everyone by default: users.info only decides whether the failures' full text is shown (it
    # can quote requests), and UANYONE is no one Slack knows, so only the exception type is.
    assert api_methods(driver) == ["users.info"]
    assert "`RuntimeError`: 1 task" in rendered
    assert "boom" not in rendered


async def test_public_stats_post_in_the_channel(driver: Driver) -> None:
    await driver.send("stats 24h --public", user="UANYONE")
    [reply] = await driver.replies()
    assert reply["response_type"] == "in_channel"
    assert "No tasks requested in the last 24 hours" in reply["text"]
    assert "Posted by <@UANYONE>" in str(reply["blocks"])


async def test_stats_can_be_for_admins_only(api: FakeSlackAPI, database_url: str) -> None:
    tasklog = TaskLog(database_url, admins=[ADMIN], stats_access="admins")
    try:
        api.add_user("UPLAIN")
        driver = build_driver(api, tasklog, "App")
        await driver.send("stats", user="UPLAIN")
        [refusal] = await driver.replies()
        assert "limited to workspace admins" in refusal["text"]
        await driver.send("stats", user=ADMIN)
        assert (await driver.replies(2))[1]["text"] == "No tasks requested in the last 7 days."
    finally:
        tasklog.close()


# -- export: the bytes that arrive are the CSV --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
@pytest.mark.parametrize("process_before_response", [True, False])
async def test_export_uploads_the_csv_into_the_channel(
    api: FakeSlackAPI, admin_tasklog: TaskLog, kind: str, process_before_response: bool
) -> None:
    driver = build_driver(api, admin_tasklog, kind, process_before_response=process_before_response)
    seed_january(admin_tasklog)
    seed_january(admin_tasklog, team="T222", prefix="other workspace ")
    response = await driver.send("export --since 2024-01-10 --until 2024-01-10")
    assert "Preparing the CSV of tasks requested 2024-01-10 00:00 to 2024-01-11 00:00 UTC" in response.body
    uploaded = await driver.upload()
    expected = csv_of(admin_tasklog, since="2024-01-10", until="2024-01-11", team_id="T111")
    assert uploaded.content == expected
    assert expected.count(b"\r\n") == 5  # the header and four tasks
    assert b"other workspace" not in uploaded.content
    assert uploaded.channel == "C111"
    assert uploaded.filename == "tasklog-T111-20240110-20240111.csv"
    assert uploaded.title == "Task log: 2024-01-10 00:00 to 2024-01-11 00:00 UTC"
    assert uploaded.initial_comment == (
        f"Task log export for <@{ADMIN}>: *4 tasks* requested 2024-01-10 00:00 to 2024-01-11 00:00 UTC. "
        "One row per task, oldest first."
    )
    [complete] = api.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C111"
    assert api.responses == []  # the file's comment says it all: the response_url is not spent


async def test_export_filters_by_agent_and_window(driver: Driver, admin_tasklog: TaskLog) -> None:
    now = datetime.now(UTC)
    seed(
        admin_tasklog,
        [
            SeedTask(now - timedelta(hours=1), text="recent grok", rounds=[Round("Grok", 90)]),
            SeedTask(now - timedelta(hours=2), text="recent writer", rounds=[Round("Writer", 90)]),
            SeedTask(now - timedelta(days=3), text="older grok", rounds=[Round("Grok", 90)]),
        ],
    )
    await driver.send("export 24h --agent Grok")
    uploaded = await driver.upload()
    rows = uploaded.content.decode().splitlines()
    assert len(rows) == 2
    assert "recent grok" in rows[1]
    assert "assigned to Grok" in (uploaded.initial_comment or "")


async def test_an_empty_export_says_so_and_uploads_nothing(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    await driver.send("export 7d")
    [reply] = await driver.replies()
    assert reply["text"].startswith("No tasks requested in the last 7 days (")
    assert "no file to upload" in reply["text"]
    assert api_methods(driver) == []


@pytest.mark.backends("sqlite")
async def test_an_export_while_the_database_is_busy_says_so_and_uploads_nothing(
    api: FakeSlackAPI, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holding SQLite's write lock: this process's latest tasks cannot be in the file, so none is
    made, and the person is told to try again (not "something went wrong")."""
    tasklog = TaskLog(database_url, admins=[ADMIN], shutdown_timeout=1)
    try:
        seed_january(tasklog)
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            tasklog._record(TaskRequested("T111", None, "C111", "1704067200.000900", "1704067200.000900", "U1", "x"))
            driver = build_driver(api, tasklog, "App")
            await driver.send("export 7d")
            [reply] = await driver.replies()
        finally:
            other.rollback()
            other.close()
        assert "database is busy" in reply["text"]
        assert "went wrong" not in reply["text"]
        assert api_methods(driver) == []
        assert "no export was written" in caplog.text
    finally:
        tasklog.close()


def api_methods(driver: Driver) -> list[str]:
    """The Web API calls the command made (Bolt's own auth.test aside)."""
    return [call.method for call in driver.api.calls if call.method != "auth.test"]


# -- access control -----------------------------------------------------------------------------------------------


async def test_a_non_admin_is_refused_politely_logged_and_gets_nothing(
    driver: Driver, admin_tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    seed_january(admin_tasklog)
    driver.api.add_user("UPLAIN")
    with caplog.at_level(logging.INFO, logger="slack_tasklog"):
        await driver.send("export all --agent SECRET-PROJECT-NAME", user="UPLAIN")
        [refusal] = await driver.replies()
    assert refusal["response_type"] == "ephemeral"
    assert "exports are limited to workspace admins and owners" in refusal["text"]
    assert api_methods(driver) == ["users.info"]
    assert driver.api.uploads == []
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "UPLAIN" in message
    assert "T111" in message
    assert " at 20" in message  # when
    assert "SECRET" not in caplog.text  # never the request text
    assert "xoxb-" not in caplog.text  # nor a token


@pytest.mark.parametrize("role", ["is_admin", "is_owner", "is_primary_owner"])
async def test_workspace_admins_and_owners_may_export_and_the_answer_is_cached(
    driver: Driver, admin_tasklog: TaskLog, role: str
) -> None:
    seed_january(admin_tasklog)
    driver.api.add_user("UBOSS", **{role: True})
    await driver.send("export all", user="UBOSS")
    first = await driver.upload()
    assert first.content == csv_of(admin_tasklog, team_id="T111")
    driver.api.reset()
    await driver.send("export all", user="UBOSS")
    await driver.upload()
    assert "users.info" not in api_methods(driver)  # cached


async def test_listed_admins_are_not_looked_up(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    await driver.send("export all", user=ADMIN)
    await driver.upload()
    assert "users.info" not in api_methods(driver)


async def test_admins_come_from_the_environment(
    api: FakeSlackAPI, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKLOG_ADMINS", "U1, UENV ,U2")
    tasklog = TaskLog(database_url, workspace_admins=False)
    try:
        assert tasklog.admins == {"U1", "UENV", "U2"}
        seed_january(tasklog)
        driver = build_driver(api, tasklog, "App")
        await driver.send("export all", user="UENV")
        await driver.upload()
        api.add_user("UOWNER", is_owner=True)
        await driver.send("export all", user="UOWNER")
        [refusal] = await driver.replies()
        assert "limited to the people this app lists as admins" in refusal["text"]
        assert "users.info" not in api_methods(driver)  # workspace roles are not consulted at all
    finally:
        tasklog.close()


async def test_when_users_info_fails_nothing_is_shared_and_the_user_is_told(
    driver: Driver, admin_tasklog: TaskLog
) -> None:
    seed_january(admin_tasklog)
    driver.api.fail_next("users.info", "missing_scope")
    await driver.send("export all", user="USOMEONE")
    [reply] = await driver.replies()
    assert "couldn't check whether you are a workspace admin (Slack said: missing_scope)" in reply["text"]
    assert "users:read" in reply["text"]
    assert driver.api.uploads == []


def test_role_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = RoleCache(ttl=60, max_entries=2, clock=lambda: now[0])
    cache.put((None, "T1", "U1"), True)
    cache.put((None, "T1", "U2"), False)
    assert cache.get((None, "T1", "U2")) is False
    assert cache.get((None, "T1", "U1")) is True
    cache.put((None, "T1", "U3"), True)  # U2 was used least recently: out
    assert cache.get((None, "T1", "U2")) is None
    assert cache.get((None, "T1", "U1")) is True
    now[0] = 61
    assert cache.get((None, "T1", "U1")) is None
    assert cache.get(("E1", "T1", "U3")) is None  # another organisation's user is another entry


def test_who_counts_as_a_workspace_admin() -> None:
    assert is_workspace_admin({"is_admin": True})
    assert is_workspace_admin({"is_primary_owner": True})
    assert not is_workspace_admin({"is_admin": False, "is_restricted": True})
    assert not is_workspace_admin({"is_admin": True, "deleted": True})
    assert not is_workspace_admin(None)


# -- isolation ----------------------------------------------------------------------------------------------------


async def test_an_admin_of_one_workspace_never_sees_anothers_tasks(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog, team="T1", prefix="first workspace ")
    seed_january(admin_tasklog, team="T2", prefix="second workspace ")
    driver.api.add_user("UT2", team_id="T2", is_admin=True)
    await driver.send("export all", user="UT2", team="T2")
    uploaded = await driver.upload()
    assert uploaded.content == csv_of(admin_tasklog, team_id="T2")
    assert b"second workspace" in uploaded.content
    assert b"first workspace" not in uploaded.content
    # Stats too.
    await driver.send("stats all", user="UT2", team="T2")
    [reply] = await driver.replies()
    assert reply["text"].startswith("Task log, all time: 4 tasks")


async def test_on_enterprise_grid_the_organisation_must_match_too(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog, team="T1", enterprise="E1", prefix="org one ")
    seed_january(admin_tasklog, team="T1", enterprise="E2", prefix="org two ", channel="C222")
    await driver.send("export all", team="T1", enterprise="E2")
    uploaded = await driver.upload()
    assert uploaded.content == csv_of(admin_tasklog, team_id="T1", enterprise_id="E2")
    assert b"org one" not in uploaded.content


# -- Slack realities ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
async def test_where_the_bot_cannot_post_the_file_goes_to_the_users_dm(
    driver: Driver, admin_tasklog: TaskLog, error: str
) -> None:
    seed_january(admin_tasklog)
    driver.api.deny_channel("C111", error)
    await driver.send("export all")
    uploaded = await driver.upload()
    dm = driver.api.dm_channel_id(ADMIN)
    assert uploaded.channel == dm
    assert uploaded.content == csv_of(admin_tasklog, team_id="T111")
    assert "You asked in <#C111>, where I can't post" in (uploaded.initial_comment or "")
    [opened] = driver.api.calls_to("conversations.open")
    assert opened.params["users"] == ADMIN
    [reply] = await driver.replies()  # the one response_url post
    assert reply["response_type"] == "ephemeral"
    assert "sent <https://" in reply["text"]
    assert "to you in a direct message" in reply["text"]


async def test_a_dm_between_two_people_falls_back_the_same_way(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    driver.api.deny_channel("DOTHERS", "channel_not_found")
    await driver.send("export all", channel="DOTHERS")
    uploaded = await driver.upload()
    assert uploaded.channel == driver.api.dm_channel_id(ADMIN)
    assert "You asked in a conversation, where I can't post" in (uploaded.initial_comment or "")


async def test_a_rate_limited_upload_is_retried_after_retry_after(
    driver: Driver, admin_tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    seed_january(admin_tasklog)
    driver.api.rate_limit_next("files.completeUploadExternal", retry_after=1)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        await driver.send("export all")
        uploaded = await driver.upload()
    assert time.monotonic() - started >= 1.0
    assert uploaded.content == csv_of(admin_tasklog, team_id="T111")
    assert len(driver.api.calls_to("files.completeUploadExternal")) == 2
    assert "Slack rate-limited files_upload_v2; retrying in 1 s (retry 1 of 3)" in caplog.text
    assert driver.api.responses == []


async def test_rate_limits_that_do_not_end_get_a_clear_message(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    driver.api.rate_limit_next("files.getUploadURLExternal", retry_after=0, times=4)
    await driver.send("export all")
    [reply] = await driver.replies()
    assert reply["text"].startswith("Slack is rate-limiting file uploads right now, so the export was not uploaded")
    assert len(driver.api.calls_to("files.getUploadURLExternal")) == 4  # the first try and three retries
    assert driver.api.uploads == []


async def test_a_long_retry_after_is_not_waited_out(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    driver.api.rate_limit_next("files.getUploadURLExternal", retry_after=120)
    await driver.send("export all")
    [reply] = await driver.replies()
    assert "try again in 120 seconds" in reply["text"]


async def test_other_upload_errors_are_explained(driver: Driver, admin_tasklog: TaskLog) -> None:
    seed_january(admin_tasklog)
    driver.api.fail_next("files.completeUploadExternal", "missing_scope")
    await driver.send("export all")
    [reply] = await driver.replies()
    assert reply["text"] == "Sorry, Slack refused the upload (missing_scope), so the export was not shared."


async def test_a_dead_response_url_falls_back_to_an_ephemeral_message(driver: Driver) -> None:
    await driver.send("stats", user="UANYONE", response_url=driver.api.url + "response/expired")
    [ephemeral] = await driver.wait_for("chat.postEphemeral")
    assert ephemeral.params["channel"] == "C111"
    assert ephemeral.params["user"] == "UANYONE"
    assert "No tasks requested in the last 7 days" in ephemeral.params["text"]


async def test_a_broken_database_gets_an_apology_not_a_traceback(
    api: FakeSlackAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    tasklog = TaskLog(f"sqlite:///{blocker}/tasklog.db", admins=[ADMIN], journal=False)
    try:
        driver = build_driver(api, tasklog, "App")
        with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
            response = await driver.send("export all")
            assert "Preparing the CSV" in response.body  # the ack never touched the database
            await driver.send("stats")
            replies = await driver.replies(2)
        assert {reply["text"] for reply in replies} == {
            "Sorry, something went wrong while preparing your export. Nothing was uploaded. The app's logs have the "
            "details; please try again later.",
            "Sorry, something went wrong while preparing your stats. The app's logs have the details; please try "
            "again later.",
        }
        assert "Traceback" not in str(replies)
        assert "/tasklog export failed for user UADMIN in team T111" in caplog.text
    finally:
        tasklog.close()


def test_retries_are_bounded() -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    def limited(after: str) -> SlackApiError:
        response = SlackResponse(
            client=None, http_verb="POST", api_url="", req_args={}, data={"ok": False, "error": "ratelimited"},
            headers={"retry-after": after}, status_code=429,
        )  # fmt: skip
        return SlackApiError("ratelimited", response)

    assert retry_delay(limited("2"), 0) == 2.0
    assert retry_delay(limited("2"), 3) is None
    assert retry_delay(limited("600"), 0) is None
    assert retry_delay(ValueError("x"), 0) is None


async def test_a_custom_command_name(api: FakeSlackAPI, admin_tasklog: TaskLog) -> None:
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
    admin_tasklog.register_commands(app, command="/agents")
    body = slash_command_body("help", command="/agents", response_url=api.response_url("reply"))
    response = app.dispatch(signed_request(body))
    assert "`/agents stats" in response.body
    assert app.dispatch(signed_request(slash_command_body("help"))).status == 404  # /tasklog is not registered


# -- scale: the ack does not wait for the database ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
async def test_an_export_of_100_000_tasks_is_acked_at_once_then_uploaded_whole(
    api: FakeSlackAPI, admin_tasklog: TaskLog, kind: str
) -> None:
    admin_tasklog._store.ensure_schema()
    bulk_tasks(admin_tasklog.engine, 100_000, start=JAN)
    driver = build_driver(api, admin_tasklog, kind, process_before_response=True)
    started = time.perf_counter()
    response = await driver.send("export all")
    acked = time.perf_counter() - started
    assert acked < 0.5, f"ack took {acked:.3f} s"  # Slack's deadline is 3 s
    assert "Preparing the CSV" in response.body
    uploaded = await driver.upload(timeout=120)
    assert uploaded.content == csv_of(admin_tasklog, team_id="T111")
    assert uploaded.content.count(b"\r\n") == 100_001
    assert "*100,000 tasks*" in (uploaded.initial_comment or "")


# -- whatever anyone types --------------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_app(api: FakeSlackAPI, admin_tasklog: TaskLog) -> Driver:
    seed_january(admin_tasklog)
    api.add_user("UPLAIN")
    return build_driver(api, admin_tasklog, "App")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(["stats", "export", "help", "all", "24h", "7 days", "-3d", "99999d", "--agent", "Grok",
                             "--public", "--since", "--until", "2024-01-10", "banana", '"', "\u201c", "&lt;"]),
            max_size=6,
        ).map(" ".join),
    ),
    user=st.sampled_from([ADMIN, "UPLAIN"]),
)  # fmt: skip
async def test_anything_typed_gets_a_reply_and_never_an_exception(
    fuzz_app: Driver, text: str, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = fuzz_app.api
    api.reset()
    caplog.clear()
    name = f"fuzz-{time.monotonic_ns()}"
    response = await fuzz_app.send(text, user=user, response_url=api.response_url(name))
    if not response.body:
        # Stats: the answer comes through the response_url.
        deadline = time.monotonic() + 10
        while not api.responses_for(name):
            assert time.monotonic() < deadline, f"no reply to {text!r}"
            await asyncio.sleep(0.01)
    elif "Preparing the CSV" in response.body:
        # An export: a file, a refusal or an "empty" note; wait until it is one of them.
        deadline = time.monotonic() + 10
        while not api.responses_for(name) and not api.uploads:
            assert time.monotonic() < deadline, f"no outcome for {text!r}"
            await asyncio.sleep(0.01)
    replies = [response.body, *map(str, api.responses_for(name))]
    assert all("Traceback" not in reply for reply in replies)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
