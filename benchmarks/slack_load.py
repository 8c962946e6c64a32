"""A bounded load test of the Slack path: `corpusbot serve` in HTTP mode, signed requests, replies counted.

    python -m benchmarks.slack_load --mode mixed --requests 2000 --concurrency 16 --passages 20000
    python -m benchmarks.slack_load --mode ask --requests 1000 --concurrency 8 --db path/to/1M.db --workers 2

Everything is on 127.0.0.1 and stops by itself (``--max-seconds``). The bot
is the real ``corpusbot serve`` (a subprocess, ``--log-format json``: waitress, or gunicorn with ``--workers``)
pointed at the fake Slack Web API of ``tests/fake_slack.py``, which also is
the ``response_url`` sink; every reply lands there and is counted by a key
unique to the request that asked for it.

- ``mixed`` (issue 6): ``/ask`` commands, ``app_mention`` events (some sent
  again as Slack retries, which must not be answered twice) and button clicks
  (More results, Helpful, Not helpful), while another process loops
  ``corpusbot index --full`` over the corpus. Reports throughput, ack and
  reply latency, non-2xx and 5xx answers, lost, duplicated and unexpected
  replies, server errors in the log and failed reindexes. All must be 0.
- ``ask`` (issue 5's Slack-path figure): signed ``/ask`` only; each request is
  timed from sending it to its answer reaching the ``response_url`` sink, and
  to the later of that and its acknowledgement ("acknowledged and answered").

``--workers N`` runs ``corpusbot serve --workers N`` (gunicorn); each
worker's ``/metrics`` sums the request counter of all workers, and the report
checks that every worker it reached gives the same total.

Each client thread sends a request, then waits for its reply (at most
``--reply-timeout``) before sending the next, so ``--concurrency`` is the
number of requests in flight. Without ``--db`` a corpus of ``--passages``
passages is generated (``benchmarks.corpus``) and indexed in a temporary
folder. The rate limit is off (``CORPUSBOT_RATE_LIMIT=off``): the point is
the path, not the per-user limit. Exit status 1 when anything was lost,
duplicated or failed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The fake Slack API and the request signing helpers live with the tests (run from the repository: python -m benchmarks.slack_load).
from corpusbot.bot.serving.server import EVENTS_PATH  # noqa: E402
from corpusbot.bot.slack.blocks import HELPFUL, MORE, NOT_HELPFUL, AnswerRef  # noqa: E402
from corpusbot.index import index_corpus  # noqa: E402
from tests.support.fake_slack import BOT_USER_ID, Call, FakeSlack  # noqa: E402
from tests.support.slack_harness import Bot, Response, environment, sign  # noqa: E402

from .corpus import generate  # noqa: E402

SERVE = [sys.executable, "-c", "from corpusbot.bot.cli import main; main()"]
MIX = (("ask", 0.5), ("mention", 0.3), ("more", 0.1), ("helpful", 0.05), ("not_helpful", 0.05))
RETRY_SHARE = 0.1  # of the mentions, also sent again as a Slack retry (same event id)
USERS = 50


# -- the sink: the fake Slack API, remembering when each reply arrived --------------------------------


class Sink(FakeSlack):
    """The fake Slack API keyed by request: ``response_url`` path or the thread a message was posted in.

    The arrival time is taken as soon as the request has been read, before the fake checks and answers it. Each key
    has its own event, so a reply wakes only the client waiting for it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def _record(self, call: Call) -> None:
        at = time.perf_counter()
        super()._record(call)
        key = reply_key(call)
        if key is not None:
            with self._lock:
                self.arrivals[key].append(at)
                event = self._events.setdefault(key, threading.Event())
            event.set()

    def wait(self, key: str, timeout: float) -> float | None:
        """When the first reply for ``key`` arrived, waiting at most ``timeout`` seconds."""
        with self._lock:
            event = self._events.setdefault(key, threading.Event())
        if not event.wait(timeout):
            return None
        with self._lock:
            return self.arrivals[key][0]


def reply_key(call: Call) -> str | None:
    if call.method == "response_url":
        return "hook:" + call.path.rsplit("/", 1)[-1]
    if call.method in ("chat.postMessage", "chat.update"):
        return "thread:" + str(call.body.get("thread_ts") or call.body.get("ts"))
    return None  # auth.test, and failed calls (kept apart by FakeSlack)


