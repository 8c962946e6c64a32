"""Retrieval experiments: which principled changes move SciFact without hurting the dev questions.

A small stand-alone BM25 engine (numpy, read-only use of corpusbot's reader,
passage splitter, tokenizer pieces and metrics) scores variants of:

- the retrieval unit: passages (what corpusbot indexes) or whole documents;
- the article title: not indexed (corpusbot before issue 4), added to every
  passage's terms (a title field, optionally weighted), or to the first passage only;
- passage-to-document aggregation: max (corpusbot eval), sum, or max plus a
  share of a document-level score ("passage + article evidence");
- BM25 k1 and b; idf as rank-bm25 (negative idf floored at epsilon x mean) or
  Lucene's ln(1 + (N - df + 0.5) / (df + 0.5));
- query terms: repeated words counted twice (rank-bm25) or once;
- stopwords (corpusbot's list, Lucene's 33 words, none) and stemming (Snowball
  English, Porter, none); acronym plurals ("RXRs" -> "rxr"); hyphen compounds;
  letters and digits as separate runs ("IL6" -> "il 6", corpusbot's tokenizer since
  v4) or joined as before; single Greek letters spelled out ("TNF-α" -> "tnf alpha");
- proximity: adjacent query-word pairs as bigram terms, or within an 8-term
  window in any order (SDM-like); BM25+ (delta); RM3-style pseudo-relevance feedback.

For each variant it prints SciFact nDCG@10 / Recall@100 / MRR@10 (documents rank
by their aggregated passage scores, top 100) and the dev questions' hit@1 /
hit@3 / MRR@10 on the bundled corpus (passages ranked the same way; plain BM25,
without the service's query analysis and reranking).

Usage: python benchmarks/scifact_experiments.py /path/to/scifact [--set single|combinations|tokenizer] [--grid]
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import Stemmer

from corpusbot.index.corpus.discover import BUNDLED, discover
from corpusbot.index.corpus.readers import read_file
from corpusbot.index.maintenance.evaluate import contains_any, load_beir, load_questions, trec_metrics
from corpusbot.index.models import Article
from corpusbot.index.text.passages import split_passages
from corpusbot.index.text.spelling import americanise
from corpusbot.index.text.tokenizer import _WORD, COUNTRY_US, STOPWORDS, default_tokenizer

LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split()
)
_POSSESSIVE = re.compile(r"'s$")
_COUNTRY_FORMS = frozenset({"US", "USA", "U.S.", "U.S.A."})
_ACRONYM_PLURAL = re.compile(r"^(?=(?:[^A-Z]*[A-Z]){2})[A-Za-z0-9]+[A-Z0-9]s$")
_COMPOUND = re.compile(r"[^\W_]+(?:[-/][^\W_]+)+")
# corpusbot's word pattern before v4: a run of letters and digits was one word ("IL6", "p53", "400mg").
_JOINED_WORD = re.compile(r"U\.S\.(?:A\.)?|\d+(?:[.,]\d+)+|[^\W_]+(?:['’][^\W_]+)*")
_GREEK = "\u0370-\u03ff\u1f00-\u1fff"
# For "greek": Greek letters make their own runs, so "IFNγ" is "IFN" + "γ" as "IFN-γ" is.
_GREEK_WORD = re.compile(
    rf"U\.S\.(?:A\.)?|\d+(?:[.,]\d+)+|(?:(?=[^\W_])[{_GREEK}])+|[^\W\d_{_GREEK}]+(?:['’][^\W\d_{_GREEK}]+)*|\d+"
)


@dataclass(frozen=True)
class Variant:
    name: str
    unit: str = "passage"  # "passage" | "document"
    title: str = "none"  # "none" | "every" | "first"
    title_weight: int = 1  # how many times the title's terms count
    aggregate: str = "max"  # "max" | "sum" | "max+doc"
    doc_weight: float = 0.0  # for "max+doc": share of the document-level score added
    k1: float = 1.5
    b: float = 0.75
    idf: str = "okapi"  # "okapi" | "lucene"
    article_idf: bool = False  # passages use document frequencies counted over articles
    dedup_query: bool = False
    stopwords: str = "corpusbot"  # "corpusbot" | "lucene" | "none"
    stemmer: str = "english"  # "english" | "porter" | "none"
    delta: float = 0.0  # BM25+ (Lv & Zhai 2011): a matching term adds at least idf x delta
    compounds: bool = False  # also index hyphen/slash compounds joined ("IL-6" -> "il6")
    acronym_plurals: bool = False  # "RXRs", "NPCs", "miRNAs" -> the acronym's term ("rxr", ...)
    digit_split: bool = False  # letters and digits as separate runs (corpusbot's _WORD since tokenizer v4)
    greek: bool = False  # a lone Greek letter is its English name ("α" -> "alpha"); implies digit_split
    bigram_weight: float = 0.0  # adjacent query-term pairs found adjacent in a passage, as extra terms
    window_weight: float = 0.0  # adjacent query-term pairs found within WINDOW terms in any order (SDM-like)
    prf_terms: int = 0  # RM3-style feedback: terms added from the top documents
    prf_docs: int = 10
    prf_weight: float = 0.5  # total weight of the added terms relative to the original query


# -- tokenizing ----------------------------------------------------------------


class VariantTokenizer:
    """corpusbot's tokenizer pipeline with the stopword list and stemmer swappable."""

    def __init__(
        self,
        stopwords: str,
        stemmer: str,
        compounds: bool = False,
        acronym_plurals: bool = False,
        digit_split: bool = False,
        greek: bool = False,
    ) -> None:
        self.compounds = compounds
        self.acronym_plurals = acronym_plurals
        self.greek = greek
        self.word = _GREEK_WORD if greek else _WORD if digit_split else _JOINED_WORD
        self.stopwords = {"corpusbot": STOPWORDS, "lucene": LUCENE_STOPWORDS, "none": frozenset()}[stopwords]
        self.stemmer = None if stemmer == "none" else Stemmer.Stemmer(stemmer)
        self.normalise = lru_cache(maxsize=200_000)(self._normalise)

    def _normalise(self, raw: str) -> str:
        if self.acronym_plurals and _ACRONYM_PLURAL.match(raw):
            raw = raw[:-1]
        word = unicodedata.normalize("NFKC", raw)
        if word in _COUNTRY_FORMS:
            return COUNTRY_US
        if self.greek and len(word) == 1 and re.match(f"[{_GREEK}]", word):
            name = unicodedata.name(word.casefold(), "").split()  # GREEK SMALL LETTER [FINAL] ALPHA
            if "LETTER" in name:
                return next(part for part in name[name.index("LETTER") + 1 :] if part != "FINAL").lower()
        word = "".join(word.casefold().replace("’", "'").split())
        if word in self.stopwords:
            return ""
        word = _POSSESSIVE.sub("", word)
        if word in self.stopwords:
            return ""
        word = word.replace("'", "")
        if word in self.stopwords or not word:
            return ""
        return americanise(word)

    def terms(self, text: str) -> list[str]:
        words = [w for w in (self.normalise(m.group()) for m in self.word.finditer(text)) if w]
        if self.stemmer is None:
            out = words
        else:
            stems = self.stemmer.stemWords(words)
            out = [COUNTRY_US if w == COUNTRY_US else s for w, s in zip(words, stems, strict=True)]
        if self.compounds:
            out += [
                "#" + "".join(m.group().casefold().replace("-", "").replace("/", "").split())
                for m in _COMPOUND.finditer(text)
            ]
        return out


