"""Structured logs: text or JSON lines, a request id on every line written while handling a request, no secrets."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot import config
from corpusbot.bot.cli import cli
from corpusbot.bot.ops import logsafe
from corpusbot.bot.ops.requestctx import ContextThreadPoolExecutor, request_scope
from tests.support.fake_slack import BOT_TOKEN, BOT_USER_ID, FakeSlack
from tests.support.slack_harness import SIGNING_SECRET, Bot, environment, running_bot

QUESTION = "who is on the US delegation?"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged, as the JSON lines `corpusbot serve --log-format json` writes (DEBUG and up)."""
    stream = io.StringIO()
    handler = logsafe.make_handler("json", secrets=(BOT_TOKEN, SIGNING_SECRET), stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_logged_while_handling_a_request_carries_its_id(
    slack: FakeSlack, sample_db: Path, json_lines: io.StringIO
) -> None:
    with running_bot(slack, sample_db) as bot:
        json_lines.seek(0)
        json_lines.truncate()
        bot.command("/ask", QUESTION)
        slack.wait_for("response_url")
        bot.settle()
        ask = records(json_lines)
        json_lines.seek(0)
        json_lines.truncate()
        mention = {"type": "app_mention", "user": "U0ALICE1", "text": f"<@{BOT_USER_ID}> rare earth", "ts": "1.5"}
        bot.event({**mention, "channel": "C0GENERAL"})
        slack.wait_for("chat.postMessage")
        bot.settle()
        event = records(json_lines)
    for lines, kind in ((ask, "ask"), (event, "app_mention")):
        [access] = [line for line in lines if line.get("kind") == kind]
        assert access["logger"] == "corpusbot.http" and access["status"] == 200 and access["duration_ms"] >= 0
        assert re.fullmatch(r"[0-9a-f]{12}", access["request_id"])
        # bolt's dispatch (server thread) and the reply sent by the listener (pool thread) alike
        assert {line["request_id"] for line in lines} == {access["request_id"]}
        assert any(line["logger"].startswith(("slack_sdk", "urllib3", "corpusbot.slack")) for line in lines)
        assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert ask[0]["request_id"] != event[0]["request_id"]
    assert BOT_TOKEN not in json_lines.getvalue()  # chat.postMessage is logged with its Authorization header


def test_concurrent_requests_keep_their_own_ids(slack: FakeSlack, sample_db: Path, json_lines: io.StringIO) -> None:
    with running_bot(slack, sample_db) as bot, ContextThreadPoolExecutor(4) as clients:
        statuses = list(clients.map(lambda n: bot.command("/ask", QUESTION, hook=f"c{n}").status, range(8)))
        slack.wait_for("response_url", 8)
        bot.settle()
    assert statuses == [200] * 8
    lines = records(json_lines)
    ids_by_hook: dict[str, set[str]] = {}
    for line in lines:
        found = re.search(r"/response/(c\d)", line["message"])
        if found and line["logger"].startswith("urllib3"):  # the post to response_url, from the pool thread
            ids_by_hook.setdefault(found.group(1), set()).add(line["request_id"])
    assert len(ids_by_hook) == 8
    assert all(len(ids) == 1 for ids in ids_by_hook.values())  # one request's reply lines: one id
    assert len(set().union(*ids_by_hook.values())) == 8  # and no two requests share one
    access_ids = {line["request_id"] for line in lines if line.get("kind") == "ask"}
    assert access_ids == set().union(*ids_by_hook.values())


def test_text_lines_are_readable_with_the_request_id_in_brackets() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("corpusbot.test.text")
    handler = logsafe.make_handler("text", stream=stream)
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        logger.info("outside a request")
        with request_scope("3f2a9c1b7d4e"):
            logger.warning("inside %s", "one")
    finally:
        logger.removeHandler(handler)
    outside, inside = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO corpusbot\.test\.text: outside a request", outside)
    assert re.fullmatch(stamp + r" WARNING corpusbot\.test\.text \[3f2a9c1b7d4e\]: inside one", inside)


def test_a_json_line_holds_extras_and_the_traceback_with_secrets_masked() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("corpusbot.test.json")
    handler = logsafe.make_handler("json", secrets=("s3cr3t-signing-value",), stream=stream)
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.INFO
    try:
        with request_scope() as request_id:
            try:
                raise ValueError(f"bad token {BOT_TOKEN} and s3cr3t-signing-value")
            except ValueError:
                logger.exception("failed with %s", BOT_TOKEN, extra={"kind": "ask", "status": 500})
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()  # the traceback stays inside the one line
    record = json.loads(line)
    assert (
        record["request_id"] == request_id and record["level"] == "ERROR" and record["logger"] == "corpusbot.test.json"
    )
    assert (record["kind"], record["status"]) == ("ask", 500)
    assert "ValueError" in record["exc_info"] and "Traceback" in record["exc_info"]
    assert BOT_TOKEN not in line and "s3cr3t-signing-value" not in line
    assert record["message"] == "failed with xoxb-[redacted]"


def test_log_level_is_read_from_CORPUSBOT_LOG_LEVEL() -> None:
    assert config.log_level({}) == logging.INFO
    assert config.log_level({"CORPUSBOT_LOG_LEVEL": "debug"}) == logging.DEBUG
    assert config.log_level({"CORPUSBOT_LOG_LEVEL": " Warn "}) == logging.WARNING
    with pytest.raises(config.ConfigError, match="CORPUSBOT_LOG_LEVEL must be one of DEBUG, INFO"):
        config.log_level({"CORPUSBOT_LOG_LEVEL": "verbose"})


def test_serve_refuses_a_bad_log_level_or_format_cleanly(runner: CliRunner, slack: FakeSlack, sample_db: Path) -> None:
    env = {**environment(slack, sample_db), "CORPUSBOT_LOG_LEVEL": "loud"}
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)], env=env)
    assert result.exit_code == 1 and "CORPUSBOT_LOG_LEVEL must be one of" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        cli, ["serve", "--log-format", "xml", "--db", str(sample_db)], env=environment(slack, sample_db)
    )
    assert result.exit_code == 2 and "'text', 'json'" in result.output


