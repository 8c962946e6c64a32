"""Incremental reindex equals a full rebuild; readers see whole indexes; a fresh process does not re-tokenize."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from corpusbot.index import index_corpus
from corpusbot.index.engine.bm25 import decode
from corpusbot.index.engine.store import connect_reader, read_meta
from corpusbot.index.indexing.term_cache import PassageTerms
from corpusbot.index.text.tokenizer import default_tokenizer
from tests.support import ROOT
from tests.support.index_compare import assert_same_index, snapshot

WORDS = (
    "tariff export license rare earth magnet court ruling port trade minister treaty delegation senate budget "
    "inflation harvest drought pipeline refinery satellite launch vaccine trial election ballot strike union"
).split()


def write_article(folder: Path, name: str, seed: int, title: str | None = None) -> None:
    rng = np.random.default_rng(seed)
    filler = [f"zq{n}" for n in rng.integers(0, 3000, size=400)]  # a long tail, so WORDS stay informative
    paragraphs = [
        " ".join(rng.choice(WORDS, size=10).tolist() + rng.choice(filler, size=rng.integers(40, 80)).tolist()) + "."
        for _ in range(rng.integers(2, 6))
    ]
    heading = f"# {title}\n\n" if title else ""
    (folder / name).write_text(heading + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


def test_incremental_changes_equal_full_rebuild(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(8):
        write_article(corpus, f"a{i}.md", seed=i, title=f"Story {WORDS[i]} {WORDS[i + 1]}")
    db = tmp_path / "incremental.db"
    index_corpus(db, [str(corpus)])
    write_article(corpus, "a1.md", seed=101, title="Changed headline about drought harvest")  # changed text and title
    (corpus / "a2.md").unlink()  # removed
    write_article(corpus, "new.md", seed=202, title="Pipeline refinery news")  # added
    summary = index_corpus(db)
    assert (len(summary.added), len(summary.updated), len(summary.removed)) == (1, 1, 1)
    full = tmp_path / "full.db"
    index_corpus(full, [str(corpus)], full=True)
    assert_same_index(db, full)
    # Only a title changes: its old title terms must leave every passage's postings.
    text = (corpus / "a3.md").read_text().splitlines()[1:]
    (corpus / "a3.md").write_text("# Satellite launch\n" + "\n".join(text) + "\n")
    index_corpus(db)
    full2 = tmp_path / "full2.db"
    index_corpus(full2, [str(corpus)], full=True)
    assert_same_index(db, full2)


def test_title_weight_repeats_title_terms_and_forces_full_rebuild(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_article(corpus, "a.md", seed=1, title="Zanzibar cloves")
    db = tmp_path / "t.db"
    index_corpus(db, [str(corpus)], title_weight=3)
    reader = connect_reader(db)
    assert read_meta(reader)["title_weight"] == 3
    row = reader.execute("SELECT df FROM terms WHERE term = 'zanzibar'").fetchone()
    passages = reader.execute("SELECT count(*) FROM passages").fetchone()[0]
    tfs = decode(reader.execute("SELECT postings FROM terms WHERE term = 'zanzibar'").fetchone()[0])
    reader.conn.close()
    assert row[0] == passages > 1  # every passage carries its title
    # Three title copies in every passage (plus the heading line itself where the text repeats it).
    assert min(tfs.term_frequencies().tolist()) == 3
    summary = index_corpus(db, title_weight=0)
    assert summary.full
    reader = connect_reader(db)
    # Only the passage holding the heading line still has the word.
    assert reader.execute("SELECT df FROM terms WHERE term = 'zanzibar'").fetchone()[0] == 1
    reader.conn.close()
    assert not index_corpus(db).full  # the stored weight is kept


def test_indexer_terms_equal_tokenizer_terms() -> None:
    """The indexer's per-word cache gives exactly Tokenizer.terms, on tricky text too."""
    tokenizer = default_tokenizer()
    cached = PassageTerms()
    samples = [
        "The U.S. and the US delegation met us in the U.S.A. on 2025.06.01; 1,000 tons, 3.5%.",
        "China’s rare-earth licences weren't renewed — O'Neil's café said “no”. Ünïcödé ﬁne ＵＳ",
        *Path(ROOT, "index", "corpus", "sample").joinpath("000_6b3987004aa82828.txt").read_text().splitlines(),
    ]
    for text in samples * 2:  # second pass hits the cache
        assert cached(text) == tokenizer.terms(text)


