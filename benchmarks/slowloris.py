"""Slow clients against HTTP mode: N connections sending their headers a byte at a time, and Slack's acks meanwhile.

    python -m benchmarks.slowloris --slow 1000
    python -m benchmarks.slowloris --slow 1000 --workers 2                   # gunicorn's sync workers
    python -m benchmarks.slowloris --slow 1000 --workers 2 --worker-class waitress
    python -m benchmarks.slowloris --slow 300 --waitress-defaults     # the limits waitress has by default
    python -m benchmarks.slowloris --slow 1000 --port 3000            # a corpusbot serve already running here

Everything is on 127.0.0.1 and bounded in time. Without ``--port`` the bot is
started here: the real ``corpusbot serve`` (HTTP mode) on the bundled sample
corpus, pointed at the fake Slack Web API of the tests. With ``--port`` it is
one already running on 127.0.0.1, and ``SLACK_SIGNING_SECRET`` must be its
secret.

Phases, each sending ``--requests`` correctly signed requests one after the
other (an event the bot acknowledges and ignores: the ack path, and nothing
posted) and timing each from connecting to the whole response:

1. ``baseline``: no slow connection;
2. ``slow``: ``--slow`` connections are opened, each sends a request line and
   then one byte of a never-ending header every ``--interval`` seconds, for
   ``--hold`` seconds while the requests are sent;
3. ``after``: the slow connections closed.

A request not answered within ``--timeout`` seconds counts as not
acknowledged (Slack gives up after 3 s and retries). Prints a markdown table;
exit status 1 when a request was not acknowledged or took over ``--bound``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The fake Slack API and the request signing live with the tests (run from the repository: python -m benchmarks.slowloris).
from corpusbot.bot.serving.server import EVENTS_PATH  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.slack_harness import SIGNING_SECRET, environment, raw_signed_event  # noqa: E402

SERVE = "from corpusbot.bot.cli import main; main()"
SLICES = 20  # the slow connections send in this many turns per interval
# The same bot with waitress's own limits (connection_limit 100, select(), 120 s idle timeout), as before they were set.
SERVE_WITH_WAITRESS_DEFAULTS = (
    "import corpusbot.bot.serving.server as server\n"
    "server.waitress_options = lambda threads, open_files: "
    "{'threads': threads, 'ident': 'corpusbot', 'max_request_body_size': server.MAX_BODY_BYTES}\n"
    "from corpusbot.bot.cli import main; main()"
)


@dataclass
class Phase:
    name: str
    slow_open: int = 0  # slow connections still open when the phase ended
    slow_closed_by_server: int = 0
    acks: list[float] = field(default_factory=list)  # seconds, per acknowledged request
    failed: int = 0  # not acknowledged within --timeout (or refused)
    statuses: dict[int, int] = field(default_factory=dict)

    def row(self) -> str:
        ms = sorted(a * 1000 for a in self.acks)

        def pick(q: float) -> str:
            return f"{ms[min(len(ms) - 1, int(q * len(ms)))]:.1f}" if ms else "–"

        top = f"{ms[-1]:.1f}" if ms else "–"
        status = ", ".join(f"{code}×{count}" for code, count in sorted(self.statuses.items())) or "–"
        return (
            f"| {self.name} | {self.slow_open} | {self.slow_closed_by_server} | {len(self.acks) + self.failed} | "
            f"{len(self.acks)} | {self.failed} | {status} | {pick(0.5)} | {pick(0.95)} | {top} |"
        )


HEADER = (
    "| phase | slow connections open | closed by the server | requests | acknowledged | not acknowledged "
    "| statuses | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|---|---|---|---|---|"
)


# -- the requests Slack would send -----------------------------------------------------------------------------


def ack_time(port: int, secret: str, number: int, timeout: float) -> tuple[float | None, int]:
    """Seconds from connecting to the whole response (None: none within ``timeout``), and the status (0: none)."""
    data = raw_signed_event(port, number, secret)
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(data)
            received = b""
            while True:
                remaining = timeout - (time.perf_counter() - started)
                if remaining <= 0:
                    return None, 0
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return None, 0
    elapsed = time.perf_counter() - started
    try:
        status = int(received.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None, 0
    return elapsed, status


def send_requests(phase: Phase, port: int, secret: str, count: int, timeout: float, pause: float) -> None:
    for number in range(count):
        seconds, status = ack_time(port, secret, number, timeout)
        if seconds is None:
            phase.failed += 1
        else:
            phase.acks.append(seconds)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
        time.sleep(pause)


# -- the slow clients ------------------------------------------------------------------------------------------


class SlowClients:
    """``count`` connections sending a request line, then one header byte each every ``interval`` seconds."""

    def __init__(self, port: int, count: int, interval: float, connect_timeout: float = 2.0) -> None:
        self.port = port
        self.interval = interval
        self.sockets: list[socket.socket] = []
        self.refused = 0
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        for _ in range(count):
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)
                connection.sendall(f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode())
                connection.setblocking(False)
                self.sockets.append(connection)
            except OSError:
                self.refused += 1

    def start(self) -> None:
        self._thread.start()

    @property
    def open(self) -> int:
        return len(self.sockets)

    def _trickle(self) -> None:
        """Each connection sends a byte every ``interval``; the connections take turns in ``SLICES`` groups spread
        over the interval, so the server's loop wakes up often (harder on it than all bytes at once)."""
        selector = selectors.DefaultSelector()
        turn = 0
        while not self._stop.wait(self.interval / SLICES):
            group = [c for number, c in enumerate(self.sockets) if number % SLICES == turn]
            turn = (turn + 1) % SLICES
            gone = set()
            for connection in group:
                try:
                    connection.send(b"a")
                except (BlockingIOError, InterruptedError):
                    pass  # its buffer is full: still open
                except OSError:
                    gone.add(connection)
            # A connection the server closed shows as readable (EOF, or an error response).
            for connection in group:
                if connection not in gone:
                    selector.register(connection, selectors.EVENT_READ)
            gone |= {key.fileobj for key, _ in selector.select(0)}  # type: ignore[misc]
            for connection in group:
                with contextlib.suppress(KeyError):
                    selector.unregister(connection)
            if gone:
                self.closed_by_server += len(gone)
                for connection in gone:
                    connection.close()
                self.sockets = [c for c in self.sockets if c not in gone]
        selector.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for connection in self.sockets:
            connection.close()
        self.sockets = []


