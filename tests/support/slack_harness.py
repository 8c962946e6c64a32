"""Runs the real Slack app over HTTP on 127.0.0.1 and sends it correctly signed Slack requests.

The app is built by the production factories (``build_app``, ``SlackWSGI``)
with settings parsed from an environment mapping, served by a threaded
wsgiref server, and pointed at a :class:`fake_slack.FakeSlack`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import itertools
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from threading import Lock, Thread
from typing import Any
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_sdk.socket_mode.response import SocketModeResponse

from corpusbot.bot import config
from corpusbot.bot.ops.requestctx import ContextThreadPoolExecutor
from corpusbot.bot.serving.server import EVENTS_PATH, SlackWSGI
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.runtime import Runtime, make_runtime
from corpusbot.index import SearchService
from tests.support.fake_slack import BOT_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack

SIGNING_SECRET = "5f1a0e9d8c7b6a5f4e3d2c1b0a998877"
_ids = itertools.count(1)


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature: HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def raw_signed_event(port: int, number: int, secret: str = SIGNING_SECRET) -> bytes:
    """A whole HTTP request, as bytes, of an event the bot acknowledges and ignores, signed now (unique id).

    For callers that talk to the server through their own sockets (slow-client tests and benchmarks).
    """
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0FAKE01",
            "event_id": f"EvRAW{os.getpid()}x{number}x{time.time_ns()}",
            "event_time": int(time.time()),
            "event": {"type": "reaction_added", "user": "U0ALICE1", "reaction": "eyes"},
        }
    ).encode()
    timestamp = str(int(time.time()))
    head = (
        f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {timestamp}\r\n"
        f"X-Slack-Signature: {sign(body, timestamp, secret)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class TrackedExecutor(ContextThreadPoolExecutor):
    """bolt's listener pool, remembering its work so a test can wait until every listener has finished."""

    def __init__(self, max_workers: int = 4) -> None:
        super().__init__(max_workers=max_workers)
        self._futures: list[Future[Any]] = []
        self._lock = Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._futures.append(future)
        return future

    def wait_idle(self, timeout: float = 10.0) -> None:
        with self._lock:
            pending = list(self._futures)
        _, not_done = wait(pending, timeout)
        assert not not_done, f"{len(not_done)} listener(s) still running after {timeout}s"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Response:
    status: int
    text: str


@dataclass
class Bot:
    """The running app and helpers to talk to it like Slack does."""

    host: str
    port: int
    app: App
    runtime: Runtime
    slack: FakeSlack
    executor: TrackedExecutor

    def settle(self) -> None:
        """Wait until every listener started by the requests sent so far has finished (they run after the ack)."""
        self.executor.wait_idle()

    # -- raw HTTP ----------------------------------------------------------

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.read().decode("utf-8", "replace"))
        finally:
            connection.close()

    def post_signed(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: str | None = None,
        secret: str = SIGNING_SECRET,
        extra: dict[str, str] | None = None,
    ) -> Response:
        timestamp = timestamp or str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(body, timestamp, secret),
            **(extra or {}),
        }
        return self.request("POST", EVENTS_PATH, body, headers)

    # -- Slack payloads ------------------------------------------------------

    def command(
        self, command: str, text: str, *, user: str = "U0ALICE1", channel: str = "C0GENERAL", hook: str = "cmd"
    ) -> Response:
        form = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": "alice",
            "command": command,
            "text": text,
            "response_url": self.slack.response_url(hook),
            "trigger_id": "1.2.3",
            "api_app_id": "A0FAKE01",
        }
        return self.post_signed(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> Response:
        envelope = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0FAKE01",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            "event": event,
        }
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return self.post_signed(json.dumps(envelope).encode(), "application/json", extra=extra)

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0ALICE1",
        channel: str = "C0GENERAL",
        message_ts: str = "1700000001.000100",
        ephemeral: bool = False,
        hook: str = "click",
    ) -> Response:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "username": "alice", "team_id": TEAM_ID},
            "api_app_id": "A0FAKE01",
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": "1.2.3",
            "channel": {"id": channel, "name": "general"},
            "response_url": self.slack.response_url(hook),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "type": "button",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if not ephemeral:
            payload["message"] = {"type": "message", "ts": message_ts, "text": "an answer"}
        form = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post_signed(form, "application/x-www-form-urlencoded")


def environment(slack: FakeSlack, db_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "CORPUSBOT_DB": str(db_path),
        **overrides,
    }


@contextmanager
def running_bot(slack: FakeSlack, db_path: Path, **env: str) -> Iterator[Bot]:
    """The app in HTTP mode on a free loopback port; waits for its background work before stopping."""
    settings = config.settings_from_env(environment(slack, db_path, **env))
    config.check_slack(settings)
    service = SearchService(db_path)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    app = build_app(settings, service, runtime=runtime, executor=executor)
    assert settings.signing_secret is not None
    wsgi = SlackWSGI(app, runtime, settings.signing_secret)
    server = make_server("127.0.0.1", 0, wsgi, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Bot("127.0.0.1", server.server_address[1], app, runtime, slack, executor)
    finally:
        server.shutdown()
        server.server_close()
        executor.shutdown(wait=True)
        runtime.state.close()
        service.close()


class CapturingClient:
    """Stands in for the Socket Mode client: keeps the acknowledgements instead of sending them."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("test.socket")
        self.acks: list[SocketModeResponse] = []

    def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.acks.append(response)
