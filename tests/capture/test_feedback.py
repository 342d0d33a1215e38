"""Reactions as feedback: signed reaction events through a real Bolt App into a real database, the Web API stand-in
answering ``conversations.replies`` and ``users.info``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_bolt import App, BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_tasklog import TaskLog
from slack_tasklog.capture.rules import capture_event
from slack_tasklog.events import FeedbackGiven, TaskRequested
from slack_tasklog.storage.models import Task, WaitingVote
from slack_tasklog.storage.votes import votes_of
from slack_tasklog.testing import (
    SIGNING_SECRET,
    FakeSlackAPI,
    app_mention,
    async_signed_request,
    event_body,
    message,
    reaction,
    signed_request,
)
from sqlalchemy import insert, update

from tests.conftest import query

ROOT = "1700000000.000100"
REPLY = "1700000050.000100"


def send(app: App, event: dict[str, Any], *, team_id: str = "T111", retry_num: int | None = None) -> BoltResponse:
    return app.dispatch(signed_request(event_body(event, team_id=team_id), retry_num=retry_num))


def tally(tasklog: TaskLog) -> list[tuple[Any, ...]]:
    rows = query(tasklog, "SELECT thread_ts, feedback_up, feedback_down, requester_feedback FROM tasklog_tasks")
    return [(ts, up or 0, down or 0, None if mine is None else bool(mine)) for ts, up, down, mine in rows]


def vote_rows(tasklog: TaskLog) -> int:
    [(count,)] = query(tasklog, "SELECT COUNT(*) FROM tasklog_feedback")
    return int(count)


@pytest.fixture
def asked(app: App) -> App:
    """An app with one task: U123 asked in C111 at ROOT."""
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    return app


def test_reactions_on_the_request_are_votes_and_the_requesters_is_kept_apart(asked: App, tasklog: TaskLog) -> None:
    assert send(asked, reaction("+1", item_ts=ROOT, user="U2")).status == 200
    send(asked, reaction("tada", item_ts=ROOT, user="U3"))
    send(asked, reaction("thumbsdown", item_ts=ROOT, user="U4"))
    send(asked, reaction("white_check_mark", item_ts=ROOT, user="U123"))
    send(asked, reaction("eyes", item_ts=ROOT, user="U5"))  # not feedback
    assert tally(tasklog) == [(ROOT, 2, 1, True)]


def test_a_follow_up_is_part_of_the_task(asked: App, tasklog: TaskLog) -> None:
    send(asked, message("and shorter", user="U123", ts=REPLY, thread_ts=ROOT))
    send(asked, reaction("-1::skin-tone-3", item_ts=REPLY, user="U2"))  # a skin tone counts as its base
    assert tally(tasklog) == [(ROOT, 0, 1, None)]


def test_one_vote_per_person_the_latest_and_removal_takes_it_back(asked: App, tasklog: TaskLog) -> None:
    send(asked, reaction("+1", item_ts=ROOT, user="U2", event_ts="1700000100.000001"))
    send(asked, reaction("x", item_ts=ROOT, user="U2", event_ts="1700000101.000001"))
    assert tally(tasklog) == [(ROOT, 0, 1, None)]
    send(asked, reaction("x", item_ts=ROOT, user="U2", removed=True, event_ts="1700000102.000001"))
    assert tally(tasklog) == [(ROOT, 1, 0, None)]  # the 👍 is still there
    send(asked, reaction("+1", item_ts=ROOT, user="U2", removed=True, event_ts="1700000103.000001"))
    assert tally(tasklog) == [(ROOT, 0, 0, None)]


def test_a_redelivered_reaction_counts_once(asked: App, tasklog: TaskLog) -> None:
    event = reaction("+1", item_ts=ROOT, user="U2")
    for retry in (None, 1, 2):
        assert send(asked, event, retry_num=retry).status == 200
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert vote_rows(tasklog) == 1
    # A late redelivery of an add, after its removal, does not bring the vote back.
    removal = reaction("+1", item_ts=ROOT, user="U2", removed=True)
    send(asked, removal)
    send(asked, event, retry_num=3)
    assert tally(tasklog) == [(ROOT, 0, 0, None)]


def test_reactions_on_the_bots_answer_find_their_thread_through_the_web_api(
    asked: App, tasklog: TaskLog, api: FakeSlackAPI
) -> None:
    answer = api.client().chat_postMessage(channel="C111", thread_ts=ROOT, text="Here is your poem")["ts"]
    send(asked, reaction("+1", item_ts=answer, user="U2"))
    send(asked, reaction("heavy_check_mark", item_ts=answer, user="U3"))
    assert tally(tasklog) == [(ROOT, 2, 0, None)]
    # Asked once per message: the answer is cached.
    assert [call.params["ts"] for call in api.calls_to("conversations.replies")] == [answer]


def test_without_the_history_scope_the_vote_is_skipped_with_a_warning_and_nothing_breaks(
    asked: App, tasklog: TaskLog, api: FakeSlackAPI, caplog: pytest.LogCaptureFixture
) -> None:
    answer = api.client().chat_postMessage(channel="C111", thread_ts=ROOT, text="Here is your poem")["ts"]
    api.fail_next("conversations.replies", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        assert send(asked, reaction("+1", item_ts=answer, user="U2")).status == 200
        send(asked, reaction("+1", item_ts=ROOT, user="U3"))  # the request needs no lookup
        assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert "conversations.replies failed (missing_scope)" in caplog.text
    assert tasklog.health().writer_errors == 0


def test_a_reaction_outside_any_task_thread_is_ignored(asked: App, tasklog: TaskLog, api: FakeSlackAPI) -> None:
    api.add_message("C111", "1690000000.000100")  # chatter, in no thread
    send(asked, reaction("+1", item_ts="1690000000.000100", user="U2"))
    send(asked, reaction("+1", item_ts="1690000001.000100", user="U2"))  # Slack does not know it either
    assert tally(tasklog) == [(ROOT, 0, 0, None)]
    assert vote_rows(tasklog) == 0


def test_bots_reactions_never_count(asked: App, tasklog: TaskLog, api: FakeSlackAPI) -> None:
    api.add_user("U0OTHERBOT", is_bot=True)
    api.add_user("U2")
    send(asked, reaction("+1", item_ts=ROOT, user="U0OTHERBOT"))
    send(asked, reaction("+1", item_ts=ROOT, user="UBOT"))  # the app itself
    send(asked, reaction("+1", item_ts=ROOT, user="U2"))
    assert tally(tasklog) == [(ROOT, 1, 0, None)]


async def test_an_async_app_records_votes_on_its_answers_alike(api: FakeSlackAPI, tasklog: TaskLog) -> None:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=api.async_client(), process_before_response=True)
    app.use(tasklog.middleware)
    answers: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        answers.append((await say(text="On it", thread_ts=event["ts"]))["ts"])

    async def send_async(event: dict[str, Any]) -> BoltResponse:
        return await app.async_dispatch(async_signed_request(event_body(event)))

    assert (await send_async(app_mention("write a poem", user="U123", ts=ROOT))).status == 200
    assert (await send_async(reaction("+1", item_ts=answers[0], user="U2"))).status == 200
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    # Asked from the writer thread, with the bot token the async app's events came with.
    [lookup] = api.calls_to("conversations.replies")
    assert lookup.token == api.calls_to("chat.postMessage")[0].token


def test_workspaces_are_kept_apart(asked: App, tasklog: TaskLog) -> None:
    # The same channel id and ts in another workspace is another message.
    send(asked, reaction("+1", item_ts=ROOT, user="U2"), team_id="T222")
    assert tally(tasklog) == [(ROOT, 0, 0, None)]


def test_feedback_emoji_are_configurable(make_app: Any, database_url: str) -> None:
    with pytest.raises(TypeError, match="feedback_emoji"):
        TaskLog(database_url, feedback_emoji={"+1": "yes"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="feedback_emoji"):
        TaskLog(database_url, feedback_emoji=["+1"])  # type: ignore[arg-type]
    tasklog = TaskLog(database_url, feedback_emoji={":rocket:": True, "poop": False})
    try:
        app = make_app(tasklog)
        send(app, app_mention("write a poem", user="U123", ts=ROOT))
        send(app, reaction("rocket", item_ts=ROOT, user="U2"))
        send(app, reaction("+1", item_ts=ROOT, user="U3"))  # no longer feedback
        send(app, reaction("poop", item_ts=ROOT, user="U4"))
        assert tally(tasklog) == [(ROOT, 1, 1, None)]
    finally:
        tasklog.close()


def test_record_feedback_is_a_vote_like_a_reaction(
    asked: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    tasklog.record_feedback(ROOT, True, user="U2", channel="C111", team="T111")
    tasklog.record_feedback(ROOT, False, user="U123")  # channel and team are optional
    assert tally(tasklog) == [(ROOT, 1, 0, False)]
    tasklog.record_feedback(ROOT, False, user="U2")  # the latest counts
    tasklog.record_feedback("1600000000.000100", True, user="U2")  # no such task: dropped by the writer
    assert tally(tasklog) == [(ROOT, 0, 1, False)]
    tasklog.record_feedback(None, True, user="U2")  # type: ignore[arg-type]  # never raises
    with caplog.at_level(logging.WARNING, logger="slack_tasklog"):
        tasklog.record_feedback(ROOT, "no", user="U9")  # type: ignore[arg-type]  # truthy, yet no vote up
    assert tally(tasklog) == [(ROOT, 0, 1, False)]
    assert "recorded no vote: positive must be True (a vote up) or False (a vote down), not a str" in caplog.text


def test_forget_user_erases_their_votes_and_purge_removes_votes_with_their_tasks(asked: App, tasklog: TaskLog) -> None:
    send(asked, reaction("+1", item_ts=ROOT, user="U2"))
    send(asked, reaction("-1", item_ts=ROOT, user="U3"))
    assert tally(tasklog) == [(ROOT, 1, 1, None)]
    assert tasklog.forget_user("U3").votes == 1
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert query(tasklog, "SELECT user_id FROM tasklog_feedback") == [("U2",)]
    assert tasklog.purge("1d") == 1  # ROOT is from 2023
    assert vote_rows(tasklog) == 0


def test_a_vote_given_before_a_forget_that_arrives_after_it_is_not_stored(asked: App, tasklog: TaskLog) -> None:
    before = "1700000100.000001"
    tasklog.forget_user("U3")
    # Queued by another bot before the forget, written after it: it must not bring the vote back.
    send(asked, reaction("-1", item_ts=ROOT, user="U3", event_ts=before))
    send(asked, reaction("+1", item_ts=ROOT, user="U2", event_ts=before))
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    # Given after the forget: a new vote, kept.
    tasklog.record_feedback(ROOT, False, user="U3")
    assert tally(tasklog) == [(ROOT, 1, 1, None)]


def test_a_forgotten_persons_votes_leave_the_journals_of_stopped_bots_too() -> None:
    from slack_tasklog.storage.erasure import forget_in_events

    theirs = FeedbackGiven("T111", "C111", ROOT, None, "U3", "+1", True, True, "1700000100.000001")
    others = theirs._replace(user_id="U2")
    elsewhere = theirs._replace(team_id="T222")
    assert forget_in_events([theirs, others, elsewhere], "U3", "T111") == [others, elsewhere]
    assert forget_in_events([theirs, others, elsewhere], "U3", None) == [others]


# -- votes before their task ----------------------------------------------------------------------------------------


def waiting_votes(tasklog: TaskLog) -> int:
    [(count,)] = query(tasklog, "SELECT COUNT(*) FROM tasklog_waiting_votes")
    return int(count)


def test_a_reaction_before_its_mention_waits_and_counts_once_when_the_mention_arrives(
    app: App, tasklog: TaskLog
) -> None:
    """Slack does not know the message either (the stand-in answers thread_not_found): it waits by message."""
    early = reaction("+1", item_ts=ROOT, user="U2")
    for retry in (None, 1):  # Slack's retry, while it waits
        assert send(app, early, retry_num=retry).status == 200
    send(app, reaction("-1", item_ts=ROOT, user="U3"))
    assert waiting_votes(tasklog) == 2
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    send(app, early, retry_num=2)  # and a late one, after it was counted
    assert tally(tasklog) == [(ROOT, 1, 1, None)]
    assert vote_rows(tasklog) == 2
    assert waiting_votes(tasklog) == 0


def test_a_reaction_slack_places_in_its_thread_waits_for_that_threads_mention(
    app: App, tasklog: TaskLog, api: FakeSlackAPI
) -> None:
    api.add_message("C111", ROOT)
    send(app, reaction("+1", item_ts=ROOT, user="U2"))
    assert query(tasklog, "SELECT item_ts, thread_ts FROM tasklog_waiting_votes") == [(ROOT, ROOT)]
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert waiting_votes(tasklog) == 0


def test_a_reaction_written_in_one_batch_before_its_mention_counts(tasklog: TaskLog) -> None:
    tasklog._store.write([
        FeedbackGiven("T111", "C111", ROOT, None, "U2", "+1", True, True, "1700000100.000001"),
        TaskRequested("T111", None, "C111", ROOT, ROOT, "U123", "write a poem"),
    ])  # fmt: skip
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert waiting_votes(tasklog) == 0


def test_a_waiting_reaction_retried_in_the_mentions_batch_counts_once(tasklog: TaskLog) -> None:
    vote = FeedbackGiven("T111", "C111", ROOT, None, "U2", "+1", True, True, "1700000100.000001")
    store = tasklog._store
    store.write([vote])
    assert waiting_votes(tasklog) == 1
    store.write([vote, TaskRequested("T111", None, "C111", ROOT, ROOT, "U123", "write a poem")])
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert (vote_rows(tasklog), waiting_votes(tasklog)) == (1, 0)


def test_record_feedback_before_the_mention_counts_when_it_arrives(app: App, tasklog: TaskLog) -> None:
    tasklog.record_feedback(ROOT, True, user="U2", channel="C111", team="T111")
    tasklog.record_feedback(ROOT, False, user="U123")  # no channel or workspace: any task of that thread
    assert waiting_votes(tasklog) == 2
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    assert tally(tasklog) == [(ROOT, 1, 0, False)]
    assert waiting_votes(tasklog) == 0


def test_a_removal_cancels_a_waiting_add_before_and_after_the_mention(app: App, tasklog: TaskLog) -> None:
    send(app, reaction("+1", item_ts=ROOT, user="U2", event_ts="1700000100.000001"))
    send(app, reaction("+1", item_ts=ROOT, user="U2", removed=True, event_ts="1700000101.000001"))
    send(app, reaction("-1", item_ts=ROOT, user="U3", event_ts="1700000102.000001"))
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    assert tally(tasklog) == [(ROOT, 0, 1, None)]
    send(app, reaction("-1", item_ts=ROOT, user="U3", removed=True, event_ts="1700000103.000001"))
    assert tally(tasklog) == [(ROOT, 0, 0, None)]


def test_waiting_votes_join_the_ones_stored_and_the_latest_per_person_counts(asked: App, tasklog: TaskLog) -> None:
    """Reactions on a reply delivered before the reply itself: they wait for it, by message, then are counted with
    the person's votes already stored on the task."""
    send(asked, reaction("+1", item_ts=ROOT, user="U2", event_ts="1700000100.000001"))
    send(asked, reaction("-1", item_ts=REPLY, user="U2", event_ts="1700000101.000001"))  # later: it wins
    send(asked, reaction("-1", item_ts=REPLY, user="U3", event_ts="1700000099.000001"))  # earlier: it loses
    send(asked, reaction("+1", item_ts=ROOT, user="U3", event_ts="1700000100.000001"))
    assert tally(tasklog) == [(ROOT, 2, 0, None)]
    assert waiting_votes(tasklog) == 2
    send(asked, message("and shorter", user="U123", ts=REPLY, thread_ts=ROOT))
    assert tally(tasklog) == [(ROOT, 1, 1, None)]
    assert waiting_votes(tasklog) == 0


