"""`corpusbot serve --workers N`: gunicorn's workers on one loopback port, supervised by its master.

Each response names the process that answered (``X-Corpusbot-Worker``), so
the tests can tell the workers apart.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from corpusbot.bot import config
from corpusbot.bot.cli import cli
from corpusbot.bot.serving import workers as gunicorn_workers
from tests.support.fake_slack import BOT_USER_ID, TEAM_ID, FakeSlack
from tests.support.slack_harness import environment, sign

SERVE = [sys.executable, "-c", "from corpusbot.bot.cli import main; main()", "serve"]
ATTEMPTS = 300  # connections tried before concluding that a second worker never answers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A `corpusbot serve --workers N` process on a free loopback port."""

    def __init__(
        self, slack: FakeSlack, db: Path, cwd: Path, workers: int, worker_class: str = "sync", **popen: object
    ) -> None:
        self.port = free_port()
        env = {**os.environ, **environment(slack, db), "CORPUSBOT_RATE_LIMIT": "off"}
        env.pop("SLACK_APP_TOKEN", None)
        env.pop("CORPUSBOT_WORKERS", None)
        command = [*SERVE, "--port", str(self.port), "--db", str(db), "--workers", str(workers)]
        command += ["--worker-class", worker_class]
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **popen,  # type: ignore[call-overload]
        )

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str, int]:
        """(status, body, pid of the worker that answered)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode(), int(response.getheader("X-Corpusbot-Worker") or 0)
        finally:
            connection.close()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.process.stderr.read()}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("serve --workers was not healthy in time")

    def worker_pids(self, count: int, timeout: float = 20.0) -> set[int]:
        """The pids of ``count`` different workers, from /healthz on fresh connections (the last may still boot)."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, text, header_pid = self.request("GET", "/healthz")
            assert status == 200 and json.loads(text)["pid"] == header_pid
            seen.add(header_pid)
            if len(seen) == count:
                return seen
            time.sleep(0.01)
        raise AssertionError(f"only workers {seen} answered within {timeout:g} s")

    def post_signed(self, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> tuple[int, int]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(body, timestamp),
            **(extra or {}),
        }
        status, _, pid = self.request("POST", "/slack/events", body, headers)
        return status, pid

    def ask(self, slack: FakeSlack, question: str, hook: str) -> tuple[int, int]:
        form = {
            "team_id": TEAM_ID,
            "channel_id": "C0GENERAL",
            "user_id": "U0ALICE1",
            "command": "/ask",
            "text": question,
            "response_url": slack.response_url(hook),
            "trigger_id": "1.2.3",
            "api_app_id": "A0FAKE01",
        }
        return self.post_signed(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def mention(self, event_id: str, thread: str, retry: int | None = None) -> tuple[int, int]:
        envelope = {
            "team_id": TEAM_ID,
            "api_app_id": "A0FAKE01",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            "event": {
                "type": "app_mention",
                "user": "U0ALICE1",
                "text": f"<@{BOT_USER_ID}> who is on the US delegation?",
                "ts": thread,
                "channel": "C0GENERAL",
            },
        }
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return self.post_signed(json.dumps(envelope).encode(), "application/json", extra)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, logs = self.process.communicate(timeout=timeout)
        return self.process.returncode, logs

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def stopped_or_replaced(served: Served, parent: int, old: set[int]) -> bool:
    return served.process.poll() is not None or bool(children_of(parent) - old)


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def two_workers(slack: FakeSlack, sample_db: Path, tmp_path: Path) -> Iterator[Served]:
    served = Served(slack, sample_db, tmp_path, workers=2)
    try:
        served.wait_healthy()
        yield served
    finally:
        served.kill()


def test_two_workers_answer_signed_asks_and_stop_on_sigterm_without_orphans(
    two_workers: Served, slack: FakeSlack
) -> None:
    parent = two_workers.process.pid
    workers = two_workers.worker_pids(2)
    assert parent not in workers and workers == children_of(parent)
    answered_by: set[int] = set()
    asked = 0
    while answered_by != workers and asked < ATTEMPTS:
        status, pid = two_workers.ask(slack, "who is on the US delegation?", hook=f"ask-{asked}")
        assert status == 200
        answered_by.add(pid)
        asked += 1
    assert answered_by == workers, f"only {answered_by} acknowledged /ask"
    replies = slack.wait_for("response_url", count=asked, timeout=20)
    assert sorted(call.path.rsplit("/", 1)[-1] for call in replies) == sorted(f"ask-{n}" for n in range(asked))
    assert all("Treasury Secretary Becente" in call.body["blocks"][1]["text"]["text"] for call in replies)

    code, logs = two_workers.stop(signal.SIGTERM)
    assert code == 0, logs
    assert "listening on http://127.0.0.1" in logs and "2 workers" in logs
    assert "Traceback" not in logs and "restarting" not in logs
    assert wait_until(lambda: not any(running(pid) for pid in workers), timeout=5)


def test_a_retried_event_reaching_another_worker_is_answered_once(two_workers: Served, slack: FakeSlack) -> None:
    event_id, thread = "Ev0WORKERS1", "1700000000.000777"
    status, first = two_workers.mention(event_id, thread)
    assert status == 200
    slack.wait_for("chat.postMessage", timeout=10)
    retried_on: set[int] = set()
    for attempt in range(ATTEMPTS):  # Slack retries up to 3 times; more only make the test stricter
        status, pid = two_workers.mention(event_id, thread, retry=attempt % 3 + 1)
        assert status == 200
        retried_on.add(pid)
        if attempt >= 2 and retried_on - {first}:
            break
    assert retried_on - {first}, "no retry reached the other worker"
    time.sleep(1.0)  # a second answer would be posted within milliseconds
    posts = [call for call in slack.calls_to("chat.postMessage") if call.body.get("thread_ts") == thread]
    assert len(posts) == 1


def test_a_worker_that_dies_is_replaced(two_workers: Served) -> None:
    workers = two_workers.worker_pids(2)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(children_of(two_workers.process.pid) - workers) == 1)
    replacement = children_of(two_workers.process.pid) - workers
    assert two_workers.worker_pids(2) == (workers - {victim}) | replacement
    code, logs = two_workers.stop(signal.SIGINT)
    assert code == 0
    assert f"Worker (pid:{victim}) was sent SIGKILL!" in logs


