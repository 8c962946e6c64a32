"""With `serve --workers N`, a retried event reaching another worker while a reindex holds the database is not
answered twice: the workers share the ids they saw lately in memory made before the fork."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

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
def test_two_workers_do_not_both_answer_a_retry_while_a_reindex_holds_the_database(
    sample_db: Path, shared: SharedEvents, share: bool
) -> None:
    one = BotState(sample_db, shared=shared if share else None)
    two = BotState(sample_db, shared=shared if share else None)
    blocker = sqlite3.connect(sample_db)
    blocker.execute("BEGIN IMMEDIATE")  # what a reindex holds while it writes
    try:
        first, retry = one.first_time("EvDuringReindex"), two.first_time("EvDuringReindex")
    finally:
        blocker.rollback()
        blocker.close()
        one.close()
        two.close()
    assert first
    assert retry is (not share)  # without the shared table the second worker cannot know (the documented gap)