def test_a_vote_waits_a_quarter_of_an_hour_then_is_dropped_and_logged(
    app: App, tasklog: TaskLog, caplog: pytest.LogCaptureFixture
) -> None:
    send(app, reaction("+1", item_ts=ROOT, user="U2"))
    assert tasklog.flush(5)
    store = tasklog._store
    store._next_purge = 0.0
    store.maintain()  # recent: it stays
    assert waiting_votes(tasklog) == 1
    then = datetime.now(timezone.utc) - timedelta(minutes=16)
    with tasklog.engine.begin() as conn:
        conn.execute(update(WaitingVote.__table__).values(recorded_at=then))
    store._next_purge = 0.0
    with caplog.at_level(logging.INFO, logger="slack_tasklog"):
        store.maintain()
    assert waiting_votes(tasklog) == 0
    assert "0 replies and 1 votes waited 0:15:00 for a task that never came; dropped" in caplog.text
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    assert tally(tasklog) == [(ROOT, 0, 0, None)]


def test_forget_user_deletes_their_waiting_votes(app: App, tasklog: TaskLog) -> None:
    send(app, reaction("-1", item_ts=ROOT, user="U3"))
    send(app, reaction("+1", item_ts=ROOT, user="U2"))
    tasklog.record_feedback(ROOT, False, user="U3")  # no workspace: theirs in every one
    send(app, reaction("-1", item_ts=ROOT, user="U3"), team_id="T222")  # another workspace's U3
    assert waiting_votes(tasklog) == 4
    assert tasklog.forget_user("U3", team_id="T111").votes == 2
    assert query(tasklog, "SELECT team_id, user_id FROM tasklog_waiting_votes ORDER BY team_id") == [
        ("T111", "U2"),
        ("T222", "U3"),
    ]
    send(app, app_mention("write a poem", user="U123", ts=ROOT))
    assert tally(tasklog) == [(ROOT, 1, 0, None)]