# -- a small BM25 engine -----------------------------------------------------------


Query = list[tuple[str, float]]  # (term, weight); a repeated word appears twice


class Bm25Index:
    """Units (passages or documents) as term bags; each unit belongs to one article (``owner``)."""

    def __init__(self, units: Sequence[list[str]], owner: np.ndarray) -> None:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for row, terms in enumerate(units):
            for term in terms:
                rows.append(row)
                cols.append(vocabulary.setdefault(term, len(vocabulary)))
        self.vocabulary = vocabulary
        self.units = units
        self.owner = owner
        self.n = len(units)
        self.doc_len = np.array([len(t) for t in units], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) if self.n else 0.0
        width = max(self.n, 1)
        keys = np.asarray(cols, dtype=np.int64) * width + np.asarray(rows, dtype=np.int64)
        unique, tfs = np.unique(keys, return_counts=True)
        term_of = unique // width
        self.ids = unique % width
        self.tfs = tfs.astype(np.float64)
        self.df = np.bincount(term_of, minlength=len(vocabulary))
        self.offsets = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(self.df, out=self.offsets[1:])
        raw = np.log(self.n - self.df + 0.5) - np.log(self.df + 0.5)
        self.mean_idf = float(raw.mean()) if len(raw) else 0.0

    def idf(self, df: int, kind: str) -> float:
        if kind == "lucene":
            return float(np.log(1 + (self.n - df + 0.5) / (df + 0.5)))
        raw = float(np.log(self.n - df + 0.5) - np.log(df + 0.5))
        return 0.25 * self.mean_idf if raw < 0 else raw

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        t = self.vocabulary[term]
        return self.ids[self.offsets[t] : self.offsets[t + 1]], self.tfs[self.offsets[t] : self.offsets[t + 1]]

    def scores(self, query: Query, variant: Variant, idf_source: Bm25Index | None = None) -> np.ndarray:
        out = np.zeros(self.n)
        norm = variant.k1 * (1 - variant.b + variant.b * self.doc_len / self.avgdl)
        source = idf_source or self
        for term, weight in query:
            if term not in self.vocabulary or term not in source.vocabulary:
                continue
            ids, tf = self.postings(term)
            term_idf = source.idf(int(source.df[source.vocabulary[term]]), variant.idf)
            out[ids] += weight * term_idf * (tf * (variant.k1 + 1) / (tf + norm[ids]) + variant.delta)
        return out