def test_workers_dying_over_and_over_stop_the_server_with_status_1(two_workers: Served) -> None:
    parent = two_workers.process.pid
    killed: set[int] = set()
    for _ in range(6):  # the sixth death within a minute is a crash loop
        victims = children_of(parent) - killed
        if two_workers.process.poll() is not None or not victims:
            break
        victim = min(victims)
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)
        wait_until(lambda before=victims: stopped_or_replaced(two_workers, parent, killed | before))
    assert two_workers.process.wait(timeout=20) == 1
    logs = two_workers.process.stderr.read()
    assert "Workers died 6 times within 60 s; stopping the server" in logs and "Traceback" not in logs
    assert not any(running(pid) for pid in children_of(parent) | killed)


def test_sigint_stops_every_worker_even_when_started_with_sigint_ignored(
    slack: FakeSlack, sample_db: Path, tmp_path: Path
) -> None:
    # A shell's background job inherits SIGINT ignored; the workers inherit it from the parent too.
    served = Served(
        slack, sample_db, tmp_path, workers=3, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    try:
        served.wait_healthy()
        workers = served.worker_pids(3)
        code, logs = served.stop(signal.SIGINT)
        assert code == 0, logs
        assert "Traceback" not in logs
        assert not any(running(pid) for pid in workers)
    finally:
        served.kill()


def test_workers_stop_by_themselves_when_the_parent_is_killed(two_workers: Served) -> None:
    workers = two_workers.worker_pids(2)
    two_workers.kill()  # SIGKILL: the parent cannot stop them
    assert wait_until(lambda: not any(running(pid) for pid in workers), timeout=15)


@pytest.mark.parametrize("value", ["0", "-1", "65", "two"])
def test_a_bad_workers_value_is_a_clean_usage_error(runner, slack: FakeSlack, sample_db: Path, value: str) -> None:
    result = runner.invoke(
        cli, ["serve", "--db", str(sample_db), "--workers", value], env=environment(slack, sample_db)
    )
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output and "Traceback" not in result.output


def test_corpusbot_workers_is_read_and_checked() -> None:
    assert config.serve_workers({}) == 1
    assert config.serve_workers({"CORPUSBOT_WORKERS": " 3 "}) == 3
    for wrong in ("0", "65", "many", "2.5", "²"):  # "²": a digit to str.isdigit, not to int()
        with pytest.raises(config.ConfigError, match="CORPUSBOT_WORKERS must be a whole number from 1 to 64"):
            config.serve_workers({"CORPUSBOT_WORKERS": wrong})


def test_a_bad_corpusbot_workers_stops_serve_with_one_line(runner, slack: FakeSlack, sample_db: Path) -> None:
    env = {**environment(slack, sample_db), "CORPUSBOT_WORKERS": "lots"}
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)], env=env)
    assert result.exit_code == 1 and "CORPUSBOT_WORKERS must be a whole number" in result.output
    assert "Traceback" not in result.output


