"""docs/cli.md is generated from the commands' help, and every command has help ending with an example."""

from __future__ import annotations

import io
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cogapp import Cog  # in the dev extras: pip install -e '.[dev]'

from corpusbot.bot.cli import COMMANDS, cli

CLI_REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_cli_reference_is_up_to_date() -> None:
    cog = Cog()
    output = io.StringIO()
    cog.set_output(stdout=output, stderr=output)
    status = cog.main(["cog", "--check", "--diff", str(CLI_REFERENCE)])
    assert status == 0, f"docs/cli.md is out of date; regenerate it with `cog -r docs/cli.md`:\n{output.getvalue()}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_commands_have_help(name: str, runner: CliRunner) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name, f"COMMANDS[{name!r}] is named {command and command.name!r}"
    assert command.help, f"corpusbot {name} has no help text (its function's docstring)"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"corpusbot {name} {param.opts[0]} has no help text"
    result = runner.invoke(cli, [name, "--help"], prog_name="corpusbot")
    assert result.exit_code == 0, result.output
    description = result.output.split("\nOptions:")[0]
    usage, *_, last_paragraph = [paragraph.strip() for paragraph in description.strip().split("\n\n")]
    assert usage.startswith(f"Usage: corpusbot {name}")
    assert last_paragraph.startswith(f"Example: corpusbot {name}"), (
        f"corpusbot {name}: help should end with 'Example: corpusbot {name} ...', not {last_paragraph!r}"
    )
