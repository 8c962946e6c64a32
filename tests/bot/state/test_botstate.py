"""BotState: one object for the seen events and the feedback, kept in the state database beside the index, whose
slow writes never hold up an ack, and which a reindex holding the index never delays."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from corpusbot.bot.state import BotState, Feedback, stored_feedback
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE
from tests.bot.state.conftest import Clock

PROMPT_SECONDS = 1.0  # generous: a check waits at most its 250 ms busy timeout; a reindex takes seconds


def timed(call, *args):
    began = time.monotonic()
    result = call(*args)
    return result, time.monotonic() - began


def test_the_state_lives_beside_the_index_not_in_it(sample_db: Path) -> None:
    state = BotState(sample_db)
    assert state.path == sample_db.parent / "sample-state.db"
    state.first_time("Ev1")
    state.add_feedback(Feedback("U1", None, "helpful", "q", ()))
    state.close()
    index = sqlite3.connect(sample_db)
    assert not index.execute("SELECT name FROM sqlite_master WHERE name LIKE 'bot_%'").fetchall()
    index.close()
    stored = sqlite3.connect(sample_db.parent / "sample-state.db")
    assert stored.execute(f"SELECT event_id FROM {EVENTS_TABLE}").fetchall() == [("Ev1",)]
    assert stored.execute(f"SELECT question FROM {FEEDBACK_TABLE}").fetchall() == [("q",)]
    stored.close()


def test_a_state_database_may_be_named(sample_db: Path, tmp_path: Path) -> None:
    state = BotState(sample_db, state_db=tmp_path / "mine.db")
    state.add_feedback(Feedback("U1", None, "helpful", "q", ()))
    state.close()
    assert not (sample_db.parent / "sample-state.db").exists()
    assert [r.user_id for r in stored_feedback(sample_db, tmp_path / "mine.db")] == ["U1"]


def test_a_reindex_holding_the_index_delays_neither_event_checks_nor_feedback(sample_db: Path) -> None:
    state = BotState(sample_db)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")  # what a reindex holds while it writes, for seconds
    try:
        checks = [timed(state.first_time, event) for event in ("EvR1", "EvR2", "EvR1", "EvR2")]
        stored, took = timed(state.add_feedback, Feedback("U1", "C1", "helpful", "q", ("a",)))
    finally:
        blocker.rollback()
        blocker.close()
    assert [result for result, _ in checks] == [True, True, False, False]
    assert max(seconds for _, seconds in checks) < PROMPT_SECONDS
    assert took < PROMPT_SECONDS and stored.id is not None
    # Recorded in the database, not only in memory: another process (a restarted one) knows them too.
    restarted = BotState(sample_db)
    assert not restarted.first_time("EvR1") and not restarted.first_time("EvR2")
    restarted.close()
    state.close()


def test_a_slow_feedback_write_does_not_block_event_checks(sample_db: Path) -> None:
    state = BotState(sample_db)
    blocker = sqlite3.connect(state.path)
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
        assert not state.first_time("EvFast")  # the state database is busy: memory still knows it
    finally:
        blocker.rollback()
        blocker.close()
        feedback.join(timeout=15)
    assert [f.question for f in state.feedback()] == ["q"]
    state.close()


def test_events_and_feedback_go_to_their_stores(sample_db: Path, clock: Clock) -> None:
    state = BotState(sample_db, event_ttl=60, clock=clock)
    assert state.first_time("Ev1") and not state.first_time("Ev1")
    clock.now += 61
    assert state.first_time("Ev1")  # the ttl given is the one used
    stored = state.add_feedback(Feedback("U1", None, "helpful", "q", ()))
    assert state.feedback() == [stored] == state.feedback_log.read()
    assert state.feedback(limit=0) == []
    assert state.ping()
    state.close()
    assert not state.ping()


def test_close_closes_every_connection(sample_db: Path) -> None:
    state = BotState(sample_db)
    with state.events.connections.borrow() as events_db:
        pass
    state.close()
    for db in (events_db, state.feedback_log.db):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            db.execute("SELECT 1")