def test_a_taken_port_is_a_clean_error(two_workers: Served, runner, slack: FakeSlack, sample_db: Path) -> None:
    for workers in ("1", "2"):
        result = runner.invoke(
            cli,
            ["serve", "--db", str(sample_db), "--port", str(two_workers.port), "--workers", workers],
            env=environment(slack, sample_db),
        )
        assert result.exit_code == 1, result.output
        assert f"Cannot listen on 127.0.0.1:{two_workers.port}" in result.output and "Traceback" not in result.output


def test_mixed_load_on_two_workers_with_a_reindex_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    from benchmarks import slack_load

    options = slack_load.Options(
        mode="mixed", requests=60, concurrency=4, passages=300, max_seconds=120, workdir=tmp_path, workers=2
    )
    report = slack_load.run(options)
    assert report.requests_sent == report.requests_planned == 60
    assert report.by_kind.get("mention_retry", 0) > 0
    assert (report.non_2xx, report.connection_errors) == (0, 0)
    assert (report.lost_replies, report.duplicate_replies, report.unexpected_replies) == (0, 0, 0)
    assert report.server_error_lines == 0 and report.reindex_failures == 0, report.notes
    assert report.metrics_workers == 2 and report.metrics_requests_total == 60  # summed over both workers
    assert len(report.done_ms) == 4 and not report.failed


class SlowSlack(FakeSlack):
    """A Slack whose Web API and response_url take ``delay`` seconds to answer a reply (a slow day at Slack)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _record(self, call) -> None:
        if call.method in ("chat.postMessage", "response_url"):
            time.sleep(self.delay)
        super()._record(call)


FROZEN_ASKS = 40
IN_FLIGHT = 8
SLACK_ACK_SECONDS = 3.0  # Slack's limit


def test_a_frozen_worker_stalls_no_acks_and_is_replaced(sample_db: Path, tmp_path: Path) -> None:
    with SlowSlack(delay=2.5) as slack:
        served = Served(slack, sample_db, tmp_path, workers=2)
        frozen = 0
        try:
            served.wait_healthy()
            parent = served.process.pid
            workers = served.worker_pids(2)
            frozen = min(workers)
            os.kill(frozen, signal.SIGSTOP)  # stuck: it neither accepts nor beats, its count stays where it was
            stopped_at = time.monotonic()

            def ask(number: int) -> tuple[int, int, float]:
                began = time.monotonic()
                status, pid = served.ask(slack, "rare earth", hook=f"frozen-{number}")
                return status, pid, time.monotonic() - began

            with ThreadPoolExecutor(IN_FLIGHT) as pool:
                results = list(pool.map(ask, range(FROZEN_ASKS)))
            in_time = sum(1 for status, _, seconds in results if status == 200 and seconds < SLACK_ACK_SECONDS)
            slowest = max(seconds for *_, seconds in results)
            print(f"{in_time} of {FROZEN_ASKS} acknowledged within 3 s with a frozen worker; slowest {slowest:.2f} s")
            assert in_time >= FROZEN_ASKS - 2
            assert frozen not in {pid for _, pid, _ in results}

            assert wait_until(
                lambda: not running(frozen) and len(children_of(parent) - workers) == 1,
                timeout=gunicorn_workers.STUCK_TIMEOUT_SECONDS + 10,
            ), "the frozen worker was not replaced"
            replaced_after = time.monotonic() - stopped_at
            print(f"frozen worker replaced {replaced_after:.1f} s after it stopped")
            replacement = children_of(parent) - workers
            assert served.worker_pids(2) == (workers - {frozen}) | replacement
            slack.wait_for("response_url", FROZEN_ASKS, timeout=30)  # every ask was answered too
            code, logs = served.stop(signal.SIGTERM)
            assert code == 0, logs
            assert f"WORKER TIMEOUT (pid:{frozen})" in logs
            assert f"Worker (pid:{frozen}) was sent SIGKILL!" in logs
            assert "Traceback" not in logs
        finally:
            if frozen and running(frozen):
                os.kill(frozen, signal.SIGKILL)
            served.kill()


# -- what gunicorn's hooks add: metrics of every worker, drain on SIGTERM, losses on SIGKILL --------------------


def asks_ok(exposition: str) -> float:
    """``corpusbot_slack_requests_total{kind="ask", outcome="ok"}`` in a /metrics exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        if family.name == "corpusbot_slack_requests":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"kind": "ask", "outcome": "ok"}:
                    return sample.value
    return 0.0


