"""Tests for the public ``slack_tasklog.testing`` helpers, driven by the real slack_sdk clients."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App, BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_tasklog.testing import (
    SIGNING_SECRET,
    FakeSlackAPI,
    RecordedCall,
    UploadedFile,
    app_mention,
    async_signed_request,
    event_body,
    message,
    signed_request,
    slash_command_body,
    unique_ts,
)

CSV = "a,b\n1,2\n"


@pytest.fixture
def api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake
        assert fake.server_errors == []


@pytest.fixture
def client(api: FakeSlackAPI) -> WebClient:
    return api.client()


# ------------------------------------------------------------------ lifecycle & plumbing


def test_start_stop_and_base_url() -> None:
    api = FakeSlackAPI()
    with pytest.raises(RuntimeError):
        _ = api.base_url
    api.start()
    try:
        assert api.start() is api  # idempotent
        assert api.base_url.startswith("http://127.0.0.1:")
        assert api.base_url.endswith("/api/")
        assert WebClient(token="xoxb-x", base_url=api.base_url).auth_test()["ok"] is True
    finally:
        api.stop()
    api.stop()  # second stop is a no-op
    assert "stopped" in repr(api)


def test_quiet_no_request_logging(capsys: pytest.CaptureFixture[str], client: WebClient) -> None:
    client.auth_test()
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_unique_ts_strictly_increasing_across_threads() -> None:
    out: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        values = [unique_ts() for _ in range(200)]
        with lock:
            out.extend(values)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == len(out) == 800
    a, b = unique_ts(), unique_ts()
    assert float(b) > float(a)
    seconds, micros = b.split(".")
    assert len(micros) == 6
    assert abs(int(seconds) - time.time()) < 5


# ------------------------------------------------------------------ sync WebClient


def test_auth_test(api: FakeSlackAPI, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["team_id"] == "T111"
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    assert resp["url"].startswith("https://")
    assert "enterprise_id" not in resp.data
    assert api.calls == [RecordedCall("auth.test", {}, "xoxb-test")]


def test_auth_test_configurable_and_enterprise() -> None:
    with FakeSlackAPI(team_id="T9", bot_user_id="U9", bot_id="B9", enterprise_id="E9") as api:
        resp = api.client().auth_test()
        assert (resp["team_id"], resp["user_id"], resp["bot_id"], resp["enterprise_id"]) == (
            "T9",
            "U9",
            "B9",
            "E9",
        )


def test_missing_and_invalid_tokens() -> None:
    with FakeSlackAPI(valid_tokens={"xoxb-good"}) as api:
        with pytest.raises(SlackApiError) as no_token:
            WebClient(base_url=api.base_url).chat_postMessage(channel="C1", text="x")
        assert no_token.value.response["error"] == "not_authed"
        with pytest.raises(SlackApiError) as bad:
            api.client("xoxb-bad").auth_test()
        assert bad.value.response["error"] == "invalid_auth"
        assert api.client("xoxb-good").auth_test()["ok"]
        assert [c.token for c in api.calls] == [None, "xoxb-bad", "xoxb-good"]


def test_post_message_records_and_answers(api: FakeSlackAPI, client: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = client.chat_postMessage(channel="C1", text="hello", thread_ts="1.000001", blocks=blocks)
    second = client.chat_postMessage(channel="C1", text="again")
    assert first["channel"] == "C1"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["text"] == "hello"
    assert first["message"]["bot_id"] == "BBOT"
    assert first["message"]["thread_ts"] == "1.000001"
    assert first["message"]["blocks"] == blocks
    calls = api.calls_to("chat.postMessage")
    assert [c.params["text"] for c in calls] == ["hello", "again"]
    assert calls[0].params["blocks"] == blocks  # JSON body keeps structure
    assert calls[0].token == "xoxb-test"


def test_post_message_to_user_goes_to_dm(api: FakeSlackAPI, client: WebClient) -> None:
    resp = client.chat_postMessage(channel="U42", text="psst")
    assert resp["channel"] == api.dm_channel_id("U42")
    assert resp["channel"].startswith("D")


def test_post_message_validation(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel="C1")
    assert exc.value.response["error"] == "no_text"


def test_post_ephemeral(api: FakeSlackAPI, client: WebClient) -> None:
    resp = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert resp["message_ts"]
    assert api.calls_to("chat.postEphemeral")[0].params == {"channel": "C1", "user": "U1", "text": "only you"}


def test_conversations_open_and_info(api: FakeSlackAPI, client: WebClient) -> None:
    opened = client.conversations_open(users="U1")
    again = client.conversations_open(users=["U1"])
    other = client.conversations_open(users="U2")
    assert opened["channel"]["id"] == again["channel"]["id"] == api.dm_channel_id("U1")
    assert opened["channel"]["id"].startswith("D")
    assert other["channel"]["id"] != opened["channel"]["id"]
    assert again["already_open"] is True
    assert opened["already_open"] is False

    im = client.conversations_info(channel=opened["channel"]["id"])["channel"]
    assert im["is_im"] is True
    assert im["user"] == "U1"
    api.add_channel("C5", name="tasks", is_private=True)
    info = client.conversations_info(channel="C5")["channel"]
    assert (info["name"], info["is_private"], info["is_channel"]) == ("tasks", True, False)
    assert client.conversations_info(channel="C6")["channel"]["is_channel"] is True


def test_users_info(api: FakeSlackAPI, client: WebClient) -> None:
    api.add_user("U1", is_admin=True, name="alice")
    api.add_user("U2", is_primary_owner=True)
    u1 = client.users_info(user="U1")["user"]
    assert (u1["id"], u1["name"], u1["team_id"], u1["is_admin"], u1["is_owner"]) == (
        "U1",
        "alice",
        "T111",
        True,
        False,
    )
    u2 = client.users_info(user="U2")["user"]
    assert (u2["is_primary_owner"], u2["is_owner"], u2["is_admin"]) == (True, True, True)
    assert client.users_info(user="UBOT")["user"]["is_bot"] is True
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="UNOPE")
    assert exc.value.response["error"] == "user_not_found"


def test_views_publish(api: FakeSlackAPI, client: WebClient) -> None:
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "stats"}}]}
    resp = client.views_publish(user_id="U1", view=view)
    assert resp["view"]["type"] == "home"
    assert resp["view"]["id"].startswith("V")
    assert api.views == {"U1": view}


def test_unknown_method_is_ok_and_recorded(api: FakeSlackAPI, client: WebClient) -> None:
    assert client.reactions_add(channel="C1", timestamp="1.2", name="white_check_mark")["ok"] is True
    assert api.calls_to("reactions.add")[0].params["name"] == "white_check_mark"
    assert client.api_call("some.futureMethod", params={"x": 1})["ok"] is True
    assert api.calls_to("some.futureMethod")[0].params == {"x": "1"}  # form values are strings


def test_response_url_records_respond_payloads(api: FakeSlackAPI) -> None:
    url = api.response_url(name="cmd")
    other = api.response_url()
    for target, text in ((url, "done"), (other, "other")):
        req = urllib.request.Request(
            target,
            data=json.dumps({"text": text, "response_type": "ephemeral"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
    assert api.responses == [
        {"text": "done", "response_type": "ephemeral"},
        {"text": "other", "response_type": "ephemeral"},
    ]
    assert api.responses_for("cmd") == [{"text": "done", "response_type": "ephemeral"}]
    assert api.calls == []  # response_url posts are not Web API calls


# ------------------------------------------------------------------ files_upload_v2


def test_files_upload_v2_sync(api: FakeSlackAPI, client: WebClient) -> None:
    resp = client.files_upload_v2(
        channel="C1",
        content=CSV,
        filename="x.csv",
        title="Task log",
        initial_comment="here you go",
        thread_ts="1.000001",
    )
    assert resp["ok"] is True
    assert resp["file"]["name"] == "x.csv"
    assert resp["file"]["size"] == len(CSV)
    [uploaded] = api.uploads
    assert uploaded == UploadedFile(
        file_id=resp["file"]["id"],
        filename="x.csv",
        title="Task log",
        content=CSV.encode(),
        channel="C1",
        initial_comment="here you go",
        thread_ts="1.000001",
        channels=("C1",),
    )
    assert [c.method for c in api.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    get_url = api.calls[0].params
    assert (get_url["filename"], get_url["length"]) == ("x.csv", str(len(CSV)))
    complete = api.calls[1].params
    assert complete["channel_id"] == "C1"
    assert json.loads(complete["files"]) == [{"id": uploaded.file_id, "title": "Task log"}]
    info = client.files_info(file=uploaded.file_id)
    assert info["content"] == CSV


def test_files_upload_v2_binary_and_multiple(api: FakeSlackAPI, client: WebClient) -> None:
    blob = bytes(range(256)) * 3
    client.files_upload_v2(
        channels=["C1", "C2"],
        file_uploads=[
            {"content": blob, "filename": "a.bin"},
            {"content": "second", "filename": "b.txt", "title": "B"},
        ],
    )
    first, second = api.uploads
    assert first.content == blob
    assert first.title == "a.bin"
    assert second.content == b"second"
    assert second.title == "B"
    assert first.channels == second.channels == ("C1", "C2")
    assert first.channel == "C1"


def test_files_upload_v2_unknown_file(api: FakeSlackAPI, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.files_completeUploadExternal(files=[{"id": "FNOPE"}], channel_id="C1")
    assert exc.value.response["error"] == "file_not_found"
    assert api.uploads == []


async def test_files_upload_v2_async(api: FakeSlackAPI) -> None:
    client = api.async_client()
    resp = await client.files_upload_v2(
        channel="C1", content=CSV, filename="x.csv", title="Async log", initial_comment="async"
    )
    assert resp["file"]["id"] == api.uploads[0].file_id
    [uploaded] = api.uploads
    assert uploaded.content == CSV.encode()
    assert (uploaded.channel, uploaded.title, uploaded.initial_comment) == ("C1", "Async log", "async")
    # AsyncWebClient sends `params=` as a query string; the stand-in merges it the same way.
    assert api.calls_to("files.completeUploadExternal")[0].params["channel_id"] == "C1"
    assert api.calls_to("files.completeUploadExternal")[0].token == "xoxb-test"


# ------------------------------------------------------------------ async WebClient basics


async def test_async_client_basics(api: FakeSlackAPI) -> None:
    api.add_user("U1", is_owner=True)
    client = api.async_client(token="xoxb-async")
    assert (await client.auth_test())["user_id"] == "UBOT"
    posted = await client.chat_postMessage(channel="C1", text="hi")
    assert posted["channel"] == "C1"
    assert (await client.users_info(user="U1"))["user"]["is_owner"] is True
    assert (await client.conversations_info(channel="C1"))["channel"]["id"] == "C1"
    assert {c.token for c in api.calls} == {"xoxb-async"}


# ------------------------------------------------------------------ fault injection


def test_fail_next(api: FakeSlackAPI, client: WebClient) -> None:
    api.fail_next("chat.postMessage", times=2)
    api.fail_next("chat.postMessage", error="channel_not_found")
    for expected in ("not_in_channel", "not_in_channel", "channel_not_found"):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C1", text="x")
        assert exc.value.response["error"] == expected
        assert exc.value.response.status_code == 200
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    assert len(api.calls_to("chat.postMessage")) == 4


def test_fail_next_upload_steps(api: FakeSlackAPI, client: WebClient) -> None:
    api.fail_next("files.completeUploadExternal", error="channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client.files_upload_v2(channel="C1", content=CSV, filename="x.csv")
    assert exc.value.response["error"] == "channel_not_found"
    assert api.uploads == []


def test_rate_limit_without_retry_handler(api: FakeSlackAPI, client: WebClient) -> None:
    api.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 429
    assert exc.value.response["error"] == "ratelimited"
    assert exc.value.response.headers["Retry-After"] == "7"


def test_rate_limit_retried_by_slack_sdk(api: FakeSlackAPI) -> None:
    client = api.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    api.rate_limit_next("chat.postMessage", retry_after=0)
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    assert len(api.calls_to("chat.postMessage")) == 2


async def test_rate_limit_retried_by_async_slack_sdk(api: FakeSlackAPI) -> None:
    client = api.async_client(retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    api.rate_limit_next("chat.postMessage", retry_after=0)
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"] is True
    assert len(api.calls_to("chat.postMessage")) == 2


async def test_async_fail_next(api: FakeSlackAPI) -> None:
    api.fail_next("chat.postMessage", error="is_archived")
    with pytest.raises(SlackApiError) as exc:
        await api.async_client().chat_postMessage(channel="C1", text="x")
    assert exc.value.response["error"] == "is_archived"


def test_deny_and_allow_channel(api: FakeSlackAPI, client: WebClient) -> None:
    api.deny_channel("C9")
    api.deny_channel("C8", error="channel_not_found")
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C9", text="x")
        assert exc.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as exc:
        client.files_upload_v2(channel="C8", content=CSV, filename="x.csv")
    assert exc.value.response["error"] == "channel_not_found"
    assert api.uploads == []
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    api.allow_channel("C9")
    assert client.chat_postMessage(channel="C9", text="x")["ok"] is True


def test_delay(api: FakeSlackAPI, client: WebClient) -> None:
    # A delay long enough that an undelayed call on a busy 2-core machine (a few ms, 0.23 s seen once) stays far
    # below it: this checks which calls wait, not how fast the stand-in is.
    api.delay("chat.postMessage", 1.5)
    start = time.monotonic()
    client.chat_postMessage(channel="C1", text="slow")
    assert time.monotonic() - start >= 1.5
    start = time.monotonic()
    client.auth_test()
    assert time.monotonic() - start < 1.0
    api.delay("chat.postMessage", 0)
    start = time.monotonic()
    client.chat_postMessage(channel="C1", text="fast")
    assert time.monotonic() - start < 1.0


def test_reset_clears_recordings_and_faults(api: FakeSlackAPI, client: WebClient) -> None:
    api.add_user("U1")
    client.files_upload_v2(channel="C1", content=CSV, filename="x.csv")
    api.fail_next("auth.test")
    api.deny_channel("C1")
    api.delay("chat.postMessage", 5)
    api.reset()
    assert api.calls == []
    assert api.uploads == []
    assert client.auth_test()["ok"] is True
    assert client.chat_postMessage(channel="C1", text="x")["ok"] is True
    assert client.users_info(user="U1")["ok"] is True  # users survive reset


def test_wait_for(api: FakeSlackAPI, client: WebClient) -> None:
    timer = threading.Timer(0.05, lambda: client.chat_postMessage(channel="C1", text="later"))
    timer.start()
    try:
        [call] = api.wait_for("chat.postMessage", timeout=5)
    finally:
        timer.join()
    assert call.params["text"] == "later"
    with pytest.raises(TimeoutError):
        api.wait_for("chat.postMessage", count=2, timeout=0.05)


def test_concurrent_calls_are_all_recorded(api: FakeSlackAPI) -> None:
    def post(i: int) -> None:
        api.client().chat_postMessage(channel="C1", text=str(i))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(c.params["text"]) for c in api.calls_to("chat.postMessage")) == list(range(20))


# ------------------------------------------------------------------ payload builders & signing


def test_event_body_shape() -> None:
    event = app_mention("hello", thread_ts="1.000001")
    body = event_body(event)
    assert body["type"] == "event_callback"
    assert body["team_id"] == "T111"
    assert body["api_app_id"] == "A111"
    assert body["event_id"].startswith("Ev")
    assert body["event_id"] != event_body(event)["event_id"]
    assert body["authorizations"] == [
        {
            "enterprise_id": None,
            "team_id": "T111",
            "user_id": "UBOT",
            "is_bot": True,
            "is_enterprise_install": False,
        }
    ]
    assert event["text"] == "<@UBOT> hello"
    assert event["thread_ts"] == "1.000001"
    assert event["ts"] == event["event_ts"]
    assert app_mention("<@UOTHER> hi")["text"] == "<@UOTHER> hi"
    grid = event_body(event, enterprise_id="E1", is_enterprise_install=True)
    assert grid["enterprise_id"] == "E1"
    assert grid["authorizations"][0]["is_enterprise_install"] is True


def test_message_builder() -> None:
    msg = message("hi", channel="D1", channel_type="im", thread_ts="1.0", files=[{"id": "F1"}])
    assert (msg["type"], msg["channel"], msg["channel_type"], msg["thread_ts"]) == (
        "message",
        "D1",
        "im",
        "1.0",
    )
    assert msg["files"] == [{"id": "F1"}]
    bot = message("beep", bot_id="B2", subtype="bot_message")
    assert (bot["bot_id"], bot["subtype"]) == ("B2", "bot_message")
    assert "client_msg_id" not in bot


def test_signed_request_signature_and_headers() -> None:
    body = event_body(message("hi"))
    req = signed_request(body, retry_num=1, retry_reason="http_timeout", timestamp=1700000000)
    assert req.headers["content-type"] == ["application/json"]
    assert req.headers["x-slack-retry-num"] == ["1"]
    assert req.headers["x-slack-retry-reason"] == ["http_timeout"]
    assert req.body["event"]["text"] == "hi"
    verifier = SignatureVerifier(SIGNING_SECRET, clock=_FixedClock(1700000000))
    assert verifier.is_valid(
        body=req.raw_body,
        timestamp=req.headers["x-slack-request-timestamp"][0],
        signature=req.headers["x-slack-signature"][0],
    )
    form = signed_request(slash_command_body("add x"))
    assert form.headers["content-type"] == ["application/x-www-form-urlencoded"]
    assert form.body["command"] == "/tasklog"
    assert form.body["text"] == "add x"


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# ------------------------------------------------------------------ real Bolt apps


def test_bolt_app_end_to_end(api: FakeSlackAPI) -> None:
    # Bolt warns when both token= and client= are given; the client's token is used.
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
    assert [c.method for c in api.calls] == ["auth.test"]  # token verification at startup

    @app.event("app_mention")
    def on_mention(say: Any) -> None:
        say("hi")

    resp: BoltResponse = app.dispatch(signed_request(event_body(app_mention("hello", channel="C7"))))
    assert resp.status == 200
    [post] = api.calls_to("chat.postMessage")
    assert post.params["text"] == "hi"
    assert post.params["channel"] == "C7"
    assert post.token == "xoxb-test"


def test_bolt_rejects_bad_signature_and_stale_timestamp(api: FakeSlackAPI) -> None:
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)
    app.event("app_mention")(lambda say: say("hi"))
    body = event_body(app_mention("hello"))
    assert app.dispatch(signed_request(body, signing_secret="wrong")).status == 401
    assert app.dispatch(signed_request(body, timestamp=int(time.time()) - 3600)).status == 401
    assert api.calls_to("chat.postMessage") == []


def test_bolt_slash_command_respond(api: FakeSlackAPI) -> None:
    app = App(signing_secret=SIGNING_SECRET, client=api.client(), process_before_response=True)

    @app.command("/tasklog")
    def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(f"got {command['text']}")

    url = api.response_url("cmd")
    resp = app.dispatch(signed_request(slash_command_body("stats", response_url=url)))
    assert resp.status == 200
    assert api.responses_for("cmd") == [{"text": "got stats"}]


async def test_async_bolt_app_end_to_end(api: FakeSlackAPI) -> None:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=api.async_client(), process_before_response=True)

    @app.event("app_mention")
    async def on_mention(say: Any) -> None:
        await say("hi")

    resp = await app.async_dispatch(async_signed_request(event_body(app_mention("hello"))))
    assert resp.status == 200
    assert "auth.test" in [c.method for c in api.calls]  # AsyncApp verifies the token lazily
    [post] = api.calls_to("chat.postMessage")
    assert (post.params["text"], post.params["channel"]) == ("hi", "C111")


async def test_every_request_encoding_is_parsed(api: FakeSlackAPI, client: WebClient) -> None:
    # sync: `data=` goes out as multipart/form-data, `files=` as multipart file parts
    client.api_call("x.multipart", data={"a": "1", "b": "héllo"})
    client.api_call("x.files", data={"channels": "C1"}, files={"file": io.BytesIO(b"\x00\x01bin")})
    # async: `data=` is form-urlencoded, GET `params=` is a query string, token in the body
    async_client = api.async_client()
    await async_client.api_call("x.form", data={"a": "1"})
    await async_client.api_call("x.get", http_verb="GET", params={"q": "z"})
    await api.async_client(token="").api_call("x.bodytoken", data={"token": "xoxb-body"})
    assert api.calls == [
        RecordedCall("x.multipart", {"a": "1", "b": "héllo"}, "xoxb-test"),
        RecordedCall("x.files", {"channels": "C1", "file": b"\x00\x01bin"}, "xoxb-test"),
        RecordedCall("x.form", {"a": "1"}, "xoxb-test"),
        RecordedCall("x.get", {"q": "z"}, "xoxb-test"),
        RecordedCall("x.bodytoken", {}, "xoxb-body"),
    ]
