"""`corpusbot restore BACKUP`: the backup's index is written into the live database, never renamed over it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.maintenance.backup import backup_database
from corpusbot.index.maintenance.check import check_database
from corpusbot.index.maintenance.restore import restore_database
from tests.support import write_not_an_index

ZEBRA = (
    "Zebra crossing repainted\n\nThe zebra crossing on Main Street was repainted by the council yesterday after "
    "complaints from parents and teachers about safety near the school gates and the park entrance.\n"
)


@pytest.fixture
def live_and_backup(tmp_path: Path, corpus_dir: Path) -> tuple[Path, Path]:
    """A live index of the sample corpus plus one more article, and a backup taken before that article."""
    live, backup = tmp_path / "live.db", tmp_path / "backup.db"
    index_corpus(live, [BUNDLED])
    backup_database(live, backup)
    (corpus_dir / "zebra.txt").write_text(ZEBRA, encoding="utf-8")
    index_corpus(live, [BUNDLED, str(corpus_dir)])
    return live, backup


def article_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM articles")}
    finally:
        conn.close()


def passage_texts(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT text FROM passages ORDER BY article_id, ordinal")]
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


WRITER_KILLED_BEFORE_CHECKPOINT = textwrap.dedent(
    """
    import sqlite3, sys, os
    conn = sqlite3.connect(sys.argv[1])
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    with conn:
        for table in ("meta", "articles", "passages", "terms", "files"):  # every index page into the journal
            conn.execute(f"UPDATE {table} SET rowid = rowid")
        conn.execute("CREATE TABLE IF NOT EXISTS bot_feedback (id INTEGER PRIMARY KEY, verdict TEXT)")
        conn.executemany("INSERT INTO bot_feedback (verdict) VALUES (?)", [("helpful",)] * 500)
    print("committed", flush=True)
    sys.stdin.read()
    """
)


def leave_a_journal_behind(db: Path) -> None:
    """Commit changes to every index table in ``db``, then SIGKILL the writer before any checkpoint."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER_KILLED_BEFORE_CHECKPOINT, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "committed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)


def test_restore_over_a_database_left_with_a_journal_by_a_killed_process(live_and_backup: tuple[Path, Path]) -> None:
    # The reported failure: a database whose last user was killed leaves committed pages in -wal; a backup
    # renamed over it got that stale journal replayed into it. A restore must leave a sound copy of the backup.
    live, backup = live_and_backup
    leave_a_journal_behind(live)
    assert Path(f"{live}-wal").stat().st_size > 0  # the journal holds the killed process's pages

    result = restore_database(backup, live)

    report = check_database(live)
    assert report.ok, report.to_text()
    assert integrity(live) == "ok"
    assert article_ids(live) == article_ids(backup)
    assert passage_texts(live) == passage_texts(backup)
    assert result.articles == len(article_ids(backup))
    conn = sqlite3.connect(live)
    try:
        feedback = conn.execute("SELECT count(*) FROM bot_feedback").fetchone()[0]
    finally:
        conn.close()
    assert feedback == 500  # the bot's tables are the live database's: feedback since the backup is kept


def test_a_running_service_switches_to_the_restored_index_without_a_restart(
    live_and_backup: tuple[Path, Path],
) -> None:
    live, backup = live_and_backup
    service = SearchService(live)
    try:
        before = service.generation
        assert any(hit.article.title.startswith("Zebra") for hit in service.ask("zebra crossing").hits)
        result = restore_database(backup, live)
        answer = service.ask("zebra crossing")
        assert not any(hit.article.title.startswith("Zebra") for hit in answer.hits)
        assert service.generation == result.generation
        assert before is not None and result.generation > before
        assert service.ask("who is on the US delegation?").hits  # and the restored index answers
    finally:
        service.close()


def test_a_damaged_backup_is_refused_and_the_live_database_untouched(
    live_and_backup: tuple[Path, Path], tmp_path: Path
) -> None:
    live, backup = live_and_backup
    damaged = tmp_path / "damaged.db"
    data = bytearray(backup.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    damaged.write_bytes(bytes(data))
    before = article_ids(live)
    with pytest.raises(CorpusbotError, match="nothing was restored"):
        restore_database(damaged, live)
    assert article_ids(live) == before
    assert check_database(live).ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staged leftovers


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database at all, just text\n" * 200, "not a usable SQLite database"),
        (None, "holds no corpusbot index"),
    ],
)
def test_what_is_not_an_index_backup_is_refused(
    live_and_backup: tuple[Path, Path], tmp_path: Path, content: bytes | None, message: str
) -> None:
    live, _ = live_and_backup
    other = write_not_an_index(tmp_path / "other.db", content)
    before = article_ids(live)
    with pytest.raises(CorpusbotError, match=message):
        restore_database(other, live)
    assert article_ids(live) == before


def test_restore_into_a_missing_database_creates_it(live_and_backup: tuple[Path, Path], tmp_path: Path) -> None:
    _, backup = live_and_backup
    fresh = tmp_path / "fresh" / "corpusbot.db"
    fresh.parent.mkdir()
    restore_database(backup, fresh)
    assert article_ids(fresh) == article_ids(backup)
    assert check_database(fresh).ok
    conn = sqlite3.connect(fresh)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_restoring_the_database_onto_itself_is_refused(live_and_backup: tuple[Path, Path]) -> None:
    live, _ = live_and_backup
    with pytest.raises(CorpusbotError, match="is the database itself"):
        restore_database(live, live)


def test_backup_force_over_a_database_with_a_journal_writes_through_sqlite(live_and_backup: tuple[Path, Path]) -> None:
    # `corpusbot backup BACKUP --db ... LIVE --force` was the route `check` used to recommend: it renamed the copy
    # over LIVE and SQLite replayed LIVE's stale -wal into it. Overwriting a database goes through SQLite now.
    live, backup = live_and_backup
    leave_a_journal_behind(live)

    backup_database(backup, live, force=True)

    assert integrity(live) == "ok"
    assert check_database(live).ok
    assert passage_texts(live) == passage_texts(backup)
