"""Attacks on the second stage's fast paths (``SearchService._rerank_lazily``, terms on demand, stored sketches).

Every answer must be what tokenizing and scoring the whole rerank window gives, and damaged or mismatched
``sketch`` / ``distinct_terms`` blobs must never break a question or a reindex: the sketches are only a shortcut,
so an index whose sketches cannot be trusted answers as one without them.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.engine import sketches
from corpusbot.index.text.tokenizer import default_tokenizer

from .test_lazy_rerank import _articles, _questions

PAGES = ((1, 0), (3, 0), (3, 3), (5, 2), (10, 0), (2, 25), (1, 28), (1, 29))


def _whole_window(service: SearchService) -> SearchService:
    """Tokenize and score every candidate of the window, with no stored sketch (the reference answers)."""
    service._rerank_lazily = lambda *args, **kwargs: None  # type: ignore[method-assign]
    service._maybe_near_pairs = lambda ids: None  # type: ignore[method-assign]
    return service


def _answers(service: SearchService, questions: list[str], **options: object) -> list[dict]:
    return [
        service.ask(question, k=k, offset=offset, explain=True, **options).to_json()  # type: ignore[arg-type]
        for question in questions
        for k, offset in PAGES
    ]


def _index(tmp_path: Path, articles: list[dict[str, str]]) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "articles.jsonl").write_text("\n".join(json.dumps(a) for a in articles) + "\n", encoding="utf-8")
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    return db


def _set_blob(db: Path, name: str, data: bytes | None) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE blobs SET data = ? WHERE name = ?", (data, name))
    conn.close()


def _blob(db: Path, name: str) -> bytes:
    conn = sqlite3.connect(db)
    (data,) = conn.execute("SELECT data FROM blobs WHERE name = ?", (name,)).fetchone()
    conn.close()
    return bytes(data)


QUESTIONS = [
    *_questions(30, seed=31),
    "trade talks",
    "trade talks -tariff",
    "london minister",
    "zzzunknownword trade talks",
    "rare earth magnet export",
    "steel",
]


# -- exactness: what held up (kept as regression tests) ------------------------------------------------------------


@pytest.fixture
def awkward_db(tmp_path: Path) -> Path:
    """Near copies, exact duplicates, passages of stopwords only under a title holding the question's words, and
    a dated article."""
    articles = _articles(seed=7)
    articles += [{"id": f"dup{i}", "title": "Trade Talks Tariff", "text": articles[0]["text"]} for i in range(8)]
    articles += [{"id": f"stop{i}", "title": "Trade talks London", "text": "It is what it was."} for i in range(4)]
    articles.append({"id": "dated", "title": "Steel", "text": "Trade talks in London.", "published": "2025-06-01"})
    return _index(tmp_path, articles)


def test_duplicates_stopword_passages_and_deep_pages_answer_as_the_whole_window(awkward_db: Path) -> None:
    expected = _answers(_whole_window(SearchService(awkward_db)), QUESTIONS)
    assert _answers(SearchService(awkward_db), QUESTIONS) == expected
    assert any(hit["duplicates"] for answer in expected for hit in answer["results"])  # the collapse was exercised


def test_follow_ups_and_date_filters_answer_as_the_whole_window(awkward_db: Path) -> None:
    for options in ({"context": "rare earth magnet"}, {"since": date(2025, 1, 1)}, {"until": date(2025, 6, 1)}):
        expected = _answers(_whole_window(SearchService(awkward_db)), QUESTIONS[:12], **options)
        assert _answers(SearchService(awkward_db), QUESTIONS[:12], **options) == expected


@pytest.mark.parametrize("count", [1, 2, 3])
def test_tiny_corpora_and_the_zero_score_path_answer_as_the_whole_window(tmp_path: Path, count: int) -> None:
    articles = [
        {"id": f"t{i}", "title": f"Title {i}", "text": f"The trade talks in London went well, number {i}."}
        for i in range(count)
    ]
    db = _index(tmp_path, articles)
    questions = ["trade talks", "talks trade", "london well", "title", "trade -london"]
    assert _answers(SearchService(db), questions) == _answers(_whole_window(SearchService(db)), questions)


def test_a_reindex_under_an_open_service_answers_as_a_fresh_whole_window(tmp_path: Path) -> None:
    articles = _articles(seed=9)
    db = _index(tmp_path, articles)
    service = SearchService(db)
    _answers(service, QUESTIONS[:5])  # loaded before the reindex
    changed = [dict(a, text=a["text"] + "\n\nTrade talks resumed in London.") for a in articles[:10]]
    _index(tmp_path, changed + articles[15:])  # articles changed (new passage ids), some removed
    expected = _answers(_whole_window(SearchService(db)), QUESTIONS)
    assert _answers(service, QUESTIONS) == expected


# -- damaged or mismatched sketch blobs -----------------------------------------------------------------------------


@pytest.fixture
def plain_db(tmp_path: Path) -> Path:
    return _index(tmp_path, _articles(seed=7))


DAMAGE = {
    "sketch cut mid-item": (sketches.SKETCH_BLOB, lambda data: data[:-3]),
    "sketch NULL": (sketches.SKETCH_BLOB, lambda data: None),
    "counts with a stray byte": (sketches.DISTINCT_BLOB, lambda data: data + b"\0"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_sketch_blob_is_ignored_not_fatal(plain_db: Path, kind: str) -> None:
    # np.frombuffer raises (ValueError, TypeError) in SearchService._load: the constructor and every question
    # (`corpusbot ask` prints a traceback) fail until the next `corpusbot index --full`, though the sketches are
    # only a shortcut (`corpusbot check` reports the damage cleanly).
    expected = _answers(_whole_window(SearchService(plain_db)), QUESTIONS[:8])
    name, damage = DAMAGE[kind]
    _set_blob(plain_db, name, damage(_blob(plain_db, name)))
    assert _answers(SearchService(plain_db), QUESTIONS[:8]) == expected


def test_the_numpy_path_with_a_sketch_blob_shorter_than_the_counts_answers(plain_db: Path) -> None:
    # The compiled near_pairs takes the shorter of the two blobs; the numpy path checks only the counts' length
    # and indexes the sketches past their end (IndexError).
    expected = _answers(_whole_window(SearchService(plain_db)), QUESTIONS[:8])
    _set_blob(plain_db, sketches.SKETCH_BLOB, b"")
    plain = SearchService(plain_db)
    plain.compiled_second_stage = False
    assert _answers(plain, QUESTIONS[:8]) == expected


@pytest.mark.parametrize("kind", DAMAGE)
def test_an_incremental_run_on_a_damaged_sketch_blob_does_not_fail(tmp_path: Path, kind: str) -> None:
    # writer._passage_sketches: np.frombuffer raises on the stored blob, and the whole reindex fails with it
    articles = _articles(seed=8)
    db = _index(tmp_path, articles[:30])
    name, damage = DAMAGE[kind]
    _set_blob(db, name, damage(_blob(db, name)))
    _index(tmp_path, articles)
    questions = QUESTIONS[:8]
    assert _answers(SearchService(db), questions) == _answers(_whole_window(SearchService(db)), questions)


def test_an_incremental_run_never_stores_a_sketch_that_is_not_the_passage_texts(tmp_path: Path) -> None:
    # A sketch blob shorter than the counts (here empty) is taken as it is: the old passages keep their counts but
    # get sketch 0, a pair (count n, sketch 0) that is no set's, and the bound then rules out true near-duplicates.
    articles = _articles(seed=8)
    db = _index(tmp_path, articles[:30])
    _set_blob(db, sketches.SKETCH_BLOB, b"")
    _index(tmp_path, articles)
    stored = np.frombuffer(_blob(db, sketches.SKETCH_BLOB), dtype="<u8")
    counts = np.frombuffer(_blob(db, sketches.DISTINCT_BLOB), dtype="<u4")
    tokenizer = default_tokenizer()
    conn = sqlite3.connect(db)
    wrong = []
    for passage_id, text in conn.execute("SELECT id, text FROM passages"):
        terms = frozenset(tokenizer.terms(text))
        if counts[passage_id] != sketches.UNKNOWN and (int(stored[passage_id]), int(counts[passage_id])) != (
            sketches.sketch_of(terms),
            len(terms),
        ):
            wrong.append(passage_id)
    conn.close()
    assert wrong == []


def test_after_an_incremental_run_on_an_empty_sketch_blob_answers_are_the_whole_windows(tmp_path: Path) -> None:
    # The same run as above, seen in the answers: near-duplicates of an old passage among the new ones are ruled out
    # by the wrong (count, sketch 0) bound, so the fast paths keep passages the whole window counts as duplicates.
    articles = _articles(seed=8)
    db = _index(tmp_path, articles[:30])
    _set_blob(db, sketches.SKETCH_BLOB, b"")
    _index(tmp_path, articles)
    questions = _questions(40, seed=5)
    assert _answers(SearchService(db), questions) == _answers(_whole_window(SearchService(db)), questions)


# What a corpusbot from before the sketches writes in an incremental run (index/indexing/writer.py at f3a0e6c and
# what it calls): these meta keys and these blobs. Everything else it leaves as it was.
OLDER_WRITER_META = frozenset(
    "articles average_idf bm25 build_id build_seconds built_at corpus_paths generation n_docs passages "
    "schema_version title_weight tokenizer total_tokens vocabulary".split()
)
OLDER_WRITER_BLOBS = frozenset({"doc_len", "article_of"})


def _stored(db: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    conn = sqlite3.connect(db)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    blobs = dict(conn.execute("SELECT name, data FROM blobs").fetchall())
    conn.close()
    return meta, blobs


def _as_an_older_writer_leaves_it(db: Path, before: tuple[dict[str, object], dict[str, bytes]]) -> None:
    """Put back what a writer from before the sketches would not have written (whatever the sketches added)."""
    meta, blobs = before
    with sqlite3.connect(db) as conn:
        for key in {row[0] for row in conn.execute("SELECT key FROM meta")} - OLDER_WRITER_META:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [(k, v) for k, v in meta.items() if k not in OLDER_WRITER_META],
        )
        for name in {row[0] for row in conn.execute("SELECT name FROM blobs")} - OLDER_WRITER_BLOBS:
            conn.execute("DELETE FROM blobs WHERE name = ?", (name,))
        conn.executemany(
            "INSERT INTO blobs(name, data) VALUES (?, ?)",
            [(name, data) for name, data in blobs.items() if name not in OLDER_WRITER_BLOBS],
        )
    conn.close()


def test_sketches_left_behind_by_a_writer_that_does_not_know_them_are_not_trusted(tmp_path: Path) -> None:
    # The sketches came without a schema change, so a corpusbot from before them (a rolling upgrade: the bot new,
    # the indexer still old; or an indexer rolled back) still reindexes incrementally and leaves the blobs as they
    # were. A changed last article gets the passage ids its old version had, and the service then bounds the new
    # text's near-duplicates by the old text's sketch.
    base = (
        "Trade talks on rare earth magnet export licenses resumed in London as the minister and the delegation "
        "met for a summit on the supply chain. Part {} of the series on council budgets and the school bridge."
    )
    articles = [{"id": f"a{i}", "title": f"Story {i}", "text": base.format(i)} for i in range(3)]
    articles += [
        {"id": f"f{i:02d}", "title": f"Filler {i}", "text": f"The harbor mayor spoke about flood {i} and the storm."}
        for i in range(10)
    ]
    articles.append({"id": "zz", "title": "Last", "text": "Grain prices and steel output fell as the bank rate rose."})
    db = _index(tmp_path, articles)
    before = _stored(db)
    articles[-1] = dict(articles[-1], text=base.format(9))  # now a near copy of the a* passages
    _index(tmp_path, articles)
    _as_an_older_writer_leaves_it(db, before)
    questions = ["rare earth magnet export", "trade talks london"]
    assert _answers(SearchService(db), questions) == _answers(_whole_window(SearchService(db)), questions)
