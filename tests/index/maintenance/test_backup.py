"""`corpusbot backup PATH`: a consistent, self-contained, owner-only copy, also while the index is in use."""

from __future__ import annotations

import json
import random
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import corpusbot.index.maintenance.backup as backup_module
from corpusbot.bot.cli import cli
from corpusbot.index import SearchService, index_corpus
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.backup import backup_database
from corpusbot.index.maintenance.check import check_database

CORPUSBOT = Path(sys.executable).with_name("corpusbot")


def top_answer(db: Path, question: str = "who is on the US delegation?") -> tuple[str, int, float]:
    service = SearchService(db)
    try:
        hit = service.ask(question).hits[0]
        return hit.article.id, hit.passage.ordinal, hit.score
    finally:
        service.close()


def test_backup_is_a_checked_self_contained_owner_only_copy(sample_db: Path, runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    result = runner.invoke(cli, ["backup", str(target), "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    assert "2 articles" in result.output and f"corpusbot check --db {target}" in result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.db"]  # no -wal, no leftovers
    conn = sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    checked = runner.invoke(cli, ["check", "--db", str(target)])
    assert checked.exit_code == 0, checked.output
    assert top_answer(target) == top_answer(sample_db)


def test_backup_json(sample_db: Path, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["backup", "--json", str(tmp_path / "copy.db"), "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["articles"] == 2 and report["passages"] > 2 and report["bytes"] > 0
    assert report["target"] == str(tmp_path / "copy.db") and report["generation"] == 1


def test_backup_refuses_to_overwrite_unless_forced(sample_db: Path, runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    target.write_text("precious")
    refused = runner.invoke(cli, ["backup", str(target), "--db", str(sample_db)])
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "already exists" in refused.output and "--force" in refused.output
    assert target.read_text() == "precious"
    forced = runner.invoke(cli, ["backup", "--force", str(target), "--db", str(sample_db)])
    assert forced.exit_code == 0, forced.output
    assert check_database(target).ok


@pytest.mark.parametrize("where", ["folder", "missing folder", "the database itself"])
def test_backup_to_an_impossible_target_is_a_clear_error(
    sample_db: Path, runner: CliRunner, tmp_path: Path, where: str
) -> None:
    target = {"folder": tmp_path, "missing folder": tmp_path / "nope" / "x.db", "the database itself": sample_db}[where]
    before = sample_db.read_bytes()
    result = runner.invoke(cli, ["backup", "--force", str(target), "--db", str(sample_db)])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert sample_db.read_bytes() == before


def test_a_failed_backup_leaves_nothing_under_the_target_name(
    sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = backup_module._copy

    def copy_then_fail(src: sqlite3.Connection, path: Path):
        original(src, path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_module, "_copy", copy_then_fail)
    with pytest.raises(CorpusbotError, match="No space left"):
        backup_database(sample_db, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".copy", "copy"))) == []


def write_corpus(folder: Path, seed: int, articles: int) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(1500)] + "trade talks london rare earth export licenses delegation".split() * 30
    folder.mkdir()
    lines = [
        json.dumps({"id": f"a{i}", "title": f"Report {i}", "text": " ".join(rng.choices(words, k=16)) + "."})
        for i in range(articles)
    ]
    (folder / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_backups_taken_while_reading_and_reindexing_are_whole_indexes(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    write_corpus(old, 1, 2000)
    write_corpus(new, 2, 2600)
    db = tmp_path / "index.db"
    index_corpus(db, [str(old)])
    reader = SearchService(db)
    writer = subprocess.Popen(
        [str(CORPUSBOT), "index", str(new), "--db", str(db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    copies: list[Path] = []
    try:
        while True:
            running = writer.poll() is None
            assert reader.ask("trade talks in london").hits  # the bot keeps answering
            copy = tmp_path / f"copy{len(copies)}.db"
            backup_database(db, copy)
            copies.append(copy)
            if not running:
                break
            time.sleep(0.25)
        _, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        reader.close()
    assert writer.returncode == 0, err
    assert len(copies) >= 3
    generations = set()
    for copy in copies:
        report = check_database(copy, sample=40, queries=2)
        assert report.ok, (copy, report.problems)
        assert report.counts["articles"] in (2000, 2600)
        conn = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
        generations.add(int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]))
        conn.close()
    assert generations <= {1, 2} and 2 in generations


def test_backup_during_an_open_write_transaction_copies_the_last_committed_index(
    sample_db: Path, tmp_path: Path
) -> None:
    writer = sqlite3.connect(sample_db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM passages WHERE id % 2 = 0")
        writer.execute("UPDATE meta SET value = '999' WHERE key = 'generation'")
        writer.execute("INSERT INTO articles(id, title, text, passage_count) VALUES ('half', 'half', 'written', 9)")
        copy = tmp_path / "copy.db"
        backup_database(sample_db, copy)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    report = check_database(copy)
    assert report.ok, report.problems
    assert top_answer(copy) == top_answer(sample_db)
