"""The second stage read lazily (``SearchService._rerank_lazily``) answers exactly as reading the whole window does.

The lazy path reads and tokenizes only the candidates whose bounds let them reach the page, and rules out
near-duplicates by the sketches the indexer stores (``engine.sketches``). Every answer (scores, boosts, order,
near-duplicate counts, highlights, confidence, "more") must be what the whole window gives, on a corpus built to
have near-duplicate passages, adjacent question words and ties; and the lazy path must really be taken.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.engine import pair_sketches, sketches
from corpusbot.index.search import service as service_module
from corpusbot.index.text.tokenizer import default_tokenizer

WORDS = (
    "trade talks tariff rare earth magnet export license beijing london minister delegation phone call summit "
    "factory supply chain market price steel grain harbor council mayor budget school bridge storm flood river "
    "vote election court ruling bank rate inflation union strike pilot airline"
).split()


def _articles(seed: int) -> list[dict[str, str]]:
    """Articles of random sentences; some passages copied into other articles with a word or two changed."""
    rng = random.Random(seed)
    sentences = [" ".join(rng.choices(WORDS, k=rng.randint(6, 14))).capitalize() + "." for _ in range(160)]
    articles = []
    for number in range(48):
        paragraphs = [" ".join(rng.sample(sentences, rng.randint(1, 3))) for _ in range(rng.randint(2, 5))]
        if articles and rng.random() < 0.5:  # a near copy of an earlier paragraph
            earlier = rng.choice(articles)["text"].split("\n\n")
            copy = rng.choice(earlier).split()
            copy[rng.randrange(len(copy))] = rng.choice(WORDS)
            paragraphs.insert(rng.randrange(len(paragraphs) + 1), " ".join(copy))
        title = " ".join(rng.choices(WORDS, k=3)).title()
        articles.append({"id": f"a{number:02d}", "title": title, "text": "\n\n".join(paragraphs)})
    return articles


def _write_articles(corpus: Path, name: str, articles: list[dict[str, str]]) -> None:
    (corpus / f"{name}.jsonl").write_text("\n".join(json.dumps(a) for a in articles) + "\n", encoding="utf-8")


@pytest.fixture
def duplicated_corpus_db(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_articles(corpus, "articles", _articles(seed=7))
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    return db


def _questions(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    questions = []
    for _ in range(count):
        start = rng.randrange(len(WORDS) - 4)
        # runs of the word list make adjacent pairs that the passages sometimes hold; random words the rest
        words = WORDS[start : start + rng.randint(1, 3)] + rng.choices(WORDS, k=rng.randint(0, 3))
        rng.shuffle(words) if rng.random() < 0.3 else None
        questions.append(" ".join(words))
    return questions


def _answers(service: SearchService, questions: list[str]) -> list[dict]:
    return [
        service.ask(question, k=k, offset=offset, explain=True).to_json()
        for question in questions
        for k, offset in ((1, 0), (3, 0), (3, 3), (5, 2))
    ]


def _whole_window(service: SearchService) -> SearchService:
    service._rerank_lazily = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return service


def test_lazy_answers_are_the_whole_windows_answers(duplicated_corpus_db: Path) -> None:
    taken = []
    lazy = SearchService(duplicated_corpus_db)
    original = lazy._rerank_lazily

    def counted(*args, **kwargs):
        result = original(*args, **kwargs)
        taken.append(result is not None)
        return result

    lazy._rerank_lazily = counted  # type: ignore[method-assign]
    questions = _questions(150, seed=11)
    assert _answers(lazy, questions) == _answers(_whole_window(SearchService(duplicated_corpus_db)), questions)
    assert sum(taken) > len(taken) / 2  # the lazy path answered most of them
    assert any(hit["duplicates"] for answer in _answers(lazy, questions) for hit in answer["results"])


def test_the_stored_sketches_are_the_passage_texts_term_sets(duplicated_corpus_db: Path) -> None:
    conn = sqlite3.connect(duplicated_corpus_db)
    blobs = dict(conn.execute("SELECT name, data FROM blobs"))
    stored = np.frombuffer(blobs[sketches.SKETCH_BLOB], dtype="<u8")
    counts = np.frombuffer(blobs[sketches.DISTINCT_BLOB], dtype="<u4")
    tokenizer = default_tokenizer()
    for passage_id, text in conn.execute("SELECT id, text FROM passages"):
        terms = frozenset(tokenizer.terms(text))  # the text's own terms, not its title's
        assert (int(stored[passage_id]), int(counts[passage_id])) == (sketches.sketch_of(terms), len(terms))
    conn.close()


def test_an_index_without_sketches_answers_the_same_from_the_texts(duplicated_corpus_db: Path) -> None:
    questions = _questions(40, seed=12)
    expected = _answers(SearchService(duplicated_corpus_db), questions)
    with sqlite3.connect(duplicated_corpus_db) as conn:  # as an index written before the sketches were stored
        conn.execute("DELETE FROM blobs WHERE name IN (?, ?)", (sketches.SKETCH_BLOB, sketches.DISTINCT_BLOB))
        conn.execute("UPDATE meta SET value = '\"older\"' WHERE key = 'build_id'")
    older = SearchService(duplicated_corpus_db)
    assert older._sketches is None
    assert _answers(older, questions) == expected


def _older_index(tmp_path: Path, seed: int, *downgrade: tuple[str, tuple[str, ...]]) -> tuple[Path, Callable[[], None]]:
    """An index of 30 articles (ids a00–a29) made to look older by the ``downgrade`` statements, and a function that
    adds 30 more (a30–a59) to its corpus and indexes them incrementally."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    articles = _articles(seed=seed)
    _write_articles(corpus, "old", articles[:30])
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    with sqlite3.connect(db) as conn:
        for statement, parameters in downgrade:
            conn.execute(statement, parameters)
    conn.close()

    def add_new() -> None:
        _write_articles(corpus, "new", articles[30:])
        index_corpus(db, [str(corpus)])

    return db, add_new


