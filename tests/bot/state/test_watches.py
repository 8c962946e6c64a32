"""Watches in the state database, SQLite and PostgreSQL: stored with their creator, and claimed exactly once."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.bot.state import BotState, database
from corpusbot.bot.state import watches as watches_module
from corpusbot.bot.state.watches import (
    MAX_WATCHES_PER_CHANNEL,
    Watch,
    WatchList,
    WatchRefused,
    WatchStore,
    stored_watches,
)


@pytest.fixture(params=["sqlite", "postgres"])
def two_states(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BotState, BotState]]:
    """Two processes' states on one database: the SQLite file beside the index, or one PostgreSQL database."""
    index = tmp_path / "corpusbot.db"
    if request.param == "sqlite":
        states = (BotState(index), BotState(index))
    else:
        url = request.getfixturevalue("postgres_url")
        states = (BotState(index, url=url), BotState(index, url=url))
    try:
        yield states
    finally:
        for state in states:
            state.close()


def test_a_watch_is_stored_with_its_channel_creator_and_time(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    first = one.watches.add("C1", "rare earth export licences", "U1", "2025-06-01T00:00:00+00:00")
    second = one.watches.add("C1", "steel", "U2", None)
    other = two.watches.add("D9", "wheat", "U1", None)
    assert first.id != second.id != other.id
    assert first.created_at.endswith("+00:00") and first.created_at[:4].isdigit()
    assert [w.query for w in two.watches.of_channel("C1")] == ["rare earth export licences", "steel"]
    assert two.watches.get(first.id) == first
    assert [w.id for w in one.watches.all()] == [first.id, second.id, other.id]
    assert two.watches.remove(second.id) is True
    assert two.watches.remove(second.id) is False
    assert [w.id for w in one.watches.of_channel("C1")] == [first.id]
    assert one.watches.get(second.id) is None


def test_a_step_is_claimed_by_one_process_and_no_key_twice(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", "t1")
    assert one.watches.claim(watch, "t2", ["k1", "k2", "k1"]) == ["k1", "k2"]
    assert two.watches.claim(watch, "t2", ["k1", "k2"]) is None  # read before the first claim: too late
    moved = two.watches.get(watch.id)
    assert isinstance(moved, Watch) and moved.checked_through == "t2"
    assert two.watches.claim(moved, "t3", ["k2", "k3"]) == ["k3"]  # k2 was posted already
    again = one.watches.get(watch.id)
    assert again is not None
    assert one.watches.claim(again, "t4", []) == []


def test_a_watch_created_on_an_empty_index_is_claimed_from_none(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", None)
    assert two.watches.claim(watch, "t1", ["k1"]) == ["k1"]
    assert one.watches.claim(watch, "t1", ["k1"]) is None


def test_a_removed_watch_claims_nothing_and_its_keys_go_with_it(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", "t1")
    assert one.watches.claim(watch, "t2", ["k1"]) == ["k1"]
    one.watches.remove(watch.id)
    assert two.watches.claim(watch, "t2", ["k1"]) is None
    again = two.watches.add("C1", "rare earth", "U1", "t2")
    assert two.watches.claim(again, "t3", ["k1"]) == ["k1"]  # a new watch: its own keys


def test_many_threads_of_two_processes_racing_claim_each_step_once(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", "t0")
    results: list[list[str] | None] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race(store: WatchStore) -> None:
        start.wait()
        claimed = store.claim(watch, "t1", [f"k{i}" for i in range(20)])
        with lock:
            results.append(claimed)

    threads = [threading.Thread(target=race, args=((one if i % 2 else two).watches,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0] == [f"k{i}" for i in range(20)]


def test_the_sqlite_state_gets_the_watch_tables_by_migration(tmp_path: Path) -> None:
    path = database.prepare(tmp_path / "corpusbot.db")
    conn = sqlite3.connect(path)
    try:
        names = {row[0] for row in conn.execute(f"SELECT name FROM {database.MIGRATIONS_TABLE}")}
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert "m006_watches" in names
    assert {database.WATCHES_TABLE, database.WATCH_POSTED_TABLE} <= tables


def test_watches_survive_a_restart(tmp_path: Path) -> None:
    index = tmp_path / "corpusbot.db"
    state = BotState(index)
    watch = state.watches.add("C1", "rare earth", "U1", "t1")
    state.watches.claim(watch, "t2", ["k1"])
    state.close()
    state = BotState(index)
    try:
        stored = state.watches.get(watch.id)
        assert stored is not None and stored.checked_through == "t2" and stored.user_id == "U1"
        assert state.watches.claim(stored, "t3", ["k1", "k2"]) == ["k2"]
    finally:
        state.close()


def test_stored_watches_and_the_cli_read_them_without_writing(
    two_states: tuple[BotState, BotState], tmp_path: Path
) -> None:
    one, _ = two_states
    index = tmp_path / "corpusbot.db"  # the fixture's: its state file is beside it
    watch = one.watches.add("C1", "rare <b>earth</b>", "U1", None)
    one.watches.add("C2", "steel", "U2", "t1")
    url = one.store.url if one.store is not None else None
    found = stored_watches(index, url=url)
    assert [w.query for w in found] == ["rare <b>earth</b>", "steel"] and found[0] == watch
    env = {"CORPUSBOT_STATE_URL": url.value if url else "", "CORPUSBOT_STATE_DB": ""}
    db = ["--db", str(index)]
    result = CliRunner().invoke(cli, ["watches", "--channel", "C1", "--json", *db], env=env)
    assert result.exit_code == 0, result.output
    assert [w["query"] for w in json.loads(result.output)] == ["rare <b>earth</b>"]
    result = CliRunner().invoke(cli, ["watches", *db], env=env)
    assert result.exit_code == 0 and f"#{watch.id}  C1  U1" in result.output and "nothing indexed yet" in result.output


def test_no_state_database_yet_is_no_watches_or_a_clear_error(tmp_path: Path) -> None:
    index = tmp_path / "corpusbot.db"
    index.write_bytes(b"")  # an index file, and no state file beside it
    assert stored_watches(index) == []
    result = CliRunner().invoke(cli, ["watches", "--db", str(tmp_path / "missing.db")], env={"CORPUSBOT_STATE_URL": ""})
    assert result.exit_code == 1 and "corpusbot index" in result.output and "Traceback" not in result.output


def test_what_a_new_watch_already_matches_is_never_claimed(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", "t1", ["k1", "k2", "k1"])
    assert two.watches.claim(watch, "t1", ["k1", "k2", "k3"]) == ["k3"]  # the same second checked again
    other = two.watches.add("C2", "rare earth", "U1", "t1", ["k3"])
    assert one.watches.claim(other, "t2", ["k1", "k3"]) == ["k1"]  # keys are per watch


def test_a_claim_that_fails_half_way_moves_nothing(
    two_states: tuple[BotState, BotState], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = two_states
    watch = one.watches.add("C1", "rare earth", "U1", "t1")

    def lost(*args: object) -> list[str]:
        raise ConnectionError("the database went away after the watch was moved on")

    with monkeypatch.context() as patch:
        patch.setattr(WatchList, "_record", lost)
        patch.setattr(watches_module, "_pg_record", lost)
        with pytest.raises(ConnectionError):
            one.watches.claim(watch, "t2", ["k1"])
    assert two.watches.get(watch.id) == watch  # still at t1: the step is claimed again, and posted once
    assert two.watches.claim(watch, "t2", ["k1"]) == ["k1"]


def test_racing_adds_make_no_duplicate_and_keep_the_cap(two_states: tuple[BotState, BotState]) -> None:
    one, two = two_states
    for number in range(MAX_WATCHES_PER_CHANNEL - 2):
        one.watches.add("C1", f"topic {number}", "U1", None)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race(store: WatchStore, query: str) -> None:
        start.wait()
        try:
            store.add("C1", query, "U2", None, ["k1"])
            outcome = "added"
        except WatchRefused as refused:
            outcome = "refused" if refused.existing else "refused without reason"
        with lock:
            outcomes.append(outcome)

    queries = ["Rare Earth", "rare earth", "steel", "wheat", "rare earth", "coal", "RARE EARTH", "oil"]
    threads = [threading.Thread(target=race, args=((one, two)[i % 2].watches, q)) for i, q in enumerate(queries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = one.watches.of_channel("C1")
    assert len(stored) == MAX_WATCHES_PER_CHANNEL and sorted(outcomes) == ["added"] * 2 + ["refused"] * 6
    assert len({w.query.lower() for w in stored}) == len(stored)
