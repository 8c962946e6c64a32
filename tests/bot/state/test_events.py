"""Seen event ids: new once, remembered across a restart, forgotten after the ttl, and fast while a reindex writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from corpusbot.bot.state import database, events
from corpusbot.bot.state.database import EVENTS_TABLE
from corpusbot.bot.state.events import SeenEvents
from tests.bot.state.conftest import Clock


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def test_an_event_is_new_once(state: Path) -> None:
    seen = SeenEvents(state)
    assert seen.first_time("Ev1") is True
    assert seen.first_time("Ev1") is False
    assert seen.first_time("Ev2") is True
    seen.close()


def test_seen_events_survive_a_restart(state: Path) -> None:
    SeenEvents(state).first_time("Ev1")
    restarted = SeenEvents(state)
    assert restarted.first_time("Ev1") is False
    restarted.close()


def test_seen_events_expire_after_the_ttl(state: Path, clock: Clock) -> None:
    seen = SeenEvents(state, ttl=3600, clock=clock)
    assert seen.first_time("Ev1")
    clock.now += 3599
    assert not SeenEvents(state, ttl=3600, clock=clock).first_time("Ev1")
    clock.now += 2
    assert SeenEvents(state, ttl=3600, clock=clock).first_time("Ev1")
    assert not seen.first_time("Ev1")  # the instance above just re-recorded it


def test_old_events_are_purged(state: Path, clock: Clock) -> None:
    seen = SeenEvents(state, ttl=60, clock=clock)
    for number in range(5):
        seen.first_time(f"Ev{number}")
    clock.now += 400
    seen.first_time("EvNew")
    with seen.connections.borrow() as db:
        count = db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0]
    assert count == 1


def test_concurrent_duplicates_get_exactly_one_first_time(state: Path) -> None:
    seen = SeenEvents(state)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(seen.first_time("EvSame"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 15 + [True]


def test_a_busy_state_database_neither_delays_the_ack_nor_causes_repeats(state: Path) -> None:
    seen = SeenEvents(state)
    blocker = sqlite3.connect(state)
    blocker.execute("BEGIN IMMEDIATE")  # another worker writing, or a stuck one holding the lock
    results: list[bool] = []
    try:
        worker = threading.Thread(target=lambda: results.extend([seen.first_time("EvBusy"), seen.first_time("EvBusy")]))
        worker.start()
        worker.join(timeout=5)  # the lock is only released below: finishing here means it did not wait for it
        assert not worker.is_alive(), "recording an event waited for the database's lock (the feedback timeout?)"
        assert results == [True, False]
    finally:
        blocker.rollback()
        blocker.close()
    seen.close()


def test_checks_arriving_together_while_the_database_is_busy_do_not_wait_for_each_other(state: Path) -> None:
    seen = SeenEvents(state)
    blocker = sqlite3.connect(state)
    blocker.execute("BEGIN IMMEDIATE")
    start, took, results = threading.Barrier(8), [], []

    def check(number: int) -> None:
        start.wait()
        began = time.monotonic()
        results.append(seen.first_time(f"EvTogether{number}"))
        took.append(time.monotonic() - began)

    threads = [threading.Thread(target=check, args=(number,)) for number in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        blocker.rollback()
        blocker.close()
    print(f"8 checks against a busy database: slowest {max(took) * 1000:.0f} ms")
    # Each waits at most its own short busy timeout, side by side; one after another they would take 8 of them.
    assert results == [True] * 8
    assert max(took) < 4 * events.EVENT_BUSY_TIMEOUT_MS / 1000
    assert [seen.first_time(f"EvTogether{number}") for number in range(8)] == [False] * 8
    seen.close()


def test_after_a_busy_database_event_checks_use_memory_only_for_a_while(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    seen = SeenEvents(state, clock=lambda: now[0])
    attempts: list[str] = []
    real_write = database.write

    def counting_write(db, sql, params, *, busy_ms):
        attempts.append(sql.split()[0])
        return real_write(db, sql, params, busy_ms=busy_ms)

    monkeypatch.setattr(database, "write", counting_write)
    blocker = sqlite3.connect(state)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert seen.first_time("EvA")  # waits its short timeout once, then backs off
        assert seen.first_time("EvB")
        assert seen.first_time("EvC")
        assert not seen.first_time("EvA")  # memory still prevents repeats
        assert attempts == ["INSERT"]
    finally:
        blocker.rollback()
        blocker.close()
    now[0] += 60  # the back-off is over: the database is used again
    assert seen.first_time("EvD")
    assert "INSERT" in attempts[1:]


def test_memory_keeps_at_most_memory_events_ids(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MEMORY_EVENTS", 3)
    seen = SeenEvents(state)
    for number in range(10):
        seen.first_time(f"Ev{number}")
    assert list(seen._recent) == ["Ev7", "Ev8", "Ev9"]  # the oldest go first
    assert not seen.first_time("Ev0")  # forgotten in memory, still in the database
    seen.close()


def test_ping_answers_while_the_database_does(state: Path) -> None:
    seen = SeenEvents(state)
    assert seen.ping() is True
    seen.close()
    assert seen.ping() is False
