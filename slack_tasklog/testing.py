"""Test helpers for Slack Bolt apps: a fake Slack Web API and signed request builders.

This module ships with ``slack_tasklog`` so that you can test your own bots the same
way we test ours, without network access or a real workspace:

* :class:`FakeSlackAPI` is a small Slack Web API stand-in that speaks real HTTP on
  ``127.0.0.1``. Point a real :class:`slack_sdk.WebClient` (or ``AsyncWebClient``) at
  :attr:`FakeSlackAPI.base_url` and every call is recorded, answered with a realistic
  response, or failed on purpose (:meth:`~FakeSlackAPI.fail_next`,
  :meth:`~FakeSlackAPI.rate_limit_next`, :meth:`~FakeSlackAPI.deny_channel`).
* :func:`event_body`, :func:`app_mention`, :func:`message`, :func:`reaction` and
  :func:`slash_command_body` build payloads shaped like the ones Slack sends, and
  :func:`signed_request` / :func:`async_signed_request` wrap them in a correctly
  signed :class:`slack_bolt.BoltRequest` for ``app.dispatch`` / ``app.async_dispatch``.

Example::

    from slack_bolt import App
    from slack_tasklog.testing import (
        SIGNING_SECRET, FakeSlackAPI, app_mention, event_body, signed_request,
    )

    with FakeSlackAPI() as api:
        app = App(signing_secret=SIGNING_SECRET, client=api.client(),
                  process_before_response=True)

        @app.event("app_mention")
        def on_mention(say):
            say("hi")

        response = app.dispatch(signed_request(event_body(app_mention("hello"))))
        assert response.status == 200
        assert api.calls_to("chat.postMessage")[0].params["text"] == "hi"

The asynchronous helpers (:meth:`FakeSlackAPI.async_client`,
:func:`async_signed_request`) import ``aiohttp``-based modules lazily, so code that
only uses the synchronous API never imports ``aiohttp``.
"""

from __future__ import annotations

import collections
import email.parser
import email.policy
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

from slack_bolt import BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = [
    "SIGNING_SECRET",
    "FakeSlackAPI",
    "RecordedCall",
    "UploadedFile",
    "app_mention",
    "async_signed_request",
    "event_body",
    "message",
    "reaction",
    "signed_headers",
    "signed_request",
    "slash_command_body",
    "unique_ts",
]

SIGNING_SECRET = "test-signing-secret"
"""Default signing secret used by :func:`signed_request`; pass it to ``App(signing_secret=...)``."""

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"

# --------------------------------------------------------------------------------------
# ids and timestamps
# --------------------------------------------------------------------------------------

_ts_lock = threading.Lock()
_last_ts_micros = 0


def unique_ts() -> str:
    """Return a Slack-style message timestamp (``"1700000000.000100"``) near now.

    Values are strictly increasing across all threads of the process, so they are
    safe to use as unique message ids, exactly like Slack's ``ts``.
    """
    global _last_ts_micros  # noqa: PLW0603 - process-wide monotonic counter
    with _ts_lock:
        now = int(time.time() * 1_000_000)
        _last_ts_micros = max(now, _last_ts_micros + 1)
        seconds, micros = divmod(_last_ts_micros, 1_000_000)
    return "%d.%06d" % (seconds, micros)  # noqa: UP031 - Slack's exact format


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + uuid.uuid4().hex[:length].upper()


