"""Extra ``corpusbot`` commands, each in its own module with a ``register(cli)`` function."""

from __future__ import annotations

import importlib

import click

# One module per feature area; add a name here to add its commands to the CLI.
MODULES: tuple[str, ...] = ("eval", "slack", "admin")


def register_all(cli: click.Group) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(cli)
