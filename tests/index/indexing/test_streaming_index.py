"""A large JSONL file is indexed in pieces (bounded memory); the index equals reading it whole and tokenizing plainly.

Every piece size of the pipeline is made tiny here (parts of the file read, the spool in memory,
chunks tokenized, groups of postings, batches written), so that a small corpus crosses every
boundary many times. The index must equal what the whole file read at once by ``read_file`` and
the plain splitter and tokenizer give, and what the default piece sizes give.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import corpusbot.index.corpus.readers as readers
from corpusbot.index import index_corpus
from corpusbot.index.engine import store
from corpusbot.index.engine.bm25 import decode
from corpusbot.index.indexing import passage_encoding, postings_buffer, spool, writer
from corpusbot.index.indexing.progress import IndexProgress
from corpusbot.index.text.passages import split_passages
from corpusbot.index.text.tokenizer import default_tokenizer
from tests.support.index_compare import assert_same_index

WORDS = (
    "tariff export license rare earth magnet court ruling port trade minister treaty delegation senate budget "
    "inflation harvest drought pipeline refinery satellite launch vaccine trial election ballot strike union "
    "the of and U.S. café naïve China’s rock/paper 3.5% don't"
).split()
TITLE_WEIGHT = 2


def body(rng: np.random.Generator) -> str:
    filler = [f"zq{n}" for n in rng.integers(0, 2000, size=300)]
    paragraphs = []
    for _ in range(int(rng.integers(1, 5))):
        words = rng.choice(WORDS, size=12).tolist() + rng.choice(filler, size=int(rng.integers(20, 90))).tolist()
        paragraphs.append(" ".join(words) + ".")
    return "\n\n".join(paragraphs)


def jsonl_lines(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        record = {"id": f"a{i}", "title": f"Report {i} {WORDS[i % 9]}", "text": body(rng), "source": "Wire"}
        if i % 17 == 0:
            record["title"] = " ".join(["magnet"] * 130)  # with TITLE_WEIGHT 2: a term frequency above 255
        lines.append(json.dumps(record, ensure_ascii=i % 2 == 0))
    lines[5] = '{"id": "broken", "text": '  # a malformed line: a warning
    lines[9] = json.dumps({"id": "a3", "text": "a repeated id: the first one is kept"})
    return lines


def write_corpus(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "big.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


@pytest.fixture
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "JSONL_PART_BYTES", 3_000)
    monkeypatch.setattr(spool, "SPOOL_MEMORY_BYTES", 20_000)  # the spool goes to disk
    monkeypatch.setattr(passage_encoding, "CHUNK_CHARS", 2_500)
    monkeypatch.setattr(postings_buffer, "GROUP_PASSAGES", 13)
    monkeypatch.setattr(postings_buffer, "GROUP_TOKENS", 700)
    monkeypatch.setattr(writer, "ARTICLES_BATCH", 7)
    monkeypatch.setattr(writer, "POSTINGS_BATCH", 300)


def expected_index(path: Path) -> dict[str, object]:
    """The index of one JSONL file by the straightforward way: read whole, split, tokenize, count."""
    data = path.read_bytes()
    result = readers.read_file(path, data, "big")
    lines = data.split(b"\n")
    tokenizer = default_tokenizer()
    articles, passages, postings = [], [], {}
    seen: set[str] = set()
    pid = 0
    for article in result.articles:
        if article.id in seen:
            continue
        seen.add(article.id)
        spans = split_passages(article.text)
        line = int(article.path.rpartition(":")[2]) - 1
        line_hash = hashlib.sha256(lines[line]).digest()
        articles.append(
            (article.id, article.title, article.text, article.url, article.path, str(path), len(spans), line_hash)
        )
        title_terms = tokenizer.terms(article.title) * TITLE_WEIGHT
        for ordinal, (start, end) in enumerate(spans, start=1):
            pid += 1
            terms = title_terms + tokenizer.terms(article.text[start:end])
            passages.append((pid, article.id, ordinal, start, end, len(terms), article.text[start:end]))
            for term, tf in Counter(terms).items():
                postings.setdefault(term, []).append((pid, tf))
    return {"articles": sorted(articles), "passages": passages, "postings": postings, "warnings": result.problems}


def stored_index(db: Path) -> dict[str, object]:
    conn = sqlite3.connect(db)
    try:
        articles = conn.execute(
            "SELECT id, title, text, url, path, file, passage_count, source_sha256 FROM articles ORDER BY id"
        ).fetchall()
        passages = conn.execute(
            "SELECT id, article_id, ordinal, start, end, length, text FROM passages ORDER BY id"
        ).fetchall()
        postings = {}
        for term, df, blob in conn.execute("SELECT term, df, postings FROM terms"):
            decoded = decode(blob)
            postings[term] = list(zip(decoded.ids.tolist(), decoded.term_frequencies().tolist(), strict=True))
            assert len(postings[term]) == df
    finally:
        conn.close()
    return {"articles": articles, "passages": passages, "postings": postings}


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of the index's tables but the time each article first entered it (two builds differ in it)."""
    conn = sqlite3.connect(db)
    try:
        rows = {}
        for table in ("articles", "passages", "terms", "blobs"):
            names = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            columns = ", ".join(f'"{name}"' for name in names if name != store.FIRST_INDEXED_COLUMN)
            rows[table] = conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()
        return rows
    finally:
        conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_jsonl_indexed_in_tiny_pieces_equals_reading_it_whole(
    workers: int, tiny_pieces: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if workers > 1:
        monkeypatch.setattr(passage_encoding, "PARALLEL_MIN_CHARS", 0)  # worker processes however small
    path = write_corpus(tmp_path / "corpus", jsonl_lines(160, seed=1))
    db = tmp_path / "index.db"
    summary = index_corpus(db, [str(path)], workers=workers, title_weight=TITLE_WEIGHT)
    expected = expected_index(path)
    got = stored_index(db)
    assert got["articles"] == expected["articles"]
    assert got["passages"] == expected["passages"]
    assert got["postings"] == expected["postings"]
    assert any(tf > 255 for entries in got["postings"].values() for _, tf in entries)
    assert [message for _, message in summary.warnings if "malformed" in message] == [
        message for message in expected["warnings"] if "malformed" in message
    ]

    monkeypatch.undo()  # the default piece sizes: everything in one piece
    whole = tmp_path / "whole.db"
    index_corpus(whole, [str(path)], workers=1, title_weight=TITLE_WEIGHT)
    assert table_rows(db) == table_rows(whole)


def test_an_edited_jsonl_indexed_in_tiny_pieces_equals_a_full_rebuild(tiny_pieces: None, tmp_path: Path) -> None:
    lines = jsonl_lines(120, seed=2)
    path = write_corpus(tmp_path / "corpus", lines)
    db = tmp_path / "index.db"
    index_corpus(db, [str(path)])
    other = jsonl_lines(120, seed=3)
    for i in (0, 1, 40, 41, 42, 90, 119):
        lines[i] = other[i]  # new texts, same ids
    lines.insert(60, lines.pop(20))  # a moved line
    del lines[70:75]  # removed articles
    lines.append(json.dumps({"id": "new", "title": "A new one", "text": "rare earth magnet exports resume."}))
    write_corpus(tmp_path / "corpus", lines)
    summary = index_corpus(db)
    assert summary.updated == [str(path)]
    full = tmp_path / "full.db"
    index_corpus(full, [str(path)], full=True)
    assert_same_index(db, full)
    conn, full_conn = sqlite3.connect(db), sqlite3.connect(full)
    try:
        query = "SELECT id, title, text, path, passage_count, source_sha256 FROM articles ORDER BY id"
        assert conn.execute(query).fetchall() == full_conn.execute(query).fetchall()
    finally:
        conn.close()
        full_conn.close()


def test_articles_are_tokenized_as_they_are_read_back_not_all_at_once(
    tiny_pieces: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_corpus(tmp_path / "corpus", jsonl_lines(200, seed=4))
    taken = {"articles": 0}
    when_encoded: list[int] = []
    original_read = spool.ArticleSpool.read
    original_encode = passage_encoding._encode_chunk

    def read(self: spool.ArticleSpool, numbers):  # type: ignore[no-untyped-def]
        for item in original_read(self, numbers):
            taken["articles"] += 1
            yield item

    def encode(chunk):  # type: ignore[no-untyped-def]
        when_encoded.append(taken["articles"])
        return original_encode(chunk)

    monkeypatch.setattr(spool.ArticleSpool, "read", read)
    monkeypatch.setattr(passage_encoding, "_encode_chunk", encode)
    index_corpus(tmp_path / "index.db", [str(path)], workers=1)
    assert len(when_encoded) > 10
    # The first chunk is tokenized after two chunks (about 10 articles) were read, not all 200.
    assert when_encoded[0] < 30
    assert when_encoded == sorted(when_encoded) and when_encoded[-1] > 150


def test_worker_processes_get_a_few_chunks_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    pulled = {"chunks": 0}

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            pulled["chunks"] += 1
            yield passage_encoding._Chunk([("Title", body(rng)) for _ in range(3)], 1, "session")

    seen = []
    for result in passage_encoding._in_workers(chunks(), 2):
        seen.append(pulled["chunks"])
        assert len(result.passage_counts) == 3
    assert len(seen) == 20
    assert seen[0] <= passage_encoding.IN_FLIGHT_PER_WORKER * 2  # not all 20 sent before the first came back


def naive_postings(lengths: np.ndarray, terms: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    passages = np.repeat(np.arange(len(lengths)), lengths)
    grouped: dict[int, list[tuple[int, int]]] = {}
    for (term, passage), tf in sorted(Counter(zip(terms.tolist(), passages.tolist(), strict=True)).items()):
        grouped.setdefault(term, []).append((passage, tf))
    return grouped


@pytest.mark.parametrize(("group_passages", "group_tokens"), [(1, 10**9), (7, 50), (1 << 16, 4_000_000)])
def test_the_postings_buffer_gives_the_plain_grouping(
    group_passages: int, group_tokens: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postings_buffer, "GROUP_PASSAGES", group_passages)
    monkeypatch.setattr(postings_buffer, "GROUP_TOKENS", group_tokens)
    rng = np.random.default_rng(group_passages)
    vocabulary = 90
    all_lengths, all_terms = [], []
    buffer = postings_buffer.PostingsBuffer()
    for _ in range(12):  # chunks as the encoder gives them
        lengths = rng.integers(0, 30, size=int(rng.integers(0, 25)))
        terms = (rng.zipf(1.3, size=int(lengths.sum())) % 80).astype(np.int32)
        terms[: min(len(terms), 300)] = 3  # a long run: tf above 255 in one passage
        buffer.add(lengths, terms)
        all_lengths.append(lengths)
        all_terms.append(terms)
    buffer.finish(vocabulary)
    lengths, terms = np.concatenate(all_lengths), np.concatenate(all_terms)
    expected = naive_postings(lengths, terms)
    assert buffer.passages == len(lengths)
    assert buffer.df.tolist() == [len(expected.get(t, [])) for t in range(vocabulary)]
    for size in (1, 40, 10**6):
        ranges = list(buffer.term_ranges(size))
        assert ranges[0][0] == 0 and ranges[-1][1] == vocabulary
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        for lo, hi in ranges:
            assert hi - lo == 1 or int(buffer.df[lo:hi].sum()) <= size
            offsets, ids, tfs = buffer.postings(lo, hi)
            assert ids.dtype == np.uint32 and tfs.dtype == np.uint32
            for t in range(lo, hi):
                a, b = offsets[t - lo], offsets[t - lo + 1]
                got = list(zip(ids[a:b].tolist(), tfs[a:b].tolist(), strict=True))
                assert got == expected.get(t, []), t


def test_a_group_of_more_than_65536_passages_numbers_them_in_32_bits() -> None:
    lengths = np.ones(70_000, dtype=np.int64)
    terms = (np.arange(70_000) % 3).astype(np.int32)
    group = postings_buffer._make_group(10, lengths, terms)
    assert group.passages.dtype == np.uint32
    assert group.terms.tolist() == [0, 1, 2]
    assert group.passages[group.offsets[2] :].tolist() == list(range(2, 70_000, 3))


def test_progress_reports_bytes_then_articles_for_one_big_jsonl(tmp_path: Path) -> None:
    lines = jsonl_lines(4_300, seed=6)
    path = write_corpus(tmp_path / "corpus", lines)
    size = path.stat().st_size
    assert size > 5_000_000
    reports: list[IndexProgress] = []
    summary = index_corpus(tmp_path / "index.db", [str(path)], on_progress=reports.append)
    by_stage: dict[str, list[IndexProgress]] = {}
    for report in reports:
        by_stage.setdefault(report.stage, []).append(report)
    assert list(by_stage) == ["reading", "tokenizing", "writing", "writing postings"]  # in this order

    reading = by_stage["reading"]
    assert {(r.unit, r.total) for r in reading} == {("bytes", size)}
    within = [r for r in reading if 0 < r.done < size]
    assert within  # bytes while the one file is being read (it is read a part at a time), not only at its end
    assert [r.done for r in reading] == sorted(r.done for r in reading) and reading[-1].done == size
    assert [r.articles for r in reading] == sorted(r.articles for r in reading)
    assert 0 < within[0].articles < reading[-1].articles == len(lines) - 1  # the malformed line is no article

    new_articles = summary.articles
    tokenizing = by_stage["tokenizing"]
    assert {(r.unit, r.total) for r in tokenizing} == {("articles", new_articles)}
    assert len(tokenizing) > 1 and tokenizing[-1].done == new_articles
    assert tokenizing[-1].passages == summary.passages
    assert by_stage["writing"][-1] == IndexProgress("writing", new_articles, new_articles, "articles")
    assert by_stage["writing postings"][-1].unit == "terms"
    assert by_stage["writing postings"][-1].done == by_stage["writing postings"][-1].total
