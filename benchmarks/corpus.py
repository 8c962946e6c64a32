"""A synthetic English-like corpus and question-like queries for the benchmark.

Words are drawn i.i.d. from real English word frequencies (the ``wordfreq``
package, in the ``bench`` extra); without it, from a seeded Zipf vocabulary of
made-up syllable words, so the smoke test runs on a plain dev install.
Each article is one JSONL line whose paragraphs (60-100 words each, blank-line
separated) are exactly the passages corpusbot's splitter keeps, so every
engine indexes the same passages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCABULARY_SIZE = 200_000
WH_WORDS = ("what", "who", "when", "where", "why", "how", "which")
FUNCTION_WORDS = ("the", "of", "is", "in", "a", "to", "did", "does", "and", "for", "was")
PASSAGES_PER_ARTICLE = (1, 12)
ARTICLES_PER_FILE = 10_000


@dataclass(frozen=True)
class Corpus:
    folder: Path  # the JSONL files
    passages: list[str]  # every passage text, in the order corpusbot assigns ids
    queries: list[str]
    vocabulary_source: str


def vocabulary(size: int = VOCABULARY_SIZE) -> tuple[list[str], np.ndarray, str]:
    """Words and their probabilities."""
    try:
        from wordfreq import top_n_list, word_frequency
    except ImportError:
        return _made_up_vocabulary(min(size, 20_000))
    words = [w for w in top_n_list("en", size) if w.isalpha()]
    freq = np.array([word_frequency(w, "en") for w in words])
    return words, freq / freq.sum(), "wordfreq en (real English word frequencies)"


def _made_up_vocabulary(size: int) -> tuple[list[str], np.ndarray, str]:
    rng = np.random.default_rng(7)
    syllables = ["ba", "ko", "ri", "tem", "lu", "sa", "nor", "vi", "del", "ma", "pe", "gro", "zu", "fan", "lis", "ot"]
    words = list(dict.fromkeys("".join(rng.choice(syllables, size=rng.integers(1, 5))) for _ in range(size * 2)))
    words = list(FUNCTION_WORDS) + words[:size]
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    p = 1 / ranks**1.07
    return words, p / p.sum(), "made-up syllable words, Zipf s=1.07 (wordfreq not installed)"


def generate(folder: Path, n_passages: int, n_queries: int, seed: int = 42) -> Corpus:
    """Write (or reuse) the corpus under ``folder`` and return it with its queries."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "corpus.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info["passages"] == n_passages and info["seed"] == seed and info["queries"] >= n_queries:
            return _load(folder, info, n_queries)
    words, p, source = vocabulary()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(60, 101, size=n_passages)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=p)
    word_array = np.array(words, dtype=object)
    passages: list[str] = []
    at = 0
    for n in lengths.tolist():
        chunk = word_array[drawn[at : at + n]].tolist()
        chunk[0] = chunk[0].capitalize()
        passages.append(" ".join(chunk) + ".")
        at += n
    data = folder / "jsonl"
    data.mkdir(exist_ok=True)
    for old in data.glob("*.jsonl"):
        old.unlink()
    article = 0
    index = 0
    out = None
    while index < n_passages:
        if article % ARTICLES_PER_FILE == 0:
            if out:
                out.close()
            out = (data / f"part-{article // ARTICLES_PER_FILE:04d}.jsonl").open("w", encoding="utf-8")
        count = int(rng.integers(*PASSAGES_PER_ARTICLE, endpoint=True))
        paragraphs = passages[index : index + count]
        record = {"id": f"a{article:07d}", "title": f"Article {article}", "text": "\n\n".join(paragraphs)}
        assert out is not None
        out.write(json.dumps(record) + "\n")
        index += len(paragraphs)
        article += 1
    if out:
        out.close()
    queries = make_queries(words, p, n_queries, rng)
    (folder / "queries.txt").write_text("\n".join(queries) + "\n", encoding="utf-8")
    info = {"passages": n_passages, "articles": article, "seed": seed, "queries": n_queries, "vocabulary": source}
    done.write_text(json.dumps(info))
    return Corpus(data, passages, queries, source)


def make_queries(words: list[str], p: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """2-6 word questions: often a wh-word, some function words, content words by frequency (top 100 skipped)."""
    content = np.arange(100, len(words))
    q = p[content] / p[content].sum()
    queries = []
    for _ in range(n):
        size = int(rng.integers(2, 7))
        parts: list[str] = []
        if rng.random() < 0.5:
            parts.append(str(rng.choice(WH_WORDS)))
        while len(parts) < size:
            if rng.random() < 0.25:
                parts.append(str(rng.choice(FUNCTION_WORDS)))
            else:
                parts.append(words[int(rng.choice(content, p=q))])
        queries.append(" ".join(parts))
    return queries


def read_passages(jsonl_folder: Path) -> list[str]:
    """The passages of the JSONL articles, in the order corpusbot numbers them."""
    passages: list[str] = []
    for path in sorted(jsonl_folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                passages.extend(json.loads(line)["text"].split("\n\n"))
    return passages


def _load(folder: Path, info: dict, n_queries: int) -> Corpus:
    queries = (folder / "queries.txt").read_text(encoding="utf-8").splitlines()[:n_queries]
    return Corpus(folder / "jsonl", read_passages(folder / "jsonl"), queries, info["vocabulary"])
