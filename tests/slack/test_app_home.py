"""The App Home tab: the last 7 days per agent of the viewer's workspace, through a real App and AsyncApp."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.async_app import AsyncApp
from slack_tasklog import TaskLog
from slack_tasklog.testing import SIGNING_SECRET, FakeSlackAPI, async_signed_request, event_body, signed_request

from tests.seeding import Round, SeedTask, seed

pytestmark = pytest.mark.backends("sqlite")
NOW = datetime.now(timezone.utc)


def home_opened(user: str, team: str = "T111", tab: str = "home") -> dict[str, Any]:
    return event_body(
        {"type": "app_home_opened", "user": user, "channel": "D111", "tab": tab, "event_ts": f"{time.time():.6f}"},
        team_id=team,
    )


def seed_week(tasklog: TaskLog) -> None:
    seed(
        tasklog,
        [
            SeedTask(NOW - timedelta(hours=2), rounds=[Round("Grok", 90, runs=[(True, 2.0, timedelta(0), None)])]),
            SeedTask(NOW - timedelta(days=2), rounds=[Round("Grok", 80, runs=[(False, 4.0, timedelta(0), None)])]),
            SeedTask(NOW - timedelta(days=3), rounds=[Round(None)]),
            SeedTask(NOW - timedelta(days=9), rounds=[Round("Writer", 70, runs=[(True, 1.0, timedelta(0), None)])]),
            SeedTask(NOW - timedelta(hours=1), team_id="T999", rounds=[Round("Writer", 70)]),
        ],
    )


def published(api: FakeSlackAPI, user: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while user not in api.views:
        assert time.monotonic() < deadline, "no view published"
        time.sleep(0.01)
    return api.views[user]


async def published_async(api: FakeSlackAPI, user: str, timeout: float = 10.0) -> dict[str, Any]:
    """As published, letting the AsyncApp's listener task run meanwhile."""
    deadline = time.monotonic() + timeout
    while user not in api.views:
        assert time.monotonic() < deadline, "no view published"
        await asyncio.sleep(0.01)
    return api.views[user]


@pytest.mark.parametrize("kind", ["App", "AsyncApp"])
async def test_the_home_tab_shows_the_last_week_of_the_viewers_workspace(
    api: FakeSlackAPI, database_url: str, kind: str
) -> None:
    tasklog = TaskLog(database_url)
    try:
        seed_week(tasklog)
        if kind == "App":
            app: Any = App(signing_secret=SIGNING_SECRET, client=api.client())
            tasklog.register_app_home(app)
            response = app.dispatch(signed_request(home_opened("UVIEWER")))
            view = published(api, "UVIEWER")
        else:
            app = AsyncApp(signing_secret=SIGNING_SECRET, client=api.async_client())
            tasklog.register_app_home(app)
            response = await app.async_dispatch(async_signed_request(home_opened("UVIEWER")))
            view = await published_async(api, "UVIEWER")
        assert response.status == 200
        assert view["type"] == "home"
        text = str(view["blocks"])
        assert "Task log: the last 7 days" in text
        assert "*Tasks*\\n3" in text  # not the 9-day-old one, not the other workspace's
        assert "*Grok* · 2 tasks" in text
        assert "Writer" not in text
        assert "each time you open this tab" in text
    finally:
        tasklog.close()


def test_other_tabs_are_left_alone_and_admins_only_is_honoured(api: FakeSlackAPI, database_url: str) -> None:
    tasklog = TaskLog(database_url, stats_access="admins", admins=["UADMIN"], workspace_admins=False)
    try:
        seed_week(tasklog)
        app = App(signing_secret=SIGNING_SECRET, client=api.client())
        tasklog.register_app_home(app)
        app.dispatch(signed_request(home_opened("UVIEWER", tab="messages")))
        app.dispatch(signed_request(home_opened("UVIEWER")))
        assert "for this workspace's admins" in str(published(api, "UVIEWER")["blocks"])
        app.dispatch(signed_request(home_opened("UADMIN")))
        assert "*Tasks*\\n3" in str(published(api, "UADMIN")["blocks"])
        assert [call.params.get("user_id") for call in api.calls_to("views.publish")] == ["UVIEWER", "UADMIN"]
    finally:
        tasklog.close()