READER = textwrap.dedent(
    """
    import json, sys
    from corpusbot.index.search.service import SearchService
    service = SearchService(sys.argv[1])
    conn = service._db.conn
    target = int(sys.argv[2])
    seen, problems = set(), []
    for _ in range(20000):
        conn.execute("BEGIN")
        meta = dict((k, json.loads(v)) for k, v in conn.execute("SELECT key, value FROM meta"))
        n, tokens = conn.execute("SELECT count(*), coalesce(sum(length), 0) FROM passages").fetchone()
        dfs = conn.execute("SELECT count(*) FROM terms").fetchone()[0]
        conn.execute("COMMIT")
        if (n, tokens, dfs) != (meta["n_docs"], meta["total_tokens"], meta["vocabulary"]):
            problems.append([meta["generation"], n, meta["n_docs"]])
        answer = service.ask("rare earth magnet export", k=3)
        if not answer.hits:
            problems.append(["no answer", meta["generation"]])
        seen.add(meta["generation"])
        if meta["generation"] >= target:
            break
    print(json.dumps({"seen": sorted(seen), "problems": problems[:5]}))
    """
)


def test_readers_see_old_or_new_index_during_reindex(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(30):
        write_article(corpus, f"a{i}.md", seed=i)
    db = tmp_path / "atomic.db"
    index_corpus(db, [str(corpus)])
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db), "5"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    for round_ in range(4):
        for i in range(0, 30, 3):
            write_article(corpus, f"a{i}.md", seed=1000 + round_ * 50 + i)
        index_corpus(db, full=round_ % 2 == 1)
    out, _ = reader.communicate(timeout=120)
    result = json.loads(out)
    assert result["problems"] == []
    assert result["seen"][-1] == 5  # picked up the last index without a restart


FRESH = textwrap.dedent(
    """
    import json, sys
    import corpusbot.index.indexing.passage_encoding as passage_encoding
    import corpusbot.index.indexing.term_cache as term_cache
    import corpusbot.index.text.passages as passages
    import corpusbot.index.text.tokenizer as tokenizer
    calls = {"chars": 0}
    original = tokenizer.Tokenizer.terms
    def counting(self, text):
        calls["chars"] += len(text)
        return original(self, text)
    tokenizer.Tokenizer.terms = counting
    def forbidden(*args, **kwargs):
        raise AssertionError("the corpus was split or tokenized again")
    passage_encoding._encode_chunk = forbidden
    term_cache.PassageTerms.__call__ = forbidden
    passages.split_passages = forbidden
    from corpusbot.index.search.service import SearchService
    from corpusbot.index.engine.store import TermRanker
    ranker = TermRanker(sys.argv[1])
    top = ranker.top(tokenizer.default_tokenizer().terms("rare earth magnet"), 10)
    answer = SearchService(sys.argv[1]).ask("rare earth magnet", k=3)
    print(json.dumps({"top": len(top), "hits": len(answer.hits), "chars": calls["chars"]}))
    """
)


def test_fresh_process_answers_without_retokenizing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(400):
        write_article(corpus, f"a{i}.md", seed=i)
    db = tmp_path / "fresh.db"
    index_corpus(db, [str(corpus)])
    corpus_chars = sum(len(p.read_text()) for p in corpus.iterdir())
    done = subprocess.run([sys.executable, "-c", FRESH, str(db)], cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["top"] == 10 and result["hits"] == 3
    # Only the question and the few passages it reranks/highlights are tokenized, not the corpus.
    assert result["chars"] < corpus_chars / 5


def test_a_reindex_that_committed_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    # Two runs at once: the second one reads the corpus while the first commits. It must notice before writing
    # (its picture of the stored index is stale), write nothing, and say to run again; the first run's index stays.
    from corpusbot.index.errors import CorpusbotError

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(3):
        write_article(corpus, f"a{n}.md", seed=n)
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])

    def reindex_meanwhile(files, total):
        for number, item in enumerate(files):
            if number == 0:
                write_article(corpus, "a0.md", seed=10)
                write_article(corpus, "new.md", seed=11)
                index_corpus(db)  # the other run, committing while this one reads
            yield item

    write_article(corpus, "a1.md", seed=12)
    before = snapshot(db)
    with pytest.raises(CorpusbotError, match="Run it again"):
        index_corpus(db, progress=reindex_meanwhile)
    full = tmp_path / "full.db"
    index_corpus(full, [str(corpus)])
    assert_same_index(db, full)  # what the other run committed, untouched by this one
    assert snapshot(db) != before
    generation = read_meta(connect_reader(db))["generation"]
    index_corpus(db)  # run again: nothing left to do
    assert read_meta(connect_reader(db))["generation"] == generation
    assert_same_index(db, full)
