"""Posting to response_url over kept-alive connections (bot/slack/webhook.py), against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import URLError

import pytest

from corpusbot.bot.slack import webhook
from corpusbot.bot.slack.runtime import Responder
from corpusbot.bot.slack.webhook import ConnectionPool, PooledWebhookClient
from tests.support.fake_slack import FakeSlack


@dataclass
class Hook:
    """A response_url endpoint that keeps connections open and remembers each post and the client port it came on."""

    posts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    handlers: list[BaseHTTPRequestHandler] = field(default_factory=list)

    def __post_init__(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append((self.client_address[1], body))
                hook.handlers.append(self)
                data = b"ok" if hook.status == 200 else b"invalid_blocks"
                self.send_response(hook.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/response/one"

    def drop_connections(self) -> None:
        """Close the server side of every connection, as a server does with idle keep-alive connections."""
        for handler in self.handlers:
            handler.connection.shutdown(2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    yield endpoint
    endpoint.stop()


def post(url: str, pool: ConnectionPool, text: str) -> int:
    return PooledWebhookClient(url, pool).send_dict({"text": text}).status_code


def test_replies_to_the_same_host_reuse_one_connection(hook: Hook) -> None:
    pool = ConnectionPool()
    assert [post(hook.url, pool, f"answer {n}") for n in range(3)] == [200, 200, 200]
    assert [body["text"] for _, body in hook.posts] == ["answer 0", "answer 1", "answer 2"]
    assert len({port for port, _ in hook.posts}) == 1
    assert pool.idle_count() == 1
    pool.close()
    assert pool.idle_count() == 0


def test_a_connection_the_server_closed_while_idle_is_replaced(hook: Hook) -> None:
    pool = ConnectionPool()
    post(hook.url, pool, "first")
    hook.drop_connections()
    assert post(hook.url, pool, "second") == 200
    assert [body["text"] for _, body in hook.posts] == ["first", "second"]
    assert hook.posts[0][0] != hook.posts[1][0]  # a new connection


def test_a_dead_connection_not_seen_before_use_sends_the_post_once_on_a_new_one(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = ConnectionPool()
    post(hook.url, pool, "first")
    hook.drop_connections()
    monkeypatch.setattr(webhook, "_dropped", lambda connection: False)  # the race: it dies just as it is reused
    client = PooledWebhookClient(hook.url, pool, retry_handlers=[])  # not slack_sdk's retry: the pool's own
    assert client.send_dict({"text": "second"}).status_code == 200
    assert [body["text"] for _, body in hook.posts] == ["first", "second"]


def test_an_error_status_comes_back_as_slack_sdk_reports_it(hook: Hook) -> None:
    hook.status = 400
    response = PooledWebhookClient(hook.url, ConnectionPool()).send_dict({"text": "x"})
    assert (response.status_code, response.body) == (400, "invalid_blocks")


def test_an_unreachable_host_raises_like_urllib_after_slack_sdk_retries(hook: Hook) -> None:
    url = hook.url
    hook.stop()
    with pytest.raises(URLError):
        post(url, ConnectionPool(timeout=2), "nobody listens")


def test_the_responder_posts_ephemeral_answers_and_a_429_is_retried_on_kept_alive_connections() -> None:
    with FakeSlack() as slack:
        responder = Responder(slack.api_url)
        slack.fail_next("response_url", status=429, retry_after="0")
        assert responder.send(slack.response_url("a"), {"text": "one"})
        assert responder.send(slack.response_url("b"), {"text": "two"})
        assert not responder.send("https://evil.example/hook", {"text": "no"})
        assert [call.body["text"] for call in slack.calls_to("response_url")] == ["one", "two"]
        assert len(slack.calls_to("response_url (failed)")) == 1
        assert responder.pool.idle_count() == 1
        responder.pool.close()
