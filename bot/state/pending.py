"""Questions acknowledged but not answered yet, so that none is lost when the replica answering it dies.

Only with ``CORPUSBOT_STATE_URL`` (PostgreSQL, shared by every replica): a mention or an ``/ask`` is recorded in
``bot_pending`` (what is needed to answer it) before it is acknowledged, claimed by this process, and marked
done once its reply is posted. Every replica runs a sweeper (:mod:`corpusbot.bot.slack.pending`) that takes over
the questions whose claimer has not finished within :data:`TAKEOVER_SECONDS` and answers them.

The record before the ack waits at most :data:`RECORD_DEADLINE_SECONDS` (on a small pool of its own, like the
event check): when the database cannot take it in time, the question is answered as usual, without that
protection.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple

from corpusbot.bot.state.postgres import PgStore, StateUnavailable

TAKEOVER_SECONDS = 20.0  # a question its claimer has not answered within this long is answered by another
GIVE_UP_SECONDS = 600.0  # older questions are marked done without an answer (Slack users have moved on)
SWEEP_SECONDS = 5.0  # how often each replica looks for questions to take over
CLAIM_BATCH = 20
RECORD_DEADLINE_SECONDS = 1.0  # before the ack, which Slack wants within 3 s

log = logging.getLogger("corpusbot.state")


class Pending(NamedTuple):
    id: str
    kind: str  # "app_mention" or "/ask"
    payload: dict[str, Any]
    too_old: bool


class PgPending:
    """The pending questions in PostgreSQL; ``claimer`` names this process (host, pid and a random part)."""

    def __init__(self, store: PgStore, *, deadline: float = RECORD_DEADLINE_SECONDS) -> None:
        self.store = store
        self.deadline = deadline
        self.claimer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._records = ThreadPoolExecutor(2, thread_name_prefix="corpusbot-pending")

    def close(self) -> None:
        self._records.shutdown(wait=True, cancel_futures=True)

    def record(self, pending_id: str, kind: str, payload: dict[str, Any]) -> bool:
        """Record a question before its ack; False when that could not be done in time (it is answered anyway)."""
        if self.store.waiting() is not None:
            return False
        done = self._records.submit(self.store.add_pending, pending_id, kind, payload, self.claimer)
        try:
            done.result(timeout=self.deadline)
        except FutureTimeout:
            log.warning("Question %s not recorded as pending: no answer within %g s", pending_id[:80], self.deadline)
            return False
        except StateUnavailable:
            return False
        except Exception as error:
            log.warning("Question %s not recorded as pending: %r", pending_id[:80], error)
            return False
        return True

    def finish(self, pending_id: str) -> None:
        """Mark a question answered; logged when it cannot be (another replica will then answer it again)."""
        try:
            self.store.finish_pending(pending_id)
        except StateUnavailable as error:
            log.warning("Could not mark question %s answered (%s)", pending_id[:80], error.reason)

    def claim(self, after: float = TAKEOVER_SECONDS, limit: int = CLAIM_BATCH) -> list[Pending]:
        """Take over the questions left unfinished for ``after`` seconds (raises StateUnavailable)."""
        rows = self.store.claim_pending(self.claimer, after, GIVE_UP_SECONDS, limit)
        return [Pending(*row) for row in rows]
