"""Helpful / Not helpful clicks on answers, kept in the ``bot_feedback`` table of the bot's state database.

The feedback survives a reindex (it is not in the index's file). It is written
after the click is acknowledged, so a write may wait a while for the database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusbot.bot.state import database
from corpusbot.bot.state.database import FEEDBACK_TABLE

if TYPE_CHECKING:
    import sqlite_utils

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
        }


class FeedbackLog:
    """The feedback in the state database at ``path``: added one click at a time, read newest first (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.db = database.connect(path)
        self._lock = threading.Lock()  # the connection
        with self._lock:
            database.create_tables(self.db)

    def close(self) -> None:
        self.db.conn.close()

    def add(self, feedback: Feedback) -> Feedback:
        """Store ``feedback``; the stored record, with its id and time."""
        if feedback.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}")
        created = feedback.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            cursor = database.write(
                self.db,
                f"INSERT INTO {FEEDBACK_TABLE}(created_at, user_id, channel_id, verdict, question, passages, offset) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    feedback.user_id,
                    feedback.channel_id,
                    feedback.verdict,
                    feedback.question,
                    json.dumps(list(feedback.passages)),
                    feedback.offset,
                ),
                busy_ms=FEEDBACK_BUSY_TIMEOUT_MS,
            )
        return dataclasses.replace(feedback, created_at=created, id=cursor.lastrowid)

    def read(self, limit: int | None = None) -> list[Feedback]:
        """Stored feedback, newest first."""
        return read_feedback(self.db, limit, lock=self._lock)


def stored_feedback(
    index_db: str | os.PathLike[str], state_db: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[Feedback]:
    """The feedback the bot stored for the index at ``index_db``, newest first, read without writing anything.

    From the state database (``state_db``, by default beside the index); from
    the index's old table when the bot has not run since the state moved out of it.
    """
    db = database.open_for_reading(index_db, state_db)
    try:
        return read_feedback(db, limit)
    finally:
        db.conn.close()


def read_feedback(
    db: sqlite_utils.Database, limit: int | None = None, lock: threading.Lock | None = None
) -> list[Feedback]:
    """Feedback in ``db``, newest first (none when the bot never stored any)."""
    sql = (
        f"SELECT id, created_at, user_id, channel_id, verdict, question, passages, offset FROM {FEEDBACK_TABLE} "
        "ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
    )
    with lock or threading.Lock():
        if FEEDBACK_TABLE not in db.table_names():
            return []
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
        )
        for row in rows
    ]
