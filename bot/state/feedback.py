"""Helpful / Not helpful clicks on answers, kept in the ``bot_feedback`` table of the bot's state database.

The feedback survives a reindex (it is not in the index's file). It is written
after the click is acknowledged, so a write may wait a while for the database.
Two implementations of :class:`FeedbackStore`: :class:`FeedbackLog` in the
SQLite state file of this host, :class:`PgFeedbackLog` in PostgreSQL
(``CORPUSBOT_STATE_URL``), where the feedback of every replica lands in one table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from corpusbot.bot.state import database
from corpusbot.bot.state.database import FEEDBACK_TABLE

if TYPE_CHECKING:
    import sqlite_utils

    from corpusbot.bot.config import StateUrl
    from corpusbot.bot.state.postgres import PgStore

FEEDBACK_BUSY_TIMEOUT_MS = 10_000  # written after the ack, so it can wait for another writer
VERDICTS = ("helpful", "not_helpful")


@dataclass(frozen=True)
class Feedback:
    """One Helpful / Not helpful click."""

    user_id: str
    channel_id: str | None
    verdict: str
    question: str
    passages: tuple[str, ...]
    offset: int = 0
    created_at: str = ""
    id: int | None = None
    generation: int | None = None  # of the index the answer came from (None: not known, e.g. older feedback)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "verdict": self.verdict,
            "question": self.question,
            "passages": list(self.passages),
            "offset": self.offset,
            "generation": self.generation,
        }


class FeedbackStore(Protocol):
    """Where the feedback is kept: :class:`FeedbackLog` (SQLite) or :class:`PgFeedbackLog` (PostgreSQL)."""

    def add(self, feedback: Feedback) -> Feedback:
        """Store ``feedback``; the stored record, with its id and time."""
        ...

    def read(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        ...

    def close(self) -> None: ...


def _checked(feedback: Feedback) -> str:
    """``feedback``'s time, now when it has none (ValueError for an unknown verdict)."""
    if feedback.verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}")
    return feedback.created_at or datetime.now(UTC).isoformat(timespec="seconds")


class FeedbackLog:
    """The feedback in the state database at ``path``: added one click at a time, read newest first (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.db = database.connect(path)
        self._lock = threading.Lock()  # the connection
        with self._lock:
            database.create_tables(self.db)
            database.add_feedback_generation(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def add(self, feedback: Feedback) -> Feedback:
        """Store ``feedback``; the stored record, with its id and time."""
        created = _checked(feedback)
        with self._lock:
            cursor = database.write(
                self.db,
                f"INSERT INTO {FEEDBACK_TABLE}"
                "(created_at, user_id, channel_id, verdict, question, passages, offset, generation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    feedback.user_id,
                    feedback.channel_id,
                    feedback.verdict,
                    feedback.question,
                    json.dumps(list(feedback.passages)),
                    feedback.offset,
                    feedback.generation,
                ),
                busy_ms=FEEDBACK_BUSY_TIMEOUT_MS,
            )
        return dataclasses.replace(feedback, created_at=created, id=cursor.lastrowid)

    def read(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return read_feedback(self.db, limit, lock=self._lock)


class PgFeedbackLog:
    """The feedback of every replica, in one table of the PostgreSQL state database (thread-safe).

    A write that cannot be done (the database unreachable or too slow) raises
    :class:`~corpusbot.bot.state.postgres.StateUnavailable`, which says why.
    """

    def __init__(self, store: PgStore) -> None:
        self.store = store

    def close(self) -> None:
        pass  # the store's connections are closed with the store

    def add(self, feedback: Feedback) -> Feedback:
        created = _checked(feedback)
        row = (
            created,
            feedback.user_id,
            feedback.channel_id,
            feedback.verdict,
            feedback.question,
            list(feedback.passages),
            feedback.offset,
            feedback.generation,
        )
        return dataclasses.replace(feedback, created_at=created, id=self.store.add_feedback(row))

    def read(self, limit: int | None = None) -> list[Feedback]:
        return [_from_pg(row) for row in self.store.read_feedback(limit)]


def _from_pg(row: tuple[Any, ...]) -> Feedback:
    return Feedback(
        id=row[0],
        created_at=row[1],
        user_id=row[2],
        channel_id=row[3],
        verdict=row[4],
        question=row[5],
        passages=tuple(row[6] or ()),
        offset=row[7] or 0,
        generation=row[8],
    )


def stored_feedback(
    index_db: str | os.PathLike[str],
    state_db: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    *,
    url: StateUrl | str | None = None,
) -> list[Feedback]:
    """The feedback the bot stored for the index at ``index_db``, newest first, read without writing anything.

    With ``url``, from that PostgreSQL database (``CORPUSBOT_STATE_URL``: the
    feedback of every replica). Otherwise from the state database (``state_db``,
    by default beside the index), or from the index's old table when the bot
    has not run since the state moved out of it.
    """
    if url is not None:
        from corpusbot.bot.state import postgres

        return [_from_pg(row) for row in postgres.read_feedback(url, limit)]
    db = database.open_for_reading(index_db, state_db)
    try:
        return read_feedback(db, limit)
    finally:
        db.conn.close()


def read_feedback(
    db: sqlite_utils.Database, limit: int | None = None, lock: threading.Lock | None = None
) -> list[Feedback]:
    """Feedback in ``db``, newest first (none when the bot never stored any)."""
    with lock or threading.Lock():
        if FEEDBACK_TABLE not in db.table_names():
            return []
        # The index's old table, or a state database not upgraded yet, has no generation column.
        generation = "generation" if "generation" in db[FEEDBACK_TABLE].columns_dict else "NULL"
        sql = (
            f"SELECT id, created_at, user_id, channel_id, verdict, question, passages, offset, {generation} "
            f"FROM {FEEDBACK_TABLE} ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
        )
        rows = db.execute(sql, (limit,) if limit is not None else ()).fetchall()
    return [
        Feedback(
            id=row[0],
            created_at=row[1],
            user_id=row[2],
            channel_id=row[3],
            verdict=row[4],
            question=row[5],
            passages=tuple(json.loads(row[6] or "[]")),
            offset=row[7] or 0,
            generation=row[8],
        )
        for row in rows
    ]
