"""A database file replaced, removed or damaged under a running SearchService (issue "Reliability, round two").

Every test opens the service on the bundled sample first, asks once (so the
index is loaded and cached) and keeps it, then changes the file at the path
the way an operator might. The replacement index holds other articles (a
zebra and an owl), so an answer from the old file shows.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError, IndexMissing, SchemaMismatch
from tests.support import ROOT

SAMPLE_QUESTION = "who is on the US delegation?"  # answered by the bundled sample only
ZEBRA_QUESTION = "zebra herds crossing the river"  # answered by the other corpus only
FILLER = (
    "Rangers recorded the numbers at dawn and again at dusk, and the figures were shared with the regional office "
    "so that the counts could be compared with those of earlier seasons and neighbouring reserves."
)


def write_corpus(folder: Path, articles: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def other_corpus(tmp_path: Path) -> Path:
    return write_corpus(
        tmp_path / "other-corpus",
        {
            "zebra.txt": "Zebra migration\n\nThe zebra herds crossed the Mara river in record numbers this year. "
            + FILLER,
            "owl.txt": "Owl census\n\nVolunteers counted snowy owls across the northern tundra this winter. " + FILLER,
        },
    )


@pytest.fixture
def other_db(tmp_path: Path, other_corpus: Path) -> Path:
    """Another index (other articles) of the same generation as the sample's: 1."""
    path = tmp_path / "other.db"
    index_corpus(path, [str(other_corpus)])
    return path


@pytest.fixture
def service(sample_db: Path) -> Iterator[SearchService]:
    service = SearchService(sample_db)
    assert_answers_from_sample(service)
    yield service
    service.close()


def generation(path: Path) -> int:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
    finally:
        conn.close()


def remove_database(path: Path) -> None:
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        file.unlink(missing_ok=True)


def assert_answers_from_sample(service: SearchService) -> None:
    assert service.ask(SAMPLE_QUESTION).hits[0].article.id == "001-6346928b0b16da65"
    assert not service.ask(ZEBRA_QUESTION).hits
    assert service.check_ready() is None


def assert_answers_from_other(service: SearchService) -> None:
    answer = service.ask(ZEBRA_QUESTION)
    assert [hit.article.id for hit in answer.hits][:1] == ["zebra"]
    assert "zebra herds crossed" in answer.hits[0].passage.text
    assert not service.ask(SAMPLE_QUESTION).hits
    assert service.article("zebra") is not None
    assert service.article("001-6346928b0b16da65") is None
    assert service.stats().articles == 2
    assert service.check_ready() is None


# -- another index at the path, of the same generation ------------------------


def test_another_index_copied_over_in_place(service: SearchService, sample_db: Path, other_db: Path) -> None:
    assert generation(other_db) == generation(sample_db) == service.generation
    inode = sample_db.stat().st_ino
    shutil.copyfile(other_db, sample_db)  # truncates and rewrites the same file (same inode)
    assert sample_db.stat().st_ino == inode
    assert_answers_from_other(service)


def test_another_index_of_another_generation_copied_over_in_place_is_seen_on_the_next_read(
    service: SearchService, sample_db: Path, other_db: Path, other_corpus: Path
) -> None:
    """The first read after the copy is the metadata's, which the old connection has cached."""
    (other_corpus / "owl.txt").write_text("Owl census\n\nNo owls were counted this winter at all. " + FILLER)
    index_corpus(other_db, [str(other_corpus)])
    assert generation(other_db) == 2
    shutil.copyfile(other_db, sample_db)
    assert service.generation == 2
    assert service.stats().articles == 2


def test_a_copy_in_place_that_changes_only_the_metadata_page_is_seen(
    service: SearchService, sample_db: Path, tmp_path: Path
) -> None:
    """The other pages read are the same, so nothing fails: only reopening stops SQLite serving its cached meta page."""
    edited = tmp_path / "edited.db"
    shutil.copyfile(sample_db, edited)
    conn = sqlite3.connect(edited)
    with conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'generation'")
        # New pages at the end: another size, so the copy shows however coarse the file system's clock.
        conn.execute("CREATE TABLE padding (data BLOB)")
        conn.execute("INSERT INTO padding VALUES (zeroblob(1 << 20))")
    conn.close()
    assert edited.stat().st_size > sample_db.stat().st_size
    shutil.copyfile(edited, sample_db)
    assert service.generation == 7
    assert_answers_from_sample(service)


def test_another_index_renamed_over_the_path(service: SearchService, sample_db: Path, other_db: Path) -> None:
    assert generation(other_db) == generation(sample_db)
    os.replace(other_db, sample_db)
    assert_answers_from_other(service)


def test_the_file_deleted_and_a_new_index_built_at_the_path(
    service: SearchService, sample_db: Path, other_corpus: Path
) -> None:
    remove_database(sample_db)
    index_corpus(sample_db, [str(other_corpus)])
    assert generation(sample_db) == 1  # as the old file's
    assert_answers_from_other(service)


