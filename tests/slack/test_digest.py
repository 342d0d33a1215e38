"""Scheduled digests: once per period across processes, catching up after downtime, taking over dead claims."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.slack import digest
from slack_tasklog.slack.digest import Digests, DigestSchedule, due_periods
from slack_tasklog.testing import FakeSlackAPI, app_mention, event_body, signed_request
from sqlalchemy import text

from tests.conftest import query
from tests.seeding import Round, SeedTask, seed

UTC = timezone.utc
DAY = timedelta(days=1)
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # a Wednesday


def test_which_periods_are_due() -> None:
    yesterday = datetime(2026, 11, 24, tzinfo=UTC)
    assert due_periods(NOW, DAY, None) == [(yesterday, yesterday + DAY)]
    assert due_periods(NOW, DAY, yesterday) == []
    assert due_periods(NOW, DAY, yesterday - 2 * DAY) == [
        (yesterday - DAY, yesterday),
        (yesterday, NOW.replace(hour=0, minute=0)),
    ]
    assert len(due_periods(NOW, DAY, yesterday - 30 * DAY)) == 7  # a month down: the last week only
    monday = datetime(2026, 11, 16, tzinfo=UTC)
    assert due_periods(NOW, 7 * DAY, None) == [(monday, monday + 7 * DAY)]
    with pytest.raises(ValueError, match="1d"):
        DigestSchedule("C1", 3 * DAY)


def at(day: int, hour: int, agent: str, ok: bool | None) -> SeedTask:
    runs = [] if ok is None else [(ok, 2.0, timedelta(0), None)]
    return SeedTask(datetime(2026, 11, day, hour, tzinfo=UTC), rounds=[Round(agent, 80, runs=runs)])


def seed_days(tasklog: TaskLog) -> None:
    # Two tasks on the 24th, one on the 23rd, one today (its day has not ended: in no digest yet).
    seed(tasklog, [at(24, 10, "Grok", True), at(24, 11, "Grok", False), at(23, 11, "Writer", True),
                   at(25, 8, "Writer", None)])  # fmt: skip


def test_several_processes_post_each_period_once(api: FakeSlackAPI, tasklog: TaskLog, database_url: str) -> None:
    seed_days(tasklog)
    schedule = DigestSchedule("CDIGEST", DAY)
    # The orchestrator and two specialist bots, each with its own TaskLog on the shared database, all awake at once.
    logs = [TaskLog(database_url) for _ in range(3)]
    try:
        workers = [Digests(log, schedule, api.client(), clock=lambda: NOW) for log in logs]
        posted: list[int] = []
        threads = [threading.Thread(target=lambda w=w: posted.append(w.run_once())) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(posted) == [0, 0, 1]
        [message] = api.calls_to("chat.postMessage")
        assert message.params["channel"] == "CDIGEST"
        assert message.params["text"].startswith("Task log, 2026-11-24 00:00 to 2026-11-25 00:00 UTC: 2 tasks, 50.0%")
        # Later wakes, in any process, find the day posted.
        assert [w.run_once() for w in workers] == [0, 0, 0]
        assert len(api.calls_to("chat.postMessage")) == 1
    finally:
        for log in logs:
            log.close()


def test_after_downtime_the_missed_days_are_posted_in_order(api: FakeSlackAPI, tasklog: TaskLog) -> None:
    seed_days(tasklog)
    schedule = DigestSchedule("CDIGEST", DAY, csv=True)
    clock = [datetime(2026, 11, 23, 0, 5, tzinfo=UTC)]
    digests = Digests(tasklog, schedule, api.client(), clock=lambda: clock[0])
    assert digests.run_once() == 1  # the 22nd: no tasks, says so, no CSV
    clock[0] = NOW  # down for two days
    assert digests.run_once() == 2
    texts = [call.params["text"] for call in api.calls_to("chat.postMessage")]
    assert texts[0] == "No tasks were requested in this period."
    assert texts[1].startswith("Task log, 2026-11-23 00:00 to 2026-11-24 00:00 UTC: 1 task,")
    assert texts[2].startswith("Task log, 2026-11-24 00:00 to 2026-11-25 00:00 UTC: 2 tasks,")
    assert [upload.filename for upload in api.uploads] == [
        "tasklog-all-20261123-20261124.csv",
        "tasklog-all-20261124-20261125.csv",
    ]
    assert api.uploads[1].content.count(b"\r\n") == 3  # the header and the day's two tasks


def test_a_claim_left_by_a_dead_process_is_taken_over(api: FakeSlackAPI, tasklog: TaskLog) -> None:
    seed_days(tasklog)
    schedule = DigestSchedule("CDIGEST", DAY)
    api.fail_next("chat.postMessage", "ratelimited")  # the first poster claims, then fails (as if it died)
    first = Digests(tasklog, schedule, api.client(), clock=lambda: NOW)
    assert first.run_once() == 0
    assert query(tasklog, "SELECT count(*) FROM tasklog_digests WHERE posted_at IS NULL") == [(1,)]
    second = Digests(tasklog, schedule, api.client(), clock=lambda: NOW + timedelta(minutes=5))
    assert second.run_once() == 0  # a fresh claim is left alone
    later = Digests(tasklog, schedule, api.client(), clock=lambda: NOW + timedelta(minutes=11))
    assert later.run_once() == 1
    assert query(tasklog, "SELECT count(*) FROM tasklog_digests WHERE posted_at IS NOT NULL") == [(1,)]


def test_a_tasklog_with_a_digest_channel_posts_in_the_background(api: FakeSlackAPI, database_url: str) -> None:
    tasklog = TaskLog(database_url, digest_channel="CDIGEST", digest_every="7d", digest_client=api.client())
    try:
        [message] = api.wait_for("chat.postMessage", timeout=10)
        assert message.params["channel"] == "CDIGEST"
        assert message.params["text"] == "No tasks were requested in this period."
    finally:
        tasklog.close()
    assert not any(thread.name == "slack_tasklog-digest" and thread.is_alive() for thread in threading.enumerate())


def test_a_digest_without_a_client_says_so(database_url: str, caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    tasklog = TaskLog(database_url, digest_channel="CDIGEST")
    tasklog.close()
    assert "digests need digest_client= or $SLACK_BOT_TOKEN" in caplog.text


def _mention_on_the_24th(app: App, hour: int) -> str:
    ts = f"{datetime(2026, 11, 24, hour, tzinfo=UTC).timestamp():.6f}"
    app.dispatch(signed_request(event_body(app_mention("build it", ts=ts))))
    return ts


def test_a_digest_waits_for_what_this_process_recorded_a_moment_ago(
    api: FakeSlackAPI, app: App, tasklog: TaskLog
) -> None:
    ts = _mention_on_the_24th(app, 10)  # still queued: no flush here
    digests = Digests(tasklog, DigestSchedule("CDIGEST", DAY, csv=True), api.client(), clock=lambda: NOW)
    assert digests.run_once() == 1
    [message] = api.calls_to("chat.postMessage")
    assert message.params["text"].startswith("Task log, 2026-11-24 00:00 to 2026-11-25 00:00 UTC: 1 task,")
    [upload] = api.uploads
    assert ts.encode() in upload.content


@pytest.mark.backends("postgresql", "mariadb")
def test_a_digest_whose_wait_runs_out_is_posted_and_says_so(
    api: FakeSlackAPI, app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest, "FLUSH_TIMEOUT", 0.5)
    ts = _mention_on_the_24th(app, 10)
    assert tasklog.flush(10)

    @tasklog.track_assignment
    def check_and_assign(thread_ts: str, evaluations: dict[str, int]) -> str:
        return max(evaluations, key=evaluations.__getitem__)

    with tasklog.engine.connect() as other, other.begin() as held:
        # Another process holds the task: the round for it waits in this process's writer.
        other.execute(text("SELECT id FROM tasklog_tasks WHERE thread_ts = :ts FOR UPDATE"), {"ts": ts})
        check_and_assign(ts, {"Builder": 90})
        digests = Digests(tasklog, DigestSchedule("CDIGEST", DAY, csv=True), api.client(), clock=lambda: NOW)
        assert digests.run_once() == 1
        held.rollback()
    assert "the digest for CDIGEST is posted without waiting longer" in caplog.text
    assert len(api.uploads) == 1
    assert tasklog.flush(10)
    assert query(tasklog, "SELECT count(*) FROM tasklog_assignments") == [(1,)]
