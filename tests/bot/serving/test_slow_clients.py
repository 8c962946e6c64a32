"""Slow clients (headers sent a byte at a time) must not stop HTTP mode from acknowledging Slack.

The numbers for 1,000 slow connections come from ``benchmarks/slowloris.py``;
here ``corpusbot serve`` runs as a real process with more slow connections
than waitress accepts by default (100), and signed requests must still be
acknowledged within a generous bound.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from corpusbot.bot.serving import server
from corpusbot.bot.serving.server import EVENTS_PATH, raise_open_files_limit, waitress_options
from tests.bot.cli.test_serve import start_serve
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import raw_signed_event

SLOW_CLIENTS = 150  # more than waitress's default connection_limit (100)
GENEROUS_SECONDS = 10.0  # no timing claim: only "acknowledged at all", which failed before
LOW_SOFT_LIMIT = 512


# -- waitress's settings --------------------------------------------------------------------------------------


def test_waitress_is_set_for_many_slow_connections() -> None:
    options = waitress_options(8, open_files=20_000)
    assert options["connection_limit"] == server.CONNECTION_LIMIT >= 1000
    assert options["asyncore_use_poll"] is True  # select() fails past 1,024 descriptors
    assert options["channel_timeout"] < 120 and options["cleanup_interval"] < 30  # waitress's defaults
    assert options["max_request_header_size"] < 262_144
    assert options["max_request_body_size"] == server.MAX_BODY_BYTES and options["threads"] == 8


def test_the_connection_limit_fits_the_open_files_limit() -> None:
    assert waitress_options(8, open_files=1024)["connection_limit"] == 1024 - server.RESERVED_FILES
    assert waitress_options(8, open_files=200)["connection_limit"] == server.MIN_CONNECTION_LIMIT


def test_waitress_accepts_every_option() -> None:
    from waitress.adjustments import Adjustments

    adjustments = Adjustments(**waitress_options(4, open_files=20_000))  # an unknown name would raise here
    assert adjustments.connection_limit == server.CONNECTION_LIMIT and adjustments.asyncore_use_poll


class FakeResource:
    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


def test_a_soft_open_files_limit_below_what_is_needed_is_raised_to_the_hard_limit() -> None:
    fake = FakeResource(1024, 65_536)
    assert raise_open_files_limit(4256, fake) == 65_536
    assert fake.limits == (65_536, 65_536)


def test_a_soft_limit_high_enough_is_left_alone() -> None:
    fake = FakeResource(20_000, 65_536)
    assert raise_open_files_limit(4256, fake) == 20_000
    assert fake.limits == (20_000, 65_536)


def test_an_unlimited_hard_limit_gives_what_is_needed() -> None:
    fake = FakeResource(1024, FakeResource.RLIM_INFINITY)
    assert raise_open_files_limit(4256, fake) == 4256
    assert fake.limits == (4256, FakeResource.RLIM_INFINITY)


def test_a_hard_limit_too_low_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeResource(256, 1024)
    with caplog.at_level(logging.WARNING):
        assert raise_open_files_limit(4256, fake) == 1024
    [line] = caplog.messages
    assert "open files limit is 1024" in line and "reverse proxy" in line


def test_a_refused_raise_keeps_the_soft_limit(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeResource(256, 1024, refuse=True)
    with caplog.at_level(logging.WARNING):
        assert raise_open_files_limit(4256, fake) == 256
    assert "Could not raise the open files limit" in caplog.text


# -- a real corpusbot serve -----------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _low_soft_limit() -> None:  # runs in the child before exec: start it as a system with a low default would
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(LOW_SOFT_LIMIT, hard), hard))


@pytest.fixture
def served(slack: FakeSlack, sample_db: Path, tmp_path: Path) -> Iterator[SimpleNamespace]:
    port, process = start_serve(slack, sample_db, tmp_path, preexec_fn=_low_soft_limit)
    try:
        yield SimpleNamespace(port=port, process=process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def status_of(port: int, request: bytes, timeout: float) -> bytes:
    """The response's status line, or b"" when none came within ``timeout`` seconds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(request)
            return connection.makefile("rb").readline().strip()
    except OSError:
        return b""


@contextlib.contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that sent a request line and the start of a header, and no more."""
    connections: list[socket.socket] = []
    try:
        for _ in range(count):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection.sendall(f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a".encode())
            connections.append(connection)
        yield connections
    finally:
        for connection in connections:
            connection.close()


def soft_open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files limit in /proc")


def test_signed_requests_are_acknowledged_while_many_slow_clients_hold_connections(served: SimpleNamespace) -> None:
    with slow_clients(served.port, SLOW_CLIENTS) as slow:
        for round_ in range(3):
            for connection in slow:
                connection.sendall(b"a")  # one more byte each: still sending, never finishing
            assert status_of(served.port, raw_signed_event(served.port, round_), GENEROUS_SECONDS) == b"HTTP/1.1 200 OK"


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads the limit from /proc")
def test_serve_raises_its_soft_open_files_limit(served: SimpleNamespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = server.CONNECTION_LIMIT + server.RESERVED_FILES
    if hard != resource.RLIM_INFINITY and hard <= LOW_SOFT_LIMIT:
        pytest.skip("the hard limit leaves nothing to raise")
    expected = wanted if hard == resource.RLIM_INFINITY else hard
    assert soft_open_files_limit(served.process.pid) == expected
