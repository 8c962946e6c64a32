"""`corpusbot serve` as a real process (waitress on a loopback port), driven by signed requests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fake_slack import BOT_TOKEN, FakeSlack
from tests.support.slack_harness import SIGNING_SECRET, Bot, environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"corpusbot serve exited with {process.returncode}: {process.stderr.read()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"corpusbot serve was not healthy within {timeout}s")


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


def start_serve(slack: FakeSlack, db: Path, cwd: Path, **popen: object) -> tuple[int, subprocess.Popen]:
    """`corpusbot serve` in HTTP mode on a free port, healthy when this returns."""
    port = free_port()
    env = {**os.environ, **environment(slack, db)}
    env.pop("SLACK_APP_TOKEN", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from corpusbot.bot.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        wait_until_healthy(port, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return port, process


@pytest.fixture
def served(slack: FakeSlack, sample_db: Path, tmp_path: Path):
    port, process = start_serve(slack, sample_db, tmp_path)
    try:
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_serve_answers_signed_requests_and_keeps_secrets_out_of_its_logs(served, slack: FakeSlack) -> None:
    port, process = served
    bot = Bot("127.0.0.1", port, app=None, runtime=None, slack=slack, executor=None)  # type: ignore[arg-type]
    assert bot.command("/ask", "who is on the US delegation?").status == 200
    [reply] = slack.wait_for("response_url")
    assert reply.body["response_type"] == "ephemeral"
    assert "Treasury Secretary Becente" in reply.body["blocks"][1]["text"]["text"]
    assert bot.post_signed(b"{}", "application/json", secret="wrong-secret-0000").status == 401
    assert json.loads(bot.request("GET", "/readyz").text)["status"] == "ready"
    process.send_signal(signal.SIGINT)
    _, logs = process.communicate(timeout=10)
    assert "listening on http://127.0.0.1" in logs
    assert "Rejected a Slack request: HTTP 401" in logs
    assert BOT_TOKEN not in logs and SIGNING_SECRET not in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_on_a_signal_even_when_started_with_sigint_ignored(
    slack: FakeSlack, sample_db: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # A shell's background job inherits SIGINT ignored; systemd and docker stop with SIGTERM.
    _, process = start_serve(
        slack, sample_db, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    try:
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_index_from_installs_the_published_snapshot_before_answering(
    slack: FakeSlack, sample_db: Path, tmp_path: Path, workers: int
) -> None:
    from corpusbot.index.maintenance.snapshots import publish_snapshot

    published = tmp_path / "published"
    published.mkdir()
    publish_snapshot(sample_db, str(published))
    local = tmp_path / "host" / "corpusbot.db"
    local.parent.mkdir()
    port = free_port()
    env = {**os.environ, **environment(slack, local)}
    env.pop("SLACK_APP_TOKEN", None)
    command = [sys.executable, "-c", "from corpusbot.bot.cli import main; main()", "serve", "--port", str(port)]
    command += ["--db", str(local), "--index-from", str(published), "--workers", str(workers)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_healthy(port, process, timeout=60)
        bot = Bot("127.0.0.1", port, app=None, runtime=None, slack=slack, executor=None)  # type: ignore[arg-type]
        assert bot.command("/ask", "who is on the US delegation?").status == 200
        [reply] = slack.wait_for("response_url")
        assert "Treasury Secretary Becente" in reply.body["blocks"][1]["text"]["text"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, logs = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _, logs = process.communicate()
    assert "No index at" not in logs  # the snapshot came first: the bundled sample was never indexed here
    assert "Traceback" not in logs
