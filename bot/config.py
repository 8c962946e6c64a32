"""All configuration comes from here: the environment, optionally seeded from a ``.env`` file.

No other module reads environment variables. Secrets are kept out of ``repr``
so they never end up in logs or tracebacks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from dotenv import load_dotenv

DEFAULT_DB = "corpusbot.db"


def load_environment(dotenv_path: str | None = None) -> None:
    """Seed ``os.environ`` from ``.env`` (existing variables win)."""
    load_dotenv(dotenv_path or os.path.join(os.getcwd(), ".env"), override=False)


def db_path(environ: Mapping[str, str] | None = None) -> str:
    """The database path: ``CORPUSBOT_DB`` or ``./corpusbot.db``."""
    env = os.environ if environ is None else environ
    return env.get("CORPUSBOT_DB") or DEFAULT_DB


def synonyms_path(environ: Mapping[str, str] | None = None) -> str | None:
    """A user synonyms file (``CORPUSBOT_SYNONYMS``), read in addition to the bundled one."""
    env = os.environ if environ is None else environ
    return env.get("CORPUSBOT_SYNONYMS") or None


@dataclass(frozen=True)
class Settings:
    """Settings for the CLI and the Slack app."""

    db_path: str = DEFAULT_DB
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    admins: frozenset[str] = frozenset()
    slack_api_url: str | None = None


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    admins = frozenset(part.strip() for part in env.get("CORPUSBOT_ADMINS", "").split(",") if part.strip())
    return Settings(
        db_path=db_path(env),
        bot_token=env.get("SLACK_BOT_TOKEN") or None,
        app_token=env.get("SLACK_APP_TOKEN") or None,
        signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        admins=admins,
        slack_api_url=env.get("SLACK_API_URL") or None,
    )