WINDOW = 8


def window_scores(index: Bm25Index, query: Query, variant: Variant) -> np.ndarray:
    """BM25 over "both words within WINDOW terms" counts for each adjacent pair of query words."""
    out = np.zeros(index.n)
    norm = variant.k1 * (1 - variant.b + variant.b * index.doc_len / index.avgdl)
    words = [term for term, _ in query if term in index.vocabulary]
    for a, b in itertools.pairwise(words):
        if a == b:
            continue
        both = np.intersect1d(index.postings(a)[0], index.postings(b)[0])
        counts = np.zeros(len(both))
        for slot, unit in enumerate(both.tolist()):
            terms = index.units[unit]
            where_a = [i for i, t in enumerate(terms) if t == a]
            where_b = [i for i, t in enumerate(terms) if t == b]
            counts[slot] = sum(1 for i in where_a for j in where_b if abs(i - j) < WINDOW)
        hit = counts > 0
        ids, tf = both[hit], counts[hit]
        if not len(ids):
            continue
        raw = np.log(index.n - len(ids) + 0.5) - np.log(len(ids) + 0.5)
        pair_idf = max(float(raw), 0.0)
        out[ids] += variant.window_weight * pair_idf * tf * (variant.k1 + 1) / (tf + norm[ids])
    return out


def bigrams(terms: list[str]) -> list[str]:
    return [f"{a} {b}" for a, b in itertools.pairwise(terms)]


@dataclass
class Corpus:
    """Articles as tokenized units for one tokenizer variant."""

    ids: list[str]
    passages: list[tuple[int, str, list[str]]]  # (article index, passage text, passage terms)
    title_terms: list[list[str]]
    text_terms: list[list[str]]


def load_articles(paths: list[str]) -> list[Article]:
    files, _ = discover(paths)
    articles: list[Article] = []
    for corpus_file in files:
        articles.extend(read_file(corpus_file.path, corpus_file.path.read_bytes(), corpus_file.article_id).articles)
    return articles


def tokenize_corpus(articles: list[Article], tokenizer: VariantTokenizer) -> Corpus:
    passages = []
    for index, article in enumerate(articles):
        for span in split_passages(article.text):
            text = article.text[span.start : span.end]
            passages.append((index, text, tokenizer.terms(text)))
    return Corpus(
        ids=[a.id for a in articles],
        passages=passages,
        title_terms=[tokenizer.terms(a.title or "") for a in articles],
        text_terms=[tokenizer.terms(a.text) for a in articles],
    )


