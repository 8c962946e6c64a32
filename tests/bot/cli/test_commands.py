"""How the commands are registered (one table) and loaded (only the one that runs), and the error mapping."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

import corpusbot.bot.cli as cli_package
from corpusbot.bot.cli import COMMANDS, cli
from corpusbot.bot.cli.errors import user_errors
from corpusbot.index.errors import CorpusbotError

# What `corpusbot ask` must not import: the Slack stack, and libraries only other commands or indexing files need.
NOT_FOR_ASK = ("slack_bolt", "slack_sdk", "waitress", "prometheus_client", "sqlite_utils", "bs4", "yaml")


def commands_defined_in(module_name: str) -> list[str]:
    """``"module:attribute"`` of every click command defined at the top level of a module."""
    module = importlib.import_module(module_name)
    return [
        f"{module_name}:{attribute}"
        for attribute, value in vars(module).items()
        if isinstance(value, click.Command) and getattr(value.callback, "__module__", None) == module_name
    ]


def test_the_table_registers_every_command_and_each_module_defines_one() -> None:
    defined: list[str] = []
    for module in pkgutil.iter_modules(cli_package.__path__, f"{cli_package.__name__}."):
        found = commands_defined_in(module.name)
        assert len(found) <= 1, f"{module.name} defines several commands: {found}"
        defined += found
    assert sorted(defined) == sorted(COMMANDS.values())
    assert not cli.commands  # nothing registered on the group directly: COMMANDS is the only way in
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)


def loaded_modules(args: list[str], cwd: Path) -> set[str]:
    """The modules a `corpusbot ARGS` process had imported when it exited (through the console script's main)."""
    probe = cwd / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(probe)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from corpusbot.bot.cli import main\n"
        f"sys.argv = ['corpusbot', *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(probe.read_text()))


def test_ask_imports_neither_the_slack_stack_nor_the_other_commands(sample_db: Path, tmp_path: Path) -> None:
    modules = loaded_modules(["ask", "--json", "--db", str(sample_db), "who is on the US delegation?"], tmp_path)
    assert "corpusbot.bot.cli.ask" in modules
    unwanted = {name for name in modules if name.split(".")[0] in NOT_FOR_ASK}
    assert not unwanted, f"corpusbot ask imported {sorted(unwanted)}"
    other_commands = {target.partition(":")[0] for name, target in COMMANDS.items() if name != "ask"}
    assert not modules & other_commands
    assert not {name for name in modules if name.startswith(("corpusbot.bot.slack", "corpusbot.bot.serving"))}


def test_the_import_probe_sees_the_slack_stack_when_serve_loads(tmp_path: Path) -> None:
    assert "slack_bolt" in loaded_modules(["serve", "--help"], tmp_path)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (CorpusbotError("No index at x.db."), "No index at x.db."),
        (sqlite3.OperationalError("database is locked"), "locked by another process"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("disk I/O error"), "Database error: disk I/O error."),
        (sqlite3.DatabaseError("file is not a database"), "corpusbot index --full"),
    ],
)
def test_user_errors_become_one_line_click_errors(error: Exception, message: str) -> None:
    with pytest.raises(click.ClickException) as raised, user_errors():
        raise error
    assert message in raised.value.format_message()
    assert raised.value.__suppress_context__
