"""The engines compared, each configured as its documentation recommends for English text.

An engine builds an index from the passages into a folder, and in a fresh
process opens it and answers top-10 queries with passage numbers (0-based, in
corpus order). Engine libraries are imported inside the methods, so a query
process measures its own imports.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

Search = Callable[[str, int], list[int]]


class Engine:
    name = ""
    module = ""  # what must be importable
    how = ""  # one line on configuration, for the report
    reads_files = False  # builds from the corpus files (gets no passage texts)

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def build(self, corpus_folder: Path, passages: list[str] | None, folder: Path) -> dict[str, float]:
        raise NotImplementedError

    def open(self, folder: Path) -> Search:
        raise NotImplementedError

    def index_bytes(self, folder: Path) -> tuple[int, int]:
        """(bytes of the index without passage text, bytes of everything on disk)."""
        total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        return total, total


class Corpusbot(Engine):
    name = "corpusbot"
    module = "index"
    how = "index_corpus from the JSONL files (title_weight=0); TermRanker: exact BM25Okapi top-10"
    reads_files = True

    def build(self, corpus_folder: Path, passages: list[str] | None, folder: Path) -> dict[str, float]:
        import json

        from corpusbot.index.indexing.indexer import index_corpus

        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "corpusbot.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        started = time.perf_counter()
        summary = index_corpus(db, [str(corpus_folder)], full=True, title_weight=0)
        seconds = time.perf_counter() - started
        expected = json.loads((corpus_folder.parent / "corpus.json").read_text())["passages"]
        if summary.passages != expected:
            raise RuntimeError(f"corpusbot made {summary.passages} passages, the corpus has {expected}")
        return {"build_s": seconds, "passages": summary.passages}

    def open(self, folder: Path) -> Search:
        from corpusbot.index.engine.store import TermRanker
        from corpusbot.index.text.tokenizer import default_tokenizer

        ranker = TermRanker(folder / "corpusbot.db")
        tokenizer = default_tokenizer()

        def search(query: str, k: int) -> list[int]:
            return [pid - 1 for pid, _ in ranker.top(tokenizer.terms(query), k)]

        return search

    def index_bytes(self, folder: Path) -> tuple[int, int]:
        import sqlite3

        db = folder / "corpusbot.db"
        total = sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())
        conn = sqlite3.connect(db)
        try:
            pages = conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name IN ('terms', 'sqlite_autoindex_terms_1', 'blobs', "
                "'sqlite_autoindex_blobs_1', 'meta', 'sqlite_autoindex_meta_1')"
            ).fetchone()[0]
        finally:
            conn.close()
        return int(pages or 0), total


class CorpusbotService(Corpusbot):
    name = "corpusbot-service"
    how = "the same index through SearchService.ask(k=10): query analysis, rerank window, highlights, passage text"

    def build(self, corpus_folder: Path, passages: list[str] | None, folder: Path) -> dict[str, float]:
        raise RuntimeError("shares the corpusbot index")

    def open(self, folder: Path) -> Search:
        from corpusbot.index.search.service import SearchService

        service = SearchService(folder / "corpusbot.db")

        def search(query: str, k: int) -> list[int]:
            return [hit.passage.id - 1 for hit in service.ask(query, k=k).hits]

        return search


class CorpusbotCLI(Corpusbot):
    """What users run: ``corpusbot index`` over the JSONL articles, timed from spawning the command to its exit."""

    name = "corpusbot-cli"
    how = (
        "`corpusbot index --full --json --db DB JSONL_FOLDER` as users run it (default title weight): wall time of "
        "the whole command, interpreter start included; queried like corpusbot"
    )

    def available(self) -> bool:
        return super().available() and self.command().exists()

    @staticmethod
    def command() -> Path:
        return Path(sys.executable).with_name("corpusbot")  # the console script installed beside this interpreter

    def build(self, corpus_folder: Path, passages: list[str] | None, folder: Path) -> dict[str, float]:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "corpusbot.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        argv = [str(self.command()), "index", "--full", "--json", "--db", str(db), str(corpus_folder)]
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        expected = json.loads((corpus_folder.parent / "corpus.json").read_text())["passages"]
        if summary["passages"] != expected:
            raise RuntimeError(f"corpusbot index made {summary['passages']} passages, the corpus has {expected}")
        return {"build_s": seconds, "passages": summary["passages"], "command_reported_s": summary["seconds"]}


def corpusbot_terms(passages: list[str]) -> list[list[str]]:
    """Passages tokenized exactly as corpusbot indexes them (title weight 0)."""
    from corpusbot.index.indexing.term_cache import passage_terms

    terms_of = passage_terms()
    return [terms_of(text) for text in passages]


class RankBM25(Engine):
    name = "rank-bm25"
    module = "rank_bm25"
    how = "BM25Okapi(k1=1.5, b=0.75, epsilon=0.25) on corpusbot's token lists; get_scores + argsort; pickled"

    def build(self, corpus_folder: Path, passages: list[str], folder: Path) -> dict[str, float]:
        from rank_bm25 import BM25Okapi

        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        model = BM25Okapi(corpusbot_terms(passages))
        built = time.perf_counter()
        with (folder / "bm25okapi.pkl").open("wb") as out:
            pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
        return {"build_s": built - started, "save_s": time.perf_counter() - built}

    def open(self, folder: Path) -> Search:
        import rank_bm25  # noqa: F401  (the pickle needs it)

        from corpusbot.index.text.tokenizer import default_tokenizer

        with (folder / "bm25okapi.pkl").open("rb") as data:
            model = pickle.load(data)
        tokenizer = default_tokenizer()

        def search(query: str, k: int) -> list[int]:
            scores = model.get_scores(tokenizer.terms(query))
            search.last_scores = scores  # type: ignore[attr-defined]  (the benchmark's reference)
            order = np.argsort(-scores, kind="stable")[:k]
            return [int(i) for i in order if scores[i] > 0]

        return search


class BM25S(Engine):
    name = "bm25s"
    module = "bm25s"
    backend = "numpy"
    how = "bm25s.tokenize(stopwords='en', PyStemmer english), BM25() defaults (lucene idf, k1=1.5, b=0.75)"

    def build(self, corpus_folder: Path, passages: list[str], folder: Path) -> dict[str, float]:
        import bm25s
        import Stemmer

        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        tokens = bm25s.tokenize(passages, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
        model = bm25s.BM25()
        model.index(tokens, show_progress=False)
        built = time.perf_counter()
        model.save(str(folder))
        return {"build_s": built - started, "save_s": time.perf_counter() - built}

    def open(self, folder: Path) -> Search:
        import bm25s
        import Stemmer

        model = bm25s.BM25.load(str(folder), show_progress=False)
        if self.backend == "numba":
            model.backend = "numba"
        stemmer = Stemmer.Stemmer("english")

        def search(query: str, k: int) -> list[int]:
            tokens = bm25s.tokenize(query, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
            tokens = [[t for t in tokens[0] if t in model.vocab_dict]]
            if not tokens[0]:
                return []
            docs, scores = model.retrieve(tokens, k=k, show_progress=False, n_threads=0, backend_selection=self.backend)
            return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

        return search


class BM25SNumba(BM25S):
    name = "bm25s-numba"
    module = "numba"
    backend = "numba"
    how = "the bm25s index with backend='numba' (JIT-compiles on the first query of each process)"

    def available(self) -> bool:
        return super().available() and importlib.util.find_spec("bm25s") is not None

    def build(self, corpus_folder: Path, passages: list[str], folder: Path) -> dict[str, float]:
        raise RuntimeError("shares the bm25s index")


class Tantivy(Engine):
    name = "tantivy"
    module = "tantivy"
    how = "text field with tokenizer 'en_stem' (not stored), 1 writer thread; default query parser (OR); count=False"

    def build(self, corpus_folder: Path, passages: list[str], folder: Path) -> dict[str, float]:
        import tantivy

        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", stored=False, tokenizer_name="en_stem")
        builder.add_integer_field("pid", stored=True, fast=True)
        index = tantivy.Index(builder.build(), path=str(folder))
        writer = index.writer(heap_size=256_000_000, num_threads=1)
        for pid, text in enumerate(passages):
            writer.add_document(tantivy.Document(body=text, pid=pid))
        writer.commit()
        writer.wait_merging_threads()
        return {"build_s": time.perf_counter() - started}

    def open(self, folder: Path) -> Search:
        import tantivy

        index = tantivy.Index.open(str(folder))
        index.reload()
        searcher = index.searcher()

        def search(query: str, k: int) -> list[int]:
            parsed = index.parse_query(query, ["body"])
            hits = searcher.search(parsed, k, count=False).hits
            return [searcher.doc(address)["pid"][0] for _, address in hits]

        return search


class SQLiteFTS5(Engine):
    name = "sqlite-fts5"
    module = "sqlite3"
    how = "contentless fts5 table, tokenize='porter unicode61', optimize; OR query, ORDER BY bm25() LIMIT 10"

    def build(self, corpus_folder: Path, passages: list[str], folder: Path) -> dict[str, float]:
        import sqlite3

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "fts.db"
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        conn = sqlite3.connect(path)
        conn.execute("CREATE VIRTUAL TABLE fts USING fts5(body, content='', tokenize='porter unicode61')")
        conn.executemany("INSERT INTO fts(rowid, body) VALUES (?, ?)", enumerate(passages))
        conn.execute("INSERT INTO fts(fts) VALUES ('optimize')")
        conn.commit()
        conn.close()
        return {"build_s": time.perf_counter() - started}

    def open(self, folder: Path) -> Search:
        import re
        import sqlite3

        conn = sqlite3.connect(folder / "fts.db")
        word = re.compile(r"\w+")

        def search(query: str, k: int) -> list[int]:
            words = word.findall(query)
            if not words:
                return []
            match = " OR ".join(f'"{w}"' for w in words)
            rows = conn.execute("SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?", (match, k))
            return [row[0] for row in rows]

        return search


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Corpusbot(),
        CorpusbotService(),
        CorpusbotCLI(),
        RankBM25(),
        BM25S(),
        BM25SNumba(),
        Tantivy(),
        SQLiteFTS5(),
    )
}
# Whose index another engine reuses.
SHARED_INDEX = {"corpusbot-service": "corpusbot", "bm25s-numba": "bm25s"}
