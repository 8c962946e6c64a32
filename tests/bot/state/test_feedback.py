"""Feedback: clicks round-trip newest first, survive a reindex, and a database without any reads as none."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from corpusbot.bot.state import database
from corpusbot.bot.state.feedback import Feedback, FeedbackLog, read_feedback, stored_feedback
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store


@pytest.fixture
def state(sample_db: Path) -> Path:
    return database.prepare(sample_db)


def test_feedback_round_trips_newest_first(state: Path) -> None:
    log = FeedbackLog(state)
    log.add(Feedback("U1", "C1", "helpful", "who is on the US delegation?", ("a ¶1", "b ¶2")))
    stored = log.add(Feedback("U2", None, "not_helpful", "rare earth", (), offset=3))
    assert stored.id is not None and stored.created_at
    records = log.read()
    assert [r.user_id for r in records] == ["U2", "U1"]
    assert records[1].passages == ("a ¶1", "b ¶2") and records[1].question == "who is on the US delegation?"
    assert records[0].offset == 3 and records[0].channel_id is None
    assert records[0] == stored
    assert [r.user_id for r in log.read(limit=1)] == ["U2"]
    with pytest.raises(ValueError):
        log.add(Feedback("U3", None, "meh", "q", ()))
    assert len(log.read()) == 2  # the bad verdict stored nothing
    log.close()


def test_the_index_generation_of_the_answer_is_stored_with_the_vote(state: Path) -> None:
    log = FeedbackLog(state)
    log.add(Feedback("U1", "C1", "helpful", "q", ("a ¶1",), generation=5))
    log.add(Feedback("U2", "C1", "helpful", "q", ()))  # from a button posted before generations were carried
    assert [(r.user_id, r.generation) for r in log.read()] == [("U2", None), ("U1", 5)]
    log.close()


def test_a_given_time_is_kept(state: Path) -> None:
    log = FeedbackLog(state)
    stored = log.add(Feedback("U1", None, "helpful", "q", (), created_at="2025-01-02T03:04:05+00:00"))
    assert stored.created_at == "2025-01-02T03:04:05+00:00" == log.read()[0].created_at
    log.close()


def test_feedback_survives_a_reindex(sample_db: Path, state: Path) -> None:
    log = FeedbackLog(state)
    log.add(Feedback("U1", "C1", "helpful", "q", ()))
    index_corpus(sample_db, [BUNDLED], full=True)
    assert [r.user_id for r in stored_feedback(sample_db)] == ["U1"]
    log.close()


def test_a_database_the_bot_never_used_has_no_feedback(sample_db: Path) -> None:
    db = store.connect(sample_db)
    assert "bot_feedback" not in db.table_names()
    assert read_feedback(db) == []
    db.conn.close()
    assert stored_feedback(sample_db) == []
    assert not database.state_path(sample_db).exists()  # reading made nothing


def test_feedback_as_json() -> None:
    record = Feedback("U1", "C1", "helpful", "q", ("a ¶1",), offset=2, created_at="t", id=7)
    assert json.loads(json.dumps(record.to_json())) == {
        "id": 7,
        "created_at": "t",
        "user_id": "U1",
        "channel_id": "C1",
        "verdict": "helpful",
        "question": "q",
        "passages": ["a ¶1"],
        "offset": 2,
        "generation": None,  # not known (feedback stored before the generation was)
    }
    assert dataclasses.replace(record, generation=4).to_json()["generation"] == 4
