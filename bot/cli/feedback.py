"""``corpusbot feedback``: what Slack users said about the answers."""

from __future__ import annotations

import click
from click.core import ParameterSource

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, echo_json, json_option, state_db_option
from corpusbot.bot.state import stored_feedback


@click.command()
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the newest N.")
@json_option
@db_option
@state_db_option
def feedback(limit: int | None, as_json: bool, db_path: str, state_db: str | None) -> None:
    """List the Helpful / Not helpful feedback given in Slack, newest first.

    Each entry: when, who (Slack user ID), the verdict, the question, the
    passages shown (article id ¶n) and the index generation the answer came
    from (when known). Read from the bot's state database
    (corpusbot-state.db beside corpusbot.db), or from the index of a bot that
    has not run since that file was introduced; nothing is written. With
    CORPUSBOT_STATE_URL set, from that PostgreSQL database (the feedback of
    every replica), unless --state-db names a file.

    Example: corpusbot feedback --json
    """
    given = click.get_current_context().get_parameter_source("state_db") is ParameterSource.COMMANDLINE
    records = stored_feedback(db_path, state_db, limit, url=None if given else config.state_url())
    if as_json:
        echo_json([record.to_json() for record in records])
        return
    if not records:
        click.echo("No feedback yet.")
        return
    helpful = sum(1 for record in records if record.verdict == "helpful")
    click.echo(f"{len(records)} feedback: {helpful} helpful, {len(records) - helpful} not helpful")
    for record in records:
        verdict = "helpful    " if record.verdict == "helpful" else "not helpful"
        click.echo(f"{record.created_at}  {record.user_id}  {verdict}  {record.question}")
        if record.passages:
            click.echo("    shown: " + "; ".join(record.passages))
        if record.generation is not None:
            click.echo(f"    index generation: {record.generation}")
