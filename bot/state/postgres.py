"""Where the state is kept when ``CORPUSBOT_STATE_URL`` is set: PostgreSQL, shared by every process of every replica.

This module is the only one that knows it, and holds all of its SQL: the
schema (``MIGRATIONS``, each recorded by name in ``_migrations`` once it has
run, under an advisory lock so that replicas starting together take turns),
the handled Slack event ids (one ``INSERT … ON CONFLICT … RETURNING``, so
exactly one process gets to answer an event), the feedback, and the per-user
rate limit (one ``UPSERT … RETURNING`` per question on a row per user, which
PostgreSQL locks, so the limit is exact across processes).

:class:`PgStore` hands out connections of its own (:class:`_Pool`: each
borrower gets one for as long as it needs it, in autocommit; a connection the
server closed is dropped before use, and one that failed is dropped after).
It starts no thread, so a ``serve --workers N`` parent can open and close it
before forking. When the database cannot be reached, the store says so once
in the log, fails every use at once (:class:`StateUnavailable`) for a short
while that doubles up to :data:`BACKOFF_MAX_SECONDS`, then lets the next use
try again: it recovers by itself when the database is back, and logs that once
too. Statements have a server-side timeout and connections a connect timeout
and TCP timeouts, so nothing waits for long. The URL's password is never shown:
messages name the database by :attr:`StateUrl.display`.

psycopg is imported on first use only.
"""

from __future__ import annotations

import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from corpusbot.bot.config import StateUrl
from corpusbot.bot.state.database import (
    ASSISTANT_CONTEXTS_TABLE,
    EVENTS_TABLE,
    FEEDBACK_TABLE,
    MIGRATIONS_TABLE,
    THREAD_QUESTIONS_TABLE,
)
from corpusbot.index.errors import CorpusbotError

if TYPE_CHECKING:
    import psycopg

RATE_LIMITS_TABLE = "bot_rate_limits"
PENDING_TABLE = "bot_pending"
WATCHES_TABLE = "bot_watches"
WATCH_POSTED_TABLE = "bot_watch_posted"
MIGRATION_LOCK = 0x636F7270  # pg_advisory_xact_lock key ("corp") held while the schema is made or upgraded

CONNECT_TIMEOUT_SECONDS = 2  # libpq's minimum; the event check before an ack is bounded more tightly (events.py)
STATEMENT_TIMEOUT_MS = 5_000  # feedback, rate limit, schema: the server cancels anything slower
EVENT_STATEMENT_TIMEOUT_MS = 1_000  # the event check precedes an ack, which Slack wants within 3 s
TCP_USER_TIMEOUT_MS = 5_000  # a connection whose packets go unacknowledged this long (a dead host) fails
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 5, "keepalives_count": 3}
APPLICATION_NAME = "corpusbot"
MAX_CONNECTIONS = 8  # per pool, per process (two pools: event checks, and the rest)
MAX_IDLE = 2  # connections kept open between uses, per pool
SLOT_WAIT_SECONDS = 2.0  # how long a use waits when all MAX_CONNECTIONS of a pool are in use
BACKOFF_FIRST_SECONDS = 0.5  # after a failure, uses fail at once this long (then doubling) before one tries again
BACKOFF_MAX_SECONDS = 15.0

log = logging.getLogger("corpusbot.state")


class StateUnavailable(CorpusbotError):
    """The shared state database cannot be used now (unreachable, too slow, refused); the message says why."""

    def __init__(self, database: str, reason: str) -> None:
        super().__init__(f"The bot's state database {database} is unavailable: {reason}")
        self.reason = reason


# -- the schema ------------------------------------------------------------------------------------------------