# -- the requests ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    number: int
    kind: str
    key: str  # the reply this request must produce (retries: the original's)
    send: Callable[[Bot], int]  # sends it, returns the HTTP status
    expects_reply: bool = True


def plan(count: int, queries: list[str], run_id: str, seed: int, mode: str) -> list[Planned]:
    """``count`` requests; in mixed mode a share of the mentions are followed (later) by their retry."""
    rng = random.Random(seed)
    kinds, weights = zip(*MIX, strict=True)
    planned: list[Planned] = []
    retries: list[Planned] = []
    for number in itertools.count():
        if len(planned) + len(retries) >= count:
            break
        kind = "ask" if mode == "ask" else rng.choices(kinds, weights)[0]
        question = rng.choice(queries)
        user = f"U0LOAD{rng.randrange(USERS):03d}"
        item = _request(number, kind, question, user, run_id)
        planned.append(item)
        if kind == "mention" and rng.random() < RETRY_SHARE and len(planned) + len(retries) < count:
            retries.append(_retry(item, number, run_id, question, user))
    for retry in retries:  # each retry somewhere after its original
        original = next(i for i, p in enumerate(planned) if p.key == retry.key)
        planned.insert(rng.randint(original + 1, len(planned)), retry)
    return planned


def _request(number: int, kind: str, question: str, user: str, run_id: str) -> Planned:
    hook = f"{run_id}-{number}"
    if kind == "ask":
        return Planned(
            number, kind, "hook:" + hook, lambda bot: bot.command("/ask", question, user=user, hook=hook).status
        )
    if kind == "mention":
        thread = f"1700000000.{number:06d}"
        event = _mention(question, user, thread)
        event_id = f"Ev{run_id}{number:07d}"
        return Planned(number, kind, "thread:" + thread, lambda bot: bot.event(event, event_id=event_id).status)
    action = {"more": MORE, "helpful": HELPFUL, "not_helpful": NOT_HELPFUL}[kind]
    value = AnswerRef(question, offset=3 if kind == "more" else 0, shown=("a0000001 ¶1",)).to_value()
    return Planned(
        number,
        kind,
        "hook:" + hook,
        lambda bot: bot.click(action, value, user=user, ephemeral=True, hook=hook).status,
    )


def _retry(original: Planned, number: int, run_id: str, question: str, user: str) -> Planned:
    event = _mention(question, user, original.key.removeprefix("thread:"))
    event_id = f"Ev{run_id}{number:07d}"
    return Planned(
        number, "mention_retry", original.key, lambda bot: bot.event(event, event_id=event_id, retry=1).status, False
    )


def _mention(question: str, user: str, ts: str) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {question}",
        "ts": ts,
        "channel": "C0LOAD01",
    }


@dataclass(frozen=True)
class Prepared:
    """A Slack request's body (built before the clock starts); it is signed when it is sent, as Slack does."""

    body: bytes
    content_type: str
    extra: tuple[tuple[str, str], ...] = ()


class _Preparing(Bot):
    """The harness's Slack payloads (``Bot.command``, ``event``, ``click``), kept instead of sent."""

    prepared: Prepared | None = None

    def post_signed(  # type: ignore[override]
        self, body: bytes, content_type: str, *, extra: dict[str, str] | None = None, **_: Any
    ) -> Response:
        self.prepared = Prepared(body, content_type, tuple((extra or {}).items()))
        return Response(200, "")


def prepare(planned: list[Planned], sink: Sink) -> list[Prepared]:
    preparing = _Preparing("127.0.0.1", 0, app=None, runtime=None, slack=sink, executor=None)  # type: ignore[arg-type]
    prepared = []
    for item in planned:
        preparing.prepared = None
        item.send(preparing)
        assert preparing.prepared is not None
        prepared.append(preparing.prepared)
    return prepared


def send_signed(port: int, request: Prepared, timeout: float) -> int:
    """Sign ``request`` now and POST it to the bot on a new connection (as Slack does); the HTTP status.

    A few lines of socket code instead of ``http.client``: the load script shares the bot's two cores, so every
    millisecond of CPU it spends is one the bot does not get.
    """
    timestamp = str(int(time.time()))
    headers = [
        ("Host", f"127.0.0.1:{port}"),
        ("Content-Type", request.content_type),
        ("Content-Length", str(len(request.body))),
        ("X-Slack-Request-Timestamp", timestamp),
        ("X-Slack-Signature", sign(request.body, timestamp)),
        *request.extra,
        ("Connection", "close"),
    ]
    head = f"POST {EVENTS_PATH} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head.encode("latin-1") + request.body)
        return _read_status(connection)


