"""Socket Mode: the handler is built from the same app and settings, and envelopes reach the same listeners.

Nothing here opens a WebSocket: envelopes are handed to the handler as the
Socket Mode client would, and the acknowledgements are captured.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest

from corpusbot.bot import config
from corpusbot.bot.serving.server import socket_mode_handler
from corpusbot.bot.slack.app import build_app
from corpusbot.bot.slack.runtime import make_runtime
from corpusbot.index import SearchService
from tests.support.fake_slack import APP_TOKEN, BOT_USER_ID, FakeSlack
from tests.support.slack_harness import CapturingClient, TrackedExecutor, environment


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def socket_app(slack: FakeSlack, sample_db: Path):
    env = environment(slack, sample_db, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode does not need it
    settings = config.settings_from_env(env)
    config.check_slack(settings)
    service = SearchService(sample_db)
    runtime = make_runtime(settings, service)
    executor = TrackedExecutor()
    app = build_app(settings, service, runtime=runtime, executor=executor)
    yield settings, app, executor
    executor.shutdown(wait=True)
    runtime.state.close()
    service.close()


def envelope(event_id: str, retry_attempt: int | None = None) -> SocketModeRequest:
    payload: dict[str, Any] = {
        "type": "event_callback",
        "team_id": "T0FAKE01",
        "event_id": event_id,
        "event": {
            "type": "app_mention",
            "user": "U0ALICE1",
            "text": f"<@{BOT_USER_ID}> who is on the US delegation?",
            "ts": "1700000500.000100",
            "channel": "C0GENERAL",
        },
    }
    return SocketModeRequest("events_api", f"env-{event_id}-{retry_attempt}", payload, retry_attempt=retry_attempt)


def test_socket_mode_handler_uses_the_same_app_client_and_settings(socket_app, slack: FakeSlack) -> None:
    settings, app, _ = socket_app
    assert settings.socket_mode
    handler = socket_mode_handler(app, settings)
    assert isinstance(handler, SocketModeHandler)
    assert handler.app is app
    assert handler.app_token == APP_TOKEN
    assert handler.client.web_client is app.client
    assert app.client.base_url == slack.api_url
    assert handler.client.app_token == APP_TOKEN
    assert slack.calls_to("apps.connections.open") == []  # building it connects to nothing


def test_an_envelope_is_acknowledged_answered_in_thread_and_its_retry_is_not(socket_app, slack: FakeSlack) -> None:
    settings, app, executor = socket_app
    handler = socket_mode_handler(app, settings)
    client = CapturingClient()
    handler.handle(client, envelope("Ev0SOCK01"))
    handler.handle(client, envelope("Ev0SOCK01", retry_attempt=1))
    executor.wait_idle()
    assert [ack.envelope_id for ack in client.acks] == ["env-Ev0SOCK01-None", "env-Ev0SOCK01-1"]
    [reply] = slack.calls_to("chat.postMessage")
    assert reply.body["thread_ts"] == "1700000500.000100"
    assert "Treasury Secretary Becente" in reply.body["blocks"][1]["text"]["text"]


def test_socket_mode_without_an_app_token_is_refused(socket_app) -> None:
    settings, app, _ = socket_app
    with pytest.raises(ValueError, match="SLACK_APP_TOKEN"):
        socket_mode_handler(app, config.Settings(bot_token=settings.bot_token))


def test_an_envelope_that_is_not_a_slack_payload_is_acknowledged_and_dropped_in_one_line(
    socket_app, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    settings, app, executor = socket_app
    handler = socket_mode_handler(app, settings)
    client = CapturingClient()
    caplog.set_level(logging.INFO)
    garbage = {"type": "event_callback", "event_id": "Ev0SOCK02", "event": "hello"}
    handler.handle(client, SocketModeRequest("events_api", "env-garbage", garbage))
    executor.wait_idle()
    assert [ack.envelope_id for ack in client.acks] == ["env-garbage"]  # acknowledged: Slack does not resend it
    assert slack.replies() == []
    assert not [record for record in caplog.records if record.exc_info]
    assert any(r.getMessage().startswith("Rejected a Slack envelope: not a Slack payload") for r in caplog.records)


def test_an_integer_event_id_retried_in_socket_mode_is_answered_once(socket_app, slack: FakeSlack) -> None:
    settings, app, executor = socket_app
    handler = socket_mode_handler(app, settings)
    client = CapturingClient()
    for attempt in (None, 1):
        request = envelope("unused", retry_attempt=attempt)
        request.payload["event_id"] = 987654321
        handler.handle(client, request)
    executor.wait_idle()
    assert len(client.acks) == 2
    assert len(slack.calls_to("chat.postMessage")) == 1