class Engine:
    """One variant's indexes over one corpus."""

    def __init__(self, corpus: Corpus, variant: Variant) -> None:
        self.corpus = corpus
        self.variant = variant
        n_articles = len(corpus.ids)
        documents = [corpus.title_terms[i] * variant.title_weight + corpus.text_terms[i] for i in range(n_articles)]
        self.documents = Bm25Index(documents, np.arange(n_articles))
        units = []
        first_seen: set[int] = set()
        for article, _, terms in corpus.passages:
            extra = []
            if variant.title == "every" or (variant.title == "first" and article not in first_seen):
                extra = corpus.title_terms[article] * variant.title_weight
            first_seen.add(article)
            units.append(extra + terms)
        owner = np.array([a for a, _, _ in corpus.passages], dtype=np.int64)
        self.passages = Bm25Index(units, owner)
        self.passage_bigrams = self.document_bigrams = None
        if variant.bigram_weight:
            self.passage_bigrams = Bm25Index([bigrams(u) for u in units], owner)
            self.document_bigrams = Bm25Index(
                [bigrams(corpus.title_terms[i]) + bigrams(corpus.text_terms[i]) for i in range(n_articles)],
                np.arange(n_articles),
            )

    def _scores(self, index: Bm25Index, pairs: Bm25Index | None, query: Query) -> np.ndarray:
        passages = index is self.passages and self.variant.article_idf
        scores = index.scores(query, self.variant, self.documents if passages else None)
        if pairs is not None:
            words = [term for term, _ in query if not term.startswith("#")]
            pair_query = [(pair, self.variant.bigram_weight) for pair in bigrams(words)]
            scores = scores + pairs.scores(pair_query, self.variant, self.document_bigrams if passages else None)
        if self.variant.window_weight:
            scores = scores + window_scores(index, query, self.variant)
        return scores

    def passage_scores(self, query: Query) -> np.ndarray:
        """Passage scores, with the article-level evidence mixed in for "max+doc"."""
        scores = self._scores(self.passages, self.passage_bigrams, query)
        if self.variant.aggregate == "max+doc":
            doc = self._scores(self.documents, self.document_bigrams, query)
            scores = np.where(scores > 0, scores + self.variant.doc_weight * doc[self.passages.owner], 0.0)
        return scores

    def document_scores(self, query: Query) -> np.ndarray:
        if self.variant.unit == "document":
            return self._scores(self.documents, self.document_bigrams, query)
        scores = self.passage_scores(query)
        out = np.zeros(len(self.corpus.ids))
        if self.variant.aggregate == "sum":
            np.add.at(out, self.passages.owner, scores)
        else:
            np.maximum.at(out, self.passages.owner, scores)
        return out

    def expand(self, query: Query) -> Query:
        """RM3-style feedback: the top documents' most typical terms join the query."""
        if not self.variant.prf_terms:
            return query
        scores = self.document_scores(query)
        top = [i for i in np.argsort(-scores, kind="stable")[: self.variant.prf_docs] if scores[i] > 0]
        if not top:
            return query
        weights: dict[str, float] = {}
        total = float(sum(scores[i] for i in top))
        for i in top:
            terms = self.corpus.title_terms[i] + self.corpus.text_terms[i]
            share = float(scores[i]) / total / max(len(terms), 1)
            for term in terms:
                weights[term] = weights.get(term, 0.0) + share
        asked = {term for term, _ in query}
        extra = sorted((t for t in weights if t not in asked), key=lambda t: (-weights[t], t))[: self.variant.prf_terms]
        mass = sum(weights[t] for t in extra)
        if not mass:
            return query
        budget = self.variant.prf_weight * len(query)
        return query + [(t, budget * weights[t] / mass) for t in extra]


def query_terms(tokenizer: VariantTokenizer, text: str, variant: Variant) -> Query:
    terms = tokenizer.terms(text)
    if variant.dedup_query:
        terms = list(dict.fromkeys(terms))
    return [(term, 1.0) for term in terms]


# -- measuring ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    ndcg: float
    recall: float
    mrr: float
    dev_hit1: float
    dev_hit3: float
    dev_mrr: float


def measure(variant: Variant, data: Data) -> Result:
    tokenizer = data.tokenizer(variant)
    engine = Engine(data.corpus(variant, "scifact"), variant)
    run = {}
    for query_id, text in data.beir.queries.items():
        scores = engine.document_scores(engine.expand(query_terms(tokenizer, text, variant)))
        top = np.argsort(-scores, kind="stable")[:100]
        run[query_id] = {engine.corpus.ids[i]: float(scores[i]) for i in top if scores[i] > 0}
    means, _ = trec_metrics(data.beir.qrels, run)

    dev = Engine(data.corpus(variant, "dev"), variant)
    ranks = []
    for question in data.questions:
        scores = dev.passage_scores(dev.expand(query_terms(tokenizer, question.q, variant)))
        order = [i for i in np.argsort(-scores, kind="stable")[:10] if scores[i] > 0]
        texts = [dev.corpus.passages[i][1] for i in order]
        ranks.append(next((r for r, t in enumerate(texts, 1) if contains_any(t, question.expect_any)), None))
    total = len(ranks)
    return Result(
        means["nDCG@10"],
        means["R@100"],
        means["RR@10"],
        sum(r == 1 for r in ranks) / total,
        sum(r is not None and r <= 3 for r in ranks) / total,
        sum(1 / r for r in ranks if r) / total,
    )


