"""`corpusbot restore BACKUP` through the CLI: the JSON contract, one-line errors, the restored index answers."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from corpusbot.bot.cli import cli


def test_backup_then_restore_round_trip(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    assert runner.invoke(cli, ["backup", str(backup), "--db", str(sample_db)]).exit_code == 0
    result = runner.invoke(cli, ["restore", str(backup), "--db", str(sample_db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["backup"] == str(backup) and report["target"] == str(sample_db)
    assert report["articles"] == 2 and report["passages"] > 0 and type(report["generation"]) is int
    asked = runner.invoke(cli, ["ask", "--json", "--db", str(sample_db), "who is on the US delegation?"])
    assert "Becente" in json.loads(asked.output)["results"][0]["text"]


def test_a_missing_backup_is_one_line_naming_the_fix(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["restore", str(tmp_path / "nope.db"), "--db", str(sample_db)])
    assert result.exit_code == 1
    assert "No backup at" in result.output and "corpusbot backup" in result.output
    assert "Traceback" not in result.output


def test_a_file_that_is_no_backup_is_refused(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello\n" * 1000)
    result = runner.invoke(cli, ["restore", str(junk), "--db", str(sample_db)])
    assert result.exit_code == 1
    assert "nothing was restored" in result.output
    assert "Traceback" not in result.output


def test_backup_also_copies_the_bots_state_database(runner: CliRunner, sample_db: Path, tmp_path: Path) -> None:
    from corpusbot.bot.state import BotState, Feedback

    state = BotState(sample_db)
    try:
        state.add_feedback(
            Feedback(
                user_id="U0ALICE1",
                channel_id="C0GENERAL",
                verdict="helpful",
                question="who is on the US delegation?",
                passages=("000-6b3987004aa82828:3",),
            )
        )
    finally:
        state.close()
    backup = tmp_path / "backups" / "nightly.db"
    backup.parent.mkdir()
    result = runner.invoke(cli, ["backup", str(backup), "--db", str(sample_db), "--json"])
    assert result.exit_code == 0, result.output
    copy = backup.with_name("nightly-state.db")
    assert json.loads(result.output)["state"] == str(copy)
    feedback = runner.invoke(cli, ["feedback", "--json", "--db", str(backup)])
    assert feedback.exit_code == 0, feedback.output
    assert "who is on the US delegation?" in feedback.output
    again = runner.invoke(cli, ["backup", str(backup), "--db", str(sample_db)])
    assert again.exit_code == 1 and "already exists" in again.output
