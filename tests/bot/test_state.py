"""The bot's state: seen events survive a restart and expire, feedback round-trips, the rate limiter is fair."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from corpusbot.bot.config import RateLimit
from corpusbot.bot.state import EVENTS_TABLE, BotState, Feedback, RateLimiter, Verdict, read_feedback
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_event_is_new_once(sample_db: Path) -> None:
    state = BotState(sample_db)
    assert state.first_time("Ev1") is True
    assert state.first_time("Ev1") is False
    assert state.first_time("Ev2") is True
    state.close()


def test_seen_events_survive_a_restart(sample_db: Path) -> None:
    BotState(sample_db).first_time("Ev1")
    restarted = BotState(sample_db)
    assert restarted.first_time("Ev1") is False
    restarted.close()


def test_seen_events_expire_after_the_ttl(sample_db: Path) -> None:
    clock = Clock()
    state = BotState(sample_db, event_ttl=3600, clock=clock)
    assert state.first_time("Ev1")
    clock.now += 3599
    assert not BotState(sample_db, event_ttl=3600, clock=clock).first_time("Ev1")
    clock.now += 2
    assert BotState(sample_db, event_ttl=3600, clock=clock).first_time("Ev1")
    assert not state.first_time("Ev1")  # the instance above just re-recorded it


def test_old_events_are_purged(sample_db: Path) -> None:
    clock = Clock()
    state = BotState(sample_db, event_ttl=60, clock=clock)
    for number in range(5):
        state.first_time(f"Ev{number}")
    clock.now += 400
    state.first_time("EvNew")
    count = state.db.execute(f"SELECT count(*) FROM {EVENTS_TABLE}").fetchone()[0]
    assert count == 1


def test_concurrent_duplicates_get_exactly_one_first_time(sample_db: Path) -> None:
    state = BotState(sample_db)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(state.first_time("EvSame"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 15 + [True]


def test_a_reindex_holding_the_write_lock_neither_delays_the_ack_nor_causes_repeats(sample_db: Path) -> None:
    state = BotState(sample_db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")  # what a reindex holds while it writes
    results: list[bool] = []
    try:
        worker = threading.Thread(
            target=lambda: results.extend([state.first_time("EvBusy"), state.first_time("EvBusy")])
        )
        worker.start()
        worker.join(timeout=5)  # the lock is only released below: finishing here means it did not wait for it
        assert not worker.is_alive(), "recording an event waited for the reindex's lock (the 10 s feedback timeout?)"
        assert results == [True, False]
    finally:
        blocker.rollback()
        blocker.close()


def test_after_a_busy_database_event_checks_use_memory_only_for_a_while(sample_db: Path, monkeypatch) -> None:
    now = [1000.0]
    state = BotState(sample_db, clock=lambda: now[0])
    attempts: list[str] = []
    real_write = BotState._write

    def counting_write(db, sql, params, busy_ms=10_000):
        attempts.append(sql.split()[0])
        return real_write(db, sql, params, busy_ms)

    monkeypatch.setattr(BotState, "_write", staticmethod(counting_write))
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert state.first_time("EvA")  # waits its short timeout once, then backs off
        assert state.first_time("EvB")
        assert state.first_time("EvC")
        assert not state.first_time("EvA")  # memory still prevents repeats
        assert attempts == ["INSERT"]
    finally:
        blocker.rollback()
        blocker.close()
    now[0] += 60  # the back-off is over: the database is used again
    assert state.first_time("EvD")
    assert "INSERT" in attempts[1:]


def test_a_slow_feedback_write_does_not_block_event_checks(sample_db: Path) -> None:
    state = BotState(sample_db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")
    feedback = threading.Thread(
        target=state.add_feedback,
        args=(Feedback(user_id="U1", channel_id="C1", verdict="helpful", question="q", passages=("a",)),),
    )
    feedback.start()  # waits (up to 10 s) for the write lock, holding only the feedback lock
    try:
        checked: list[bool] = []
        checker = threading.Thread(target=lambda: checked.append(state.first_time("EvFast")))
        checker.start()
        checker.join(timeout=3)
        assert not checker.is_alive() and checked == [True]
    finally:
        blocker.rollback()
        blocker.close()
        feedback.join(timeout=15)
    assert [f.question for f in state.feedback()] == ["q"]


def test_feedback_round_trips_newest_first(sample_db: Path) -> None:
    state = BotState(sample_db)
    state.add_feedback(Feedback("U1", "C1", "helpful", "who is on the US delegation?", ("a ¶1", "b ¶2")))
    stored = state.add_feedback(Feedback("U2", None, "not_helpful", "rare earth", (), offset=3))
    assert stored.id is not None and stored.created_at
    records = state.feedback()
    assert [r.user_id for r in records] == ["U2", "U1"]
    assert records[1].passages == ("a ¶1", "b ¶2") and records[1].question == "who is on the US delegation?"
    assert records[0].offset == 3 and records[0].channel_id is None
    assert [r.user_id for r in state.feedback(limit=1)] == ["U2"]
    with pytest.raises(ValueError):
        state.add_feedback(Feedback("U3", None, "meh", "q", ()))


def test_feedback_survives_a_reindex(sample_db: Path) -> None:
    state = BotState(sample_db)
    state.add_feedback(Feedback("U1", "C1", "helpful", "q", ()))
    index_corpus(sample_db, [BUNDLED], full=True)
    db = store.connect(sample_db)
    assert [r.user_id for r in read_feedback(db)] == ["U1"]
    db.conn.close()


def test_tables_dropped_under_the_bot_are_recreated(sample_db: Path) -> None:
    state = BotState(sample_db)
    other = store.connect(sample_db)
    other.execute(f"DROP TABLE {EVENTS_TABLE}")
    other.execute("DROP TABLE bot_feedback")
    other.conn.commit()
    other.conn.close()
    assert state.first_time("EvAfterDrop") is True
    state.add_feedback(Feedback("U1", None, "helpful", "q", ()))
    assert len(state.feedback()) == 1


def test_rate_limiter_allows_then_notices_once_then_drops() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(3, 60), clock=clock)
    verdicts = [limiter.check("U1") for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.NOTICE, Verdict.DROP, Verdict.DROP]
    assert limiter.check("U2") is Verdict.ALLOW
    assert limiter.retry_after("U1") == 60
    clock.now += 30
    assert limiter.retry_after("U1") == 30
    clock.now += 30
    assert limiter.check("U1") is Verdict.ALLOW  # the window slid past the first three
    assert [limiter.check("U1") for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.NOTICE]


def test_rate_limiter_off() -> None:
    limiter = RateLimiter(RateLimit(0, 60))
    assert all(limiter.check("U1") is Verdict.ALLOW for _ in range(1000))
