"""Extra ``corpusbot`` commands, each in its own module with a ``register(cli)`` function."""

from __future__ import annotations

import importlib

import click

# Command name -> the module (in this package) whose ``register(cli)`` adds it.
# Modules are imported only when one of their commands runs (or for --help),
# so `corpusbot ask` does not pay for importing the Slack stack.
COMMANDS: dict[str, str] = {
    "eval": "eval",
    "serve": "slack",
    "feedback": "slack",
    "check": "admin",
    "backup": "admin",
}


def load(cli: click.Group, name: str) -> None:
    """Register the commands of the module that provides ``name`` (once)."""
    module = importlib.import_module(f"{__package__}.{COMMANDS[name]}")
    if name not in cli.commands:
        module.register(cli)
