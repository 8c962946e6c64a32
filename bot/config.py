"""All configuration comes from here: the environment, optionally seeded from a ``.env`` file.

No other module reads environment variables. Secrets are kept out of ``repr``
so they never end up in logs or tracebacks.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from dotenv import load_dotenv

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.sources.guard import AllowList

DEFAULT_DB = "corpusbot.db"


def load_environment(dotenv_path: str | None = None) -> None:
    """Seed ``os.environ`` from ``.env`` (existing variables win)."""
    load_dotenv(dotenv_path or os.path.join(os.getcwd(), ".env"), override=False)


def db_path(environ: Mapping[str, str] | None = None) -> str:
    """The database path: ``CORPUSBOT_DB`` or ``./corpusbot.db``."""
    env = os.environ if environ is None else environ
    return env.get("CORPUSBOT_DB") or DEFAULT_DB


def state_db_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The bot's state database (``CORPUSBOT_STATE_DB``); None: ``<index stem>-state.db`` beside the index."""
    env = os.environ if environ is None else environ
    return (env.get("CORPUSBOT_STATE_DB") or "").strip() or None


STATE_URL_SCHEMES = ("postgresql", "postgres")
STATE_URL_EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DBNAME"


@dataclass(frozen=True)
class StateUrl:
    """The PostgreSQL URL of the state every replica shares (``CORPUSBOT_STATE_URL``).

    ``str()``, ``repr()`` and :attr:`display` show it without user name,
    password or query (``postgresql://db.internal:5432/corpusbot``), so it can
    go into logs and error messages; only :attr:`value` (for connecting) has them.
    """

    value: str = field(repr=False)

    @property
    def display(self) -> str:
        parts = urlsplit(self.value)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    @property
    def password(self) -> str | None:
        """The password, in the URL or its query (to mask it in logs), or None."""
        parts = urlsplit(self.value)
        if parts.password:
            return parts.password
        return dict(parse_qsl(parts.query)).get("password") or None

    def __str__(self) -> str:
        return self.display

    def __repr__(self) -> str:
        return f"StateUrl({self.display!r})"


