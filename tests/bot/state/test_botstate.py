"""BotState: one object for the seen events and the feedback, whose slow feedback writes never hold up an ack."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from corpusbot.bot.state import BotState, Feedback
from tests.bot.state.conftest import Clock


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


def test_close_closes_both_connections(sample_db: Path) -> None:
    state = BotState(sample_db)
    state.close()
    for db in (state.events.db, state.feedback_log.db):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            db.execute("SELECT 1")
