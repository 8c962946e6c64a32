"""Errors a user can fix become one clear line and exit status 1, never a traceback."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import click

from corpusbot.index.errors import CorpusbotError


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the index's errors and SQLite's into a ``click.ClickException`` with advice."""
    try:
        yield
    except CorpusbotError as error:
        raise click.ClickException(str(error)) from None
    except sqlite3.OperationalError as error:
        raise click.ClickException(_operational_advice(error)) from None
    except sqlite3.DatabaseError as error:
        raise click.ClickException(
            f"The database is not usable ({error}). Move it aside and run `corpusbot index --full`, "
            "or put a backup back with `corpusbot restore BACKUP`."
        ) from None


def _operational_advice(error: sqlite3.OperationalError) -> str:
    message = str(error)
    if "locked" in message or "busy" in message:
        return f"The database is locked by another process ({message}). Try again when it finishes."
    if "readonly" in message or "read-only" in message:
        return f"The database is read-only ({message}). Check the file's permissions or set CORPUSBOT_DB."
    return f"Database error: {message}."
