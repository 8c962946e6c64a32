"""`corpusbot publish DEST` and `--rollback` through the CLI: the JSON contract and one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED

ZEBRA = (
    "Zebra crossing repainted\n\nThe zebra crossing on Main Street was repainted by the council yesterday after "
    "complaints from parents and teachers about safety near the school gates and the park entrance.\n"
)


def test_publish_json_names_the_snapshot_and_matches_the_pointer(
    runner: CliRunner, sample_db: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "published"
    result = runner.invoke(cli, ["publish", str(dest), "--db", str(sample_db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    pointer = json.loads((dest / "current.json").read_text())
    assert {key: report[key] for key in pointer} == pointer
    assert report["destination"] == str(dest) and report["changed"] is True and report["uploaded"] is True
    snapshot = dest / report["snapshot"]
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == report["sha256"]
    assert snapshot.stat().st_size == report["bytes"]


def test_publish_twice_then_rollback_in_text(
    runner: CliRunner, sample_db: Path, tmp_path: Path, corpus_dir: Path
) -> None:
    dest = tmp_path / "published"
    first = runner.invoke(cli, ["publish", str(dest), "--db", str(sample_db)])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Published index-") and "corpusbot publish --rollback" in first.output
    same = runner.invoke(cli, ["publish", str(dest), "--db", str(sample_db)])
    assert same.exit_code == 0 and "already the current snapshot" in same.output
    first_name = json.loads((dest / "current.json").read_text())["snapshot"]
    (corpus_dir / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    index_corpus(sample_db, [BUNDLED, str(corpus_dir)])
    second = runner.invoke(cli, ["publish", str(dest), "--db", str(sample_db)])
    assert second.exit_code == 0 and f"replacing {first_name}" in second.output

    rolled = runner.invoke(cli, ["publish", "--rollback", str(dest), "--json"])

    assert rolled.exit_code == 0, rolled.output
    report = json.loads(rolled.output)
    assert report["snapshot"] == first_name and report["previous"] is None
    assert json.loads((dest / "current.json").read_text())["snapshot"] == first_name
    again = runner.invoke(cli, ["publish", "--rollback", str(dest)])
    assert again.exit_code == 1
    assert "has no previous snapshot to roll back to" in again.output and "corpusbot publish" in again.output
    assert "Traceback" not in again.output


def test_rollback_with_nothing_published_says_what_to_do(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["publish", "--rollback", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "No snapshot published at" in result.output and "corpusbot publish" in result.output


def test_what_is_no_index_is_refused_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("hello\n" * 1000)
    dest = tmp_path / "published"
    result = runner.invoke(cli, ["publish", str(dest), "--db", str(junk)])
    assert result.exit_code == 1
    assert "nothing was published" in result.output and "Traceback" not in result.output
    assert not (dest / "current.json").exists()
    missing = runner.invoke(cli, ["publish", str(dest), "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "corpusbot index" in missing.output


def test_publishing_to_https_is_refused(runner: CliRunner, sample_db: Path) -> None:
    result = runner.invoke(cli, ["publish", "https://snapshots.example.invalid/corpusbot", "--db", str(sample_db)])
    assert result.exit_code == 1
    assert "read-only" in result.output and "Traceback" not in result.output
