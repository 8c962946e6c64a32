"""What tells a reader that the database at its path is another file or another build.

``store.FileState`` (the file's inode, size and time; its ``-shm``'s inode),
``store.wal_index_header`` (what SQLite changes in the ``-shm`` on a commit or
checkpoint, and a copy over the file does not) and ``meta.build_id`` (new on
every index build and restore). The search service's use of them is tested in
tests/index/search/test_replaced_database.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from corpusbot.index.errors import IndexMissing
from corpusbot.index.maintenance.backup import backup_database
from corpusbot.index.maintenance.restore import restore_database


def build_id(path: Path) -> str:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return json.loads(conn.execute("SELECT value FROM meta WHERE key = 'build_id'").fetchone()[0])
    finally:
        conn.close()


def test_file_state_tells_another_file_from_the_same_file_written(sample_db: Path, tmp_path: Path) -> None:
    first = store.FileState.of(sample_db)
    assert first == store.FileState.of(sample_db)

    other = tmp_path / "other.db"
    shutil.copyfile(sample_db, other)
    with other.open("ab") as file:
        file.write(b"\0" * 4096)  # another size, whatever the clock's resolution
    shutil.copyfile(other, sample_db)  # written in place
    written = store.FileState.of(sample_db)
    assert written.same_file(first) and written != first

    os.replace(other, sample_db)
    renamed = store.FileState.of(sample_db)
    assert not renamed.same_file(first)

    os.unlink(sample_db)
    with pytest.raises(FileNotFoundError):
        store.FileState.of(sample_db)


def test_file_state_follows_the_shm_file(sample_db: Path) -> None:
    shm = Path(f"{sample_db}-shm")
    assert not shm.exists()  # the indexer's connection was the last: SQLite removed it
    assert store.FileState.of(sample_db).shm is None
    reader = store.connect_reader(sample_db)
    try:
        state = store.FileState.of(sample_db)
        assert state.shm == (shm.stat().st_dev, shm.stat().st_ino)
        assert reader.opened == state  # what the reader opened, as seen before and after opening
        shm.unlink()
        assert store.FileState.of(sample_db).shm is None
        shm.write_bytes(b"")
        assert store.FileState.of(sample_db).shm not in (None, state.shm)
    finally:
        reader.conn.close()


def test_connect_reader_on_no_file_is_index_missing(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="No index database"):
        store.connect_reader(tmp_path / "none.db")


def test_the_wal_index_header_changes_on_a_commit_but_not_on_a_copy_over_the_file(
    sample_db: Path, tmp_path: Path
) -> None:
    assert store.wal_index_header(sample_db) is None  # no -shm
    reader = store.connect_reader(sample_db)
    try:
        before = store.wal_index_header(sample_db)
        assert before is not None and len(before) == 52

        writer = sqlite3.connect(sample_db)
        with writer:
            writer.execute("UPDATE meta SET value = '5' WHERE key = 'generation'")
        committed = store.wal_index_header(sample_db)
        assert committed != before
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the pages go into the file
        writer.close()
        checkpointed = store.wal_index_header(sample_db)
        assert checkpointed != committed

        other = tmp_path / "other.db"
        index_corpus(other, [BUNDLED])
        state = store.FileState.of(sample_db)
        shutil.copyfile(other, sample_db)
        assert store.FileState.of(sample_db) != state  # the file was written ...
        assert store.wal_index_header(sample_db) == checkpointed  # ... and SQLite's WAL index does not show it
    finally:
        reader.conn.close()


def test_every_index_build_gets_its_own_build_id(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Harbour cranes\n\nThe harbour cranes were replaced this spring. " * 5)
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    index_corpus(first, [str(corpus)])
    index_corpus(second, [str(corpus)])
    assert build_id(first) != build_id(second)  # the same corpus, the same generation (1): two builds

    built = build_id(first)
    index_corpus(first)  # nothing changed: no new build
    assert build_id(first) == built
    (corpus / "b.txt").write_text("Tide tables\n\nThe tide tables were printed again. " * 5)
    index_corpus(first)
    incremental = build_id(first)
    assert incremental not in (built, build_id(second))
    index_corpus(first, full=True)
    assert build_id(first) not in (built, incremental)


def test_a_restore_gets_a_new_build_id(sample_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    backup_database(sample_db, backup)
    assert build_id(backup) == build_id(sample_db)
    live = build_id(sample_db)
    restore_database(backup, sample_db)
    assert build_id(sample_db) not in (live, build_id(backup))
