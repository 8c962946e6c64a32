"""The bot's own state: Slack events already handled, feedback on answers, and a per-user rate limit.

- `events`: the event ids handled within the last hour (`SeenEvents`), so a
  retried event never gets a second reply, even after a restart;
- `feedback`: Helpful / Not helpful clicks (`Feedback`, `FeedbackLog`, and
  `read_feedback` for any open database);
- `ratelimit`: questions per user in a sliding window (`RateLimiter`), in memory;
- `database`: where events and feedback are stored, the ``bot_`` tables of the
  index database (the only module that knows it);
- `botstate`: `BotState`, the one object per process holding the events and
  the feedback, each over its own connection.

May import `corpusbot.index` (to open the database), `corpusbot.bot.config`,
sqlite-utils and the standard library; nothing else of `corpusbot.bot`: the
Slack app and the CLI use this package, not the other way round. With
`serve --workers N`, the event ids the workers share
(`corpusbot.bot.serving.shared_events`) come in as a `SharedEventIds`.
"""

from corpusbot.bot.state.botstate import BotState
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE
from corpusbot.bot.state.events import SeenEvents, SharedEventIds
from corpusbot.bot.state.feedback import VERDICTS, Feedback, FeedbackLog, read_feedback
from corpusbot.bot.state.ratelimit import RateLimiter, Verdict

__all__ = [
    "EVENTS_TABLE",
    "FEEDBACK_TABLE",
    "VERDICTS",
    "BotState",
    "Feedback",
    "FeedbackLog",
    "RateLimiter",
    "SeenEvents",
    "SharedEventIds",
    "Verdict",
    "read_feedback",
]