# In order; add a new one for every change, never edit one that was released.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "m001_events_and_feedback",
        f"""
        CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
            event_id text PRIMARY KEY,
            seen_at double precision NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {EVENTS_TABLE}_seen_at ON {EVENTS_TABLE} (seen_at);
        CREATE TABLE IF NOT EXISTS {FEEDBACK_TABLE} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            created_at timestamptz NOT NULL,
            user_id text NOT NULL,
            channel_id text,
            verdict text NOT NULL,
            question text NOT NULL,
            passages text[] NOT NULL DEFAULT '{{}}',
            "offset" integer NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        "m002_rate_limits",
        f"""
        CREATE TABLE IF NOT EXISTS {RATE_LIMITS_TABLE} (
            user_id text PRIMARY KEY,
            hits double precision[] NOT NULL,
            noticed boolean NOT NULL DEFAULT false,
            verdict text NOT NULL
        );
        """,
    ),
    (
        "m003_pending_questions",
        f"""
        CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (
            id text PRIMARY KEY,
            kind text NOT NULL,
            payload jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            claimed_by text NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            done boolean NOT NULL DEFAULT false
        );
        CREATE INDEX IF NOT EXISTS {PENDING_TABLE}_open ON {PENDING_TABLE} (claimed_at) WHERE NOT done;
        """,
    ),
    (
        "m004_feedback_generation",
        f"ALTER TABLE {FEEDBACK_TABLE} ADD COLUMN IF NOT EXISTS generation bigint;",
    ),
    (
        "m005_assistant_contexts",
        f"""
        CREATE TABLE IF NOT EXISTS {ASSISTANT_CONTEXTS_TABLE} (
            channel_id text NOT NULL,
            thread_ts text NOT NULL,
            context jsonb,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (channel_id, thread_ts)
        );
        CREATE INDEX IF NOT EXISTS {ASSISTANT_CONTEXTS_TABLE}_updated_at ON {ASSISTANT_CONTEXTS_TABLE} (updated_at);
        """,
    ),
    (
        "m006_thread_questions",
        f"""
        CREATE TABLE IF NOT EXISTS {THREAD_QUESTIONS_TABLE} (
            channel_id text NOT NULL,
            thread_ts text NOT NULL,
            question text NOT NULL,
            asked_at double precision NOT NULL,
            PRIMARY KEY (channel_id, thread_ts)
        );
        CREATE INDEX IF NOT EXISTS {THREAD_QUESTIONS_TABLE}_asked_at ON {THREAD_QUESTIONS_TABLE} (asked_at);
        """,
    ),
    (
        "m007_watches",
        f"""
        CREATE TABLE IF NOT EXISTS {WATCHES_TABLE} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel_id text NOT NULL,
            query text NOT NULL,
            user_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            checked_through text,
            checked_at timestamptz
        );
        CREATE INDEX IF NOT EXISTS {WATCHES_TABLE}_channel ON {WATCHES_TABLE} (channel_id, id);
        CREATE TABLE IF NOT EXISTS {WATCH_POSTED_TABLE} (
            watch_id bigint NOT NULL,
            passage_key text NOT NULL,
            posted_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (watch_id, passage_key)
        );
        """,
    ),
)

# The time every statement uses: the database's clock (one for every replica), or the one a test passes.
_NOW = "COALESCE(%(now)s::float8, extract(epoch FROM statement_timestamp())::float8)"

RECORD_EVENT = f"""
    INSERT INTO {EVENTS_TABLE} AS e (event_id, seen_at) VALUES (%(event_id)s, {_NOW})
    ON CONFLICT (event_id) DO UPDATE SET seen_at = EXCLUDED.seen_at WHERE e.seen_at <= EXCLUDED.seen_at - %(ttl)s
    RETURNING 1
"""
PURGE_EVENTS = f"DELETE FROM {EVENTS_TABLE} WHERE seen_at <= {_NOW} - %(ttl)s"

ADD_FEEDBACK = f"""
    INSERT INTO {FEEDBACK_TABLE} (created_at, user_id, channel_id, verdict, question, passages, "offset", generation)
    VALUES (%s::timestamptz, %s, %s, %s, %s, %s, %s, %s)
    RETURNING id