def _read_status(connection: socket.socket) -> int:
    """The status of the HTTP response on ``connection``, once all of it (headers and Content-Length body) is read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        body += chunk
    return status


# -- the bot and the reindexer, as processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(
    sink: Sink, db: Path, workdir: Path, log_path: Path, workers: int = 1
) -> Iterator[tuple[int, subprocess.Popen]]:
    """``corpusbot serve`` on a free loopback port, until ready; stopped with SIGINT (then killed) at the end."""
    port = free_port()
    env = {**os.environ, **environment(sink, db), "CORPUSBOT_RATE_LIMIT": "off", "PYTHONPATH": str(ROOT)}
    env.pop("SLACK_APP_TOKEN", None)
    command = [*SERVE, "serve", "--port", str(port), "--db", str(db), "--log-format", "json"]
    command += ["--workers", str(workers)]
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, process, log_path)
            yield port, process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_ready(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"corpusbot serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if _get(port, "/readyz")[0] == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"corpusbot serve was not ready within {timeout:.0f}s")


def _generation(port: int) -> int:
    """The index generation the bot answers from (it goes up with every reindex)."""
    status, text = _get(port, "/readyz")
    return int(json.loads(text).get("generation") or 0) if status == 200 else 0


def _get(port: int, path: str) -> tuple[int, str]:
    status, text, _ = _get_from_worker(port, path)
    return status, text


def _get_from_worker(port: int, path: str) -> tuple[int, str, str]:
    """(status, body, the answering worker's pid from ``X-Corpusbot-Worker``)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        worker = response.getheader("X-Corpusbot-Worker") or ""
        return response.status, response.read().decode("utf-8", "replace"), worker
    except OSError:
        return 0, "", ""


def _metrics_of_every_worker(port: int, workers: int, attempts: int = 500) -> list[str]:
    """``/metrics`` as each worker answers it (each sums every worker's counters); connections land on any of them."""
    seen: dict[str, str] = {}
    for _ in range(attempts if workers > 1 else 1):
        status, text, worker = _get_from_worker(port, "/metrics")
        if status == 200:
            seen[worker] = text
        if len(seen) >= workers:
            break
    return list(seen.values())


@dataclass
class Reindexer:
    """Loops ``corpusbot index --full`` in another process until stopped."""

    db: Path
    paths: list[str]
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    terminated: bool = False  # the last run was stopped at the end (not counted)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._thread.start()

    def wait_for_first_run(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.runs == 0 and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, timeout: float = 120.0) -> None:
        """Let the running reindex finish (at most ``timeout`` seconds, then it is terminated) and stop looping."""
        self._stop.set()
        self._thread.join(timeout)
        process = self._process
        if self._thread.is_alive() and process is not None:
            process.terminate()  # a reindex stopped at any point leaves the previous index intact
            self.terminated = True
            self._thread.join(30)

    def _loop(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [*SERVE, "index", "--full", *self.paths, "--db", str(self.db)]
        while not self._stop.is_set():
            started = time.perf_counter()
            with tempfile.TemporaryFile("w+") as output:
                self._process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
                returncode = self._process.wait()
                output.seek(0)
                text = output.read()
            self._process = None
            if self.terminated:
                return
            self.seconds.append(time.perf_counter() - started)
            self.runs += 1
            if returncode != 0:
                self.failures.append(text.strip()[-500:])


# -- running and reporting ---------------------------------------------------------------------------------------


@dataclass
class Options:
    mode: str = "mixed"
    requests: int = 2000
    concurrency: int = 16
    db: Path | None = None
    passages: int = 20_000
    queries: Path | None = None
    reindex: bool | None = None  # default: on in mixed mode
    reply_timeout: float = 10.0
    max_seconds: float = 900.0
    seed: int = 7
    workdir: Path | None = None
    workers: int = 1


@dataclass
class Report:
    mode: str
    requests_planned: int
    requests_sent: int
    concurrency: int
    passages: int
    seconds: float
    throughput_per_s: float
    ack_ms: dict[str, float]
    reply_ms: dict[str, float]
    done_ms: dict[str, float]  # acknowledged and answered: the later of the two, from sending
    by_kind: dict[str, int]
    non_2xx: int
    server_5xx: int
    connection_errors: int
    lost_replies: int
    duplicate_replies: int
    unexpected_replies: int
    invalid_blocks: int
    server_error_lines: int
    log_lines_without_request_id: int
    reindex_runs: int
    reindex_failures: int
    index_switches: int  # index generations the bot moved to while the load ran
    metrics_requests_total: float
    notes: list[str]
    workers: int = 1
    metrics_workers: int = 1  # workers whose /metrics all gave metrics_requests_total (each sums every worker)
    bot_cpu_ms_per_request: float | None = None  # user + system CPU of `corpusbot serve` and its workers
    load_cpu_ms_per_request: float | None = None  # of this process: clients and the fake Slack API

    @property
    def failed(self) -> bool:
        return bool(
            self.requests_sent < self.requests_planned
            or self.non_2xx
            or self.connection_errors
            or self.lost_replies
            or self.duplicate_replies
            or self.unexpected_replies
            or self.invalid_blocks
            or self.server_error_lines
            or self.log_lines_without_request_id
            or self.reindex_failures
        )

    def markdown(self) -> str:
        rows = [
            ("mode", self.mode),
            ("requests sent / planned", f"{self.requests_sent} / {self.requests_planned}"),
            ("by kind", ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))),
            ("concurrency", self.concurrency),
            ("serve --workers", self.workers),
            ("index passages", f"{self.passages:,}"),
            ("wall time s", f"{self.seconds:.1f}"),
            ("throughput req/s", f"{self.throughput_per_s:.1f}"),
            ("ack ms p50 / p95 / p99", _triple(self.ack_ms)),
            ("reply ms p50 / p95 / p99 (send → reply at sink)", _triple(self.reply_ms)),
            ("acknowledged and answered ms p50 / p95 / p99 (the later of the two)", _triple(self.done_ms)),
            ("non-2xx / 5xx / connection errors", f"{self.non_2xx} / {self.server_5xx} / {self.connection_errors}"),
            (
                "lost / duplicated / unexpected replies",
                f"{self.lost_replies} / {self.duplicate_replies} / {self.unexpected_replies}",
            ),
            ("replies Slack would reject (Block Kit)", self.invalid_blocks),
            (
                "server ERROR log lines / lines without request id",
                f"{self.server_error_lines} / {self.log_lines_without_request_id}",
            ),
            ("reindex runs (failed)", f"{self.reindex_runs} ({self.reindex_failures})"),
            ("new index generations picked up during the load", self.index_switches),
            (
                "corpusbot_slack_requests_total at the end (every worker's /metrics sums all workers)",
                f"{self.metrics_requests_total:.0f} (the same from {self.metrics_workers} of {self.workers} workers)",
            ),
            ("CPU ms per request: bot / load script (incl. fake Slack)", self._cpu()),
        ]
        lines = ["| figure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
        return "\n".join(lines + [f"\n{note}" for note in self.notes])

    def _cpu(self) -> str:
        if self.bot_cpu_ms_per_request is None or self.load_cpu_ms_per_request is None:
            return "-"
        return f"{self.bot_cpu_ms_per_request:.2f} / {self.load_cpu_ms_per_request:.2f}"


def _per_request(seconds: float | None, requests: int) -> float | None:
    return seconds * 1000 / requests if seconds is not None and requests else None


def _triple(p: dict[str, float]) -> str:
    return " / ".join(f"{p[k]:.1f}" for k in ("p50", "p95", "p99")) if p else "-"


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    data = np.array(values) * 1000
    return {f"p{q}": float(np.percentile(data, q)) for q in (50, 95, 99)} | {"max": float(data.max())}


def run(options: Options) -> Report:
    mode = options.mode
    reindex = (mode == "mixed") if options.reindex is None else options.reindex
    with tempfile.TemporaryDirectory(prefix="slack-load-") as scratch:
        workdir = options.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        notes: list[str] = []
        db, corpus_paths, queries = _prepare(options, workdir, notes)
        passages = _passage_count(db)
        run_id = secrets.token_hex(3)  # event ids are remembered in the database: a new run must not reuse them
        planned = plan(options.requests, queries, run_id, options.seed, mode)
        log_path = workdir / "serve.log"
        with Sink() as sink, serving(sink, db, workdir, log_path, options.workers) as (port, process):
            reindexer = Reindexer(db, corpus_paths) if reindex else None
            if reindexer:
                reindexer.start()
                reindexer.wait_for_first_run(options.max_seconds)  # then the load meets a reindex in full swing
            generation_before = _generation(port)
            try:
                outcome = _drive(port, sink, planned, options, process.pid)
                generation_after = _generation(port)
            finally:
                if reindexer:
                    reindexer.stop()
            expositions = _metrics_of_every_worker(port, options.workers)
            totals = {_requests_total(text) for text in expositions}
            metrics_total = totals.pop() if len(totals) == 1 else -1.0  # -1: the workers disagree
        errors, unlabelled, error_lines = _scan_log(log_path)
        notes.extend(f"Server error line: {line[:500]}" for line in error_lines)
        expected = Counter(p.key for p in planned if p.expects_reply)
        counts = {key: len(times) for key, times in sink.arrivals.items()}
        notes.extend(f"Unexpected reply: {key} ({n}x)" for key, n in list(counts.items()) if key not in expected)
        if reindexer and reindexer.runs:
            notes.append(
                f"Reindex (`corpusbot index --full`, {passages:,} passages) took "
                f"{np.median(reindexer.seconds):.1f} s per run (median) while the load ran."
            )
        if reindexer:
            notes.extend(f"Reindex failure: {failure}" for failure in reindexer.failures[:3])
            if reindexer.terminated:
                notes.append("The last reindex was still running at the end and was stopped (not counted).")
        return Report(
            mode=mode,
            requests_planned=len(planned),
            requests_sent=outcome.sent,
            concurrency=options.concurrency,
            passages=passages,
            seconds=outcome.seconds,
            throughput_per_s=outcome.sent / outcome.seconds if outcome.seconds else 0.0,
            ack_ms=percentiles(outcome.acks),
            reply_ms=percentiles(outcome.replies),
            done_ms=percentiles(outcome.done),
            by_kind=dict(Counter(p.kind for p in planned[: outcome.sent])),
            non_2xx=sum(1 for s in outcome.statuses if not 200 <= s < 300),
            server_5xx=sum(1 for s in outcome.statuses if s >= 500),
            connection_errors=outcome.connection_errors,
            lost_replies=sum(1 for key in expected if counts.get(key, 0) == 0),
            duplicate_replies=sum(max(0, counts.get(key, 0) - 1) for key in expected),
            unexpected_replies=sum(n for key, n in counts.items() if key not in expected),
            invalid_blocks=sum(1 for call in sink.replies() if call.problems),
            server_error_lines=errors,
            log_lines_without_request_id=unlabelled,
            reindex_runs=reindexer.runs if reindexer else 0,
            reindex_failures=len(reindexer.failures) if reindexer else 0,
            index_switches=max(0, generation_after - generation_before),
            metrics_requests_total=metrics_total,
            notes=notes,
            workers=options.workers,
            metrics_workers=len(expositions),
            bot_cpu_ms_per_request=_per_request(outcome.bot_cpu_seconds, outcome.sent),
            load_cpu_ms_per_request=_per_request(outcome.load_cpu_seconds, outcome.sent),
        )


@dataclass
class _Outcome:
    sent: int = 0
    seconds: float = 0.0
    statuses: list[int] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    connection_errors: int = 0
    bot_cpu_seconds: float | None = None
    load_cpu_seconds: float | None = None


def _drive(port: int, sink: Sink, planned: list[Planned], options: Options, bot_pid: int | None = None) -> _Outcome:
    """Send everything with ``concurrency`` client threads, each waiting for its reply before the next request."""
    outcome = _Outcome()
    lock = threading.Lock()
    queue = iter(zip(planned, prepare(planned, sink), strict=True))
    bot_cpu = _cpu_seconds(bot_pid)
    load_cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + options.max_seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            with lock:
                item, request = next(queue, (None, None))
                if item is None or request is None:
                    return
                outcome.sent += 1
            sent_at = time.perf_counter()
            try:
                status = send_signed(port, request, options.reply_timeout)
            except OSError:
                with lock:
                    outcome.connection_errors += 1
                continue
            acked_at = time.perf_counter()
            arrived = sink.wait(item.key, options.reply_timeout) if item.expects_reply else None
            with lock:
                outcome.statuses.append(status)
                outcome.acks.append(acked_at - sent_at)
                if arrived is not None:
                    outcome.replies.append(arrived - sent_at)
                    outcome.done.append(max(arrived, acked_at) - sent_at)

    with ThreadPoolExecutor(options.concurrency) as pool:
        for future in [pool.submit(client) for _ in range(options.concurrency)]:
            future.result()
    outcome.seconds = time.perf_counter() - started
    outcome.load_cpu_seconds = time.process_time() - load_cpu
    bot_cpu_after = _cpu_seconds(bot_pid)
    if bot_cpu is not None and bot_cpu_after is not None:
        outcome.bot_cpu_seconds = bot_cpu_after - bot_cpu
    time.sleep(1.0)  # late duplicates (a retry answered twice) would arrive now
    return outcome


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of ``pid`` and its descendants so far (workers still alive), from /proc; None elsewhere."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    try:
        while pending:
            current = pending.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
    except (OSError, ValueError, IndexError):
        return None
    return total


def _prepare(options: Options, workdir: Path, notes: list[str]) -> tuple[Path, list[str], list[str]]:
    """The database, the corpus paths to reindex, and the questions to ask."""
    if options.db is not None:
        db = options.db.resolve()
        if not db.exists():
            raise SystemExit(f"No database at {db}; build one with `corpusbot index PATH --db {db}`.")
        paths = _corpus_paths(db)
        return db, paths, _queries(options.queries, paths, db)
    corpus = generate(workdir / "corpus", options.passages, 200, seed=options.seed)
    db = workdir / "load.db"
    index_corpus(db, [str(corpus.folder)])
    notes.append(f"Corpus: {options.passages:,} generated passages ({corpus.vocabulary_source}).")
    return db, [str(corpus.folder)], corpus.queries


def _corpus_paths(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'corpus_paths'").fetchone()
    return list(json.loads(row[0])) if row else []


def _queries(path: Path | None, corpus_paths: list[str], db: Path) -> list[str]:
    """``path``, else the benchmark's queries.txt beside the corpus, else word runs from random passages."""
    candidates = [path] if path else [Path(p).parent / "queries.txt" for p in corpus_paths]
    for candidate in candidates:
        if candidate and candidate.exists():
            return [q for q in candidate.read_text(encoding="utf-8").splitlines() if q.strip()]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        texts = [r[0] for r in connection.execute("SELECT text FROM passages ORDER BY random() LIMIT 200")]
    rng = random.Random(1)
    questions = []
    for text in texts:
        words = text.split()
        start = rng.randrange(max(1, len(words) - 4))
        questions.append("what about " + " ".join(words[start : start + rng.randint(2, 4)]))
    return questions or ["what happened"]


def _passage_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'passages'").fetchone()
    return int(json.loads(row[0])) if row else 0


def _scan_log(log_path: Path, keep: int = 3) -> tuple[int, int, list[str]]:
    """ERROR/CRITICAL lines (and tracebacks), Slack access lines that lack a request id, and the first ``keep``
    error lines themselves (for the report's notes)."""
    errors = unlabelled = 0
    kept: list[str] = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            error = "Traceback" in line
        else:
            error = record.get("level") in ("ERROR", "CRITICAL") or "exc_info" in record
            unlabelled += "kind" in record and not record.get("request_id")
        if error:
            errors += 1
            if len(kept) < keep:
                kept.append(line)
    return errors, unlabelled, kept


def _requests_total(exposition: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name == "corpusbot_slack_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("mixed", "ask"), default="mixed")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--db", type=Path, help="An existing index (the bot keeps its state in a -state.db file beside it)."
    )
    parser.add_argument("--passages", type=int, default=20_000, help="Size of the generated corpus without --db.")
    parser.add_argument("--queries", type=Path, help="Questions, one a line (default: the corpus's queries.txt).")
    parser.add_argument("--reindex", action=argparse.BooleanOptionalAction, default=None, help="Default: mixed only.")
    parser.add_argument("--reply-timeout", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="Stop sending after this long.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="Keep the generated corpus, database and server log here.")
    parser.add_argument("--workers", type=int, default=1, help="corpusbot serve --workers (HTTP mode processes).")
    parser.add_argument("--json", type=Path, help="Also write the report as JSON here.")
    args = parser.parse_args(argv)
    options = Options(
        mode=args.mode,
        requests=args.requests,
        concurrency=args.concurrency,
        db=args.db,
        passages=args.passages,
        queries=args.queries,
        reindex=args.reindex,
        reply_timeout=args.reply_timeout,
        max_seconds=args.max_seconds,
        seed=args.seed,
        workdir=args.workdir,
        workers=args.workers,
    )
    report = run(options)
    print(report.markdown())
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
