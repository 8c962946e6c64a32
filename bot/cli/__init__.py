"""The ``corpusbot`` command line: a thin click layer over ``corpusbot.index``.

One command per module in this package, each a plain ``@click.command``
function. ``COMMANDS`` below is the one place they are registered: the group
imports a command's module only when that command runs (or help lists it).
To add a command, write ``bot/cli/NAME.py``, add it to ``COMMANDS``, then
regenerate docs/cli.md with ``cog -r docs/cli.md``.
"""

from __future__ import annotations

import click

from corpusbot.bot import config
from corpusbot.bot.cli.group import LazyGroup
from corpusbot.bot.cli.options import db_option, json_option
from corpusbot.bot.cli.service import open_service

__all__ = ["COMMANDS", "cli", "db_option", "json_option", "main", "open_service"]

# Command name -> "module:attribute" of its click command, in the order docs/cli.md lists them.
COMMANDS: dict[str, str] = {
    "ask": "corpusbot.bot.cli.ask:ask",
    "article": "corpusbot.bot.cli.article:article",
    "new": "corpusbot.bot.cli.new:new",
    "stats": "corpusbot.bot.cli.stats:stats",
    "index": "corpusbot.bot.cli.index:index",
    "sources": "corpusbot.bot.cli.sources:sources",
    "check": "corpusbot.bot.cli.check:check",
    "backup": "corpusbot.bot.cli.backup:backup",
    "restore": "corpusbot.bot.cli.restore:restore",
    "publish": "corpusbot.bot.cli.publish:publish",
    "eval": "corpusbot.bot.cli.eval:eval_command",
    "serve": "corpusbot.bot.cli.serve:serve",
    "feedback": "corpusbot.bot.cli.feedback:feedback",
    "watches": "corpusbot.bot.cli.watches:watches",
    "manifest": "corpusbot.bot.cli.manifest:manifest",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="corpusbot")
def cli() -> None:
    """corpusbot: cited answers from a corpus of news articles, in the terminal and in Slack.

    Start with `corpusbot ask "who is on the US delegation?"` (the bundled
    sample corpus is indexed on first use).
    """
    config.load_environment()


def main() -> None:
    """The ``corpusbot`` console script."""
    cli(prog_name="corpusbot")
