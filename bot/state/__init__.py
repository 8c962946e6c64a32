"""The bot's own state: Slack events already handled, feedback on answers, and a per-user rate limit.

- `events`: the event ids handled within the last hour (`SeenEvents`), so a
  retried event never gets a second reply, even after a restart;
- `feedback`: Helpful / Not helpful clicks (`Feedback`, `FeedbackLog`,
  `read_feedback` for any open database, and `stored_feedback` for the
  feedback of an index, read without writing);
- `ratelimit`: questions per user in a sliding window (`RateLimiter`, in memory);
- `database`: where events and feedback are stored by default: the bot's own
  SQLite file beside the index (``corpusbot.db`` → ``corpusbot-state.db``), its
  schema, and the one-time copy of the tables older versions kept in the index
  (the only module that knows any of it);
- `postgres`: where all of it is stored with ``CORPUSBOT_STATE_URL``: one
  PostgreSQL database shared by every replica, its schema and all its SQL
  (`PgStore`), and `StateUnavailable`, raised while it cannot be used;
- `botstate`: `BotState`, the one object per process holding the events and
  the feedback, each over its own connections, and making the rate limiter.
- `watches`: the channels' watches and the passages each posted (`WatchList`,
  `PgWatchList`), claimed once across processes.
- `assistant_contexts`: the assistant panel's threads (`ThreadContexts`): the
  channel the user was viewing and the thread's last question.

Each store has one interface (`EventStore`, `FeedbackStore`, `Limiter`) and
two implementations: SQLite / memory (`SeenEvents`, `FeedbackLog`,
`RateLimiter`) and PostgreSQL (`PgSeenEvents`, `PgFeedbackLog`, `PgRateLimiter`).

May import `corpusbot.index` (its errors), `corpusbot.bot.config`,
sqlite-utils, psycopg (on first use of PostgreSQL) and the standard library;
nothing else of `corpusbot.bot`: the Slack app and the CLI use this package,
not the other way round.
"""

from corpusbot.bot.state.botstate import BotState
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE
from corpusbot.bot.state.events import EventStore, PgSeenEvents, SeenEvents
from corpusbot.bot.state.feedback import (
    VERDICTS,
    Feedback,
    FeedbackLog,
    FeedbackStore,
    PgFeedbackLog,
    read_feedback,
    stored_feedback,
)
from corpusbot.bot.state.postgres import PgStore, StateUnavailable
from corpusbot.bot.state.ratelimit import Limiter, PgRateLimiter, RateLimiter, Verdict

__all__ = [
    "EVENTS_TABLE",
    "FEEDBACK_TABLE",
    "VERDICTS",
    "BotState",
    "EventStore",
    "Feedback",
    "FeedbackLog",
    "FeedbackStore",
    "Limiter",
    "PgFeedbackLog",
    "PgRateLimiter",
    "PgSeenEvents",
    "PgStore",
    "RateLimiter",
    "SeenEvents",
    "StateUnavailable",
    "Verdict",
    "read_feedback",
    "stored_feedback",
]
