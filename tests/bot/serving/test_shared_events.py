"""With `serve --workers N`, a retried event reaching another worker while the bot's state database is busy is
not answered twice: the workers share the ids they saw lately in memory made before the fork. A worker frozen
or killed while holding the table's lock never holds up the others."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from corpusbot.bot.serving import shared_events
from corpusbot.bot.serving.shared_events import SharedEvents
from corpusbot.bot.state import BotState


@pytest.fixture
def shared() -> SharedEvents:
    events = SharedEvents(slots=64)
    yield events
    events.close()


def test_an_id_is_new_once_until_the_ttl_passes(shared: SharedEvents) -> None:
    assert shared.first_time("Ev1", ttl=60, now=1000.0)
    assert not shared.first_time("Ev1", ttl=60, now=1030.0)
    assert shared.first_time("Ev2", ttl=60, now=1030.0)
    assert shared.first_time("Ev1", ttl=60, now=1061.0)  # expired: new again
    assert not shared.first_time("Ev1", ttl=60, now=1062.0)


def test_a_full_table_forgets_its_oldest_ids_and_keeps_working(shared: SharedEvents) -> None:
    ids = [f"Ev{i}" for i in range(1_000)]  # far more than the 64 slots
    assert all(shared.first_time(event, ttl=3600, now=1000.0 + i) for i, event in enumerate(ids))
    assert not shared.first_time(ids[-1], ttl=3600, now=2001.0)  # the newest is still there


def test_a_forked_worker_sees_the_ids_of_another(shared: SharedEvents) -> None:
    pid = os.fork()
    if pid == 0:  # the other worker
        os._exit(0 if shared.first_time("EvRetried", ttl=3600) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not shared.first_time("EvRetried", ttl=3600)


@pytest.mark.parametrize("share", [True, False])
def test_two_workers_do_not_both_answer_a_retry_while_the_state_database_is_busy(
    sample_db: Path, shared: SharedEvents, share: bool
) -> None:
    one = BotState(sample_db, shared=shared if share else None)
    two = BotState(sample_db, shared=shared if share else None)
    blocker = sqlite3.connect(one.path)
    blocker.execute("BEGIN IMMEDIATE")  # another worker writing, or a stuck one holding the lock
    try:
        first, retry = one.first_time("EvDuringReindex"), two.first_time("EvDuringReindex")
    finally:
        blocker.rollback()
        blocker.close()
        one.close()
        two.close()
    assert first
    assert retry is (not share)  # without the shared table the second worker cannot know (the documented gap)


def in_time(call, timeout: float = 5.0):
    """``call()``'s result, from a thread given ``timeout`` seconds (a lock never released would hang the test)."""
    results: list = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "waited for a lock held by a stopped or dead worker"
    return results[0]


def worker_holding_the_lock(shared: SharedEvents) -> int:
    """A forked worker that takes the table's lock and stops while holding it (as SIGSTOP would leave it)."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        with shared._locked() as locked:
            os.write(ready_write, b"1" if locked else b"0")
            os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(60)
        os._exit(0)
    assert os.read(ready_read, 1) == b"1"
    os.close(ready_read)
    os.close(ready_write)
    return pid


def test_a_worker_stopped_or_killed_while_holding_the_lock_holds_up_no_one(
    shared: SharedEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_events, "SKIP_SECONDS", 0.2)
    assert shared.first_time("EvBefore", ttl=60)
    holder = worker_holding_the_lock(shared)
    try:
        began = time.monotonic()
        assert in_time(lambda: shared.first_time("EvBefore", ttl=60)) is True  # cannot tell: the database decides
        assert in_time(lambda: shared.first_time("EvDuring", ttl=60)) is True  # skipped without waiting
        print(f"two checks while a stopped worker holds the lock: {(time.monotonic() - began) * 1000:.0f} ms")
    finally:
        os.kill(holder, signal.SIGKILL)  # what the supervisor does to a stuck worker
        os.waitpid(holder, 0)
    time.sleep(0.3)  # the skip is over
    # The kernel released the dead worker's lock: the table works again.
    assert in_time(lambda: shared.first_time("EvBefore", ttl=60)) is False
    assert in_time(lambda: shared.first_time("EvAfter", ttl=60)) is True
    assert in_time(lambda: shared.first_time("EvAfter", ttl=60)) is False


def test_threads_of_one_worker_take_turns(shared: SharedEvents) -> None:
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(shared.first_time("EvSame", ttl=60))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
