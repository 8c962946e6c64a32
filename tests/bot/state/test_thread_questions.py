"""Each thread's and DM's last question (follow-ups' context), in SQLite and PostgreSQL: windows, sharing, limits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpusbot.bot.state import BotState, database
from corpusbot.bot.state.thread_questions import (
    DM_SECONDS,
    DM_THREAD,
    MAX_QUESTION_CHARS,
    THREAD_SECONDS,
    ThreadQuestions,
)
from tests.bot.state.conftest import Clock


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[tuple[ThreadQuestions, ...]]:
    """Two processes' stores on one state database, on the test's clock."""
    index = tmp_path / "corpusbot.db"
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    states = [BotState(index, url=url), BotState(index, url=url)]
    stores = tuple(ThreadQuestions(state.path, state.store, clock=clock) for state in states)
    try:
        yield stores
    finally:
        for store in stores:
            store.close()
        for state in states:
            state.close()


def test_a_thread_remembers_its_last_question_for_every_process(two_stores: tuple[ThreadQuestions, ...]) -> None:
    one, two = two_stores
    assert one.earlier("C1", "1700.1") is None
    one.remember("C1", "1700.1", "who is on the US delegation?")
    assert two.earlier("C1", "1700.1") == "who is on the US delegation?"
    two.remember("C1", "1700.1", "and what did they want?")
    assert one.earlier("C1", "1700.1") == "and what did they want?"
    assert one.earlier("C1", "1700.2") is None  # another thread
    assert one.earlier("C2", "1700.1") is None  # the same ts in another channel


def test_a_dm_question_is_context_for_ten_minutes_a_thread_question_for_a_day(
    two_stores: tuple[ThreadQuestions, ...], clock: Clock
) -> None:
    one, _ = two_stores
    one.remember("D1", DM_THREAD, "who is on the US delegation?")
    one.remember("C1", "1700.1", "rare earth licences")
    clock.now += DM_SECONDS - 1
    assert one.earlier("D1", DM_THREAD) == "who is on the US delegation?"
    clock.now += 2
    assert one.earlier("D1", DM_THREAD) is None
    assert one.earlier("C1", "1700.1") == "rare earth licences"
    clock.now += THREAD_SECONDS
    assert one.earlier("C1", "1700.1") is None


def test_a_long_chain_keeps_its_newest_part(two_stores: tuple[ThreadQuestions, ...]) -> None:
    one, _ = two_stores
    chain = "a" * MAX_QUESTION_CHARS + " and the newest words"
    one.remember("C1", "1700.1", chain)
    assert one.earlier("C1", "1700.1") == chain[-MAX_QUESTION_CHARS:]


def test_awkward_text_is_stored_as_it_came(two_stores: tuple[ThreadQuestions, ...]) -> None:
    one, two = two_stores
    text = "'; DROP TABLE bot_thread_questions; -- \\u00e9 ü 😀 %s %(x)s"
    one.remember("C1", "1700.1", text)
    assert two.earlier("C1", "1700.1") == text


def test_old_rows_are_purged_when_a_question_is_written(tmp_path: Path, clock: Clock) -> None:
    state = BotState(tmp_path / "corpusbot.db")
    store = ThreadQuestions(state.path, clock=clock)
    try:
        store.remember("C1", "old", "an old question")
        clock.now += THREAD_SECONDS + 4000  # past the purge interval too
        store.remember("C1", "new", "a new question")
        with sqlite3.connect(state.path) as conn:
            rows = conn.execute(f"SELECT thread_ts FROM {database.THREAD_QUESTIONS_TABLE}").fetchall()
        assert rows == [("new",)]
    finally:
        store.close()
        state.close()


def test_the_migration_makes_the_table_and_a_replaced_state_file_gets_it_back(tmp_path: Path, clock: Clock) -> None:
    assert database.m005_thread_questions in database.MIGRATIONS
    state = BotState(tmp_path / "corpusbot.db")
    assert state.path is not None
    with sqlite3.connect(state.path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        assert "m005_thread_questions" in names
        conn.execute(f"DROP TABLE {database.THREAD_QUESTIONS_TABLE}")
    store = ThreadQuestions(state.path, clock=clock)
    try:
        assert store.earlier("C1", "1700.1") is None  # no table: nothing remembered, no error
        store.remember("C1", "1700.1", "rare earth")
        assert store.earlier("C1", "1700.1") == "rare earth"
    finally:
        store.close()
        state.close()


def test_botstate_has_one_and_closes_it(tmp_path: Path) -> None:
    state = BotState(tmp_path / "corpusbot.db")
    state.thread_questions.remember("C1", "1700.1", "rare earth")
    assert state.thread_questions.earlier("C1", "1700.1") == "rare earth"
    state.close()
    with pytest.raises(sqlite3.ProgrammingError):
        state.thread_questions.earlier("C1", "1700.1")