# -- the real process ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        connection.close()


def wait_until_healthy(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"corpusbot serve exited with {process.returncode}"
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"corpusbot serve was not healthy within {timeout}s")


def test_serve_writes_one_json_object_per_line_at_the_configured_level(
    slack: FakeSlack, sample_db: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, **environment(slack, sample_db), "CORPUSBOT_LOG_LEVEL": "DEBUG"}
    env.pop("SLACK_APP_TOKEN", None)
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-c", "from corpusbot.bot.cli import main; main()", "serve", "--port", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--db", str(sample_db), "--log-format", "json"], cwd=tmp_path, env=env, stderr=log
        )
    try:
        wait_until_healthy(port, process)
        bot = Bot("127.0.0.1", port, app=None, runtime=None, slack=slack, executor=None)  # type: ignore[arg-type]
        assert bot.command("/ask", "admin feedback", user="U0NOBODY1").status == 200  # refused: an INFO line
        slack.wait_for("response_url")
        assert bot.post_signed(b"{}", "application/json", secret="wrong-secret-0000").status == 401
        status, headers = request(port, "GET", "/readyz")
        assert status == 200 and re.fullmatch(r"[0-9a-f]{12}", headers["X-Request-Id"])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    logs = log_path.read_text()
    lines = [json.loads(line) for line in logs.splitlines()]  # every line is one JSON object
    assert any(line["level"] == "DEBUG" for line in lines)
    [ask] = [line for line in lines if line.get("kind") == "ask"]
    [rejected] = [line for line in lines if line.get("kind") == "invalid"]
    assert rejected["status"] == 401 and rejected["request_id"] not in (None, ask["request_id"])
    [refusal] = [line for line in lines if line["message"].startswith("Refused 'admin feedback'")]
    assert refusal["request_id"] == ask["request_id"]  # logged by the listener, on the pool thread
    assert {line["request_id"] for line in lines if line["logger"] == "corpusbot.bolt"} >= {ask["request_id"]}
    assert BOT_TOKEN not in logs and SIGNING_SECRET not in logs and "Traceback" not in logs
