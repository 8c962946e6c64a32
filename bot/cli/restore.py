"""``corpusbot restore``: put a backup back, safely, even while the bot runs."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.index.maintenance.restore import restore_database


@click.command()
@click.argument("backup", type=click.Path(dir_okay=False))
@db_option
@json_option
def restore(backup: str, db_path: str, as_json: bool) -> None:
    """Replace the index database with the backup file BACKUP.

    The backup is checked first (SQLite's quick_check, a corpusbot index);
    then its pages are written into the database by SQLite in one
    transaction, never renamed over it, so the database's journal files stay
    consistent. A running bot answers from the old index until the restore
    commits, then from the restored one without a restart. The bot's own
    tables (feedback, seen Slack events) are kept as they are in the
    database, not taken from the backup.

    Example: corpusbot restore backups/corpusbot-2025-06-09.db
    """
    result = restore_database(backup, db_path)
    if as_json:
        echo_json(result.to_json())
        return
    click.echo(
        f"Restored {result.target} from {result.backup}: {result.articles} articles, {result.passages} passages, "
        f"now index generation {result.generation} ({result.seconds:.2f}s)."
    )