"""
# The generation through to_jsonb: `corpusbot feedback` reads without migrating, so the column may not exist yet.
READ_FEEDBACK = f"""
    SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
           user_id, channel_id, verdict, question, passages, "offset", (to_jsonb(f) ->> 'generation')::bigint
    FROM {FEEDBACK_TABLE} AS f ORDER BY id DESC LIMIT %s
"""

# One statement per question: the user's row is locked while it is read and written, so two processes never
# both take the last place in the window. ``hits`` holds the times of the allowed requests still in the window
# (at most ``limit`` of them), oldest first; ``noticed``: the user was told to slow down since the last one allowed.
RATE_CHECK = f"""
    WITH n AS (SELECT {_NOW} AS now)
    INSERT INTO {RATE_LIMITS_TABLE} AS r (user_id, hits, noticed, verdict)
    SELECT %(user)s, ARRAY[n.now], false, 'allow' FROM n
    ON CONFLICT (user_id) DO UPDATE SET (hits, noticed, verdict) = (
        SELECT CASE WHEN k.allowed THEN k.kept || k.now ELSE k.kept END,
               NOT k.allowed,
               CASE WHEN k.allowed THEN 'allow' WHEN r.noticed THEN 'drop' ELSE 'notice' END
        FROM (
            SELECT a.kept, n.now, cardinality(a.kept) < %(limit)s AS allowed
            FROM n, LATERAL (
                SELECT ARRAY(SELECT h FROM unnest(r.hits) AS h WHERE h > n.now - %(seconds)s ORDER BY h) AS kept
            ) AS a
        ) AS k
    )
    RETURNING verdict
"""
RATE_OLDEST = f"""
    SELECT (SELECT hits[1] FROM {RATE_LIMITS_TABLE} WHERE user_id = %(user)s), {_NOW}
"""
PURGE_RATE_LIMITS = f"""
    DELETE FROM {RATE_LIMITS_TABLE} WHERE coalesce(hits[cardinality(hits)], 0) <= {_NOW} - %(seconds)s
"""

# A question acknowledged but not answered yet: recorded before the ack, done once the reply is posted.
ADD_PENDING = f"""
    INSERT INTO {PENDING_TABLE} (id, kind, payload, claimed_by) VALUES (%(id)s, %(kind)s, %(payload)s, %(claimer)s)
    ON CONFLICT (id) DO NOTHING
"""
FINISH_PENDING = f"UPDATE {PENDING_TABLE} SET done = true WHERE id = %(id)s"
# Questions whose claimer has not finished within ``after`` seconds (it died, or hangs): taken over, each by
# exactly one process (the row lock; SKIP LOCKED so that sweepers never wait for each other).
CLAIM_PENDING = f"""
    UPDATE {PENDING_TABLE} SET claimed_by = %(claimer)s, claimed_at = now()
    WHERE id IN (
        SELECT id FROM {PENDING_TABLE}
        WHERE NOT done AND claimed_at < now() - make_interval(secs => %(after)s)
        ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
    ) AND NOT done AND claimed_at < now() - make_interval(secs => %(after)s)
    RETURNING id, kind, payload, created_at < now() - make_interval(secs => %(give_up)s)
"""
PURGE_PENDING = f"""
    DELETE FROM {PENDING_TABLE} WHERE created_at < now() - make_interval(secs => %(keep)s)
