"""``corpusbot backup``: a consistent copy of the index database."""

from __future__ import annotations

from pathlib import Path

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option, state_db_option
from corpusbot.index.maintenance.backup import backup_database, copy_database


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@db_option
@state_db_option
@json_option
def backup(path: str, force: bool, db_path: str, state_db: str | None, as_json: bool) -> None:
    """Copy the index database to PATH, consistently, while the bot keeps running.

    Uses SQLite's online backup: the copy is one committed index even when a
    reindex is writing. The copy is a single self-contained file, readable
    only by you; verify it with `corpusbot check --db PATH`. Refuses to
    overwrite an existing PATH unless --force. The bot's state database
    (feedback, seen Slack events), when there is one, is copied beside it
    as PATH's name with -state.db.

    Example: corpusbot backup backups/corpusbot-2025-06-09.db
    """
    state, state_copy = _state_files(db_path, state_db, path)
    if state.exists() and state_copy.exists() and not force:
        raise click.ClickException(f"{state_copy} already exists; give another name, or add --force to overwrite it.")
    result = backup_database(db_path, path, force=force)
    if state.exists():
        copy_database(state, state_copy)
    if as_json:
        echo_json({**result.to_json(), "state": str(state_copy) if state.exists() else None})
        return
    click.echo(
        f"Backed up {result.source} to {result.target}: {result.articles} articles, {result.passages} passages, "
        f"{result.bytes / 1e6:.2f} MB in {result.seconds:.2f}s. Verify it with `corpusbot check --db {result.target}`."
    )
    if state.exists():
        click.echo(f"Backed up the bot's state (feedback, seen events) {state} to {state_copy}.")


def _state_files(db_path: str, state_db: str | None, target: str) -> tuple[Path, Path]:
    """The bot's state database and where its copy goes: beside the backup, named as serve would look for it."""
    from corpusbot.bot.state.database import state_path

    return state_path(db_path, state_db), state_path(target)