# -- the bot ---------------------------------------------------------------------------------------------------


def raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else wanted, hard))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def bot(workers: int, waitress_defaults: bool, workdir: Path, worker_class: str = "sync") -> Iterator[int]:
    """``corpusbot serve`` on the bundled sample, until /healthz answers; stopped with SIGINT (then killed)."""
    from corpusbot.index import index_corpus
    from corpusbot.index.corpus.discover import BUNDLED

    db = workdir / "sample.db"
    index_corpus(db, [BUNDLED])
    port = free_port()
    with FakeSlack() as slack:
        env = {**os.environ, **environment(slack, db), "PYTHONPATH": str(ROOT), "CORPUSBOT_RATE_LIMIT": "off"}
        env.pop("SLACK_APP_TOKEN", None)
        code = SERVE_WITH_WAITRESS_DEFAULTS if waitress_defaults else SERVE
        command = [sys.executable, "-c", code, "serve", "--port", str(port), "--db", str(db)]
        command += ["--workers", str(workers), "--worker-class", worker_class]
        with (workdir / "serve.log").open("w", encoding="utf-8") as log:
            process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_healthy(port, process, workdir / "serve.log")
                yield port
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_healthy(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"corpusbot serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            if b" 200 " in connection.recv(100):
                return
        time.sleep(0.1)
    raise RuntimeError(f"corpusbot serve was not healthy within {timeout:.0f}s")


# -- the run ---------------------------------------------------------------------------------------------------


def run(port: int, secret: str, args: argparse.Namespace) -> list[Phase]:
    baseline = Phase("baseline")
    send_requests(baseline, port, secret, args.requests, args.timeout, args.pause)

    slow_phase = Phase(f"{args.slow} slow")
    slow = SlowClients(port, args.slow, args.interval)
    slow.start()
    try:
        time.sleep(min(args.hold / 4, 5.0))  # let the trickle start
        ends = time.monotonic() + args.hold
        sent = 0
        while sent < args.requests or time.monotonic() < ends:
            send_requests(slow_phase, port, secret, 1, args.timeout, args.pause)
            sent += 1
            if sent >= args.requests * 20:
                break
        slow_phase.slow_open = slow.open
        slow_phase.slow_closed_by_server = slow.closed_by_server + slow.refused
    finally:
        slow.close()

    after = Phase("after")
    time.sleep(1.0)
    send_requests(after, port, secret, args.requests, args.timeout, args.pause)
    return [baseline, slow_phase, after]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=1000, help="Slow connections held open at once.")
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between two bytes of a slow client.")
    parser.add_argument("--hold", type=float, default=20.0, help="Seconds the slow phase lasts at least.")
    parser.add_argument("--requests", type=int, default=50, help="Signed requests per phase (at least).")
    parser.add_argument("--pause", type=float, default=0.1, help="Seconds between two signed requests.")
    parser.add_argument("--timeout", type=float, default=5.0, help="Seconds a request may take to be acknowledged.")
    parser.add_argument("--bound", type=float, default=1.0, help="Exit 1 when any ack took longer (seconds).")
    parser.add_argument("--workers", type=int, default=1, help="corpusbot serve --workers, when started here.")
    parser.add_argument(
        "--worker-class", choices=("sync", "waitress"), default="sync", help="corpusbot serve --worker-class."
    )
    parser.add_argument("--waitress-defaults", action="store_true", help="Start the bot with waitress's own limits.")
    parser.add_argument("--port", type=int, help="A corpusbot serve already running on 127.0.0.1 (not started here).")
    args = parser.parse_args(argv)
    raise_open_files_limit(args.slow + 256)

    if args.port is not None:
        secret = os.environ.get("SLACK_SIGNING_SECRET")
        if not secret:
            parser.error("--port needs SLACK_SIGNING_SECRET (the running bot's)")
        phases = run(args.port, secret, args)
        setup = f"corpusbot serve on 127.0.0.1:{args.port}"
    else:
        with (
            tempfile.TemporaryDirectory() as folder,
            bot(args.workers, args.waitress_defaults, Path(folder), args.worker_class) as port,
        ):
            phases = run(port, SIGNING_SECRET, args)
        limits = "waitress's default limits" if args.waitress_defaults else "corpusbot's waitress limits"
        if args.workers > 1:
            limits = f"--worker-class {args.worker_class}" + (f", {limits}" if args.worker_class == "waitress" else "")
        setup = f"corpusbot serve --workers {args.workers}, {limits}"
    print(f"{setup}; {args.slow} slow clients, one byte every {args.interval:g} s; ack timeout {args.timeout:g} s\n")
    print(HEADER)
    for phase in phases:
        print(phase.row())
    worst = max((a for p in phases for a in p.acks), default=0.0)
    failed = sum(p.failed for p in phases)
    return 1 if failed or worst > args.bound else 0


if __name__ == "__main__":
    sys.exit(main())