"""


# -- the store -------------------------------------------------------------------------------------------------


class PgStore:
    """The bot's state in the PostgreSQL database at ``url``: made or upgraded here, then used by many threads.

    Raises :class:`CorpusbotError` (naming the database, never the password)
    when the database cannot be used at start. Two pools, so that feedback
    writes and rate limit checks never take the connections of the event
    checks that precede acks.
    """

    def __init__(self, url: StateUrl | str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url = url if isinstance(url, StateUrl) else StateUrl(url)
        self.display = self.url.display
        self.monotonic = monotonic
        self._lock = threading.Lock()  # the outage state below
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST_SECONDS
        self._reason = ""
        self.events = _Pool(self, EVENT_STATEMENT_TIMEOUT_MS)
        self.general = _Pool(self, STATEMENT_TIMEOUT_MS)
        try:
            self.migrate()
        except (StateUnavailable, _psycopg().Error) as error:
            self.close()
            reason = error.reason if isinstance(error, StateUnavailable) else _reason(error, self.url)
            raise CorpusbotError(
                f"Cannot use the bot's state database {self.display}: {reason}. Check CORPUSBOT_STATE_URL "
                "(host, port, database, user and password), that PostgreSQL is running and accepts connections "
                "from this host, and that the user may create tables in that database."
            ) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.events.close()
        self.general.close()

    # -- outages -----------------------------------------------------------------------------------------------

    def waiting(self) -> str | None:
        """Why the database is not tried now (it failed moments ago and its backoff has not run out), or None."""
        with self._lock:
            if self._down_since is None or self.monotonic() >= self._retry_at:
                return None
            return f"{self._reason} (next try in {max(0.1, self._retry_at - self.monotonic()):.1f} s)"

    def failed(self, reason: str) -> None:
        """A use failed for ``reason``: fail the next ones at once for a while; log the first failure of an outage."""
        with self._lock:
            now = self.monotonic()
            first = self._down_since is None
            if first:
                self._down_since = now
                self._backoff = BACKOFF_FIRST_SECONDS
            else:
                self._backoff = min(BACKOFF_MAX_SECONDS, self._backoff * 2)
            self._retry_at = now + self._backoff
            self._reason = reason
        if first:
            log.warning(
                "The state database %s is unavailable (%s). Until it is back: Slack event ids are checked in this "
                "process only (a retry reaching another process may be answered twice), feedback and questions get "
                "the 'not available' reply, /readyz answers 503; retrying with backoff (at most %.0f s).",
                self.display,
                reason,
                BACKOFF_MAX_SECONDS,
            )

    def succeeded(self) -> None:
        with self._lock:
            down_since, self._down_since = self._down_since, None
            self._retry_at = 0.0
            self._backoff = BACKOFF_FIRST_SECONDS
            if down_since is None:
                return
            outage = self.monotonic() - down_since
        log.info("The state database %s is back (unavailable for %.1f s).", self.display, outage)

    def unavailable(self, reason: str) -> StateUnavailable:
        return StateUnavailable(self.display, reason)

    # -- health ------------------------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the state cannot be used now, or None (for /readyz); at most one round trip to the database."""
        waiting = self.waiting()
        if waiting is not None:
            return f"{self.display} unavailable: {waiting}"
        try:
            with self.general.borrow() as conn:
                conn.execute("SELECT 1").fetchone()
        except StateUnavailable as error:
            return f"{self.display} unavailable: {error.reason}"
        return None

    # -- the schema --------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Run the migrations not run yet, in one transaction, one process at a time."""
        with self.general.borrow() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
            for name, sql in MIGRATIONS:
                if name not in done:
                    conn.execute(sql)  # several statements: possible without parameters
                    conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", (name,))
                    log.info("State database %s: applied %s", self.display, name)

    # -- events ------------------------------------------------------------------------------------------------

    def record_event(self, event_id: str, ttl: float, now: float | None = None, *, purge: bool = False) -> bool:
        """Record ``event_id``; True when no process recorded it within the last ``ttl`` seconds."""
        with self.events.borrow() as conn:
            new = conn.execute(RECORD_EVENT, {"event_id": event_id, "ttl": ttl, "now": now}).fetchone() is not None
            if purge:
                _tidy(conn, PURGE_EVENTS, {"ttl": ttl, "now": now})
        return new

    # -- pending questions -------------------------------------------------------------------------------------

    def add_pending(self, pending_id: str, kind: str, payload: dict[str, Any], claimer: str) -> None:
        """Record a question before its ack, claimed by ``claimer`` (a retry of one recorded already: nothing)."""
        from psycopg.types.json import Jsonb

        with self.events.borrow() as conn:
            conn.execute(ADD_PENDING, {"id": pending_id, "kind": kind, "payload": Jsonb(payload), "claimer": claimer})

    def finish_pending(self, pending_id: str) -> None:
        with self.general.borrow() as conn:
            conn.execute(FINISH_PENDING, {"id": pending_id})

    def claim_pending(
        self, claimer: str, after: float, give_up: float, limit: int
    ) -> list[tuple[str, str, dict[str, Any], bool]]:
        """Take over up to ``limit`` questions left unfinished ``after`` seconds: (id, kind, payload, too old)."""
        with self.general.borrow() as conn:
            rows = conn.execute(
                CLAIM_PENDING, {"claimer": claimer, "after": after, "give_up": give_up, "limit": limit}
            ).fetchall()
            _tidy(conn, PURGE_PENDING, {"keep": max(give_up * 2, 3600.0)})
        return [(str(row[0]), str(row[1]), dict(row[2]), bool(row[3])) for row in rows]

    # -- feedback ----------------------------------------------------------------------------------------------

    def add_feedback(self, row: tuple[Any, ...]) -> int:
        """Store one feedback row (created_at, user_id, channel_id, verdict, question, passages, offset,
        generation); its id."""
        with self.general.borrow() as conn:
            stored = conn.execute(ADD_FEEDBACK, row).fetchone()
        assert stored is not None
        return int(stored[0])

    def read_feedback(self, limit: int | None = None) -> list[tuple[Any, ...]]:
        """Feedback rows, newest first: (id, created_at, user_id, channel_id, verdict, question, passages, offset,
        generation)."""
        with self.general.borrow() as conn:
            return conn.execute(READ_FEEDBACK, (limit,)).fetchall()

    # -- the rate limit ----------------------------------------------------------------------------------------

    def rate_check(
        self, user_id: str, requests: int, seconds: float, now: float | None = None, *, purge: bool = False
    ) -> str:
        """Count a request of ``user_id`` against ``requests`` in ``seconds``: 'allow', 'notice' or 'drop'."""
        with self.general.borrow() as conn:
            cursor = conn.execute(RATE_CHECK, {"user": user_id, "limit": requests, "seconds": seconds, "now": now})
            verdict = cursor.fetchone()
            if purge:
                _tidy(conn, PURGE_RATE_LIMITS, {"seconds": seconds, "now": now})
        assert verdict is not None
        return str(verdict[0])

    def rate_oldest(self, user_id: str, now: float | None = None) -> tuple[float | None, float]:
        """(the time of ``user_id``'s oldest request in the window, or None; the time now)."""
        with self.general.borrow() as conn:
            row = conn.execute(RATE_OLDEST, {"user": user_id, "now": now}).fetchone()
        assert row is not None
        return row[0], float(row[1])


