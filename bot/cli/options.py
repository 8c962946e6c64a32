"""Options several commands share, and their JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from corpusbot.bot import config

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """``--db FILE`` (parameter ``db_path``): the index database, by default ``$CORPUSBOT_DB`` or ``corpusbot.db``."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default=lambda: config.db_path(),
        show_default="$CORPUSBOT_DB or corpusbot.db",
        help="The index database file.",
    )(func)


def state_db_option(func: F) -> F:
    """``--state-db FILE`` (parameter ``state_db``): the bot's state database, by default beside the index."""
    return click.option(
        "--state-db",
        "state_db",
        type=click.Path(dir_okay=False),
        default=lambda: config.state_db_path(),
        show_default="$CORPUSBOT_STATE_DB or DB's name with -state.db, beside it",
        help="The bot's state database (seen Slack events, feedback).",
    )(func)


def json_option(func: F) -> F:
    """``--json`` (parameter ``as_json``): print JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def echo_json(data: Any) -> None:
    """``data`` as one line of JSON on stdout (the ``--json`` output of every command)."""
    click.echo(json.dumps(data))