def test_another_index_of_the_same_generation_written_into_the_file_by_sqlite(
    service: SearchService, sample_db: Path, other_db: Path
) -> None:
    """Through SQLite (its backup API, as `sqlite3 db .restore`): a commit; the file stays, the build id differs."""
    assert generation(other_db) == generation(sample_db)
    source, live = sqlite3.connect(other_db), sqlite3.connect(sample_db)
    try:
        source.backup(live)
    finally:
        source.close()
        live.close()
    assert_answers_from_other(service)


# -- its -wal and -shm deleted under the service, then a reindex ----------------


def test_wal_and_shm_deleted_then_reindexed_by_another_process(
    service: SearchService, sample_db: Path, other_corpus: Path
) -> None:
    journal = [Path(f"{sample_db}-wal"), Path(f"{sample_db}-shm")]
    assert all(file.exists() for file in journal)  # the service's connection made them
    for file in journal:
        file.unlink()
    paths = [BUNDLED, str(other_corpus)]
    reindex = f"from corpusbot.index import index_corpus; index_corpus({str(sample_db)!r}, {paths!r})"
    subprocess.run([sys.executable, "-c", reindex], cwd=ROOT, check=True, timeout=300)

    answer = service.ask(ZEBRA_QUESTION)
    assert answer.hits and answer.hits[0].article.id == "zebra"  # the new article
    assert service.ask(SAMPLE_QUESTION).hits[0].article.id == "001-6346928b0b16da65"
    assert service.generation == 2
    assert service.check_ready() is None


# -- no index at the path for a while -----------------------------------------


def test_missing_database_is_index_missing_until_one_is_built(
    service: SearchService, sample_db: Path, other_corpus: Path
) -> None:
    remove_database(sample_db)
    for _ in range(2):
        with pytest.raises(IndexMissing, match="No index database"):
            service.ask(SAMPLE_QUESTION)
    with pytest.raises(IndexMissing):
        service.article("001-6346928b0b16da65")
    reason = service.check_ready()
    assert reason is not None and "No index database" in reason and "corpusbot index" in reason

    index_corpus(sample_db, [str(other_corpus)])
    assert_answers_from_other(service)


@pytest.mark.parametrize("fix", ["index in place", "rename an index over it"])
def test_a_sqlite_file_without_an_index_is_index_missing_until_fixed(
    service: SearchService, sample_db: Path, other_corpus: Path, tmp_path: Path, fix: str
) -> None:
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    with conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('not an index')")
    conn.close()
    os.replace(foreign, sample_db)
    for _ in range(2):
        with pytest.raises(IndexMissing, match="holds no corpusbot index"):
            service.ask(SAMPLE_QUESTION)
    reason = service.check_ready()
    assert reason is not None and "holds no corpusbot index" in reason

    if fix == "index in place":
        index_corpus(sample_db, [str(other_corpus)])
    else:
        fixed = tmp_path / "fixed.db"
        index_corpus(fixed, [str(other_corpus)])
        os.replace(fixed, sample_db)
    assert_answers_from_other(service)


def test_an_index_of_another_schema_is_refused_until_replaced(
    service: SearchService, sample_db: Path, other_db: Path, tmp_path: Path, other_corpus: Path
) -> None:
    conn = sqlite3.connect(other_db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(store.SCHEMA_VERSION + 1),))
    conn.close()
    os.replace(other_db, sample_db)
    with pytest.raises(SchemaMismatch, match="corpusbot index --full"):
        service.ask(SAMPLE_QUESTION)
    assert "schema version" in (service.check_ready() or "")

    good = tmp_path / "good.db"
    index_corpus(good, [str(other_corpus)])
    os.replace(good, sample_db)
    assert_answers_from_other(service)


def test_a_file_that_is_no_database_is_a_clear_error_until_replaced(
    service: SearchService, sample_db: Path, other_db: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"these are not the pages you are looking for\n" * 200)
    os.replace(garbage, sample_db)
    for _ in range(2):
        with pytest.raises(CorpusbotError, match=r"Cannot open .* as a corpusbot database"):
            service.ask(SAMPLE_QUESTION)
    assert "as a corpusbot database" in (service.check_ready() or "")

    os.replace(other_db, sample_db)
    assert_answers_from_other(service)


# -- the connection itself failing ---------------------------------------------


def test_a_question_is_asked_again_on_a_new_connection_after_a_sqlite_error(
    service: SearchService, sample_db: Path
) -> None:
    """Any SQLite error but busy/locked: the connection is opened again and the question asked once more."""
    other = sqlite3.connect(sample_db)  # so that closing the service's connection leaves the -wal and -shm be
    other.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        broken = service._db
        assert broken is not None
        broken.conn.close()  # every use now fails with sqlite3.ProgrammingError (a DatabaseError)
        assert store.FileState.of(sample_db) == broken.opened  # nothing the look at the path could notice
        assert service.ask(SAMPLE_QUESTION).hits[0].article.id == "001-6346928b0b16da65"
        assert service._db is not broken
    finally:
        other.close()


def test_a_closed_service_stays_closed(sample_db: Path) -> None:
    service = SearchService(sample_db)
    service.close()
    with pytest.raises(sqlite3.ProgrammingError):
        service.ask(SAMPLE_QUESTION)
    assert service._db is None