def test_purge_drops_waiting_votes_older_than_it_keeps(app: App, tasklog: TaskLog) -> None:
    send(app, reaction("+1", item_ts=ROOT, user="U2"))
    assert tasklog.flush(5)
    assert tasklog._store.purge(datetime.now(timezone.utc) + timedelta(minutes=1)) == 0  # what retention runs
    assert waiting_votes(tasklog) == 0


def test_a_vote_waiting_while_another_process_wrote_the_mention_is_counted_when_idle(
    app: App, tasklog: TaskLog
) -> None:
    send(app, reaction("+1", item_ts=ROOT, user="U2"))
    assert tasklog.flush(5)
    # Another process's mention, committed without seeing the waiting vote (both transactions ran at once).
    now = datetime.now(timezone.utc)
    with tasklog.engine.begin() as conn:
        conn.execute(
            insert(Task.__table__).values(
                team_id="T111", channel_id="C111", thread_ts=ROOT, request_ts=ROOT, user_id="U123",
                request_text="write a poem", requested_at=now, recorded_at=now, follow_ups=0,
            )
        )  # fmt: skip
    tasklog._store.maintain()  # what the writer runs when idle
    assert tally(tasklog) == [(ROOT, 1, 0, None)]
    assert waiting_votes(tasklog) == 0


