"""Seen event ids: new once, remembered across a restart, forgotten after the ttl, and fast while a reindex writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from corpusbot.bot.state import database, events
from corpusbot.bot.state.database import EVENTS_TABLE
from corpusbot.bot.state.events import SeenEvents
from tests.bot.state.conftest import Clock


def test_an_event_is_new_once(sample_db: Path) -> None:
    seen = SeenEvents(sample_db)
    assert seen.first_time("Ev1") is True
    assert seen.first_time("Ev1") is False
    assert seen.first_time("Ev2") is True
    seen.close()


def test_seen_events_survive_a_restart(sample_db: Path) -> None:
    SeenEvents(sample_db).first_time("Ev1")
    restarted = SeenEvents(sample_db)
    assert restarted.first_time("Ev1") is False
    restarted.close()


def test_seen_events_expire_after_the_ttl(sample_db: Path, clock: Clock) -> None:
    seen = SeenEvents(sample_db, ttl=3600, clock=clock)
    assert seen.first_time("Ev1")
    clock.now += 3599
    assert not SeenEvents(sample_db, ttl=3600, clock=clock).first_time("Ev1")
    clock.now += 2
    assert SeenEvents(sample_db, ttl=3600, clock=clock).first_time("Ev1")
    assert not seen.first_time("Ev1")  # the instance above just re-recorded it


def test_old_events_are_purged(sample_db: Path, clock: Clock) -> None:
    seen = SeenEvents(sample_db, ttl=60, clock=clock)
    for number in range(5):
        seen.first_time(f"Ev{number}")
    clock.now += 400
    seen.first_time("EvNew")
    count = seen.db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0]
    assert count == 1


def test_concurrent_duplicates_get_exactly_one_first_time(sample_db: Path) -> None:
    seen = SeenEvents(sample_db)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(seen.first_time("EvSame"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 15 + [True]


def test_a_reindex_holding_the_write_lock_neither_delays_the_ack_nor_causes_repeats(sample_db: Path) -> None:
    seen = SeenEvents(sample_db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")  # what a reindex holds while it writes
    results: list[bool] = []
    try:
        worker = threading.Thread(target=lambda: results.extend([seen.first_time("EvBusy"), seen.first_time("EvBusy")]))
        worker.start()
        worker.join(timeout=5)  # the lock is only released below: finishing here means it did not wait for it
        assert not worker.is_alive(), "recording an event waited for the reindex's lock (the feedback timeout?)"
        assert results == [True, False]
    finally:
        blocker.rollback()
        blocker.close()


def test_after_a_busy_database_event_checks_use_memory_only_for_a_while(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    seen = SeenEvents(sample_db, clock=lambda: now[0])
    attempts: list[str] = []
    real_write = database.write

    def counting_write(db, sql, params, *, busy_ms):
        attempts.append(sql.split()[0])
        return real_write(db, sql, params, busy_ms=busy_ms)

    monkeypatch.setattr(database, "write", counting_write)
    blocker = sqlite3.connect(sample_db)
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


class FakeShared:
    """The ids the other workers saw (what `serving.shared_events.SharedEvents` answers)."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.asked: list[tuple[str, float]] = []

    def first_time(self, event_id: str, ttl: float, now: float | None = None) -> bool:
        self.asked.append((event_id, ttl))
        if event_id in self.known:
            return False
        self.known.add(event_id)
        return True


def test_an_id_another_worker_saw_is_not_new(sample_db: Path) -> None:
    shared = FakeShared({"EvOther"})
    seen = SeenEvents(sample_db, ttl=120, shared=shared)
    assert seen.first_time("EvOther") is False
    assert seen.first_time("EvMine") is True
    assert shared.known == {"EvOther", "EvMine"}
    assert shared.asked == [("EvOther", 120), ("EvMine", 120)]
    seen.close()


def test_memory_keeps_at_most_memory_events_ids(sample_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "MEMORY_EVENTS", 3)
    seen = SeenEvents(sample_db)
    for number in range(10):
        seen.first_time(f"Ev{number}")
    assert list(seen._recent) == ["Ev7", "Ev8", "Ev9"]  # the oldest go first
    assert not seen.first_time("Ev0")  # forgotten in memory, still in the database
    seen.close()


def test_ping_answers_while_the_database_does(sample_db: Path) -> None:
    seen = SeenEvents(sample_db)
    assert seen.ping() is True
    seen.close()
    assert seen.ping() is False