class Data:
    """The collections, tokenized once per tokenizer variant."""

    def __init__(self, beir_dir: str, questions: str) -> None:
        self.beir = load_beir(beir_dir)
        self.questions = load_questions(questions)
        self.articles = {"scifact": load_articles([str(self.beir.corpus)]), "dev": load_articles([BUNDLED])}
        self._tokenizers: dict[tuple[str, str, bool, bool, bool, bool], VariantTokenizer] = {}
        self._corpora: dict[tuple[tuple[str, str, bool, bool, bool, bool], str], Corpus] = {}

    @staticmethod
    def _key(variant: Variant) -> tuple[str, str, bool, bool, bool, bool]:
        return (
            variant.stopwords,
            variant.stemmer,
            variant.compounds,
            variant.acronym_plurals,
            variant.digit_split,
            variant.greek,
        )

    def tokenizer(self, variant: Variant) -> VariantTokenizer:
        key = self._key(variant)
        if key not in self._tokenizers:
            self._tokenizers[key] = VariantTokenizer(*key)
        return self._tokenizers[key]

    def corpus(self, variant: Variant, name: str) -> Corpus:
        key = (self._key(variant), name)
        if key not in self._corpora:
            self._corpora[key] = tokenize_corpus(self.articles[name], self.tokenizer(variant))
        return self._corpora[key]


BASE = Variant("passages, no title, max (corpusbot before issue 4), k1 1.5, b 0.75")


def variants() -> list[Variant]:
    titled = replace(BASE, name="title in every passage", title="every")
    out = [
        BASE,
        replace(
            BASE, name="whole documents (title + text), as the published baselines", unit="document", title="every"
        ),
        replace(BASE, name="whole documents, text only", unit="document", title_weight=0),
        titled,
        replace(BASE, name="title in every passage, weight 2", title="every", title_weight=2),
        replace(BASE, name="title in the first passage only", title="first"),
        replace(BASE, name="title in every passage, sum over passages", title="every", aggregate="sum"),
        replace(BASE, name="no title, sum over passages", aggregate="sum"),
    ]
    for weight in (0.1, 0.2, 0.3, 0.5, 1.0):
        out.append(
            replace(
                titled, name=f"title + max passage + {weight} x article score", aggregate="max+doc", doc_weight=weight
            )
        )
    out += [replace(titled, name=f"title in every passage, k1 {k1}", k1=k1) for k1 in (0.9, 1.2, 2.0)]
    out += [replace(titled, name=f"title in every passage, b {b}", b=b) for b in (0.4, 0.6, 0.9, 1.0)]
    out += [
        replace(titled, name="title in every passage, Lucene idf", idf="lucene"),
        replace(titled, name="title in every passage, query terms once", dedup_query=True),
        replace(titled, name="title in every passage, Lucene's 33 stopwords", stopwords="lucene"),
        replace(titled, name="title in every passage, no stopwords", stopwords="none"),
        replace(titled, name="title in every passage, Porter stemmer", stemmer="porter"),
        replace(titled, name="title in every passage, no stemming", stemmer="none"),
    ]
    return out


