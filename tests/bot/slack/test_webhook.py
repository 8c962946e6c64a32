"""Posting to response_url (bot/slack/webhook.py): urllib3's pool and Retry, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from urllib3.exceptions import HTTPError

from corpusbot.bot.slack import webhook
from corpusbot.bot.slack.runtime import Responder
from tests.support.fake_slack import FakeSlack


@dataclass
class Hook:
    """A response_url endpoint that keeps connections open, answers with the statuses it is told (then 200), and
    remembers each post, the client port it came on and when it arrived."""

    posts: list[tuple[int, float, dict[str, Any]]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) for the next posts
    handlers: list[BaseHTTPRequestHandler] = field(default_factory=list)

    def __post_init__(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append((self.client_address[1], time.monotonic(), body))
                hook.handlers.append(self)
                status, headers = hook.script.pop(0) if hook.script else (200, {})
                data = b"ok" if status == 200 else b"invalid_blocks" if status == 400 else b"try later"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/response/one"

    def texts(self) -> list[str]:
        return [body["text"] for _, _, body in self.posts]

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


def test_replies_to_the_same_host_reuse_one_connection(hook: Hook) -> None:
    connections = webhook.pool()
    assert [webhook.post(connections, hook.url, {"text": f"answer {n}"}).status for n in range(3)] == [200] * 3
    assert hook.texts() == ["answer 0", "answer 1", "answer 2"]
    assert len({port for port, _, _ in hook.posts}) == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(hook: Hook) -> None:
    connections = webhook.pool()
    webhook.post(connections, hook.url, {"text": "first"})
    hook.drop_connections()
    assert webhook.post(connections, hook.url, {"text": "second"}).status == 200
    assert hook.texts() == ["first", "second"]
    assert hook.posts[0][0] != hook.posts[1][0]  # a new connection


def test_a_500_is_sent_again_and_the_200_that_follows_is_the_answer(hook: Hook) -> None:
    hook.script = [(500, {}), (503, {})]
    posted = webhook.post(webhook.pool(), hook.url, {"text": "again"})
    assert (posted.status, posted.body) == (200, "ok")
    assert hook.texts() == ["again"] * 3


def test_a_429_is_sent_again_after_its_retry_after(hook: Hook) -> None:
    hook.script = [(429, {"Retry-After": "1"})]
    started = time.monotonic()
    assert webhook.post(webhook.pool(), hook.url, {"text": "later"}).status == 200
    (_, first, _), (_, second, _) = hook.posts
    assert second - first >= 0.9, "the retry did not wait for Retry-After"
    assert time.monotonic() - started < 5


def test_statuses_that_keep_failing_come_back_after_the_last_retry(hook: Hook) -> None:
    hook.script = [(500, {})] * 10
    posted = webhook.post(webhook.pool(), hook.url, {"text": "x"})
    assert posted.status == 500
    assert len(hook.posts) == 1 + webhook.STATUS_RETRIES


def test_an_error_status_that_is_not_retried_comes_back_at_once(hook: Hook) -> None:
    hook.script = [(400, {})]
    posted = webhook.post(webhook.pool(), hook.url, {"text": "x"})
    assert (posted.status, posted.body) == (400, "invalid_blocks")
    assert len(hook.posts) == 1


def test_an_unreachable_host_raises_after_the_connection_retry(hook: Hook) -> None:
    url = hook.url
    hook.stop()
    with pytest.raises(HTTPError):
        webhook.post(webhook.pool(), url, {"text": "nobody listens"})


def test_the_responder_posts_ephemeral_answers_retries_a_429_and_only_talks_to_slack() -> None:
    with FakeSlack() as slack:
        responder = Responder(slack.api_url)
        slack.fail_next("response_url", status=429, retry_after="0")
        assert responder.send(slack.response_url("a"), {"text": "one"})
        assert responder.send(slack.response_url("b"), {"text": "two"})
        assert not responder.send("https://evil.example/hook", {"text": "no"})
        assert [call.body["text"] for call in slack.calls_to("response_url")] == ["one", "two"]
        assert len(slack.calls_to("response_url (failed)")) == 1
