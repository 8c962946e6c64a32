"""HTTP mode against bad and hostile requests: 4xx, one log line, no traceback, nothing posted to Slack."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import SIGNING_SECRET, Bot, running_bot, sign

EVENT = {
    "type": "event_callback",
    "team_id": "T0FAKE01",
    "event_id": "Ev0HTTP001",
    "event": {"type": "app_mention", "user": "U0ALICE1", "text": "rare earth", "ts": "1.1", "channel": "C0GENERAL"},
}


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def bot(slack: FakeSlack, sample_db: Path):
    with running_bot(slack, sample_db) as running:
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def assert_rejected_quietly(bot: Bot, slack: FakeSlack, logs: pytest.LogCaptureFixture) -> None:
    bot.settle()
    assert slack.replies() == []
    assert not [record for record in logs.records if record.exc_info]
    assert "Traceback" not in logs.text


def signed_headers(body: bytes, content_type: str = "application/json", timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(body, timestamp),
    }


def test_a_correctly_signed_event_is_accepted(bot: Bot, slack: FakeSlack) -> None:
    assert bot.post_signed(json.dumps(EVENT).encode(), "application/json").status == 200
    assert slack.wait_for("chat.postMessage")[0].body["thread_ts"] == "1.1"


def test_bad_signature_is_401(bot: Bot, slack: FakeSlack, logs) -> None:
    response = bot.post_signed(json.dumps(EVENT).encode(), "application/json", secret="not-the-signing-secret")
    assert response.status == 401
    assert_rejected_quietly(bot, slack, logs)
    assert "bad signature or stale timestamp" in logs.text


def test_body_changed_after_signing_is_401(bot: Bot, slack: FakeSlack, logs) -> None:
    body = json.dumps(EVENT).encode()
    headers = signed_headers(body)
    assert bot.request("POST", "/slack/events", body.replace(b"rare earth", b"rare earths"), headers).status == 401
    assert_rejected_quietly(bot, slack, logs)


@pytest.mark.parametrize("age", [301, 3600, -400])
def test_stale_or_future_timestamp_is_401_even_when_correctly_signed(
    bot: Bot, slack: FakeSlack, logs, age: int
) -> None:
    timestamp = str(int(time.time()) - age)
    assert bot.post_signed(json.dumps(EVENT).encode(), "application/json", timestamp=timestamp).status == 401
    assert_rejected_quietly(bot, slack, logs)


def test_a_replayed_old_request_is_rejected_by_the_timestamp_window(bot: Bot, slack: FakeSlack, logs) -> None:
    body = json.dumps(EVENT).encode()
    old = str(int(time.time()) - 600)
    captured = signed_headers(body, timestamp=old)  # a genuine request, captured and replayed ten minutes later
    assert bot.request("POST", "/slack/events", body, captured).status == 401
    assert_rejected_quietly(bot, slack, logs)


@pytest.mark.parametrize(
    "drop", [("X-Slack-Signature",), ("X-Slack-Request-Timestamp",), ("X-Slack-Signature", "X-Slack-Request-Timestamp")]
)
def test_missing_signature_headers_are_401(bot: Bot, slack: FakeSlack, logs, drop: tuple[str, ...]) -> None:
    body = json.dumps(EVENT).encode()
    headers = {k: v for k, v in signed_headers(body).items() if k not in drop}
    assert bot.request("POST", "/slack/events", body, headers).status == 401
    assert_rejected_quietly(bot, slack, logs)


def test_a_malformed_timestamp_is_401(bot: Bot, slack: FakeSlack, logs) -> None:
    body = json.dumps(EVENT).encode()
    headers = {**signed_headers(body), "X-Slack-Request-Timestamp": "yesterday"}
    assert bot.request("POST", "/slack/events", body, headers).status == 401
    assert_rejected_quietly(bot, slack, logs)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", "event": ', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_malformed_but_signed_bodies_are_400(bot: Bot, slack: FakeSlack, logs, body: bytes, content_type: str) -> None:
    assert bot.post_signed(body, content_type).status == 400
    assert_rejected_quietly(bot, slack, logs)


def raw_status(bot: Bot, head: bytes, body: bytes = b"") -> bytes:
    """Send a hand-made request and return the response's status line."""
    with socket.create_connection((bot.host, bot.port), timeout=5) as connection:
        connection.sendall(head + body)
        return connection.makefile("rb").readline()


def test_an_oversized_body_is_413_before_it_is_read(bot: Bot, slack: FakeSlack, logs) -> None:
    headers = signed_headers(b"whatever", "application/x-www-form-urlencoded")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    status = raw_status(bot, f"POST /slack/events HTTP/1.0\r\nContent-Length: {(1 << 20) + 1}\r\n{head}\r\n".encode())
    assert b" 413 " in status
    assert_rejected_quietly(bot, slack, logs)