def test_an_incremental_run_on_an_index_without_sketches_marks_the_old_passages_unknown(tmp_path: Path) -> None:
    db, add_new = _older_index(
        tmp_path,
        8,
        ("DELETE FROM blobs WHERE name IN (?, ?)", (sketches.SKETCH_BLOB, sketches.DISTINCT_BLOB)),
    )
    add_new()
    conn = sqlite3.connect(db)
    counts = np.frombuffer(dict(conn.execute("SELECT name, data FROM blobs"))[sketches.DISTINCT_BLOB], dtype="<u4")
    new_ids = {row[0] for row in conn.execute("SELECT p.id FROM passages p WHERE p.article_id >= 'a30'")}
    old_ids = {row[0] for row in conn.execute("SELECT p.id FROM passages p WHERE p.article_id < 'a30'")}
    conn.close()
    assert all(counts[i] == sketches.UNKNOWN for i in old_ids)
    assert all(counts[i] != sketches.UNKNOWN for i in new_ids)
    questions = _questions(40, seed=13)
    service = SearchService(db)
    assert _answers(service, questions) == _answers(_whole_window(SearchService(db)), questions)


def test_the_lazy_path_leaves_typed_and_quoted_questions_to_the_whole_window(duplicated_corpus_db: Path) -> None:
    service = SearchService(duplicated_corpus_db)
    calls = []
    original = service_module.SearchService._rerank
    service._rerank = lambda *args: calls.append(1) or original(service, *args)  # type: ignore[method-assign]
    service.ask('"rare earth" magnet')
    service.ask("when was the trade summit")
    assert len(calls) == 2


def test_a_candidate_below_the_page_by_bm25_alone_is_read_when_adjacent_words_can_lift_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number in range(40):
        text = f"The council met on {number} to discuss the harbor budget and school repairs."
        (corpus / f"filler{number:02d}.txt").write_text(f"Filler {number}\n\n{text}\n", encoding="utf-8")
    tails = [
        "beneath the mine are sold to factories in three towns near the river valley each spring",
        "under the hills go by train to smelters along the northern coast every winter season",
        "below the desert reach buyers through brokers who trade in large city markets monthly",
        "inside the mountain are shipped by barge down canals toward southern ports twice yearly",
        "from the quarry travel overseas on cargo ships bound for distant eastern harbors weekly",
    ]
    more = "where engineers test samples with lasers before workers pack crates for export customers"
    for number in range(4):  # both words, apart
        text = f"Rare metals and the earth {tails[number]} {more}."
        (corpus / f"apart{number}.txt").write_text(f"Mine {number}\n\n{text}\n", encoding="utf-8")
    text = f"Rare earth metals and the ground {tails[4]} {more}."  # together, in a passage one word longer
    (corpus / "together.txt").write_text(f"Mine 5\n\n{text}\n", encoding="utf-8")
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    hits = SearchService(db).ask("rare earth", k=5, explain=True).hits
    lifted = next(hit for hit in hits if hit.article.id == "together")
    # Without the bonus it would be last: below the three equal "apart" passages, the page's second place.
    without = {hit.article.id: hit.score - (0.0 if hit is not lifted else 0.2) for hit in hits}
    assert without["together"] < without["apart0"] == without["apart1"] == without["apart3"]
    assert any(boost == "adjacent query words +0.200" for boost in lifted.boosts)
    page = SearchService(db).ask("rare earth", k=2).hits  # depth 3: the "apart" ties fill it by BM25 alone
    assert [hit.article.id for hit in page][1] == "together"


