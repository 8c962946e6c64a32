"""``corpusbot publish``: an immutable, checksummed snapshot of the index for other hosts to serve."""

from __future__ import annotations

import click

from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.index.maintenance.snapshots import POINTER, publish_snapshot, rollback


@click.command()
@click.argument("destination", metavar="DEST")
@click.option(
    "--rollback",
    "roll_back",
    is_flag=True,
    help=f"Point DEST's {POINTER} back to the snapshot it replaced (nothing is copied).",
)
@db_option
@json_option
def publish(destination: str, roll_back: bool, db_path: str, as_json: bool) -> None:
    """Publish the index database as a snapshot to DEST, for `serve --index-from DEST`.

    DEST is a folder, or a file://, s3:// or gs:// URL (s3:// and gs:// need
    `pip install 'corpusbot[cloud]'`); bots read it from there or over
    https://. The snapshot is one consistent copy of the index (SQLite's
    online backup, safe while the bot runs or a reindex writes), without the
    bot's own tables, named index-GENERATION-SHA256.db and never changed
    again. Then DEST/current.json is pointed at it: snapshot, sha256, bytes,
    generation, published_at and the previous snapshot. An index that fails
    SQLite's quick_check or is no corpusbot index is refused. Build and verify
    first with `corpusbot index` and `corpusbot check`.

    --rollback points current.json back to the previous snapshot; bots
    following DEST install it at their next poll.

    Example: corpusbot publish s3://my-bucket/corpusbot --db corpusbot.db
    """
    result = rollback(destination) if roll_back else publish_snapshot(db_path, destination)
    if as_json:
        echo_json(result.to_json())
        return
    pointer = result.pointer
    if roll_back:
        click.echo(
            f"Rolled back {result.destination}/{POINTER} from {pointer.rolled_back_from} to {pointer.snapshot} "
            f"(generation {pointer.generation}, published {pointer.published_at})."
        )
    elif not result.changed:
        click.echo(f"{pointer.snapshot} is already the current snapshot at {result.destination}; nothing changed.")
    else:
        replaced = f", replacing {pointer.previous}" if pointer.previous else ""
        click.echo(
            f"Published {pointer.snapshot} ({pointer.bytes / 1e6:.2f} MB, generation {pointer.generation}) to "
            f"{result.destination} in {result.seconds:.2f}s{replaced}. Undo with "
            f"`corpusbot publish --rollback {result.destination}`."
        )
