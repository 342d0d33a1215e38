"""Events out of order: Slack does not promise that a thread's mention arrives before its replies, nor that a
retried mention arrives before the message's deletion. What arrives early is kept and applied when the mention
arrives, once, in its own workspace."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from slack_bolt import App
from slack_tasklog import TaskLog
from slack_tasklog.events import MessageInThread, OutcomeRecorded, TaskRequested
from slack_tasklog.storage.models import DeletedMessage, Task, WaitingMessage
from slack_tasklog.testing import app_mention, event_body, message, signed_request
from sqlalchemy import insert, update

from tests.conftest import query
from tests.test_privacy import ROOT, deleted, send, texts

REPLY = "1700000001.000100"


def follow_up_counts(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    return query(tasklog, "SELECT follow_ups FROM tasklog_tasks ORDER BY id")


def waiting(tasklog: TaskLog) -> int:
    return query(tasklog, "SELECT count(*) FROM tasklog_waiting_messages")[0][0]


def test_a_reply_before_its_mention_becomes_a_follow_up_when_the_mention_arrives(app: App, tasklog: TaskLog) -> None:
    send(app, message("and make it rhyme", ts=REPLY, thread_ts=ROOT))
    assert tasklog.flush(5)
    send(app, app_mention("write a poem", ts=ROOT))
    assert texts(tasklog) == (["write a poem"], ["and make it rhyme"])
    assert follow_up_counts(tasklog) == [(1,)]
    assert waiting(tasklog) == 0


def test_redelivered_replies_and_mentions_land_once(app: App, tasklog: TaskLog) -> None:
    send(app, message("and make it rhyme", ts=REPLY, thread_ts=ROOT))
    send(app, message("and make it rhyme", ts=REPLY, thread_ts=ROOT))  # Slack's retry
    assert tasklog.flush(5)
    send(app, app_mention("write a poem", ts=ROOT))
    send(app, app_mention("write a poem", ts=ROOT))
    send(app, message("and make it rhyme", ts=REPLY, thread_ts=ROOT))  # a late retry, after all that
    assert texts(tasklog) == (["write a poem"], ["and make it rhyme"])
    assert follow_up_counts(tasklog) == [(1,)]


def test_a_deletion_before_its_retried_mention_leaves_no_text(app: App, tasklog: TaskLog) -> None:
    send(app, deleted(ROOT))
    assert tasklog.flush(5)
    send(app, app_mention("my password is hunter2", ts=ROOT))  # the retry of the mention, after its deletion
    assert texts(tasklog) == ([None], [])
    assert query(tasklog, "SELECT count(*) FROM tasklog_tasks WHERE text_erased_at IS NOT NULL") == [(1,)]


def test_a_run_recorded_before_its_deleted_mention_keeps_only_its_error_type(app: App, tasklog: TaskLog) -> None:
    """The run, the deletion and the mention arrive in that order (another process ran the agent; Slack retried the
    mention after its deletion): linked to its task, the run's error keeps no quote of the deleted text."""
    error = "ValueError: cannot parse 'my password is hunter2'"
    tasklog._record(OutcomeRecorded("o1", ROOT, "C111", "T111", "Grok", False, 0.5, error, 1.7e9, 1.7e9 + 1))
    send(app, deleted(ROOT))
    assert tasklog.flush(5)
    send(app, app_mention("my password is hunter2", ts=ROOT))
    assert query(tasklog, "SELECT task_id IS NOT NULL, error_message FROM tasklog_outcomes") == [(True, "ValueError")]


def test_a_reply_deleted_before_its_mention_arrives_is_kept_without_its_text(app: App, tasklog: TaskLog) -> None:
    send(app, message("my password is hunter2", ts=REPLY, thread_ts=ROOT))
    send(app, deleted(REPLY))
    send(app, deleted("1700000002.000100"))  # deleted before it even arrived
    assert tasklog.flush(5)
    send(app, message("oops", ts="1700000002.000100", thread_ts=ROOT))
    send(app, app_mention("write a poem", ts=ROOT))
    assert texts(tasklog) == (["write a poem"], [None, None])
    assert follow_up_counts(tasklog) == [(2,)]
    erased = query(tasklog, "SELECT count(*) FROM tasklog_follow_ups WHERE text_erased_at IS NOT NULL")
    assert erased == [(2,)]


def test_a_waiting_reply_joins_only_its_own_workspaces_thread(app: App, tasklog: TaskLog) -> None:
    other = event_body(message("another workspace", ts=REPLY, thread_ts=ROOT), team_id="T_OTHER")
    assert app.dispatch(signed_request(other)).status == 200
    assert tasklog.flush(5)
    send(app, app_mention("write a poem", ts=ROOT))
    assert texts(tasklog) == (["write a poem"], [])
    assert waiting(tasklog) == 1  # still waiting for its own workspace's mention