def combinations() -> list[Variant]:
    titled = replace(BASE, name="title in every passage", title="every")
    mixed = replace(titled, name="title + max passage + 0.5 x article", aggregate="max+doc", doc_weight=0.5)
    mixed1 = replace(mixed, name="title + max passage + 1.0 x article", doc_weight=1.0)
    best = replace(mixed1, name=f"{mixed1.name} + bigrams 0.1", bigram_weight=0.1)
    documents = replace(BASE, name="whole documents (title + text)", unit="document", title="every")
    out = [mixed, replace(mixed, name=f"{mixed.name}, query terms once", dedup_query=True)]
    out += [replace(mixed, name=f"{mixed.name}, BM25+ delta {d}", delta=d) for d in (0.25, 0.5, 1.0)]
    out += [replace(mixed, name=f"{mixed.name}, compounds joined", compounds=True)]
    out += [replace(mixed, name=f"{mixed.name}, bigrams x {w}", bigram_weight=w) for w in (0.1, 0.25, 0.5)]
    out += [
        replace(
            mixed, name=f"{mixed.name}, RM3 {n} terms from {d} docs, weight {w}", prf_terms=n, prf_docs=d, prf_weight=w
        )
        for n, d, w in ((10, 10, 0.3), (10, 10, 0.5), (20, 5, 0.5))
    ]
    out += [
        mixed1,
        replace(mixed1, name=f"{mixed1.name}, article-level idf for passages", article_idf=True),
        replace(mixed1, name=f"{mixed1.name} + window pairs (8 terms) 0.2", window_weight=0.2),
        best,
        replace(best, name=f"{best.name}, k1 1.2", k1=1.2),
        replace(best, name=f"{best.name}, title weight 2", title_weight=2),
        replace(best, name=f"{best.name}, query terms once", dedup_query=True),
        replace(best, name=f"{best.name} + acronym plurals", acronym_plurals=True),
        replace(best, name=f"{best.name} + acronym plurals, k1 1.2", acronym_plurals=True, k1=1.2),
        replace(best, name="title + max passage + 2.0 x article + bigrams 0.1", doc_weight=2.0),
        replace(titled, name=f"{titled.name} + acronym plurals", acronym_plurals=True),
    ]
    out += [documents, replace(documents, name=f"{documents.name}, query terms once", dedup_query=True)]
    out += [replace(documents, name=f"{documents.name} + acronym plurals", acronym_plurals=True)]
    out += [replace(documents, name=f"{documents.name}, bigrams x {w}", bigram_weight=w) for w in (0.1, 0.25)]
    out += [replace(documents, name=f"{documents.name}, RM3 10 terms from 10 docs, weight 0.5", prf_terms=10)]
    out += [replace(documents, name=f"{documents.name}, BM25+ delta 0.5", delta=0.5)]
    return out


def tokenizer_variants() -> list[Variant]:
    """Session 2: letter/digit runs, Greek letter names, repeated query words, on the service's combination."""
    best = replace(
        BASE,
        name="title + max passage + 1.0 x article + bigrams 0.1 + acronym plurals",
        title="every",
        aggregate="max+doc",
        doc_weight=1.0,
        bigram_weight=0.1,
        acronym_plurals=True,
    )
    split = replace(best, name=f"{best.name} + letter/digit split", digit_split=True)
    return [
        best,
        replace(best, name=f"{best.name}, query terms once", dedup_query=True),
        split,
        replace(split, name=f"{split.name}, query terms once", dedup_query=True),
        replace(split, name=f"{split.name} + Greek letter names", greek=True),
        replace(split, name=f"{split.name} + Greek letter names, query terms once", greek=True, dedup_query=True),
    ]


def grid(base: Variant, k1s: Sequence[float], bs: Sequence[float]) -> list[Variant]:
    return [replace(base, name=f"{base.name}; k1 {k1}, b {b}", k1=k1, b=b) for k1 in k1s for b in bs]


def print_table(rows: list[tuple[Variant, Result]], out: Callable[[str], None] = print) -> None:
    out("| variant | SciFact nDCG@10 | Recall@100 | MRR@10 | dev hit@1 | dev hit@3 | dev MRR@10 |")
    out("|---|---|---|---|---|---|---|")
    for variant, r in rows:
        out(
            f"| {variant.name} | {r.ndcg:.4f} | {r.recall:.4f} | {r.mrr:.4f} | "
            f"{r.dev_hit1:.3f} | {r.dev_hit3:.3f} | {r.dev_mrr:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir_dir")
    parser.add_argument(
        "--questions", default=str(Path(__file__).resolve().parents[1] / "tests/data/questions-dev.json")
    )
    parser.add_argument(
        "--set", choices=("single", "combinations", "tokenizer"), default="single", help="Which variants to run."
    )
    parser.add_argument("--grid", action="store_true", help="Also a k1 x b grid for title + max passage + article.")
    args = parser.parse_args()
    started = time.perf_counter()
    data = Data(args.beir_dir, args.questions)
    check = VariantTokenizer("corpusbot", "english", digit_split=True)
    sample = data.articles["scifact"][0].text
    assert check.terms(sample) == default_tokenizer().terms(sample), "the variant tokenizer drifted from the core's"
    todo = {"single": variants, "combinations": combinations, "tokenizer": tokenizer_variants}[args.set]()
    if args.grid:
        mixed = replace(
            BASE, name="title + max passage + 1.0 x article", title="every", aggregate="max+doc", doc_weight=1.0
        )
        todo += grid(mixed, (0.9, 1.2, 1.5, 2.0), (0.5, 0.75, 0.9))
    rows = []
    for variant in todo:
        rows.append((variant, measure(variant, data)))
        print(f"{variant.name}: done", file=sys.stderr)
    print_table(rows)
    print(f"\n({time.perf_counter() - started:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
