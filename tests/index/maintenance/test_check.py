"""`corpusbot check` / `corpusbot index --check`: passes on sound indexes, names every kind of damage."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import corpusbot.index.maintenance.check as check_module
from corpusbot.bot.cli import cli
from corpusbot.index import index_corpus
from corpusbot.index.engine import pair_sketches
from corpusbot.index.engine.bm25 import Scorer
from corpusbot.index.maintenance.check import CheckReport, check_database
from corpusbot.index.text.tokenizer import default_tokenizer


def run_check(runner: CliRunner, db: Path, *extra: str):
    return runner.invoke(cli, ["check", "--db", str(db), *extra])


def test_the_bundled_index_passes(sample_db: Path, runner: CliRunner) -> None:
    result = run_check(runner, sample_db)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {sample_db} passed")
    report = json.loads(run_check(runner, sample_db, "--json").stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["counts"] == {"articles": 2, "passages": 23, "terms": report["counts"]["terms"]}
    assert any("rank_bm25" in name for name in report["checks"])
    assert any("re-tokenize" in name for name in report["checks"])


def test_an_incrementally_updated_index_with_holes_passes(corpus_dir: Path, tmp_path: Path, runner: CliRunner) -> None:
    for number in range(12):
        (corpus_dir / f"{number}.txt").write_text(
            f"Report {number} on trade talks.\n\n" + " ".join(f"word{number * 7 + i % 13}" for i in range(90)) + ".\n"
        )
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus_dir)])
    for number in (1, 4, 7):
        (corpus_dir / f"{number}.txt").unlink()
    (corpus_dir / "2.txt").write_text("A rewritten report about rare earth export licenses.\n")
    index_corpus(db, [str(corpus_dir)])  # removes and re-adds passages: holes in the passage ids
    result = runner.invoke(cli, ["index", "--check", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "OK:" in result.output


def test_check_reads_without_writing(tmp_path: Path, sample_db: Path) -> None:
    """A backup copy is a rollback-journal file; checking it must not turn it into WAL or touch it."""
    copy = tmp_path / "copy.db"
    source = sqlite3.connect(sample_db)
    target = sqlite3.connect(copy)
    source.backup(target)
    target.execute("PRAGMA journal_mode = DELETE")
    target.close()
    source.close()
    before = copy.read_bytes()
    assert check_database(copy).ok
    assert copy.read_bytes() == before
    assert not Path(f"{copy}-wal").exists()


def _execute(*statements: str) -> Callable[[sqlite3.Connection], None]:
    def damage(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return damage


def _swap_postings(conn: sqlite3.Connection) -> None:
    """Two terms with the same df exchange postings: df, ids and token sums can all still look fine."""
    first, second = conn.execute("SELECT term, postings FROM terms WHERE df = 3 ORDER BY term LIMIT 2").fetchall()
    conn.execute("UPDATE terms SET postings = ? WHERE term = ?", (second[1], first[0]))
    conn.execute("UPDATE terms SET postings = ? WHERE term = ?", (first[1], second[0]))


def _shift_doc_len(conn: sqlite3.Connection) -> None:
    (blob,) = conn.execute("SELECT data FROM blobs WHERE name = 'doc_len'").fetchone()
    doc_len = np.frombuffer(blob, dtype="<u4").copy()
    doc_len[3] += 1
    conn.execute("UPDATE blobs SET data = ? WHERE name = 'doc_len'", (doc_len.tobytes(),))


def _overlap(conn: sqlite3.Connection) -> None:
    """Passage 3 becomes a copy of passage 2 (consistent span and text, but overlapping)."""
    start, end, text = conn.execute("SELECT start, end, text FROM passages WHERE id = 2").fetchone()
    conn.execute("UPDATE passages SET start = ?, end = ?, text = ? WHERE id = 3", (start, end, text))


def _flip_sketch_bit(conn: sqlite3.Connection) -> None:
    (blob,) = conn.execute("SELECT data FROM blobs WHERE name = 'sketch'").fetchone()
    sketch = np.frombuffer(blob, dtype="<u8").copy()
    sketch[3] ^= np.uint64(1 << 17)
    conn.execute("UPDATE blobs SET data = ? WHERE name = 'sketch'", (sketch.tobytes(),))


def _raise_distinct_count(conn: sqlite3.Connection) -> None:
    (blob,) = conn.execute("SELECT data FROM blobs WHERE name = 'distinct_terms'").fetchone()
    counts = np.frombuffer(blob, dtype="<u4").copy()
    counts[2] += 1
    conn.execute("UPDATE blobs SET data = ? WHERE name = 'distinct_terms'", (counts.tobytes(),))


def _clear_pair_sketch(conn: sqlite3.Connection) -> None:
    """Passage 3's pair sketch loses the bit of a pair its text holds: the search would miss that pair's bonus."""
    (blob,) = conn.execute("SELECT data FROM blobs WHERE name = 'pair_sketch'").fetchone()
    (text,) = conn.execute("SELECT text FROM passages WHERE id = 3").fetchone()
    first, second = default_tokenizer().terms(text)[:2]
    bit = pair_sketches.pair_bit(first, second)
    rows = np.frombuffer(blob, dtype=np.uint8).reshape(-1, pair_sketches.BYTES).copy()
    rows[3, bit >> 3] &= ~np.uint8(1 << (bit & 7))
    conn.execute("UPDATE blobs SET data = ? WHERE name = 'pair_sketch'", (rows.tobytes(),))


FIRST_ARTICLE = "(SELECT id FROM articles ORDER BY id LIMIT 1)"
DAMAGE = {
    "orphan passages": (_execute(f"DELETE FROM articles WHERE id = {FIRST_ARTICLE}"), "article does not exist"),
    "wrong passage_count": (
        _execute(f"UPDATE articles SET passage_count = passage_count + 1 WHERE id = {FIRST_ARTICLE}"),
        "passage_count differs",
    ),
    "meta counts": (_execute("UPDATE meta SET value = '3' WHERE key = 'articles'"), "counts do not match"),
    "deleted passage": (_execute("DELETE FROM passages WHERE id = 5"), "passages that do not exist"),
    "df": (_execute("UPDATE terms SET df = df + 1 WHERE term = (SELECT min(term) FROM terms)"), "df differs"),
    "swapped postings": (_swap_postings, "re-tokenize to other terms"),
    "doc_len": (_shift_doc_len, "doc_len differs"),
    "average idf": (_execute("UPDATE meta SET value = '1.5' WHERE key = 'average_idf'"), "average_idf"),
    "passage text": (_execute("UPDATE passages SET text = upper(text) WHERE id = 3"), "text[start:end]"),
    "span": (_execute("UPDATE passages SET end = end + 5 WHERE id = 3"), "bad span"),
    "overlap": (_overlap, "overlap"),
    "ordinals": (_execute("UPDATE passages SET ordinal = 40 WHERE id = 4"), "ordinals are not 1..n"),
    "tokenizer": (_execute("""UPDATE meta SET value = '"other-tokenizer"' WHERE key = 'tokenizer'"""), "tokenizer"),
    "title weight": (_execute("UPDATE meta SET value = '2' WHERE key = 'title_weight'"), "re-tokenize"),
    "files": (_execute("DELETE FROM files"), "source file is not recorded"),
    "undecodable postings": (
        _execute("UPDATE terms SET postings = x'07' WHERE term = (SELECT min(term) FROM terms)"),
        "undecodable postings",
    ),
    "no metadata": (_execute("DELETE FROM meta WHERE key = 'schema_version'"), "no index metadata"),
    "metadata not json": (_execute("UPDATE meta SET value = 'not json' WHERE key = 'n_docs'"), "metadata is damaged"),
    "metadata of a wrong type": (_execute("UPDATE meta SET value = '\"many\"' WHERE key = 'n_docs'"), "damaged"),
    "term sketch": (_flip_sketch_bit, "another term sketch"),
    "distinct terms": (_raise_distinct_count, "another term sketch"),
    "truncated sketches": (_execute("UPDATE blobs SET data = zeroblob(13) WHERE name = 'sketch'"), "damaged"),
    "pair sketch": (_clear_pair_sketch, "another pair sketch"),
    "truncated pair sketches": (_execute("UPDATE blobs SET data = zeroblob(64) WHERE name = 'pair_sketch'"), "damaged"),
    "schema version": (_execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'"), "corpusbot index --full"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_each_kind_of_damage_is_reported_and_fails(kind: str, sample_db: Path, runner: CliRunner) -> None:
    damage, phrase = DAMAGE[kind]
    conn = sqlite3.connect(sample_db)
    with conn:
        damage(conn)
    conn.close()
    result = run_check(runner, sample_db)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert phrase in result.output, result.output
    assert "corpusbot index --full" in result.output
    report = json.loads(run_check(runner, sample_db, "--json").stdout)
    assert report["ok"] is False and any(phrase in problem for problem in report["problems"])


def test_a_scorer_that_drifts_from_rank_bm25_is_caught(
    sample_db: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DriftingScorer(Scorer):
        def top(self, *args, **kwargs):
            return [(pid, score * (1 + 1e-6)) for pid, score in super().top(*args, **kwargs)]

    monkeypatch.setattr(check_module, "Scorer", DriftingScorer)
    result = run_check(runner, sample_db)
    assert result.exit_code == 1
    assert "score differently from rank_bm25.BM25Okapi" in result.output


def test_index_check_exits_non_zero_when_the_check_finds_problems(
    sample_db: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(db_path, **_):
        return CheckReport(str(db_path), problems=["3 passages whose article does not exist: 1, 2, 3"])

    monkeypatch.setattr("corpusbot.bot.cli.index.check_database", failing)
    result = runner.invoke(cli, ["index", "--check", "--db", str(sample_db)])
    assert result.exit_code == 1
    assert "passages whose article does not exist" in result.output
    as_json = runner.invoke(cli, ["index", "--check", "--json", "--db", str(sample_db)])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["check"]["ok"] is False
