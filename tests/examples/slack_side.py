"""Slack's side of the adapters the examples use, beyond ``slack_tasklog.testing``: a Socket Mode websocket peer,
and the API Gateway events and Lambda context that AWS hands a function."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import socket
import sys
import threading
import types
import uuid
from dataclasses import dataclass
from typing import Any

from slack_tasklog.testing import signed_headers


class SocketModePeer:
    """Slack's end of Socket Mode: a websocket server on ``127.0.0.1`` (aiohttp, on an event loop in a thread of
    its own). It greets each connection with ``hello``, sends ``events_api`` envelopes to the latest one and
    collects the app's acknowledgements. Give :attr:`url` to ``FakeSlackAPI.socket_mode_url``."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="SocketModePeer", daemon=True)
        self._changed = threading.Condition()
        self._sockets: list[Any] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._runner: Any = None
        self.connections = 0
        self.url = ""

    def __enter__(self) -> SocketModePeer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/link/", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}/link/?ticket={uuid.uuid4()}"

    async def _stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    async def _serve(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "applink-test", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A111"},
            }
        )
        with self._changed:
            self._sockets.append(ws)
            self.connections += 1
            self._changed.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    ack = json.loads(msg.data)
                    with self._changed:
                        self._acks[ack.get("envelope_id", "")] = ack
                        self._changed.notify_all()
        finally:
            with self._changed:
                self._sockets.remove(ws)
                self._changed.notify_all()
        return ws

    def hang_up(self) -> None:
        """Close every connection from Slack's side (the app's reader then stops at once, rather than after its
        socket timeout)."""

        async def close_all() -> None:
            for ws in list(self._sockets):
                await ws.close()

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)

    def wait_connected(self, timeout: float = 10) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._sockets), timeout):
                raise TimeoutError("the app did not connect over Socket Mode")

    def send_event(self, body: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = "") -> str:
        """Send an Events API payload (``event_body(...)``) as Slack does; return its envelope id."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": body,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        with self._changed:
            ws = self._sockets[-1]
        asyncio.run_coroutine_threadsafe(ws.send_json(envelope), self._loop).result(10)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The app's acknowledgement of an envelope (``{"envelope_id": ...}``, maybe with a ``payload``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self._acks, timeout):
                raise TimeoutError(f"envelope {envelope_id} was not acknowledged")
            return self._acks[envelope_id]


# -- AWS Lambda ---------------------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The attributes of the context object Lambda passes a Python handler that Bolt's adapter reads."""

    function_name: str = "tasklog-bot"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:tasklog-bot"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "7f1c7a3e-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/tasklog-bot"
    log_stream_name: str = "2026/12/04/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def api_gateway_event(
    body: dict[str, Any], *, version: str = "2.0", base64_body: bool = True, retry_num: int | None = None
) -> dict[str, Any]:
    """A signed Slack request as API Gateway hands it to the function: an HTTP API (payload format 2.0, the body
    base64-encoded as API Gateway does for most content types) or a REST API (1.0) event. ``retry_num``: Slack's
    redelivery of a request it got no answer to in time."""
    raw = json.dumps(body)
    headers = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", "user-agent": "Slackbot 1.0"}
    headers.update(signed_headers(raw, retry_num=retry_num, retry_reason="http_timeout" if retry_num else None))
    encoded = base64.b64encode(raw.encode()).decode() if base64_body else raw
    if version == "2.0":
        return {
            "version": "2.0",
            "routeKey": "POST /slack/events",
            "rawPath": "/slack/events",
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "http": {"method": "POST", "path": "/slack/events", "protocol": "HTTP/1.1", "sourceIp": "3.3.3.3"},
                "requestId": str(uuid.uuid4()),
                "routeKey": "POST /slack/events",
                "stage": "$default",
            },
            "body": encoded,
            "isBase64Encoded": base64_body,
        }
    return {
        "resource": "/slack/events",
        "path": "/slack/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "requestContext": {"httpMethod": "POST", "path": "/prod/slack/events", "stage": "prod"},
        "body": encoded,
        "isBase64Encoded": base64_body,
    }


def ensure_boto3_importable() -> None:
    """Bolt's Lambda adapter imports boto3 (for lazy listeners, which the examples do not use). Lambda's Python
    runtime ships it; where it is not installed, an empty module stands in so that the adapter can be imported."""
    if "boto3" not in sys.modules and importlib.util.find_spec("boto3") is None:
        sys.modules["boto3"] = types.ModuleType("boto3")
