"""Edited JSONL files: unchanged lines are known by their stored hash, not parsed; the result equals a full rebuild.

Also: an index written before the hash column is upgraded in place inside the
write transaction, and a ``--full`` rebuild of another schema drops the old
tables inside that same transaction (a failure or a kill leaves them whole).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import corpusbot.index.corpus.readers as readers
import corpusbot.index.indexing.writer as writer
from corpusbot.index import index_corpus
from corpusbot.index.engine import store
from corpusbot.index.maintenance.check import check_database
from tests.support import ROOT
from tests.support.index_compare import ranked, snapshot

WORDS = (
    "tariff export license rare earth magnet court ruling port trade minister treaty delegation senate budget "
    "inflation harvest drought pipeline refinery satellite launch vaccine trial election ballot strike union"
).split()


def body(seed: int) -> str:
    rng = np.random.default_rng(seed)
    filler = [f"zq{n}" for n in rng.integers(0, 3000, size=400)]
    paragraphs = [
        " ".join(rng.choice(WORDS, size=8).tolist() + rng.choice(filler, size=rng.integers(30, 60)).tolist()) + "."
        for _ in range(rng.integers(1, 4))
    ]
    return "\n\n".join(paragraphs)


def record(i: int, seed: int | None = None) -> dict[str, str]:
    return {"id": f"a{i}", "title": f"Report {i} on {WORDS[i % len(WORDS)]}", "text": body(i if seed is None else seed)}


def write_lines(path: Path, lines: list[str], encoding: str = "utf-8", bom: bool = False) -> None:
    data = "".join(line + "\n" for line in lines).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def dumps(items: list[dict[str, str]]) -> list[str]:
    return [json.dumps(item, ensure_ascii=False) for item in items]


class ParsedLines:
    """Counts the non-blank lines of the JSONL data the indexer hands to the reader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lines: list[str] = []
        original = readers.read_file

        def read_file(path: Path, data: bytes, article_id: str) -> readers.ReadResult:
            if path.suffix == ".jsonl":
                self.lines += [line for line in data.decode("utf-8", "replace").split("\n") if line.strip()]
            return original(path, data, article_id)

        monkeypatch.setattr(readers, "read_file", read_file)


def full_rebuild(corpus: Path, tmp_path: Path) -> Path:
    db = tmp_path / "full.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    index_corpus(db, [str(corpus)], full=True)
    return db


def articles(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT id, title, text, url, path, file, passage_count FROM articles ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def line_hashes(db: Path) -> dict[str, bytes | None]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute(f"SELECT id, {store.SOURCE_HASH_COLUMN} FROM articles"))
    finally:
        conn.close()


def assert_same_ranking(db: Path, full: Path) -> None:
    """Same top-10 scores, and the same passages above the last (possibly tied) score."""
    queries = ["rare earth magnet", "court ruling trade", "vaccine vaccine trial", "report budget senate strike"]
    for got, want in zip(ranked(db, queries), ranked(full, queries), strict=True):
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-12, atol=0)
        last = want[-1][1]
        assert {k for k, s in got if s > last * (1 + 1e-9)} == {k for k, s in want if s > last * (1 + 1e-9)}


def assert_equals_full_rebuild(db: Path, corpus: Path, tmp_path: Path) -> None:
    """Postings, lengths, statistics, articles and rankings as a fresh index of the corpus; ``check`` passes."""
    full = full_rebuild(corpus, tmp_path)
    got, want = snapshot(db), snapshot(full)
    assert got["meta"] == want["meta"]
    assert got["average_idf"] == pytest.approx(want["average_idf"], rel=1e-12)
    assert got["lengths"] == want["lengths"]
    assert got["terms"] == want["terms"]
    assert_same_ranking(db, full)
    assert articles(db) == articles(full)
    report = check_database(db, queries=3)
    assert report.problems == []


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_lines(folder / "a.jsonl", dumps([record(i) for i in range(40)]))
    write_lines(folder / "b.jsonl", dumps([record(i) for i in range(40, 60)]))
    return folder


