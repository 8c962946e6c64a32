"""``corpusbot watches``: the topics Slack channels follow (``/ask watch``)."""

from __future__ import annotations

import click
from click.core import ParameterSource

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, echo_json, json_option, state_db_option
from corpusbot.bot.state.watches import stored_watches


@click.command()
@click.option("--channel", metavar="ID", default=None, help="Only this Slack channel's watches (e.g. C0123ABCD).")
@json_option
@db_option
@state_db_option
def watches(channel: str | None, as_json: bool, db_path: str, state_db: str | None) -> None:
    """List the watches Slack users made with /ask watch, oldest first.

    Each watch: its number (what /ask unwatch takes), the channel it posts
    to, who made it and when, its words, and up to when the index was
    checked for it. Read from the bot's state database (corpusbot-state.db
    beside corpusbot.db) without writing; with CORPUSBOT_STATE_URL set, from
    that PostgreSQL database, unless --state-db names a file.

    Example: corpusbot watches --channel C0123ABCD
    """
    given = click.get_current_context().get_parameter_source("state_db") is ParameterSource.COMMANDLINE
    found = stored_watches(db_path, state_db, url=None if given else config.state_url())
    if channel:
        found = [watch for watch in found if watch.channel_id == channel]
    if as_json:
        echo_json([watch.to_json() for watch in found])
        return
    if not found:
        click.echo("No watches." if not channel else f"No watches in {channel}.")
        return
    for watch in found:
        click.echo(f"#{watch.id}  {watch.channel_id}  {watch.user_id}  {watch.created_at}  {watch.query}")
        click.echo(f"    checked through: {watch.checked_through or 'nothing indexed yet'}")