def _stable_id(prefix: str, *parts: str, length: int = 10) -> str:
    digest = hashlib.sha1("|".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()
    return prefix + digest[:length].upper()


# --------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call received by :class:`FakeSlackAPI`.

    Attributes:
        method: The API method name, e.g. ``"chat.postMessage"``.
        params: Query string and body parameters merged (``token`` removed). Values
            keep the types they were sent with: JSON bodies keep lists, dicts and
            booleans; form-encoded bodies give strings (``files.completeUploadExternal``'s
            ``files`` is therefore a JSON *string*, as slack_sdk sends it).
        token: The token from the ``Authorization: Bearer`` header or the ``token``
            parameter, or ``None`` when the call was unauthenticated.
    """

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass(frozen=True)
class UploadedFile:
    """A file whose upload was completed through the ``files_upload_v2`` flow.

    Attributes:
        file_id: The ``F…`` id issued by ``files.getUploadURLExternal``.
        filename: The file name given to ``files.getUploadURLExternal``.
        title: The title given to ``files.completeUploadExternal`` (defaults to ``filename``).
        content: The exact bytes POSTed to the upload URL.
        channel: ``channel_id`` of the completion call, or the first of ``channels``.
        initial_comment: The message text posted with the file, if any.
        thread_ts: The thread the file was shared into, if any.
        channels: Every channel the file was shared to (``channel_id`` and ``channels``).
    """

    file_id: str
    filename: str
    title: str
    content: bytes
    channel: str | None
    initial_comment: str | None
    thread_ts: str | None
    channels: tuple[str, ...] = ()


@dataclass
class _PendingUpload:
    file_id: str
    filename: str
    length: int | None
    content: bytes | None = None


@dataclass(frozen=True)
class _Fault:
    error: str
    status: int = 200
    retry_after: int | None = None


@dataclass
class _User:
    user_id: str
    team_id: str
    name: str
    real_name: str
    is_admin: bool
    is_owner: bool
    is_primary_owner: bool
    is_bot: bool
    deleted: bool
    enterprise_id: str | None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: FakeSlackAPI, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.api = api


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeSlackAPI/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers end with an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        api = cast(_Server, self.server).api
        try:
            body = self._read_body()
            status, headers, payload = api._handle_http(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
        except Exception as exc:
            api._record_server_error(exc)
            status, headers = 500, {"Content-Type": "application/json; charset=utf-8"}
            payload = json.dumps({"ok": False, "error": "fatal_error"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True


def _parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """Return ``(name, filename, payload)`` for every part of a multipart body."""
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts: list[tuple[str, str | None, bytes]] = []
    if not msg.is_multipart():
        return parts
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts.append(
            (
                name if isinstance(name, str) else "",
                part.get_filename(),
                payload if isinstance(payload, bytes) else b"",
            )
        )
    return parts


def _parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    mime = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if mime == _JSON or (not mime and body.lstrip().startswith(b"{")):
        parsed = json.loads(body.decode("utf-8"))
        return dict(parsed) if isinstance(parsed, dict) else {"_json": parsed}
    if mime == "multipart/form-data":
        params: dict[str, Any] = {}
        for name, filename, payload in _parse_multipart(content_type, body):
            params[name] = payload if filename is not None else payload.decode("utf-8")
        return params
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def _channel_ids(params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for key in ("channel", "channel_id"):
        value = params.get(key)
        if isinstance(value, str) and value:
            ids.append(value)
    channels = params.get("channels")
    if isinstance(channels, str):
        ids.extend(c.strip() for c in channels.split(",") if c.strip())
    elif isinstance(channels, list):
        ids.extend(str(c) for c in channels)
    return ids


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _as_json_value(value: Any) -> Any:
    """Decode JSON-in-a-string form values (``blocks``, ``view``, ``files``)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


_Response = tuple[int, dict[str, str], bytes]


def _json_response(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> _Response:
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    return status, all_headers, json.dumps(data).encode("utf-8")


def _text_response(text: str, status: int = 200) -> _Response:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode("utf-8")


# --------------------------------------------------------------------------------------
# FakeSlackAPI
# --------------------------------------------------------------------------------------


class FakeSlackAPI:
    """A Slack Web API stand-in speaking real HTTP on ``127.0.0.1`` (stdlib only).

    Start it with ``with FakeSlackAPI() as api:`` or :meth:`start` / :meth:`stop`, then
    hand :meth:`client` (or ``WebClient(token=..., base_url=api.base_url)``) to the code
    under test. Every API call is recorded in :attr:`calls`; the methods a task-logging
    bot uses get realistic responses (``auth.test``, ``chat.postMessage``,
    ``chat.postEphemeral``, ``chat.update``, ``chat.delete``, ``chat.getPermalink``,
    ``conversations.open``, ``conversations.info``, ``conversations.replies`` (for the
    messages the bot posted and those given to :meth:`add_message`), ``users.info``, ``views.publish``,
    ``files.info`` and the ``files_upload_v2`` flow); any other method answers
    ``{"ok": true}`` so unexpected calls are visible in :attr:`calls` rather than fatal.

    Like Slack, a call without a token fails with ``not_authed``; when ``valid_tokens``
    is given, any other token fails with ``invalid_auth``. Faults are injected with
    :meth:`fail_next`, :meth:`rate_limit_next`, :meth:`delay` and :meth:`deny_channel`.

    Socket Mode: set :attr:`socket_mode_url` to the ``ws://`` URL of a websocket server of
    your own playing Slack's side, and ``apps.connections.open`` hands it to the client
    (``SocketModeHandler(app, "xapp-…")`` with ``app``'s client pointed here).

    All public methods are thread-safe.

    Args:
        team_id: Workspace id reported by ``auth.test`` and used for new users.
        bot_user_id: The bot's user id (``auth.test`` ``user_id``).
        bot_id: The bot's ``B…`` id (``auth.test`` ``bot_id``).
        enterprise_id: Enterprise Grid org id, or ``None`` for a standalone workspace.
        team_name: Workspace name reported by ``auth.test``.
        team_domain: Workspace domain, used in ``url`` and permalinks.
        bot_user_name: The bot user's name (``auth.test`` ``user``).
        app_id: The app id put on messages the bot posts.
        valid_tokens: If given, only these tokens are accepted.
        host: Interface to bind; keep the default unless you know why.
    """

    def __init__(
        self,
        *,
        team_id: str = "T111",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        enterprise_id: str | None = None,
        team_name: str = "Test Team",
        team_domain: str = "test-team",
        bot_user_name: str = "tasklog-bot",
        app_id: str = "A111",
        valid_tokens: Collection[str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.enterprise_id = enterprise_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_name = bot_user_name
        self.app_id = app_id
        self.valid_tokens = frozenset(valid_tokens) if valid_tokens is not None else None
        self._host = host
        #: The URL ``apps.connections.open`` answers (Socket Mode), e.g. ``ws://127.0.0.1:8765/link/``; while it is
        #: ``None`` the call fails with ``socket_mode_url_not_set``.
        self.socket_mode_url: str | None = None

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._calls: list[RecordedCall] = []
        self._uploads: list[UploadedFile] = []
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._server_errors: list[BaseException] = []
        self._pending_uploads: dict[str, _PendingUpload] = {}
        self._completed_files: dict[str, UploadedFile] = {}
        self._faults: dict[str, collections.deque[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._denied_channels: dict[str, str] = {}

        self._users: dict[str, _User] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dm_users: dict[str, str] = {}
        # (channel, ts) -> the thread's ts (None: a top-level message with no thread)
        self._messages: dict[tuple[str, str], str | None] = {}
        self._response_urls: dict[str, str] = {}
        self.add_user(bot_user_id, team_id=team_id, name=bot_user_name, is_bot=True)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlackAPI:
        """Bind a free port on the host and serve in a daemon thread. Idempotent."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server(self, self._host)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"FakeSlackAPI:{server.server_address[1]}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlackAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeSlackAPI {where} calls={len(self._calls)}>"

    @property
    def url(self) -> str:
        """Root URL of the server, e.g. ``http://127.0.0.1:54321/``."""
        with self._lock:
            if self._server is None:
                raise RuntimeError("FakeSlackAPI is not running; call start() or use it as a context manager")
            host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def base_url(self) -> str:
        """Web API base URL for ``WebClient(base_url=...)``, e.g. ``http://127.0.0.1:54321/api/``."""
        return self.url + "api/"

    def client(self, token: str = "xoxb-test", **kwargs: Any) -> WebClient:
        """Return a :class:`slack_sdk.WebClient` talking to this server.

        Extra keyword arguments (``retry_handlers``, ``timeout``…) go to ``WebClient``.
        """
        return WebClient(token=token, base_url=self.base_url, **kwargs)

    def async_client(self, token: str = "xoxb-test", **kwargs: Any) -> AsyncWebClient:
        """Return a :class:`slack_sdk.web.async_client.AsyncWebClient` talking to this server.

        ``aiohttp`` is imported only when this method is called.
        """
        from slack_sdk.web.async_client import AsyncWebClient

        return AsyncWebClient(token=token, base_url=self.base_url, **kwargs)

    # ---------------------------------------------------------------- fixtures / state

    def add_user(
        self,
        user_id: str,
        *,
        team_id: str = "T111",
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        name: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        enterprise_id: str | None = None,
        **extra: Any,
    ) -> None:
        """Register (or replace) a user returned by ``users.info``.

        Unknown users make ``users.info`` fail with ``user_not_found``, like Slack.
        ``extra`` keys are merged into the returned user object.
        """
        user_name = name or user_id.lower()
        with self._lock:
            self._users[user_id] = _User(
                user_id=user_id,
                team_id=team_id,
                name=user_name,
                real_name=real_name or user_name,
                is_admin=is_admin or is_owner or is_primary_owner,
                is_owner=is_owner or is_primary_owner,
                is_primary_owner=is_primary_owner,
                is_bot=is_bot,
                deleted=deleted,
                enterprise_id=enterprise_id if enterprise_id is not None else self.enterprise_id,
                extra=dict(extra),
            )

    def add_channel(self, channel_id: str, *, name: str | None = None, is_private: bool = False) -> None:
        """Give a channel a name (and privacy) for ``conversations.info``.

        Unregistered channel ids still answer ``conversations.info`` with a synthesized
        channel named after the id; use :meth:`deny_channel` to make a channel fail.
        """
        with self._lock:
            self._channels[channel_id] = {"name": name or channel_id.lower(), "is_private": is_private}

    def add_message(self, channel_id: str, ts: str, *, thread_ts: str | None = None) -> None:
        """Make a message known to ``conversations.replies`` (those the bot posts are known already)."""
        with self._lock:
            self._messages[(channel_id, ts)] = thread_ts

    def dm_channel_id(self, user_id: str) -> str:
        """The ``D…`` id ``conversations.open(users=user_id)`` returns (stable per user)."""
        channel_id = _stable_id("D", self.team_id, user_id)
        with self._lock:
            self._dm_users[channel_id] = user_id
        return channel_id

    def response_url(self, name: str | None = None) -> str:
        """Return a fresh ``response_url`` on this server (for slash commands and actions).

        JSON POSTed to it (what Bolt's ``respond()`` sends) lands in :attr:`responses`;
        use :meth:`responses_for` to get only those sent to URLs made with ``name``.
        """
        url_id = uuid.uuid4().hex
        with self._lock:
            self._response_urls[url_id] = name or url_id
        return f"{self.url}response/{url_id}"

    # ---------------------------------------------------------------- recordings

    @property
    def calls(self) -> list[RecordedCall]:
        """Every API call received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """The recorded calls to one API method, e.g. ``api.calls_to("chat.postMessage")``."""
        with self._lock:
            return [c for c in self._calls if c.method == method]

    @property
    def uploads(self) -> list[UploadedFile]:
        """Files completed with ``files.completeUploadExternal``, in order (a copy)."""
        with self._lock:
            return list(self._uploads)

    @property
    def responses(self) -> list[dict[str, Any]]:
        """JSON payloads POSTed to :meth:`response_url` URLs, in order (a copy)."""
        with self._lock:
            return [payload for _, payload in self._responses]

    def responses_for(self, name: str) -> list[dict[str, Any]]:
        """Payloads POSTed to the response URLs created with ``response_url(name)``."""
        with self._lock:
            return [payload for n, payload in self._responses if n == name]

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """The latest view published with ``views.publish``, keyed by ``user_id`` (a copy)."""
        with self._lock:
            return dict(self._views)

    @property
    def server_errors(self) -> list[BaseException]:
        """Exceptions raised inside the stand-in itself (answered as HTTP 500 ``fatal_error``)."""
        with self._lock:
            return list(self._server_errors)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until at least ``count`` calls to ``method`` were received, then return them.

        Handy when listeners run in Bolt's background threads
        (``process_before_response=False``) or as lazy listeners.

        Raises:
            TimeoutError: if fewer than ``count`` calls arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} call(s) to {method}, got {len(found)}")
                self._changed.wait(remaining)

    def reset(self) -> None:
        """Forget recorded calls, uploads, responses and views, and clear every injected
        fault (:meth:`fail_next`, :meth:`rate_limit_next`, :meth:`delay`, :meth:`deny_channel`).

        Registered users, channels and response URLs are kept.
        """
        with self._lock:
            self._calls.clear()
            self._uploads.clear()
            self._responses.clear()
            self._views.clear()
            self._server_errors.clear()
            self._pending_uploads.clear()
            self._completed_files.clear()
            self._faults.clear()
            self._delays.clear()
            self._denied_channels.clear()

    # ---------------------------------------------------------------- fault injection

    def fail_next(self, method: str, error: str = "not_in_channel", *, times: int = 1) -> None:
        """Make the next ``times`` calls to ``method`` answer ``{"ok": false, "error": error}``.

        The HTTP status is 200, as with Slack, so slack_sdk raises ``SlackApiError``.
        Faults queued for one method (with this and :meth:`rate_limit_next`) are
        consumed in the order they were queued.
        """
        self._queue(method, _Fault(error=error), times)

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """Make the next ``times`` calls to ``method`` answer HTTP 429 ``ratelimited``.

        The response carries ``Retry-After: retry_after`` like Slack's, so
        slack_sdk's ``RateLimitErrorRetryHandler`` waits and retries (each attempt is
        recorded in :attr:`calls`). Without that handler slack_sdk raises
        ``SlackApiError`` with ``error == "ratelimited"``.
        """
        self._queue(method, _Fault(error="ratelimited", status=429, retry_after=retry_after), times)

    def delay(self, method: str, seconds: float) -> None:
        """Answer every call to ``method`` only after ``seconds`` (``0`` removes the delay).

        The delay applies until :meth:`reset`; other requests are served meanwhile.
        """
        with self._lock:
            if seconds > 0:
                self._delays[method] = seconds
            else:
                self._delays.pop(method, None)

    def deny_channel(self, channel_id: str, error: str = "not_in_channel") -> None:
        """Fail every call naming ``channel_id`` (``channel``, ``channel_id`` or ``channels``
        parameter) with ``error`` until :meth:`allow_channel` — e.g. ``"channel_not_found"``.
        """
        with self._lock:
            self._denied_channels[channel_id] = error

    def allow_channel(self, channel_id: str) -> None:
        """Undo :meth:`deny_channel` for ``channel_id``."""
        with self._lock:
            self._denied_channels.pop(channel_id, None)

    def _queue(self, method: str, fault: _Fault, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(method, collections.deque()).extend([fault] * times)

    def _record_server_error(self, exc: BaseException) -> None:
        with self._lock:
            self._server_errors.append(exc)

    # ---------------------------------------------------------------- HTTP entry point

    def _handle_http(self, verb: str, path: str, headers: dict[str, str], body: bytes) -> _Response:
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 2 and segments[0] == "api":
            return self._handle_api(segments[1], parts.query, headers, body)
        if len(segments) == 2 and segments[0] == "upload" and verb == "POST":
            return self._handle_upload(segments[1], headers, body)
        if len(segments) == 2 and segments[0] == "response" and verb == "POST":
            return self._handle_response_url(segments[1], headers, body)
        return _text_response("not_found", 404)

    def _handle_api(self, method: str, query: str, headers: dict[str, str], body: bytes) -> _Response:
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        params.update(_parse_params(headers.get("content-type", ""), body))
        token: str | None = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip() or None
        body_token = params.pop("token", None)
        if token is None and isinstance(body_token, str) and body_token:
            token = body_token

        with self._changed:
            self._calls.append(RecordedCall(method=method, params=params, token=token))
            self._changed.notify_all()
            delay = self._delays.get(method, 0.0)
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else None
        if delay:
            time.sleep(delay)

        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return _json_response({"ok": False, "error": fault.error}, fault.status, extra)
        if token is None and not method.startswith(("oauth.", "openid.")):
            return _json_response({"ok": False, "error": "not_authed"})
        if self.valid_tokens is not None and token is not None and token not in self.valid_tokens:
            return _json_response({"ok": False, "error": "invalid_auth"})
        with self._lock:
            for channel_id in _channel_ids(params):
                if channel_id in self._denied_channels:
                    return _json_response({"ok": False, "error": self._denied_channels[channel_id]})

        handler = self._METHODS.get(method)
        result = handler(self, params) if handler is not None else {}
        result = {"ok": True, **result} if "ok" not in result else result
        return _json_response(result)

    def _handle_upload(self, file_id: str, headers: dict[str, str], body: bytes) -> _Response:
        content = body
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            # curl -F / browser style; slack_sdk itself POSTs the raw bytes.
            files = [payload for _, filename, payload in _parse_multipart(content_type, body) if filename]
            content = files[0] if files else b""
        with self._lock:
            pending = self._pending_uploads.get(file_id)
            if pending is None:
                return _text_response("file_not_found", 404)
            pending.content = content
        return _text_response(f"OK - {len(content)}")

    def _handle_response_url(self, url_id: str, headers: dict[str, str], body: bytes) -> _Response:
        with self._lock:
            name = self._response_urls.get(url_id)
        if name is None:
            return _text_response("expired_url", 404)
        payload = _parse_params(headers.get("content-type", _JSON), body)
        with self._changed:
            self._responses.append((name, payload))
            self._changed.notify_all()
        return _json_response({"ok": True})

    # ---------------------------------------------------------------- API methods

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_user_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }
        if self.enterprise_id is not None:
            result["enterprise_id"] = self.enterprise_id
        return result

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id lands in the DM with that user, like Slack.
        if channel[:1] in ("U", "W"):
            return self.dm_channel_id(channel)
        return channel

    def _bot_message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "type": "message",
            "text": params.get("text", ""),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_user_name,
                "deleted": False,
                "team_id": self.team_id,
            },
        }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                msg[key] = _as_json_value(params[key])
        if params.get("thread_ts"):
            msg["thread_ts"] = params["thread_ts"]
        return msg

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        ts = unique_ts()
        with self._lock:
            self._messages[(self._resolve_channel(str(channel)), ts)] = params.get("thread_ts") or None
        return {
            "channel": self._resolve_channel(str(channel)),
            "ts": ts,
            "message": self._bot_message(params, ts),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"message_ts": unique_ts()}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel") or not params.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        ts = str(params["ts"])
        message = self._bot_message(params, ts)
        return {"channel": params["channel"], "ts": ts, "text": message["text"], "message": message}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel") or not params.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        return {"channel": params["channel"], "ts": params["ts"]}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("message_ts")
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found"}
        permalink = f"https://{self.team_domain}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        return {"channel": channel, "permalink": permalink}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users_param = params.get("users")
        if isinstance(users_param, list):
            users = [str(u) for u in users_param]
        else:
            users = [u.strip() for u in str(users_param or "").split(",") if u.strip()]
        if not users:
            if params.get("channel"):
                return {"no_op": True, "already_open": True, "channel": {"id": params["channel"]}}
            return {"ok": False, "error": "users_list_not_supplied"}
        single = len(users) == 1
        channel_id = self.dm_channel_id(users[0]) if single else _stable_id("G", self.team_id, *sorted(users))
        with self._lock:
            already_open = any(
                c.method == "conversations.open" and c.params.get("users") == params.get("users")
                for c in self._calls[:-1]
            )
        channel: dict[str, Any] = {"id": channel_id}
        if _as_bool(params.get("return_im")) and single:
            channel.update(self._channel_object(channel_id))
        return {"no_op": already_open, "already_open": already_open, "channel": channel}

    def _channel_object(self, channel_id: str) -> dict[str, Any]:
        now = int(time.time())
        with self._lock:
            dm_user = self._dm_users.get(channel_id)
            registered = self._channels.get(channel_id, {})
        if dm_user is not None or channel_id.startswith("D"):
            return {
                "id": channel_id,
                "created": now,
                "is_im": True,
                "is_org_shared": False,
                "user": dm_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        is_private = bool(registered.get("is_private", channel_id.startswith("G")))
        name = registered.get("name", channel_id.lower())
        return {
            "id": channel_id,
            "name": name,
            "name_normalized": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": True,
            "created": now,
            "creator": self.bot_user_id,
            "context_team_id": self.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        return {"channel": self._channel_object(str(channel))}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        # The thread's parent first, as Slack answers for the ts of a parent or of a reply.
        key = (str(params.get("channel", "")), str(params.get("ts", "")))
        with self._lock:
            if key not in self._messages:
                return {"ok": False, "error": "thread_not_found"}
            thread_ts = self._messages[key]
        parent: dict[str, Any] = {"type": "message", "ts": thread_ts or key[1], "text": ""}
        if thread_ts is not None:
            parent["thread_ts"] = thread_ts
        return {"messages": [parent], "has_more": False}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        obj: dict[str, Any] = {
            "id": user.user_id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": {
                "real_name": user.real_name,
                "real_name_normalized": user.real_name,
                "display_name": user.name,
                "display_name_normalized": user.name,
                "team": user.team_id,
            },
            "is_admin": user.is_admin,
            "is_owner": user.is_owner,
            "is_primary_owner": user.is_primary_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        if user.is_bot and user.user_id == self.bot_user_id:
            obj["profile"]["bot_id"] = self.bot_id
            obj["profile"]["api_app_id"] = self.app_id
        if user.enterprise_id is not None:
            obj["enterprise_user"] = {
                "id": user.user_id,
                "enterprise_id": user.enterprise_id,
                "enterprise_name": "Test Org",
                "is_admin": user.is_admin,
                "is_owner": user.is_owner,
                "teams": [user.team_id],
            }
        obj.update(user.extra)
        return {"user": obj}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        view = _as_json_value(params.get("view"))
        if not user_id or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            self._views[str(user_id)] = view
        view_id = _random_id("V")
        published = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "home"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "hash": uuid.uuid4().hex[:16],
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "root_view_id": view_id,
            "previous_view_id": None,
        }
        return {"view": published}

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        if not filename:
            return {"ok": False, "error": "invalid_arguments"}
        length_raw = params.get("length")
        try:
            length = int(length_raw) if length_raw is not None else None
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = _random_id("F")
        with self._lock:
            self._pending_uploads[file_id] = _PendingUpload(file_id, str(filename), length)
        return {"upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        files = _as_json_value(params.get("files"))
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel_id = params.get("channel_id") or None
        channels_param = params.get("channels")
        channels: list[str] = [str(channel_id)] if channel_id else []
        if isinstance(channels_param, str):
            channels += [c.strip() for c in channels_param.split(",") if c.strip()]
        elif isinstance(channels_param, list):
            channels += [str(c) for c in channels_param]
        thread_ts = params.get("thread_ts") or None
        initial_comment = params.get("initial_comment") or None
        now = int(time.time())
        completed: list[UploadedFile] = []
        file_objects: list[dict[str, Any]] = []
        with self._lock:
            for entry in files:
                file_id = entry.get("id") if isinstance(entry, dict) else None
                pending = self._pending_uploads.get(str(file_id))
                if pending is None or pending.content is None:
                    return {"ok": False, "error": "file_not_found"}
            for entry in files:
                pending = self._pending_uploads.pop(str(entry["id"]))
                content = pending.content or b""
                uploaded = UploadedFile(
                    file_id=pending.file_id,
                    filename=pending.filename,
                    title=str(entry.get("title") or pending.filename),
                    content=content,
                    channel=channels[0] if channels else None,
                    initial_comment=str(initial_comment) if initial_comment is not None else None,
                    thread_ts=str(thread_ts) if thread_ts is not None else None,
                    channels=tuple(channels),
                )
                completed.append(uploaded)
                self._completed_files[uploaded.file_id] = uploaded
                file_objects.append(self._file_object(uploaded, now))
            self._uploads.extend(completed)
        return {"files": file_objects}

    def _file_object(self, uploaded: UploadedFile, created: int) -> dict[str, Any]:
        ext = uploaded.filename.rsplit(".", 1)[-1].lower() if "." in uploaded.filename else "text"
        file_url = f"https://files.slack.com/files-pri/{self.team_id}-{uploaded.file_id}/{uploaded.filename}"
        return {
            "id": uploaded.file_id,
            "created": created,
            "timestamp": created,
            "name": uploaded.filename,
            "title": uploaded.title,
            "mimetype": "text/csv" if ext == "csv" else "application/octet-stream",
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": len(uploaded.content),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(uploaded.channels),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": file_url,
            "url_private_download": file_url.replace("/files-pri/", "/files-pri/download/", 1),
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{uploaded.file_id}/"
            + uploaded.filename,
            "comments_count": 0,
            "is_starred": False,
            "channels": [c for c in uploaded.channels if c.startswith("C")],
            "groups": [c for c in uploaded.channels if c.startswith("G")],
            "ims": [c for c in uploaded.channels if c.startswith("D")],
            "has_rich_preview": False,
            "file_access": "visible",
        }

    def _files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            uploaded = self._completed_files.get(str(params.get("file", "")))
        if uploaded is None:
            return {"ok": False, "error": "file_not_found"}
        return {
            "file": self._file_object(uploaded, int(time.time())),
            "content": uploaded.content.decode("utf-8", "replace"),
            "comments": [],
        }

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            url = self.socket_mode_url
        if url is None:
            return {"ok": False, "error": "socket_mode_url_not_set"}
        return {"url": url}

    _METHODS: ClassVar[dict[str, Callable[[FakeSlackAPI, dict[str, Any]], dict[str, Any]]]] = {
        "apps.connections.open": _apps_connections_open,
        "auth.test": _auth_test,
        "chat.postMessage": _chat_post_message,
        "chat.postEphemeral": _chat_post_ephemeral,
        "chat.update": _chat_update,
        "chat.delete": _chat_delete,
        "chat.getPermalink": _chat_get_permalink,
        "conversations.open": _conversations_open,
        "conversations.info": _conversations_info,
        "conversations.replies": _conversations_replies,
        "users.info": _users_info,
        "views.publish": _views_publish,
        "files.getUploadURLExternal": _files_get_upload_url_external,
        "files.completeUploadExternal": _files_complete_upload_external,
        "files.info": _files_info,
    }


# --------------------------------------------------------------------------------------
# payload builders
# --------------------------------------------------------------------------------------


def event_body(
    event: dict[str, Any],
    *,
    team_id: str = "T111",
    enterprise_id: str | None = None,
    api_app_id: str = "A111",
    event_id: str | None = None,
    event_time: int | None = None,
    authorizations_user_id: str = "UBOT",
    is_enterprise_install: bool = False,
) -> dict[str, Any]:
    """Wrap ``event`` in an Events API ``event_callback`` envelope like Slack sends.

    ``event_id`` defaults to a fresh unique ``Ev…`` id and ``event_time`` to now.
    The ``authorizations`` list names the bot user ``authorizations_user_id``.
    """
    body: dict[str, Any] = {
        "token": "verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or _random_id("Ev"),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": None if is_enterprise_install else team_id,
                "user_id": authorizations_user_id,
                "is_bot": True,
                "is_enterprise_install": is_enterprise_install,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + uuid.uuid4().hex,
    }
    if enterprise_id is not None:
        body["enterprise_id"] = enterprise_id
    return body


def app_mention(
    text: str,
    *,
    user: str = "U123",
    channel: str = "C111",
    ts: str | None = None,
    thread_ts: str | None = None,
    bot_user_id: str = "UBOT",
    team: str = "T111",
) -> dict[str, Any]:
    """Build an ``app_mention`` event (wrap it with :func:`event_body`).

    ``text`` is prefixed with ``<@bot_user_id> `` unless it already starts with a
    mention; ``ts`` defaults to :func:`unique_ts`.
    """
    if not text.startswith("<@"):
        text = f"<@{bot_user_id}> {text}"
    ts = ts or unique_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "client_msg_id": str(uuid.uuid4()),
        "user": user,
        "text": text,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    *,
    user: str = "U123",
    channel: str = "C111",
    ts: str | None = None,
    thread_ts: str | None = None,
    subtype: str | None = None,
    bot_id: str | None = None,
    channel_type: str = "channel",
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``message`` event (wrap it with :func:`event_body`).

    Use ``channel_type="im"`` (and a ``D…`` channel) for direct messages, ``bot_id`` /
    ``subtype="bot_message"`` for messages from bots. ``extra`` keys are merged in.
    """
    ts = ts or unique_ts()
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if bot_id is None and subtype is None:
        event["client_msg_id"] = str(uuid.uuid4())
    if subtype is not None:
        event["subtype"] = subtype
    if bot_id is not None:
        event["bot_id"] = bot_id
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def reaction(
    name: str,
    *,
    item_ts: str,
    user: str = "U123",
    channel: str = "C111",
    removed: bool = False,
    event_ts: str | None = None,
    item_user: str | None = None,
) -> dict[str, Any]:
    """Build a ``reaction_added`` (or, ``removed=True``, ``reaction_removed``) event on the message ``item_ts``
    (wrap it with :func:`event_body`); ``event_ts`` defaults to :func:`unique_ts`."""
    event: dict[str, Any] = {
        "type": "reaction_removed" if removed else "reaction_added",
        "user": user,
        "reaction": name,
        "item": {"type": "message", "channel": channel, "ts": item_ts},
        "event_ts": event_ts or unique_ts(),
    }
    if item_user is not None:
        event["item_user"] = item_user
    return event


def slash_command_body(
    text: str,
    *,
    command: str = "/tasklog",
    user_id: str = "U123",
    channel_id: str = "C111",
    team_id: str = "T111",
    enterprise_id: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> str:
    """Build a slash command request body, form-urlencoded like Slack sends it.

    Pass ``response_url=api.response_url()`` to capture ``respond()`` calls; the default
    is a placeholder ``https://hooks.slack.com/commands/…`` URL. ``trigger_id``
    defaults to a fresh unique value.
    """
    fields: dict[str, str] = {
        "token": "verification-token",
        "team_id": team_id,
        "team_domain": "test-team",
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A111",
        "is_enterprise_install": "false",
        "response_url": response_url
        or f"https://hooks.slack.com/commands/{team_id}/{int(time.time())}/{uuid.uuid4().hex[:24]}",
        "trigger_id": trigger_id or f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
    }
    if enterprise_id is not None:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = "Test Org"
    return urlencode(fields)


# --------------------------------------------------------------------------------------
# signing
# --------------------------------------------------------------------------------------


def _encode(body: dict[str, Any] | str) -> tuple[str, str]:
    if isinstance(body, dict):
        return json.dumps(body), _JSON
    return body, _FORM


def signed_headers(
    raw_body: str,
    *,
    signing_secret: str = SIGNING_SECRET,
    content_type: str = _JSON,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | str | None = None,
) -> dict[str, str]:
    """Return the headers Slack would send with ``raw_body``, signed with ``signing_secret``.

    Useful to POST to a running HTTP adapter; for ``app.dispatch`` use :func:`signed_request`.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=raw_body)
    if signature is None:  # only when timestamp/body are None, which cannot happen here
        raise ValueError("could not sign the request body")
    headers = {
        "content-type": content_type,
        "x-slack-signature": signature,
        "x-slack-request-timestamp": ts,
    }
    if retry_num is not None:
        headers["x-slack-retry-num"] = str(retry_num)
    if retry_reason is not None:
        headers["x-slack-retry-reason"] = retry_reason
    return headers


def signed_request(
    body: dict[str, Any] | str,
    *,
    signing_secret: str = SIGNING_SECRET,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | str | None = None,
) -> BoltRequest:
    """Build a correctly signed :class:`slack_bolt.BoltRequest` for ``app.dispatch``.

    ``dict`` bodies (events, e.g. from :func:`event_body`) are sent as JSON; ``str``
    bodies (e.g. from :func:`slash_command_body`) as ``application/x-www-form-urlencoded``.
    ``retry_num`` / ``retry_reason`` add Slack's ``x-slack-retry-*`` headers;
    ``timestamp`` (default: now) lets you test stale-request rejection.
    """
    raw_body, content_type = _encode(body)
    headers = signed_headers(
        raw_body,
        signing_secret=signing_secret,
        content_type=content_type,
        retry_num=retry_num,
        retry_reason=retry_reason,
        timestamp=timestamp,
    )
    return BoltRequest(body=raw_body, headers=dict(headers))


def async_signed_request(
    body: dict[str, Any] | str,
    *,
    signing_secret: str = SIGNING_SECRET,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | str | None = None,
) -> AsyncBoltRequest:
    """Like :func:`signed_request` but returns an ``AsyncBoltRequest`` for ``await app.async_dispatch``."""
    from slack_bolt.request.async_request import AsyncBoltRequest

    raw_body, content_type = _encode(body)
    headers = signed_headers(
        raw_body,
        signing_secret=signing_secret,
        content_type=content_type,
        retry_num=retry_num,
        retry_reason=retry_reason,
        timestamp=timestamp,
    )
    return AsyncBoltRequest(body=raw_body, headers=dict(headers))