def test_only_changed_lines_are_parsed_and_the_index_equals_a_full_rebuild(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    items = [record(i) for i in range(40)]
    items[3] = record(3, seed=1003)  # new text
    items[7] = {**items[7], "title": "A retitled report"}  # title only
    items[11] = {**items[11], "url": "https://example.com/11"}  # a stored field only
    del items[20]  # removed
    items.insert(0, items.pop(30))  # moved: same bytes on another line
    items.append(record(99))  # new
    write_lines(corpus / "a.jsonl", dumps(items))

    parsed = ParsedLines(monkeypatch)
    summary = index_corpus(db)
    assert summary.updated == [str(corpus / "a.jsonl")] and summary.unchanged == [str(corpus / "b.jsonl")]
    assert sorted(json.loads(line)["id"] for line in parsed.lines) == ["a11", "a3", "a7", "a99"]
    monkeypatch.undo()
    assert_equals_full_rebuild(db, corpus, tmp_path)
    assert all(line_hashes(db).values())


def test_a_line_rewritten_without_changing_its_article_keeps_its_passages(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT id, article_id FROM passages ORDER BY id").fetchall()
        old_hash = conn.execute(f"SELECT {store.SOURCE_HASH_COLUMN} FROM articles WHERE id = 'a5'").fetchone()[0]
    items = [record(i) for i in range(40)]
    lines = dumps(items)
    lines[5] = json.dumps(dict(reversed(list(items[5].items()))))  # other bytes, same article
    write_lines(corpus / "a.jsonl", lines)
    index_corpus(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id, article_id FROM passages ORDER BY id").fetchall() == before
        new_hash = conn.execute(f"SELECT {store.SOURCE_HASH_COLUMN} FROM articles WHERE id = 'a5'").fetchone()[0]
    assert new_hash != old_hash  # the hash of the line as it is now, so the next run matches it
    assert_equals_full_rebuild(db, corpus, tmp_path)


@pytest.mark.parametrize(
    "case",
    ["repeat id after an unchanged line", "repeat id before an unchanged line", "identical line twice", "bad line"],
)
def test_repeated_ids_and_bad_lines_read_as_in_a_full_rebuild(case: str, corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    lines = dumps([record(i) for i in range(40)])
    other = json.dumps({**record(4, seed=777)})  # id a4, other text
    if case == "repeat id after an unchanged line":
        lines.insert(10, other)  # a4 (line 5) stays; this one is a repeat
    elif case == "repeat id before an unchanged line":
        lines.insert(0, other)  # now the first a4: it replaces the stored one
    elif case == "identical line twice":
        lines.append(lines[4])
    else:
        lines.insert(2, '{"id": "broken", "text": ')
    write_lines(corpus / "a.jsonl", lines)
    summary = index_corpus(db)
    warnings = [message for _, message in summary.warnings]
    assert warnings == [message for _, message in index_corpus(tmp_path / "again.db", [str(corpus)]).warnings]
    assert warnings  # each case warns about a repeat or a bad line
    assert_equals_full_rebuild(db, corpus, tmp_path)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-bom"])
def test_files_not_plain_utf8_are_compared_article_by_article(
    encoding: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    items = [{**record(i), "title": f"Caf\u00e9 report {i}"} for i in range(12)]
    write = (lambda lines: write_lines(corpus / "x.jsonl", lines, "cp1252")) if encoding == "cp1252" else None
    write = write or (lambda lines: write_lines(corpus / "x.jsonl", lines, bom=True))
    write(dumps(items))
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    assert not any(line_hashes(db).values())  # lines of such files are not known by hash
    items[2] = record(2, seed=502)
    write(dumps(items))
    parsed = ParsedLines(monkeypatch)
    index_corpus(db)
    assert len(parsed.lines) == len(items)  # all read again; the unchanged ones kept by comparison
    monkeypatch.undo()
    assert_equals_full_rebuild(db, corpus, tmp_path)


def drop_hash_column(db: Path) -> None:
    """Make ``db`` look like an index written before the line-hash column (still schema version 2)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(f"ALTER TABLE articles DROP COLUMN {store.SOURCE_HASH_COLUMN}")
        conn.execute("DROP TABLE _migrations")  # as the release before migrations left it
    conn.close()


def test_an_index_without_the_hash_column_is_upgraded_in_place(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    drop_hash_column(db)
    assert check_database(db, queries=3).problems == []  # the older layout is a valid index
    items = [record(i) for i in range(40)]
    items[1] = record(1, seed=901)
    write_lines(corpus / "a.jsonl", dumps(items))
    index_corpus(db)  # compares the old way, adds the column, stores the hashes of the file it read
    hashes = line_hashes(db)
    assert all(hashes[f"a{i}"] for i in range(40))
    assert not any(hashes[f"a{i}"] for i in range(40, 60))  # b.jsonl was not read: unknown (NULL)
    assert_equals_full_rebuild(db, corpus, tmp_path)

    items[2] = record(2, seed=902)
    write_lines(corpus / "a.jsonl", dumps(items))
    parsed = ParsedLines(monkeypatch)
    index_corpus(db)
    assert [json.loads(line)["id"] for line in parsed.lines] == ["a2"]  # now known by hash
    monkeypatch.undo()
    assert_equals_full_rebuild(db, corpus, tmp_path)


def test_a_failed_upgrade_leaves_the_index_as_it_was(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    drop_hash_column(db)
    before = articles(db)
    items = [record(i) for i in range(40)]
    items[1] = record(1, seed=901)
    write_lines(corpus / "a.jsonl", dumps(items))

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writer, "write_index", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        index_corpus(db)
    monkeypatch.undo()
    assert articles(db) == before
    conn = store.connect(db)
    try:
        assert not store.has_source_hashes(conn)  # the column was added in the transaction that rolled back
    finally:
        conn.conn.close()
    index_corpus(db)
    assert_equals_full_rebuild(db, corpus, tmp_path)


def other_schema(db: Path) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(store.SCHEMA_VERSION + 1),))
    conn.close()


def table_counts(db: Path) -> tuple[int, int, int, str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages), (SELECT count(*) FROM terms), "
            "(SELECT value FROM meta WHERE key = 'schema_version')"
        ).fetchone()
    finally:
        conn.close()


def test_full_rebuild_of_another_schema_that_fails_keeps_the_old_tables(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    other_schema(db)
    before = table_counts(db)
    assert before[0] == 60

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stopped after the drop")

    monkeypatch.setattr(writer, "write_index", fail)  # runs after the old tables are dropped
    with pytest.raises(RuntimeError, match="stopped after the drop"):
        index_corpus(db, full=True)
    monkeypatch.undo()
    assert table_counts(db) == before
    index_corpus(db, full=True)
    assert table_counts(db)[3] == str(store.SCHEMA_VERSION)
    assert_equals_full_rebuild(db, corpus, tmp_path)


KILLED_DRIVER = textwrap.dedent(
    """
    import sys, time
    import corpusbot.index.indexing.indexer as indexer
    import corpusbot.index.indexing.writer as writer
    original = writer.write_index

    def write(db, *args, **kwargs):
        original(db, *args, **kwargs)
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        sys.stderr.write(f"WRITTEN in_transaction={db.conn.in_transaction} tables={len(tables)}\\n")
        sys.stderr.flush()
        time.sleep(3600)

    writer.write_index = write
    indexer.index_corpus(sys.argv[1], [sys.argv[2]], full=True)
    """
)


def test_killed_full_rebuild_of_another_schema_keeps_the_old_tables(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    other_schema(db)
    before = table_counts(db)
    driver = tmp_path / "driver.py"
    driver.write_text(KILLED_DRIVER, encoding="utf-8")
    root = str(ROOT)  # the driver imports the code under test
    path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    process = subprocess.Popen(
        [sys.executable, str(driver), str(db), str(corpus)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("WRITTEN in_transaction=True"), line + process.stderr.read()
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
        if process.stderr:
            process.stderr.close()
    assert table_counts(db) == before  # the old tables, whole; the rebuild was never committed
    index_corpus(db, full=True)
    assert_equals_full_rebuild(db, corpus, tmp_path)