def test_the_compiled_second_stage_gives_the_numpy_paths_answers_bit_for_bit(duplicated_corpus_db: Path) -> None:
    questions = _questions(60, seed=14)
    plain = SearchService(duplicated_corpus_db)
    plain.compiled_second_stage = False
    assert _answers(SearchService(duplicated_corpus_db), questions) == _answers(plain, questions)
    whole = _whole_window(SearchService(duplicated_corpus_db))
    whole.compiled_second_stage = False
    assert _answers(whole, questions) == _answers(plain, questions)


def test_passages_tokenized_only_when_needed_give_the_answers_of_tokenizing_all(duplicated_corpus_db: Path) -> None:
    # who/when/where/how-many questions take the whole window; their passages are tokenized only for a pair of
    # the question's words, a possible near-duplicate or the confidence of the best
    single = [f"{lead} {word}" for lead in ("who", "when", "where", "how many") for word in WORDS[::3]]
    questions = single + [f"who {words}" for words in _questions(20, 15)] + _questions(30, seed=16)
    every = SearchService(duplicated_corpus_db)
    every._maybe_near_pairs = lambda ids: None  # type: ignore[method-assign]  # as an index without sketches
    service = SearchService(duplicated_corpus_db)
    tokenize = []
    original = service._second_stage

    def counted(*args):
        tokenize.append(args[-1])
        return original(*args)

    service._second_stage = counted  # type: ignore[method-assign]
    assert _answers(service, questions) == _answers(every, questions)
    assert tokenize.count(False) > 0.15 * len(tokenize)  # the same answers from fewer passages tokenized


def test_sketches_of_an_index_built_by_another_tokenizer_are_not_used(duplicated_corpus_db: Path) -> None:
    with sqlite3.connect(duplicated_corpus_db) as conn:  # its stored sketches hold another tokenizer's terms
        conn.execute("""UPDATE meta SET value = '"corpusbot-v3 (older)"' WHERE key = 'tokenizer'""")
    conn.close()
    assert SearchService(duplicated_corpus_db)._sketches is None


def _typed_and_plain(seed: int) -> list[str]:
    plain = _questions(30, seed)
    return plain + [f"{lead} {words}" for lead in ("who", "when", "where") for words in plain[:10]]


def test_the_stored_pair_sketches_are_the_passage_texts_pairs(duplicated_corpus_db: Path) -> None:
    conn = sqlite3.connect(duplicated_corpus_db)
    stored = dict(conn.execute("SELECT name, data FROM blobs"))[pair_sketches.PAIR_SKETCH_BLOB]
    tokenizer = default_tokenizer()
    for passage_id, text in conn.execute("SELECT id, text FROM passages"):
        row = pair_sketches.row(stored, passage_id)
        assert row == pair_sketches.pair_sketch_of(tokenizer.terms(text))  # the text's own terms, not its title's
    conn.close()


def test_pair_sketches_spare_tokenizing_and_change_no_answer(duplicated_corpus_db: Path) -> None:
    questions = _typed_and_plain(seed=21)
    tokenized: dict[str, list[bool]] = {"with": [], "without": []}

    def counting(service: SearchService, label: str) -> SearchService:
        original = service._second_stage

        def counted(*args):
            tokenized[label].append(args[-1])
            return original(*args)

        service._second_stage = counted  # type: ignore[method-assign]
        return service

    with_sketches = counting(SearchService(duplicated_corpus_db), "with")
    assert with_sketches._pair_sketches is not None
    without = SearchService(duplicated_corpus_db)
    without._pair_sketches = None
    counting(without, "without")
    answers = _answers(with_sketches, questions)
    assert answers == _answers(without, questions)
    assert answers == _answers(_whole_window(SearchService(duplicated_corpus_db)), questions)
    assert sum(tokenized["with"]) < sum(tokenized["without"])  # the same answers, fewer passages tokenized