def metrics_by_worker(served: Served, count: int) -> dict[int, str]:
    """``/metrics`` as each of ``count`` workers answers it, on fresh connections.

    Which worker takes a new connection is the kernel's choice, and it can pick the same one hundreds of times in a
    row (a busy machine, one worker always awake first): every other attempt holds an idle connection open first,
    which keeps the worker that accepts it (a ``sync`` one) busy reading, so that another one answers.
    """
    seen: dict[int, str] = {}
    for attempt in range(ATTEMPTS):
        idle = socket.create_connection(("127.0.0.1", served.port), timeout=10) if attempt % 2 else None
        try:
            status, text, pid = served.request("GET", "/metrics")
        finally:
            if idle is not None:
                idle.close()
        assert status == 200
        seen[pid] = text
        if len(seen) == count:
            return seen
    raise AssertionError(f"only workers {set(seen)} answered /metrics")


@pytest.fixture(params=["sync", "waitress"])
def either_class(request: pytest.FixtureRequest, slack: FakeSlack, sample_db: Path, tmp_path: Path) -> Iterator[Served]:
    served = Served(slack, sample_db, tmp_path, workers=2, worker_class=request.param)
    try:
        served.wait_healthy()
        yield served
    finally:
        served.kill()


def test_metrics_of_any_worker_sum_the_requests_both_workers_answered(either_class: Served, slack: FakeSlack) -> None:
    by_worker: dict[int, int] = {}
    asked = 0
    while len(by_worker) < 2 or min(by_worker.values()) < 2:
        assert asked < ATTEMPTS, f"the asks did not reach both workers: {by_worker}"
        status, pid = either_class.ask(slack, "rare earth", hook=f"sum-{asked}")
        assert status == 200
        by_worker[pid] = by_worker.get(pid, 0) + 1
        asked += 1
    slack.wait_for("response_url", count=asked, timeout=20)
    views = metrics_by_worker(either_class, 2)
    assert set(views) == set(by_worker)
    assert [asks_ok(text) for text in views.values()] == [asked, asked], by_worker


def test_sigterm_lets_each_worker_post_the_answers_it_acknowledged(either_class: Served, slack: FakeSlack) -> None:
    slack.hold("response_url", seconds=2.0)  # answers are being posted when the stop comes
    acked = [either_class.ask(slack, "rare earth", hook=f"drain-{n}") for n in range(4)]
    assert [status for status, _ in acked] == [200] * 4
    slack.wait_for_held(1, timeout=5)
    code, logs = either_class.stop(signal.SIGTERM)
    assert code == 0, logs
    posted = sorted(call.path.rsplit("/", 1)[-1] for call in slack.calls_to("response_url"))
    assert posted == [f"drain-{n}" for n in range(4)], logs
    assert not slack.calls_to("response_url (client gone)") and "Traceback" not in logs


KILL_ASKS = 80


