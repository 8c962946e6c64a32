"""store.py: opening the database three ways, the metadata, the schema version check, the postings cache, the ranking core.

The index here is written by hand (token lists, not the tokenizer), so the
ranking core is compared with BM25Okapi computed from its definition.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlite_utils

from corpusbot.index.engine import migrations, store
from corpusbot.index.engine.bm25 import decode, encode_postings
from corpusbot.index.errors import CorpusbotError, IndexMissing, SchemaMismatch

OPENERS = {
    "connect": lambda path, **kw: store.connect(path, **kw),
    "connect_reader": lambda path, **kw: store.connect_reader(path),
    "connect_plain": lambda path, **kw: store.connect_plain(path, **kw),
}


def plain_database(path: Path) -> None:
    """A SQLite file in rollback-journal mode with one table: anything that writes on open shows."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('x')")
    conn.close()


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


# -- opening ------------------------------------------------------------------------


@pytest.mark.parametrize("opener", OPENERS)
def test_a_missing_file_is_index_missing_and_is_not_created(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "none.db"
    with pytest.raises(IndexMissing, match=r"No index database at .*none\.db.*corpusbot index"):
        OPENERS[opener](path)
    assert not path.exists()


@pytest.mark.parametrize("opener", ["connect", "connect_plain"])
def test_create_makes_an_owner_only_file_even_with_a_permissive_umask(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "new.db"
    previous = os.umask(0)
    try:
        db = OPENERS[opener](path, create=True)
    finally:
        os.umask(previous)
    db.conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("opener", ["connect", "connect_plain"])
def test_create_in_a_missing_folder_names_the_folder(tmp_path: Path, opener: str) -> None:
    with pytest.raises(CorpusbotError, match=r"folder .*nowhere does not exist"):
        OPENERS[opener](tmp_path / "nowhere" / "x.db", create=True)


@pytest.mark.parametrize("opener", OPENERS)
def test_a_file_that_is_no_database_is_a_clear_error(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(CorpusbotError, match=r"Cannot open .*junk\.db as a corpusbot database") as caught:
        OPENERS[opener](path)
    assert "corpusbot index --full" in str(caught.value)
    assert path.read_bytes() == b"this is not a database " * 200


@pytest.mark.parametrize("opener", OPENERS)
def test_a_database_locked_by_another_process_says_so(
    tmp_path: Path, opener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "locked.db"
    plain_database(path)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(CorpusbotError, match="locked by another process") as caught:
            OPENERS[opener](path)
        assert "damaged" not in str(caught.value)
    finally:
        holder.close()


def test_writers_switch_to_wal_and_wait_for_locks(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    plain_database(path)
    db = store.connect_plain(path)
    try:
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        db.conn.close()
    assert journal_mode(path) == "wal"


def test_a_read_only_connection_writes_nothing_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    plain_database(path)
    before = path.read_bytes()
    db = store.connect(path, readonly=True)
    try:
        assert isinstance(db, sqlite_utils.Database)
        assert db.execute("SELECT body FROM notes").fetchall() == [("x",)]
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.conn.execute("INSERT INTO notes VALUES ('y')")
    finally:
        db.conn.close()
    assert path.read_bytes() == before  # not even the journal mode changed
    assert journal_mode(path) == "delete"


def test_connect_reader_and_connect_plain_give_plain_sqlite3(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    plain_database(path)
    reader = store.connect_reader(path)
    writer = store.connect_plain(path)
    try:
        assert type(reader) is store.Reader and isinstance(reader.conn, sqlite3.Connection)
        assert type(writer) is store.Connection
        assert reader.table_names() == ["notes"]
        assert reader.execute("SELECT count(*) FROM notes WHERE body = ?", ["x"]).fetchone() == (1,)
        writer.execute("INSERT INTO notes VALUES (?)", ["y"])
        writer.conn.commit()
        assert reader.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    finally:
        reader.conn.close()
        writer.conn.close()


def test_the_query_path_and_an_up_to_date_reindex_never_import_sqlite_utils(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    write_ranked_index(path, DOCS)
    script = textwrap.dedent(
        """
        import sys
        from corpusbot.index.engine import migrations, store
        db = store.connect_plain(sys.argv[1])
        db.conn.isolation_level = None
        db.execute("BEGIN IMMEDIATE")
        migrations.migrate(db)  # nothing pending: only reads
        db.execute("COMMIT")
        reader = store.connect_reader(sys.argv[1])
        store.check_schema(store.read_meta(reader), sys.argv[1])
        store.PostingsCache().get(reader, ["alpha"])
        store.TermRanker(sys.argv[1]).top(["alpha"], 3)
        print("sqlite_utils" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# -- metadata -----------------------------------------------------------------------


def new_index_database(path: Path) -> store.Connection:
    db = store.connect_plain(path, create=True)
    migrations.migrate(db)
    return db


def test_write_meta_then_read_meta_gives_the_values_back(tmp_path: Path) -> None:
    db = new_index_database(tmp_path / "m.db")
    values: dict[str, Any] = {
        "schema_version": 2,
        "average_idf": 1.0625,
        "tokenizer": "snowball-en/2 \u00e9",
        "corpus_paths": ["/a", "/b"],
        "bm25": {"k1": 1.2, "b": 0.75, "epsilon": 0.25},
        "nothing": None,
        "flag": True,
    }
    store.write_meta(db, values)
    db.conn.commit()
    assert store.read_meta(db) == values
    store.write_meta(db, {"schema_version": 3, "generation": 1})  # an upsert: the rest stays
    assert store.read_meta(db) == {**values, "schema_version": 3, "generation": 1}
    db.conn.close()


def test_read_meta_of_a_database_without_the_table_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    plain_database(path)
    reader = store.connect_reader(path)
    try:
        assert store.read_meta(reader) == {}
    finally:
        reader.conn.close()


def test_damaged_metadata_names_the_key_and_the_fix(tmp_path: Path) -> None:
    db = new_index_database(tmp_path / "m.db")
    store.write_meta(db, {"generation": 4})
    db.execute("INSERT INTO meta(key, value) VALUES ('n_docs', '{not json')")
    with pytest.raises(CorpusbotError, match=r"damaged \('n_docs' is not valid\).*corpusbot index --full"):
        store.read_meta(db)
    db.conn.close()


def test_check_schema_accepts_this_version_only(tmp_path: Path) -> None:
    store.check_schema({"schema_version": store.SCHEMA_VERSION}, tmp_path / "x.db")
    with pytest.raises(IndexMissing, match=r"x\.db holds no corpusbot index yet\. Run `corpusbot index`"):
        store.check_schema({}, tmp_path / "x.db")
    for other in (store.SCHEMA_VERSION - 1, store.SCHEMA_VERSION + 1, "2"):
        with pytest.raises(SchemaMismatch) as caught:
            store.check_schema({"schema_version": other}, tmp_path / "x.db")
        message = str(caught.value)
        assert f"written with index schema version {other}" in message
        assert f"uses version {store.SCHEMA_VERSION}" in message
        assert "`corpusbot index --full`" in message and "x.db" in message


# -- a hand-written index --------------------------------------------------------------


def made_up_documents(seed: int = 5, n: int = 60) -> list[list[str]]:
    """Token lists: "common" in most of them (a negative idf, floored), a few mid-frequency and many rare words."""
    rng = np.random.default_rng(seed)
    rare = [f"rare{i}" for i in range(80)]
    docs = []
    for _ in range(n):
        words = rng.choice(rare, size=rng.integers(3, 25)).tolist()
        words += ["common"] * int(rng.random() < 0.8)
        words += ["alpha"] * int(rng.integers(0, 4)) + ["beta"] * int(rng.random() < 0.3) * int(rng.integers(1, 6))
        rng.shuffle(words)
        docs.append(words)
    return docs


DOCS = made_up_documents()


def write_ranked_index(path: Path, docs: list[list[str]], params: dict[str, float] | None = None) -> None:
    """Passages 1..n with these tokens: their postings, lengths and the metadata the ranker reads."""
    params = params or {"k1": 1.5, "b": 0.75, "epsilon": 0.25}
    db = new_index_database(path)
    doc_len = np.array([0] + [len(d) for d in docs], dtype=np.int64)
    for term in sorted({t for d in docs for t in d}):
        ids = np.array([i for i, d in enumerate(docs, start=1) if term in d], dtype=np.int64)
        tfs = np.array([docs[i - 1].count(term) for i in ids], dtype=np.int64)
        db.execute(
            "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?)",
            (term, len(ids), encode_postings(ids, tfs, doc_len[ids])),
        )
    db.execute("INSERT INTO blobs(name, data) VALUES ('doc_len', ?)", (doc_len.astype("<u4").tobytes(),))
    n = len(docs)
    dfs = [sum(term in d for d in docs) for term in {t for d in docs for t in d}]
    store.write_meta(
        db,
        {
            "schema_version": store.SCHEMA_VERSION,
            "n_docs": n,
            "total_tokens": int(doc_len.sum()),
            "average_idf": sum(math.log(n - df + 0.5) - math.log(df + 0.5) for df in dfs) / len(dfs),
            "bm25": params,
        },
    )
    db.conn.commit()
    db.conn.close()


def brute_force_bm25(docs: list[list[str]], query: list[str], k1: float, b: float, epsilon: float) -> dict[int, float]:
    """BM25Okapi (rank-bm25's variant) of every passage, straight from its definition."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    vocabulary = {t for d in docs for t in d}
    raw = {
        t: math.log(n - sum(t in d for d in docs) + 0.5) - math.log(sum(t in d for d in docs) + 0.5) for t in vocabulary
    }
    floor = epsilon * sum(raw.values()) / len(raw)
    idf = {t: floor if value < 0 else value for t, value in raw.items()}
    scores = {}
    for number, doc in enumerate(docs, start=1):
        norm = k1 * (1 - b + b * len(doc) / avgdl)
        scores[number] = sum(idf[q] * doc.count(q) * (k1 + 1) / (doc.count(q) + norm) for q in query if q in idf)
    return scores


QUERIES = [
    ["alpha"],
    ["alpha", "beta"],
    ["common"],  # the floored idf: every passage with it scores the same small positive weight per tf
    ["beta", "rare3", "rare3", "unknownword"],  # a repeated token counts twice; unknown ones count nothing
    ["common", "rare7", "alpha", "rare11", "rare12"],
]


@pytest.mark.parametrize("params", [{"k1": 1.5, "b": 0.75, "epsilon": 0.25}, {"k1": 0.9, "b": 0.4, "epsilon": 0.5}])
@pytest.mark.parametrize("query", QUERIES, ids=" ".join)
def test_term_ranker_top_k_equals_a_brute_force_bm25(
    tmp_path: Path, query: list[str], params: dict[str, float]
) -> None:
    path = tmp_path / "ranked.db"
    write_ranked_index(path, DOCS, params)
    expected = brute_force_bm25(DOCS, query, **params)
    positive = sorted((score for score in expected.values() if score > 0), reverse=True)
    ranker = store.TermRanker(path)
    try:
        everything = ranker.top(query, k=len(DOCS))
        assert {pid: pytest.approx(expected[pid], rel=1e-9) for pid, _ in everything} == dict(everything)
        assert len(everything) == len(positive)
        for k in (1, 5):
            top = ranker.top(query, k=k)
            assert top == sorted(top, key=lambda hit: (-hit[1], hit[0]))  # score descending, ties by id
            assert [score for _, score in top] == pytest.approx(positive[:k], rel=1e-9)
            assert all(score == pytest.approx(expected[pid], rel=1e-9) for pid, score in top)
            kth = positive[k - 1] if len(positive) >= k else 0.0
            assert {pid for pid, score in expected.items() if score > kth * (1 + 1e-9)} <= {pid for pid, _ in top}
    finally:
        ranker.close()


def test_term_ranker_refuses_an_index_of_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    write_ranked_index(path, DOCS)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(SchemaMismatch, match="corpusbot index --full"):
        store.TermRanker(path)


# -- the postings cache -------------------------------------------------------------


class CountingReader(store.Reader):
    """A reader that notes the terms each ``SELECT ... FROM terms`` asked for."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self.asked: list[list[str]] = []

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        if "FROM terms" in sql:
            self.asked.append(list(parameters))
        return super().execute(sql, parameters)


def cache_database(path: Path, terms: dict[str, int]) -> CountingReader:
    """Terms with ``size`` postings each (ids 1..size, tf 1): equal sizes give equal memory."""
    db = new_index_database(path)
    for term, size in terms.items():
        ids = np.arange(1, size + 1, dtype=np.int64)
        db.execute(
            "INSERT INTO terms(term, df, postings) VALUES (?, ?, ?)",
            (term, size, encode_postings(ids, np.ones(size, dtype=np.int64), np.full(size, 10, dtype=np.int64))),
        )
    db.conn.commit()
    db.conn.close()
    return CountingReader(store.connect_reader(path).conn)


def entry_bytes(reader: store.Reader, term: str) -> int:
    return decode(reader.conn.execute("SELECT postings FROM terms WHERE term = ?", (term,)).fetchone()[0]).nbytes


def test_the_cache_reads_each_term_once_and_keeps_the_decoded_postings(tmp_path: Path) -> None:
    reader = cache_database(tmp_path / "c.db", {"a": 3, "b": 5, "c": 7})
    cache = store.PostingsCache()
    first = cache.get(reader, ["a", "b", "a", "nope"])
    assert reader.asked == [["a", "b", "nope"]]  # one SELECT, each term once
    assert {term: df for term, (df, _) in first.items()} == {"a": 3, "b": 5}
    assert first["b"][1].ids.tolist() == [1, 2, 3, 4, 5]
    second = cache.get(reader, ["b", "c", "nope", "a"])
    assert reader.asked[1:] == [["c", "nope"]]  # a and b from memory; unknown terms are asked again
    assert second["a"] is first["a"] and second["b"] is first["b"]
    assert set(second) == {"a", "b", "c"}
    cache.clear()
    cache.get(reader, ["a"])
    assert reader.asked[2:] == [["a"]]
    reader.conn.close()


def test_the_cache_asks_for_many_terms_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = cache_database(tmp_path / "c.db", {f"t{i}": 2 for i in range(5)})
    monkeypatch.setattr(store, "_TERMS_PER_SELECT", 2)
    found = store.PostingsCache().get(reader, [f"t{i}" for i in range(5)])
    assert reader.asked == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert sorted(found) == [f"t{i}" for i in range(5)]
    reader.conn.close()


def test_the_cache_drops_the_least_recently_used_terms_first(tmp_path: Path) -> None:
    reader = cache_database(tmp_path / "c.db", {term: 40 for term in "abcde"})
    size = entry_bytes(reader, "a")
    cache = store.PostingsCache(max_bytes=4 * size)  # four entries fit
    cache.get(reader, ["a", "b", "c", "d"])
    cache.get(reader, ["a"])  # a is now the most recently used
    assert reader.asked == [["a", "b", "c", "d"]]
    cache.get(reader, ["e"])  # one too many: b, the least recently used, goes
    cache.get(reader, ["a", "c", "d", "e"])  # all in memory; used in this order, so a is now the least recent
    assert reader.asked[1:] == [["e"]]
    cache.get(reader, ["b"])  # read again; a goes for it
    cache.get(reader, ["c", "d", "e", "b"])
    cache.get(reader, ["a"])
    assert reader.asked[2:] == [["b"], ["a"]]
    reader.conn.close()


def test_the_cache_does_not_keep_a_term_larger_than_a_quarter_of_it(tmp_path: Path) -> None:
    reader = cache_database(tmp_path / "c.db", {"small": 10, "big": 400})
    cache = store.PostingsCache(max_bytes=3 * entry_bytes(reader, "big"))  # big would fit, but takes over a quarter
    assert entry_bytes(reader, "small") <= cache.max_bytes // 4 < entry_bytes(reader, "big")
    for _ in range(2):
        found = cache.get(reader, ["small", "big"])
        assert found["big"][0] == 400 and len(found["big"][1].ids) == 400
    assert reader.asked == [["small", "big"], ["big"]]  # the big one is read every time; small stayed
    reader.conn.close()


def test_meta_values_are_stored_as_json(tmp_path: Path) -> None:
    db = new_index_database(tmp_path / "j.db")
    store.write_meta(db, {"corpus_paths": ["/x"]})
    assert json.loads(db.execute("SELECT value FROM meta WHERE key = 'corpus_paths'").fetchone()[0]) == ["/x"]
    db.conn.close()
