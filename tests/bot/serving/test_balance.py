"""Sharing connections among serve --workers processes (bot/serving/balance.py): the least busy worker accepts."""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waitress import create_server, wasyncore

from corpusbot.bot.serving import balance
from corpusbot.bot.serving.balance import ABSENT, HEARTBEAT_SECONDS, RECHECK_SECONDS, STALE_SECONDS, Board, Seat
from corpusbot.bot.serving.prefork import bind
from corpusbot.bot.slack import replies
from corpusbot.bot.slack.runtime import InProgress
from tests.support.fake_slack import FakeSlack
from tests.support.slack_harness import running_bot


def woken(board: Board, number: int) -> bool:
    """Whether worker ``number`` was sent a wake-up (and take it)."""
    try:
        return bool(os.read(board.wake_fd(number), 512))
    except BlockingIOError:
        return False


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def board() -> Iterator[Board]:
    made = Board(2)
    yield made
    made.close()


def test_only_the_least_busy_worker_accepts_and_ties_all_accept(board: Board) -> None:
    first, second = Seat(board, 0), Seat(board, 1)
    first.join()
    second.join()
    assert first.may_accept() and second.may_accept()
    first.report(0, 1)
    assert not first.may_accept() and second.may_accept()
    second.report(0, 2)
    assert first.may_accept() and not second.may_accept()


def test_a_worker_is_woken_when_it_may_accept_again_and_only_then(board: Board) -> None:
    first, second = Seat(board, 0), Seat(board, 1)
    first.join()
    second.join()
    woken(board, 0), woken(board, 1)  # the joins' wake-ups
    first.report(0, 1)  # first stops listening; nobody needs waking
    assert not woken(board, 0) and not woken(board, 1)
    second.report(0, 1)  # now equal: first may listen again
    assert woken(board, 0) and not woken(board, 1)
    first.report(1, 2)
    assert not woken(board, 0) and not woken(board, 1)
    first.report(2, 1)  # back level with second: first wakes itself
    assert woken(board, 0) and not woken(board, 1)


def test_absent_and_departed_workers_are_not_waited_for() -> None:
    board = Board(3)
    try:
        seats = [Seat(board, number) for number in range(3)]
        seats[0].join()
        seats[1].join()
        assert board.loads[2] == ABSENT
        seats[0].report(0, 3)
        seats[1].report(0, 1)
        assert seats[1].may_accept() and not seats[0].may_accept()
        board.leave(1)  # worker 1 died: worker 0 is the only one serving
        assert seats[0].may_accept()
        assert all(woken(board, number) for number in range(3))
    finally:
        board.close()


def test_requests_in_progress_are_published_on_the_board(board: Board) -> None:
    seat = Seat(board, 1)
    seat.join()
    work = InProgress()
    work.report_to(seat.report)
    with work.working():
        work.started()
        assert board.loads[1] == 2
        work.finished()
    assert board.loads[1] == 0 == work.count


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"hi"]


def test_a_waitress_worker_accepts_once_its_sibling_becomes_busier_and_wakes_it(board: Board) -> None:
    listener = bind("127.0.0.1", 0)
    socket_map: dict[int, Any] = {}
    server = create_server(hello, map=socket_map, sockets=[listener], threads=2)
    seat, sibling = Seat(board, 0), Seat(board, 1)
    sibling.join()
    balance.share_connections(server, socket_map, seat)
    assert server.adj.asyncore_loop_timeout == RECHECK_SECONDS
    seat.report(0, 1)  # this worker is busier than its idle sibling: it does not listen
    assert not server.readable()
    server.adj.asyncore_loop_timeout = 30  # so that only the wake-up can let it accept within the client's timeout
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        answer: list[int] = []
        connection = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=10)

        def get() -> None:
            connection.request("GET", "/")
            answer.append(connection.getresponse().status)

        client = threading.Thread(target=get)
        client.start()  # connected (the kernel's backlog) but not accepted yet
        sibling.report(0, 2)  # the sibling got busier: this worker is least busy and is woken
        assert server.readable()
        client.join(10)
        assert answer == [200]
        connection.close()
    finally:
        server.task_dispatcher.shutdown()
        # closed in the loop's own thread; an empty map ends the loop
        server.trigger.pull_trigger(lambda: wasyncore.close_all(socket_map))
        thread.join(5)
        listener.close()
    assert not thread.is_alive()


def test_one_process_serves_without_a_board() -> None:
    assert balance.current_seat() is None


def test_an_ask_counts_as_in_progress_from_its_arrival_until_its_answer_was_posted(
    slack: FakeSlack, sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, answering = threading.Event(), threading.Event()
    real_answer = replies.answer

    def slow_answer(*args: Any, **kwargs: Any) -> Any:
        answering.set()
        assert release.wait(10)
        return real_answer(*args, **kwargs)

    monkeypatch.setattr(replies, "answer", slow_answer)
    with running_bot(slack, sample_db, CORPUSBOT_RATE_LIMIT="off") as bot:
        counts: list[tuple[int, int]] = []
        bot.runtime.in_progress.report_to(lambda old, new: counts.append((old, new)))
        assert bot.command("/ask", "rare earth").status == 200  # acknowledged while the answer is still to come
        assert answering.wait(10)
        assert bot.runtime.in_progress.count == 1
        release.set()
        bot.settle()
        assert bot.runtime.in_progress.count == 0
    assert slack.wait_for("response_url")
    assert max(new for _, new in counts) == 2  # the request being acknowledged and its listener overlap


def test_a_worker_that_stopped_beating_is_not_waited_for() -> None:
    board = Board(2, stale_after=0.5)
    try:
        first, second = Seat(board, 0), Seat(board, 1)
        first.join()
        second.join()
        first.report(0, 3)  # busier than its idle sibling: it does not listen...
        assert not first.may_accept()
        board.beats[1] -= 10  # ...until the sibling's heartbeat is old (stopped, hung): it is left out
        assert board.silent_for(1) >= 10
        assert first.may_accept() and second.may_accept()
        board.beat(1)  # beating again (SIGCONT): waited for again
        assert not first.may_accept() and second.may_accept()
    finally:
        board.close()


def test_a_worker_busy_computing_still_beats_from_its_thread() -> None:
    board = Board(2)
    try:
        pid = os.fork()
        if pid == 0:  # a worker whose main thread computes for a while, holding the GIL between switches
            status = 1
            try:
                balance.take_seat(board, 1)
                until = time.monotonic() + 2.0
                while time.monotonic() < until:
                    sum(range(10_000))
                status = 0
            finally:
                os._exit(status)
        time.sleep(0.3)
        silences = []
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            silences.append(board.silent_for(1))
            time.sleep(0.05)
        print(f"longest silence of a computing worker: {max(silences) * 1000:.0f} ms (beat every {HEARTBEAT_SECONDS}s)")
        assert silences and max(silences) < STALE_SECONDS
    finally:
        board.close()