def test_replies_wait_a_quarter_of_an_hour_and_deletions_a_month(app: App, tasklog: TaskLog) -> None:
    """A reply in a thread with no task is most likely chatter: kept only as long as a late mention may take. A
    deletion is kept as long as a stopped bot's journal may wait for its replay."""
    send(app, message("chatter in a thread with no task", ts=REPLY, thread_ts=ROOT))
    send(app, deleted("1700000005.000100"))
    assert tasklog.flush(5)
    assert waiting(tasklog) == 1
    store = tasklog._store
    store._next_purge = 0.0
    store.maintain()  # what the writer runs when idle: both are recent, they stay
    assert waiting(tasklog) == 1

    def aged(**delta: float) -> None:
        then = datetime.now(timezone.utc) - timedelta(**delta)
        with tasklog.engine.begin() as conn:
            conn.execute(update(WaitingMessage.__table__).values(recorded_at=then))
            conn.execute(update(DeletedMessage.__table__).values(deleted_at=then))
        store._next_purge = 0.0
        store.maintain()

    aged(minutes=16)
    assert waiting(tasklog) == 0
    assert query(tasklog, "SELECT count(*) FROM tasklog_deleted_messages") == [(1,)]
    aged(days=2)  # a bot stopped over a weekend replays its journal: the deleted mention still comes without text
    assert query(tasklog, "SELECT count(*) FROM tasklog_deleted_messages") == [(1,)]
    send(app, app_mention("deleted before the journal's replay", ts="1700000005.000100"))
    assert texts(tasklog)[0] == [None]
    aged(days=30, minutes=1)
    assert query(tasklog, "SELECT count(*) FROM tasklog_deleted_messages") == [(0,)]


def test_what_a_forgotten_person_wrote_before_loses_its_text_when_it_arrives_later(tasklog: TaskLog) -> None:
    tasklog.forget_user("U2")
    # Events a running bot still held at that moment (or a journal replayed later): written before the forget.
    store = tasklog._store
    store.write([
        TaskRequested("T1", None, "C1", ROOT, ROOT, "U2", "pay Bob"),
        MessageInThread("T1", "C1", ROOT, REPLY, "U2", "quickly"),
        # After the forget (a ts in 2096): they wrote it after asking to be forgotten, and it is kept.
        TaskRequested("T1", None, "C1", "4000000000.000100", "4000000000.000100", "U2", "a new request"),
    ])  # fmt: skip
    assert texts(tasklog) == ([None, "a new request"], [None])


def test_a_reply_waiting_while_another_process_wrote_the_mention_is_adopted_when_idle(
    app: App, tasklog: TaskLog
) -> None:
    send(app, message("and make it rhyme", ts=REPLY, thread_ts=ROOT))
    assert tasklog.flush(5)
    # Another process's mention, committed without seeing the waiting reply (both transactions ran at once).
    with tasklog.engine.begin() as conn:
        conn.execute(
            insert(Task.__table__).values(
                team_id="T111", channel_id="C111", thread_ts=ROOT, request_ts=ROOT, user_id="U123",
                request_text="write a poem", requested_at=datetime.now(timezone.utc),
                recorded_at=datetime.now(timezone.utc), follow_ups=0,
            )
        )  # fmt: skip
    tasklog._store.maintain()  # what the writer runs when idle
    assert texts(tasklog) == (["write a poem"], ["and make it rhyme"])
    assert follow_up_counts(tasklog) == [(1,)]
    assert waiting(tasklog) == 0


def test_a_run_of_a_forgotten_persons_task_arriving_later_keeps_only_its_exception_type(tasklog: TaskLog) -> None:
    store = tasklog._store
    store.write([
        TaskRequested("T1", None, "C1", ROOT, ROOT, "U2", "pay Bob"),
        TaskRequested("T1", None, "C1", REPLY, REPLY, "U1", "pay Alice"),
    ])  # fmt: skip
    tasklog.forget_user("U2")
    # Runs a running bot still held at that moment.
    store.write([
        OutcomeRecorded("o1", ROOT, "C1", "T1", "Grok", False, 0.5, "ValueError: cannot parse 'pay Bob'", 1e9, 1e9),
        OutcomeRecorded("o2", REPLY, "C1", "T1", "Grok", False, 0.5, "ValueError: cannot parse 'pay Alice'", 1e9, 1e9),
    ])  # fmt: skip
    rows = query(tasklog, "SELECT id, error_message FROM tasklog_outcomes ORDER BY id")
    assert rows == [("o1", "ValueError"), ("o2", "ValueError: cannot parse 'pay Alice'")]
