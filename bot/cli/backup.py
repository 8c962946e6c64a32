"""``corpusbot backup``: a consistent copy of the index database."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.index.maintenance.backup import backup_database


@click.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@db_option
@json_option
def backup(path: str, force: bool, db_path: str, as_json: bool) -> None:
    """Copy the index database to PATH, consistently, while the bot keeps running.

    Uses SQLite's online backup: the copy is one committed index even when a
    reindex is writing. The copy is a single self-contained file, readable
    only by you; verify it with `corpusbot check --db PATH`. Refuses to
    overwrite an existing PATH unless --force.

    Example: corpusbot backup backups/corpusbot-2025-06-09.db
    """
    result = backup_database(db_path, path, force=force)
    if as_json:
        echo_json(result.to_json())
        return
    click.echo(
        f"Backed up {result.source} to {result.target}: {result.articles} articles, {result.passages} passages, "
        f"{result.bytes / 1e6:.2f} MB in {result.seconds:.2f}s. Verify it with `corpusbot check --db {result.target}`."
    )