def read_feedback(url: StateUrl | str, limit: int | None = None) -> list[tuple[Any, ...]]:
    """The feedback rows in the database at ``url``, newest first, read without writing (none when it has none).

    For ``corpusbot feedback``: one connection, no migration. Raises :class:`CorpusbotError` when the database
    cannot be used.
    """
    psycopg = _psycopg()
    url = url if isinstance(url, StateUrl) else StateUrl(url)
    try:
        with psycopg.connect(url.value, autocommit=True, **_connect_options(url.value, STATEMENT_TIMEOUT_MS)) as conn:
            if conn.execute("SELECT to_regclass(%s)", (FEEDBACK_TABLE,)).fetchone() == (None,):
                return []
            return conn.execute(READ_FEEDBACK, (limit,)).fetchall()
    except psycopg.Error as error:
        raise CorpusbotError(
            f"Cannot read the feedback from the bot's state database {url.display}: {_reason(error, url)}. "
            "Check CORPUSBOT_STATE_URL and that PostgreSQL is running."
        ) from None


# -- connections -----------------------------------------------------------------------------------------------


class _Pool:
    """Connections to the store's database for one kind of use: each borrower gets one of its own.

    At most :data:`MAX_CONNECTIONS` open at once (a borrower waits up to
    :data:`SLOT_WAIT_SECONDS` for one to come back), :data:`MAX_IDLE` kept
    between uses. An idle connection is checked without a round trip before it
    is lent: one the server closed or wrote to (a restart, a failover, an idle
    timeout) is dropped and another is used.
    """

    def __init__(self, store: PgStore, statement_timeout_ms: int) -> None:
        self.store = store
        self.options = _connect_options(store.url.value, statement_timeout_ms)
        self._lock = threading.Lock()  # _idle and _closed
        self._idle: list[psycopg.Connection[Any]] = []
        self._closed = False
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in autocommit mode; a database error comes out as :class:`StateUnavailable`."""
        psycopg = _psycopg()
        waiting = self.store.waiting()
        if waiting is not None:
            raise self.store.unavailable(waiting)
        if not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            raise self.store.unavailable(f"all {MAX_CONNECTIONS} connections busy for {SLOT_WAIT_SECONDS:.0f} s")
        try:
            conn = self._take()
            if conn is None:
                try:
                    conn = psycopg.connect(self.store.url.value, autocommit=True, **self.options)
                except psycopg.Error as error:
                    reason = _reason(error, self.store.url)
                    self.store.failed(reason)
                    raise self.store.unavailable(reason) from None
            try:
                yield conn
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:  # connection or server, or a timeout
                reason = _reason(error, self.store.url)
                self._drop(conn)
                self.store.failed(reason)
                raise self.store.unavailable(reason) from None
            except BaseException:
                self._give_back(conn)
                raise
            else:
                self._give_back(conn)
                self.store.succeeded()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)

    def _take(self) -> psycopg.Connection[Any] | None:
        while True:
            with self._lock:
                if self._closed:
                    raise self.store.unavailable("the state store was closed")
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if _alive(conn):
                return conn
            self._drop(conn)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        from psycopg.pq import TransactionStatus

        if conn.closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
            self._drop(conn)
            return
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        self._drop(conn)

    @staticmethod
    def _drop(conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(Exception):
            conn.close()


def _alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection looks usable: open, and nothing unasked for arrived (the server closing it)."""
    if conn.closed or conn.broken:
        return False
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError, _psycopg().Error):
        return False


def _connect_options(url: str, statement_timeout_ms: int) -> dict[str, Any]:
    """The connection options corpusbot adds: timeouts, keepalives, application name (the URL's own win)."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url)
    timeouts = f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={statement_timeout_ms}"
    options: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        "application_name": APPLICATION_NAME,
        **KEEPALIVE,
    }
    options = {key: value for key, value in options.items() if key not in given}
    options["options"] = f"{timeouts} {given.get('options') or ''}".strip()  # later -c settings win
    return options


def _tidy(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> None:
    """Delete expired rows; a failure here (logged) must not change the answer of the statement before it."""
    try:
        conn.execute(sql, params)
    except _psycopg().Error as error:  # a broken connection is dropped when it is given back
        log.info("Could not delete expired rows from the state database: %s", str(error).strip()[:200])


def _reason(error: BaseException, url: StateUrl) -> str:
    """The first line of ``error``'s message (psycopg's never holds the password; masked should it ever)."""
    lines = str(error).strip().splitlines()
    text = lines[0].strip()[:300] if lines else ""
    if url.password:
        text = text.replace(url.password, "[redacted]")
    return text or type(error).__name__


def _psycopg() -> Any:
    import psycopg

    return psycopg
