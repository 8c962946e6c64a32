"""The click group behind ``corpusbot``: commands imported only when used, user errors as one line."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from corpusbot.bot.cli.errors import user_errors


class LazyGroup(click.Group):
    """A group whose commands are named in a table of ``name -> "module:attribute"``.

    A command's module is imported only when that command runs, or when help
    lists it: ``corpusbot ask`` never imports what ``corpusbot serve`` needs
    (the Slack stack) and the reverse.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        return load_command(target)

    def invoke(self, ctx: click.Context) -> Any:
        with user_errors():
            return super().invoke(ctx)


def load_command(target: str) -> click.Command:
    """The command at ``"package.module:attribute"``."""
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is a {type(command).__name__}, not a click command")
    return command