def test_a_body_without_content_length_is_411(bot: Bot, slack: FakeSlack, logs) -> None:
    status = raw_status(bot, b"POST /slack/events HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n\r\n", b"{}")
    assert b" 411 " in status
    assert_rejected_quietly(bot, slack, logs)


def test_a_content_length_of_5000_digits_is_413(bot: Bot, slack: FakeSlack, logs) -> None:
    """int() refuses strings of over 4,300 digits; the length is too big anyway."""
    status = raw_status(bot, f"POST /slack/events HTTP/1.0\r\nHost: x\r\nContent-Length: {'9' * 5000}\r\n\r\n".encode())
    assert b" 413 " in status
    assert_rejected_quietly(bot, slack, logs)


def test_a_content_length_of_non_ascii_digits_is_411(bot: Bot, slack: FakeSlack, logs) -> None:
    """ "²" (sent as the Latin-1 byte 0xB2) is a digit to str.isdigit but not to int()."""
    head = b"POST /slack/events HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \xb2\r\n\r\n"
    status = raw_status(bot, head, b"{}")
    assert b" 411 " in status
    assert_rejected_quietly(bot, slack, logs)


def test_unknown_commands_and_actions_are_4xx_and_answer_nothing(bot: Bot, slack: FakeSlack, logs) -> None:
    assert bot.command("/nosuchcommand", "hello").status == 404
    assert bot.click("somebody_elses_button", "{}").status == 404
    assert_rejected_quietly(bot, slack, logs)


def test_unknown_events_are_acknowledged_with_200_so_slack_does_not_retry(bot: Bot, slack: FakeSlack, logs) -> None:
    for event in ({"type": "reaction_added", "user": "U0ALICE1"}, {"type": "channel_created", "channel": {"id": "C1"}}):
        assert bot.event(event).status == 200
    assert_rejected_quietly(bot, slack, logs)


def test_url_verification_is_answered_with_the_challenge(bot: Bot) -> None:
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "c0ffee"}).encode()
    response = bot.post_signed(body, "application/json")
    assert response.status == 200 and "c0ffee" in response.text


def test_ssl_check_is_acknowledged(bot: Bot, slack: FakeSlack) -> None:
    assert (
        bot.post_signed(
            urlencode({"ssl_check": "1", "token": "t"}).encode(), "application/x-www-form-urlencoded"
        ).status
        == 200
    )
    bot.settle()
    assert slack.replies() == []


def test_health_and_readiness(bot: Bot) -> None:
    health = bot.request("GET", "/healthz")
    assert (health.status, json.loads(health.text)) == (200, {"status": "ok", "pid": os.getpid()})
    ready = bot.request("GET", "/readyz")
    assert ready.status == 200
    assert json.loads(ready.text) == {"status": "ready", "generation": bot.runtime.service.generation}


def test_not_ready_when_the_index_is_unusable(bot: Bot, sample_db: Path) -> None:
    db = store.connect(sample_db)
    db.execute("DELETE FROM meta WHERE key = 'schema_version'")
    db.conn.commit()
    db.conn.close()
    ready = bot.request("GET", "/readyz")
    assert ready.status == 503
    assert json.loads(ready.text)["status"] == "unavailable"
    assert bot.request("GET", "/healthz").status == 200
    index_corpus(sample_db, [BUNDLED], full=True)
    assert bot.request("GET", "/readyz").status == 200


def test_an_unusable_index_gets_a_polite_reply_not_silence(bot: Bot, slack: FakeSlack, sample_db: Path, logs) -> None:
    db = store.connect(sample_db)
    db.execute("DELETE FROM meta WHERE key = 'schema_version'")
    db.conn.commit()
    db.conn.close()
    bot.command("/ask", "rare earth")
    [reply] = slack.wait_for("response_url")
    assert "the index is not available" in reply.body["text"]
    assert "sample.db" not in json.dumps(reply.body)  # no server paths in Slack
    assert not [record for record in logs.records if record.exc_info]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/slack/events", 405), ("GET", "/", 404), ("POST", "/healthz", 405), ("GET", "/admin", 404)],
)
def test_other_paths_and_methods(bot: Bot, method: str, path: str, status: int) -> None:
    assert bot.request(method, path).status == status


def test_signing_helper_matches_slacks_documented_example() -> None:
    # From Slack's "Verifying requests" guide: this secret, timestamp and body give this signature.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        b"channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        b"response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign(body, "1531420618", "8f742231b10e8888abcd99yyyzzz85a5") == expected
    assert SIGNING_SECRET != "8f742231b10e8888abcd99yyyzzz85a5"