# -- the rules, without Slack ---------------------------------------------------------------------------------------


def test_reactions_on_files_and_without_a_user_are_not_captured() -> None:
    file_reaction = {"type": "reaction_added", "user": "U1", "reaction": "+1", "event_ts": "1.0",
                     "item": {"type": "file", "file": "F1"}}  # fmt: skip
    assert capture_event(event_body(file_reaction)) is None
    no_user = reaction("+1", item_ts=ROOT)
    del no_user["user"]
    assert capture_event(event_body(no_user)) is None
    assert capture_event(event_body(reaction("+1", item_ts=ROOT, user="UBOT")), bot_user_id="UBOT") is None


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["U1", "U2"]),
        st.sampled_from(["1.0", "2.0"]),
        st.sampled_from(["+1", "-1"]),
        st.integers(0, 5).map(lambda n: f"{100 + n}.0"),
        st.booleans(),
    ).map(lambda e: (*e, e[2] == "+1")),
    max_size=12,
    unique_by=lambda e: e[:4],
)


@given(_EVENTS, st.randoms())
def test_votes_do_not_depend_on_the_order_events_arrive_in(events: list[Any], random: Any) -> None:
    shuffled = list(events)
    random.shuffle(shuffled)
    assert votes_of(shuffled) == votes_of(events)