def test_an_incremental_run_on_an_index_without_pair_sketches_marks_the_old_passages_unknown(tmp_path: Path) -> None:
    db, add_new = _older_index(  # as an index written before the pair sketches were stored
        tmp_path,
        9,
        ("DELETE FROM blobs WHERE name = ?", (pair_sketches.PAIR_SKETCH_BLOB,)),
        ("DELETE FROM meta WHERE key = ?", (pair_sketches.GENERATION_KEY,)),
    )
    assert SearchService(db)._pair_sketches is None
    add_new()
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT name, data FROM blobs"))[pair_sketches.PAIR_SKETCH_BLOB]
    passages = conn.execute("SELECT id, article_id, text FROM passages").fetchall()
    conn.close()
    tokenizer = default_tokenizer()
    for passage_id, article_id, text in passages:
        row = pair_sketches.row(stored, passage_id)
        new = article_id >= "a30"
        assert row == (pair_sketches.pair_sketch_of(tokenizer.terms(text)) if new else pair_sketches.UNKNOWN)
    questions = _typed_and_plain(seed=22)
    service = SearchService(db)
    assert service._pair_sketches is not None
    without = SearchService(db)
    without._pair_sketches = None
    assert _answers(service, questions) == _answers(without, questions)


def test_pair_sketches_left_by_an_older_writer_or_another_tokenizer_are_not_used(duplicated_corpus_db: Path) -> None:
    with sqlite3.connect(duplicated_corpus_db) as conn:  # a writer that does not know them moved the generation on
        generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(int(generation) + 1),))
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (generation, sketches.GENERATION_KEY))
        conn.execute("UPDATE meta SET value = '\"moved on\"' WHERE key = 'build_id'")
    conn.close()
    assert SearchService(duplicated_corpus_db)._pair_sketches is None
    with sqlite3.connect(duplicated_corpus_db) as conn:
        conn.execute(
            "UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'generation') WHERE key = ?",
            (pair_sketches.GENERATION_KEY,),
        )
        conn.execute("UPDATE meta SET value = '\"back\"' WHERE key = 'build_id'")
    conn.close()
    assert SearchService(duplicated_corpus_db)._pair_sketches is not None
    with sqlite3.connect(duplicated_corpus_db) as conn:
        conn.execute("""UPDATE meta SET value = '"corpusbot-v3 (older)"' WHERE key = 'tokenizer'""")
    conn.close()
    assert SearchService(duplicated_corpus_db)._pair_sketches is None


def test_pair_sketches_follow_removed_changed_and_added_articles(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    articles = _articles(seed=10)
    for name, part in (("a", articles[:16]), ("b", articles[16:32]), ("c", articles[32:])):
        _write_articles(corpus, name, part)
    db = tmp_path / "index.db"
    index_corpus(db, [str(corpus)])
    (corpus / "a.jsonl").unlink()  # removed
    changed = [dict(article, text=article["text"].upper()) for article in articles[16:32]]
    _write_articles(corpus, "b", changed)
    extra = _articles(seed=11)[:5]
    _write_articles(corpus, "d", [dict(a, id=f"x{a['id']}") for a in extra])
    index_corpus(db, [str(corpus)])
    conn = sqlite3.connect(db)
    stored = dict(conn.execute("SELECT name, data FROM blobs"))[pair_sketches.PAIR_SKETCH_BLOB]
    passages = conn.execute("SELECT id, text FROM passages").fetchall()
    conn.close()
    tokenizer = default_tokenizer()
    assert len(stored) == (max(pid for pid, _ in passages) + 1) * pair_sketches.BYTES
    for passage_id, text in passages:
        row = pair_sketches.row(stored, passage_id)
        assert row == pair_sketches.pair_sketch_of(tokenizer.terms(text))
    questions = _typed_and_plain(seed=23)
    without = SearchService(db)
    without._pair_sketches = None
    assert _answers(SearchService(db), questions) == _answers(without, questions)