def state_url(environ: Mapping[str, str] | None = None) -> StateUrl | None:
    """The shared state's PostgreSQL URL (``CORPUSBOT_STATE_URL``); None: the SQLite state file on this host.

    Raises :class:`ConfigError` (never showing the value) when it is not a postgresql:// or postgres:// URL.
    """
    env = os.environ if environ is None else environ
    value = (env.get("CORPUSBOT_STATE_URL") or "").strip()
    if not value:
        return None
    fix = (
        f"Set it to a PostgreSQL URL such as {STATE_URL_EXAMPLE} (special characters in the password "
        f"percent-encoded, e.g. @ as %40), or leave it empty to keep the state in a SQLite file on this host. "
        f"{HOW_TO_SET}"
    )
    if any(char.isspace() or char in "\"'<>" for char in value):
        raise ConfigError(f"CORPUSBOT_STATE_URL contains spaces, quotes or brackets. {fix}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
        parse_qsl(parts.query, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"CORPUSBOT_STATE_URL is not a well-formed URL. {fix}") from None
    if parts.scheme.lower() not in STATE_URL_SCHEMES or not value.lower().startswith(parts.scheme.lower() + "://"):
        raise ConfigError(
            f"CORPUSBOT_STATE_URL must start with postgresql:// or postgres:// (the state is kept in PostgreSQL only). "
            f"{fix}"
        )
    return StateUrl(value)


def index_from(environ: Mapping[str, str] | None = None) -> str | None:
    """Where ``serve`` follows published index snapshots (``CORPUSBOT_INDEX_FROM``); None: the local index as it is."""
    env = os.environ if environ is None else environ
    return (env.get("CORPUSBOT_INDEX_FROM") or "").strip() or None


DEFAULT_INDEX_POLL = 30.0  # seconds between two reads of the snapshot pointer (serve --index-from)
MIN_INDEX_POLL = 1.0


def index_poll(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between two checks of the snapshot pointer (``CORPUSBOT_INDEX_POLL``, default 30, at least 1)."""
    env = os.environ if environ is None else environ
    given = (env.get("CORPUSBOT_INDEX_POLL") or "").strip()
    if not given:
        return DEFAULT_INDEX_POLL
    try:
        seconds = float(given.lower().removesuffix("s").strip())  # "s" alone is no interval
    except ValueError:
        seconds = float("nan")
    if not seconds >= MIN_INDEX_POLL or seconds == float("inf"):  # also refuses nan
        raise ConfigError(
            f"CORPUSBOT_INDEX_POLL must be a number of seconds, at least {MIN_INDEX_POLL:g} (default "
            f"{DEFAULT_INDEX_POLL:g}): how often serve --index-from checks for a new snapshot. {HOW_TO_SET}"
        )
    return seconds


def fetch_allow(environ: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()) -> AllowList:
    """Intranet hosts web sources may be fetched from (``CORPUSBOT_FETCH_ALLOW``, comma-separated host names,
    ``.domain`` suffixes, IP addresses or networks), plus ``extra`` (``corpusbot index --allow``).

    Without it, a URL whose host resolves to a loopback, private or other non-public address is refused.
    """
    env = os.environ if environ is None else environ
    entries = [*(env.get("CORPUSBOT_FETCH_ALLOW") or "").split(","), *extra]
    try:
        return AllowList.parse(entries)
    except ValueError as error:
        raise ConfigError(
            f"CORPUSBOT_FETCH_ALLOW (or --allow): {error}. Give host names (wiki.corp.example), domain suffixes "
            f"(.corp.example), IP addresses or networks (10.0.0.0/8), separated by commas. {HOW_TO_SET}"
        ) from None


def synonyms_path(environ: Mapping[str, str] | None = None) -> str | None:
    """A user synonyms file (``CORPUSBOT_SYNONYMS``), read in addition to the bundled one."""
    env = os.environ if environ is None else environ
    return env.get("CORPUSBOT_SYNONYMS") or None


DEFAULT_POSTINGS_CACHE_MB = 128  # = store.DEFAULT_POSTINGS_CACHE_BYTES (a test checks); docs/operations.md
MAX_POSTINGS_CACHE_MB = 1 << 20


def postings_cache_bytes(environ: Mapping[str, str] | None = None) -> int:
    """Memory for decoded postings kept between questions (``CORPUSBOT_POSTINGS_CACHE_MB``, default 128, 0: none)."""
    env = os.environ if environ is None else environ
    given = (env.get("CORPUSBOT_POSTINGS_CACHE_MB") or "").strip()
    if not given:
        return DEFAULT_POSTINGS_CACHE_MB << 20
    megabytes = _whole_number(given.upper().removesuffix("MB").strip())  # "MB" alone is no size
    if megabytes is None or megabytes > MAX_POSTINGS_CACHE_MB:
        raise ConfigError(
            f"CORPUSBOT_POSTINGS_CACHE_MB must be a whole number of megabytes from 0 to {MAX_POSTINGS_CACHE_MB} "
            f"(default {DEFAULT_POSTINGS_CACHE_MB}; 0 keeps no postings between questions). {HOW_TO_SET}"
        )
    return megabytes << 20


def _whole_number(value: str) -> int | None:
    """``value`` as a whole number when it is ASCII digits that int() reads, else None.

    str.isdigit() holds for "²" too, and int() refuses it and more than 4300 digits (a ValueError, a traceback).
    """
    if not (value.isascii() and value.isdigit()):
        return None
    try:
        return int(value)
    except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits)
        return None


SLACK_API_DEFAULT = "https://slack.com/api/"

# The Slack surfaces beyond mentions, DMs and slash commands; each can be turned off (CORPUSBOT_SURFACES_OFF).
SURFACES = ("assistant", "shortcut", "unfurls", "metadata")


def surfaces_off(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The surfaces turned off (``CORPUSBOT_SURFACES_OFF``: comma-separated names of :data:`SURFACES`, or all)."""
    env = os.environ if environ is None else environ
    names = [part.strip().lower() for part in (env.get("CORPUSBOT_SURFACES_OFF") or "").split(",") if part.strip()]
    if names == ["all"]:
        return frozenset(SURFACES)
    wrong = [name for name in names if name not in SURFACES]
    if wrong:
        raise ConfigError(
            f"CORPUSBOT_SURFACES_OFF must be a comma-separated list of {', '.join(SURFACES)} (or all); "
            f"{wrong[0][:40]!r} is not one. {HOW_TO_SET}"
        )
    return frozenset(names)


class ConfigError(CorpusbotError):
    """A missing or malformed setting; the message names the variable and how to fix it (never its value)."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(environ: Mapping[str, str] | None = None) -> int:
    """The log level (``CORPUSBOT_LOG_LEVEL``, default INFO) as a ``logging`` number."""
    env = os.environ if environ is None else environ
    name = (env.get("CORPUSBOT_LOG_LEVEL") or "INFO").strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LOG_LEVELS:
        raise ConfigError(f"CORPUSBOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}. {HOW_TO_SET}")
    return logging.getLevelNamesMapping()[name]


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per user in any ``seconds``; ``requests == 0`` turns the limit off."""

    requests: int
    seconds: float

    @property
    def enabled(self) -> bool:
        return self.requests > 0


DEFAULT_RATE_LIMIT = RateLimit(20, 60.0)

DEFAULT_WORKERS = 1  # one process: exact per-user rate limit and metrics, one index in memory; see docs/slack.md
MAX_WORKERS = 64


def serve_workers(environ: Mapping[str, str] | None = None) -> int:
    """How many HTTP mode processes ``corpusbot serve`` runs (``CORPUSBOT_WORKERS``, default 1)."""
    env = os.environ if environ is None else environ
    value = (env.get("CORPUSBOT_WORKERS") or "").strip()
    if not value:
        return DEFAULT_WORKERS
    workers = _whole_number(value)
    if workers is None or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"CORPUSBOT_WORKERS must be a whole number from 1 to {MAX_WORKERS}. {HOW_TO_SET}")
    return workers


WORKER_CLASSES = ("sync", "waitress")  # serve --workers: gunicorn's sync workers, or waitress in each worker


def serve_worker_class(environ: Mapping[str, str] | None = None) -> str:
    """How ``corpusbot serve --workers N`` serves in each process (``CORPUSBOT_WORKER_CLASS``, default sync)."""
    env = os.environ if environ is None else environ
    value = (env.get("CORPUSBOT_WORKER_CLASS") or "").strip().lower()
    if not value:
        return WORKER_CLASSES[0]
    if value not in WORKER_CLASSES:
        raise ConfigError(f"CORPUSBOT_WORKER_CLASS must be one of: {', '.join(WORKER_CLASSES)}. {HOW_TO_SET}")
    return value


@dataclass(frozen=True)
class Settings:
    """Settings for the CLI and the Slack app."""

    db_path: str = DEFAULT_DB
    state_db_path: str | None = None  # None: beside the index (corpusbot.bot.state.database.state_path)
    state_url: StateUrl | None = None  # the state shared by every replica, in PostgreSQL; None: state_db_path
    index_from: str | None = None  # serve --index-from: the snapshot store to follow
    index_poll: float = DEFAULT_INDEX_POLL  # seconds between two checks of index_from's pointer
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    admins: frozenset[str] = frozenset()
    slack_api_url: str | None = None
    channels: frozenset[str] = frozenset()  # empty: every channel
    rate_limit: RateLimit = DEFAULT_RATE_LIMIT
    surfaces_off: frozenset[str] = frozenset()  # of SURFACES

    def surface_on(self, name: str) -> bool:
        return name not in self.surfaces_off

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @property
    def api_url(self) -> str:
        """The Slack Web API base URL, with the trailing slash slack_sdk needs."""
        return self.slack_api_url or SLACK_API_DEFAULT


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; a malformed value raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    shared_state = state_url(env)
    if shared_state is not None and state_db_path(env) is not None:
        raise ConfigError(
            "CORPUSBOT_STATE_URL and CORPUSBOT_STATE_DB are both set: set CORPUSBOT_STATE_URL (PostgreSQL, shared by "
            f"every replica) or CORPUSBOT_STATE_DB (a SQLite file on this host), not both. {HOW_TO_SET}"
        )
    return Settings(
        db_path=db_path(env),
        state_db_path=state_db_path(env),
        state_url=shared_state,
        index_from=index_from(env),
        index_poll=index_poll(env),
        bot_token=_secret(env, "SLACK_BOT_TOKEN"),
        app_token=_secret(env, "SLACK_APP_TOKEN"),
        signing_secret=_secret(env, "SLACK_SIGNING_SECRET"),
        admins=_ids(
            env,
            "CORPUSBOT_ADMINS",
            USER_ID,
            "Slack user IDs such as U012AB3CD (profile → ⋮ → Copy member ID), not names",
        ),
        slack_api_url=_api_url(env.get("SLACK_API_URL")),
        channels=_ids(
            env, "CORPUSBOT_CHANNELS", CHANNEL_ID, "channel IDs such as C012AB3CD (channel details, at the bottom)"
        ),
        rate_limit=_rate_limit(env.get("CORPUSBOT_RATE_LIMIT")),
        surfaces_off=surfaces_off(env),
    )


USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
HOW_TO_SET = "Set it in .env (see .env.example) or in the environment."


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if any(char.isspace() or char in "\"'" for char in value):
        raise ConfigError(f"{name} contains spaces or quotes; paste the value alone, without quotes. {HOW_TO_SET}")
    return value


def _ids(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> frozenset[str]:
    parts = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    wrong = [part for part in parts if not pattern.fullmatch(part)]
    if wrong:
        raise ConfigError(f"{name} must be a comma-separated list of {what}; {wrong[0]!r} is not one. {HOW_TO_SET}")
    return frozenset(parts)


def _api_url(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"SLACK_API_URL must be an http(s) URL such as {SLACK_API_DEFAULT}. {HOW_TO_SET}")
    return value if value.endswith("/") else value + "/"


def _rate_limit(value: str | None) -> RateLimit:
    value = (value or "").strip().lower()
    if not value:
        return DEFAULT_RATE_LIMIT
    if value in ("0", "off", "none"):
        return RateLimit(0, 60.0)
    match = re.fullmatch(r"(\d{1,9})\s*/\s*(\d+(?:\.\d+)?)\s*s?", value)  # {1,9}: int() refuses 4301 digits
    if not match or float(match.group(2)) <= 0:
        raise ConfigError(
            "CORPUSBOT_RATE_LIMIT must look like 20/60 (at most 20 questions per user in 60 seconds), or off. "
            + HOW_TO_SET
        )
    return RateLimit(int(match.group(1)), float(match.group(2)))


def check_slack(settings: Settings) -> None:
    """Raise :class:`ConfigError` unless the Slack settings can run the bot (Socket Mode or HTTP mode)."""
    if settings.bot_token is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN is not set. Copy the Bot User OAuth Token (xoxb-…) from your Slack app's "
            f"OAuth & Permissions page. {HOW_TO_SET}"
        )
    if not settings.bot_token.startswith("xoxb-"):
        raise ConfigError(
            "SLACK_BOT_TOKEN does not look like a bot token: it must start with xoxb- (OAuth & Permissions → "
            f"Bot User OAuth Token). {HOW_TO_SET}"
        )
    if settings.app_token is not None and not settings.app_token.startswith("xapp-"):
        raise ConfigError(
            "SLACK_APP_TOKEN does not look like an app-level token: it must start with xapp- (Basic Information → "
            f"App-Level Tokens, scope connections:write). Unset it to use HTTP mode. {HOW_TO_SET}"
        )
    if settings.app_token is None and settings.signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set; HTTP mode needs it to check that requests come from Slack. Copy the "
            "Signing Secret from Basic Information → App Credentials, or set SLACK_APP_TOKEN (xapp-…) to use "
            f"Socket Mode. {HOW_TO_SET}"
        )
