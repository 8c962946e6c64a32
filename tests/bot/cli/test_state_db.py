"""The bot's state database on the command line: `corpusbot feedback` reads it (or an old index's table, read-only),
and `--state-db` / CORPUSBOT_STATE_DB name it for `feedback` and `serve`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.bot.state import BotState, Feedback
from corpusbot.bot.state.database import EVENTS_TABLE, FEEDBACK_TABLE
from tests.support.fake_slack import BOT_TOKEN

NO_STATE_ENV = {"CORPUSBOT_STATE_DB": None}  # whatever the environment running the tests says


def old_bot_tables(index: Path) -> None:
    """What a bot of an earlier version left in the index database: its feedback and event ids."""
    connection = sqlite3.connect(index)
    connection.executescript(
        f"""
        CREATE TABLE {FEEDBACK_TABLE} (id INTEGER PRIMARY KEY, created_at TEXT, user_id TEXT, channel_id TEXT,
            verdict TEXT, question TEXT, passages TEXT, "offset" INTEGER);
        CREATE TABLE {EVENTS_TABLE} (event_id TEXT PRIMARY KEY, seen_at FLOAT);
        INSERT INTO {FEEDBACK_TABLE} VALUES (1, '2025-01-01T00:00:00+00:00', 'U0OLD001', 'C1', 'helpful',
            'who is on the US delegation?', '["a ¶2"]', 0);
        INSERT INTO {EVENTS_TABLE} VALUES ('EvOld', 1.0);
        """
    )
    connection.commit()
    connection.close()


def listed(runner: CliRunner, *args: str, env: dict[str, str | None] | None = None) -> list[dict]:
    result = runner.invoke(cli, ["feedback", "--json", *args], env={**NO_STATE_ENV, **(env or {})})
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_feedback_of_an_index_never_served_since_the_move_is_read_from_it_without_writing(
    runner: CliRunner, sample_db: Path
) -> None:
    old_bot_tables(sample_db)
    before = sample_db.read_bytes()
    assert [item["user_id"] for item in listed(runner, "--db", str(sample_db))] == ["U0OLD001"]
    text = runner.invoke(cli, ["feedback", "--db", str(sample_db)], env=NO_STATE_ENV).output
    assert "1 feedback: 1 helpful, 0 not helpful" in text and "shown: a ¶2" in text
    assert sample_db.read_bytes() == before
    assert not (sample_db.parent / "sample-state.db").exists()  # reading made nothing


def test_feedback_after_the_bot_ran_comes_from_the_state_database(runner: CliRunner, sample_db: Path) -> None:
    old_bot_tables(sample_db)
    state = BotState(sample_db)  # the bot starting: the old feedback is copied over
    state.add_feedback(Feedback("U0NEW001", None, "not_helpful", "rare earth", ()))
    state.close()
    assert [item["user_id"] for item in listed(runner, "--db", str(sample_db))] == ["U0NEW001", "U0OLD001"]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_state_database_elsewhere_is_named_by_option_or_environment(
    runner: CliRunner, sample_db: Path, tmp_path: Path, how: str
) -> None:
    elsewhere = tmp_path / "state" / "bot.db"
    elsewhere.parent.mkdir()
    state = BotState(sample_db, state_db=elsewhere)
    state.add_feedback(Feedback("U0ELSE01", None, "helpful", "q", ()))
    state.close()
    args = ["--db", str(sample_db)]
    if how == "option":
        found = listed(runner, *args, "--state-db", str(elsewhere))
    else:
        found = listed(runner, *args, env={"CORPUSBOT_STATE_DB": str(elsewhere)})
    assert [item["user_id"] for item in found] == ["U0ELSE01"]
    assert listed(runner, *args) == []  # beside the index there is nothing


def test_serve_keeps_its_state_where_state_db_says(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "served-state.db"
    result = runner.invoke(
        cli,
        ["serve", "--db", str(sample_db), "--state-db", str(elsewhere)],
        env={
            **NO_STATE_ENV,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "abcdef0123456789",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing listens: serve stops after opening its state
            "SLACK_APP_TOKEN": None,
        },
    )
    assert result.exit_code == 1 and "Cannot reach the Slack API" in result.output, result.output
    assert elsewhere.exists() and not (sample_db.parent / "sample-state.db").exists()


def test_serve_refuses_the_index_as_its_state_database(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--db", str(sample_db), "--state-db", str(sample_db)],
        env={
            **NO_STATE_ENV,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "abcdef0123456789",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "SLACK_APP_TOKEN": None,
        },
    )
    assert result.exit_code == 1 and "cannot be the index database itself" in result.output
    assert "Traceback" not in result.output