def test_a_worker_killed_mid_load_is_replaced_and_loses_at_most_the_answer_it_had_in_progress(
    two_workers: Served, slack: FakeSlack
) -> None:
    """The documented window (docs/slack.md, "Killed workers"): with the SQLite state, a worker killed with SIGKILL
    loses the answers it acknowledged and had not posted yet; a sync worker takes no request while it has one (up to
    BUSY_WAIT_SECONDS), so that is at most one."""
    parent = two_workers.process.pid
    workers = two_workers.worker_pids(2)
    victim = min(workers)
    acked: list[str] = []
    lock = threading.Lock()

    def ask(number: int) -> None:
        if number == KILL_ASKS // 4:
            os.kill(victim, signal.SIGKILL)
        try:
            status, _ = two_workers.ask(slack, "rare earth", hook=f"kill-{number}")
        except OSError:  # the connection the victim held: not acknowledged, so Slack would send it again
            return
        if status == 200:
            with lock:
                acked.append(f"kill-{number}")

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(ask, range(KILL_ASKS)))
    assert wait_until(lambda: len(children_of(parent) - workers) == 1), "the killed worker was not replaced"
    time.sleep(1.0)  # the last answers are posted within milliseconds
    answered = {call.path.rsplit("/", 1)[-1] for call in slack.calls_to("response_url")}
    lost = set(acked) - answered
    print(f"{len(acked)} of {KILL_ASKS} acknowledged, {len(lost)} of them not answered after SIGKILL of a worker")
    assert len(acked) >= KILL_ASKS - IN_FLIGHT
    assert len(lost) <= 1, lost
    assert two_workers.worker_pids(2) == (workers - {victim}) | (children_of(parent) - workers)


def test_a_bad_corpusbot_worker_class_stops_serve_with_one_line(runner, slack: FakeSlack, sample_db: Path) -> None:
    assert config.serve_worker_class({}) == "sync"
    assert config.serve_worker_class({"CORPUSBOT_WORKER_CLASS": " Waitress "}) == "waitress"
    env = {**environment(slack, sample_db), "CORPUSBOT_WORKER_CLASS": "gevent"}
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)], env=env)
    assert result.exit_code == 1 and "CORPUSBOT_WORKER_CLASS must be one of: sync, waitress" in result.output
    assert "Traceback" not in result.output


class FakeArbiter:
    """What the crash-loop hook reads of gunicorn's master: its listeners (none once it stops), the workers running
    and wanted, and ``halt``."""

    def __init__(self, running: int, wanted: int = 2) -> None:
        self.LISTENERS = [object()]
        self.WORKERS = {pid: object() for pid in range(running)}
        self.num_workers = wanted
        self.halted: list[int] = []

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        self.halted.append(exit_status)


class FakeWorker:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def crash_loop_after(deaths: int, running: int, stopping: bool = False) -> list[int]:
    """The statuses the master was halted with after ``deaths`` workers died, ``running`` left each time, 1 s apart."""
    now = [1000.0]
    crash_loop = gunicorn_workers.CrashLoop(clock=lambda: now[0])
    application = gunicorn_workers.WorkerApplication(0, 2, lambda: None, crash_loop=crash_loop)  # type: ignore[arg-type]
    arbiter = FakeArbiter(running)
    if stopping:
        arbiter.LISTENERS = []
    for pid in range(deaths):
        now[0] += 1.0
        application._child_exit(arbiter, FakeWorker(pid))
    return arbiter.halted


def test_workers_lost_over_and_over_halt_the_master_but_retired_or_stopping_ones_do_not() -> None:
    limit = gunicorn_workers.MAX_RESTARTS
    assert crash_loop_after(limit, running=1) == []
    assert crash_loop_after(limit + 1, running=1) == [1]
    assert crash_loop_after(8, running=2) == []  # a reload (SIGHUP): the replacements run already
    assert crash_loop_after(8, running=1, stopping=True) == []  # the master stopping them


def test_reloads_one_after_another_do_not_stop_the_server(slack: FakeSlack, sample_db: Path, tmp_path: Path) -> None:
    served = Served(slack, sample_db, tmp_path, workers=3)
    try:
        served.wait_healthy()
        before = served.worker_pids(3)
        for _ in range(3):  # 9 workers retired within seconds: more than a crash loop's 6 deaths
            served.process.send_signal(signal.SIGHUP)
            time.sleep(1.0)
        assert served.process.poll() is None, served.process.stderr.read()
        assert not served.worker_pids(3) & before
        code, logs = served.stop(signal.SIGTERM)
        assert code == 0 and "Workers died" not in logs and "Traceback" not in logs, logs
    finally:
        served.kill()
