"""Answer-quality evaluation: dev questions on an index, and BEIR collections end to end.

Two evaluations, both front-end free (the CLI in ``bot/cli/eval.py`` prints them):

* **Dev questions** (``evaluate_questions``): a JSON list of ``{"q": ..., "expect_any": [...]}``.
  A returned passage *hits* when its text contains any expected phrase, compared
  case-insensitively after NFKC normalisation, with curly quotes made straight and
  runs of whitespace collapsed (so a phrase still matches across a line break).
  Reports hit@1, hit@3 and MRR@10 over the top 10 passages of ``SearchService.ask``.
  Optional keys per question: ``"after"`` (the earlier question of a follow-up, asked as its
  context), ``"about"`` (metadata fields the answer must give, e.g. ``["url"]``: the answer's
  ``about`` line counts as rank 1 when it gives them and, with ``expect_any``, holds a phrase),
  ``"answer_any"`` (phrases one of which the direct answer line must hold; ``[]``: no line is
  right) and ``"unanswerable": true`` (no ``expect_any``; the answer must not be confident
  and show no answer line). Unanswerable questions are left out of hit@k and MRR and reported
  as the share flagged; answer lines as precision (right when shown), coverage (shown for a
  question with an answer) and exact match (the line is one of the phrases).
* **BEIR** (``evaluate_beir``): a folder with ``corpus.jsonl``, ``queries.jsonl`` and
  ``qrels/<split>.tsv``. The corpus is indexed into a temporary database with the
  normal indexer, every judged query is asked, and documents are ranked where their
  best passage ranks (max over passage scores). Metrics come from ir-measures:
  nDCG@10 (graded gains) and Recall@100 from trec_eval (pytrec_eval), MRR@10 from
  its MS MARCO provider; a judged query that retrieves nothing counts as 0.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.indexing.indexer import index_corpus
from corpusbot.index.models import AboutArticle
from corpusbot.index.search.service import SearchService

T = TypeVar("T")

QUESTION_K = 10  # passages asked per dev question (MRR@10)
MAX_PASSAGES_PER_QUERY = 20_000  # BEIR: most passages looked at per query when grouping them by document
DOCS_PER_QUERY = 100  # documents kept per BEIR query (Recall@100)
MISS_CONTEXT = 3  # returned passages shown for each missed dev question

BEIR_MEASURES = ("nDCG@10", "R@100", "RR@10")
_REPORT_KEYS = {"nDCG@10": "ndcg_at_10", "R@100": "recall_at_100", "RR@10": "mrr_at_10"}


class Progress(Protocol):
    """Wraps an iterable to show progress: ``progress(items, length, label)`` yields the items."""

    def __call__(self, items: Iterable[T], length: int, label: str) -> Iterator[T]: ...


Status = Callable[[str], None]


def _no_progress(items: Iterable[T], length: int, label: str) -> Iterator[T]:
    yield from items


def _no_status(message: str) -> None:
    return None


# -- dev questions -----------------------------------------------------------


@dataclass(frozen=True)
class DevQuestion:
    q: str
    expect_any: tuple[str, ...]
    after: str | None = None  # the earlier question a follow-up is asked after
    about: tuple[str, ...] = ()  # metadata fields the answer must give ("url", "source", "author", …)
    answer_any: tuple[str, ...] | None = None  # the direct answer line must hold one; () no line is right
    unanswerable: bool = False


@dataclass(frozen=True)
class ReturnedPassage:
    """What a question got back at one rank (shown for misses)."""

    rank: int
    article_id: str
    passage: int  # the passage ordinal (¶n)
    text: str
    hit: bool

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "article_id": self.article_id,
            "passage": self.passage,
            "text": self.text,
            "hit": self.hit,
        }


@dataclass(frozen=True)
class QuestionResult:
    question: DevQuestion
    first_hit_rank: int | None  # 1-based rank of the first passage holding an expected phrase, within the top 10
    returned: tuple[ReturnedPassage, ...]  # the top MISS_CONTEXT passages
    confident: bool = True
    answer_line: str | None = None  # the direct answer shown, if any
    about: tuple[str, ...] = ()  # "field: value" of each metadata value the answer gave

    @property
    def reciprocal_rank(self) -> float:
        return 1.0 / self.first_hit_rank if self.first_hit_rank else 0.0

    @property
    def flagged(self) -> bool:
        """An unanswerable question answered as such: not confident, no answer line, nothing about an article."""
        return not self.confident and self.answer_line is None and not self.about

    @property
    def answer_right(self) -> bool:
        expected = self.question.answer_any
        return self.answer_line is not None and bool(expected) and contains_any(self.answer_line, expected or ())

    @property
    def answer_exact(self) -> bool:
        line = normalise_for_match(self.answer_line or "")
        return self.answer_line is not None and any(
            normalise_for_match(a) == line for a in self.question.answer_any or ()
        )

    def to_json(self) -> dict[str, object]:
        return {
            "q": self.question.q,
            **({"after": self.question.after} if self.question.after else {}),
            "expect_any": list(self.question.expect_any),
            "first_hit_rank": self.first_hit_rank,
            "returned": [passage.to_json() for passage in self.returned],
            "confident": self.confident,
            "answer": self.answer_line,
            **({"answer_any": list(self.question.answer_any)} if self.question.answer_any is not None else {}),
            "about": list(self.about),
        }


@dataclass(frozen=True)
class QuestionsReport:
    results: tuple[QuestionResult, ...]

    @property
    def answerable(self) -> tuple[QuestionResult, ...]:
        return tuple(r for r in self.results if not r.question.unanswerable)

    @property
    def unanswerable(self) -> tuple[QuestionResult, ...]:
        return tuple(r for r in self.results if r.question.unanswerable)

    @property
    def hit_at_1(self) -> float:
        return self._share(1)

    @property
    def hit_at_3(self) -> float:
        return self._share(3)

    @property
    def mrr_at_10(self) -> float:
        scored = self.answerable
        return sum(r.reciprocal_rank for r in scored) / len(scored) if scored else 0.0

    @property
    def unanswerable_flagged(self) -> float | None:
        """Share of unanswerable questions answered as such (None: the file has none)."""
        asked = self.unanswerable
        return sum(r.flagged for r in asked) / len(asked) if asked else None

    @property
    def with_answer_type(self) -> tuple[QuestionResult, ...]:
        """Questions whose file says what their answer line must hold (``answer_any``)."""
        return tuple(r for r in self.results if r.question.answer_any is not None)

    @property
    def answers_shown(self) -> int:
        return sum(r.answer_line is not None for r in self.with_answer_type)

    @property
    def answer_precision(self) -> float | None:
        """Of the answer lines shown for ``answer_any`` questions, the share that hold an expected phrase."""
        shown = self.answers_shown
        return sum(r.answer_right for r in self.with_answer_type) / shown if shown else None

    @property
    def answer_coverage(self) -> float | None:
        """Of the questions that have an answer (non-empty ``answer_any``), the share given an answer line."""
        having = [r for r in self.with_answer_type if r.question.answer_any]
        return sum(r.answer_line is not None for r in having) / len(having) if having else None

    @property
    def answer_exact_match(self) -> float | None:
        """Of the questions that have an answer, the share whose line is exactly one of the expected phrases."""
        having = [r for r in self.with_answer_type if r.question.answer_any]
        return sum(r.answer_exact for r in having) / len(having) if having else None

    @property
    def misses(self) -> tuple[QuestionResult, ...]:
        """Answerable questions whose first passage does not hold an expected phrase."""
        return tuple(r for r in self.answerable if r.first_hit_rank != 1)

    @property
    def unflagged(self) -> tuple[QuestionResult, ...]:
        """Unanswerable questions answered confidently, with an answer line or about an article."""
        return tuple(r for r in self.unanswerable if not r.flagged)

    @property
    def wrong_answers(self) -> tuple[QuestionResult, ...]:
        """Answer lines shown that hold no expected phrase."""
        return tuple(r for r in self.with_answer_type if r.answer_line is not None and not r.answer_right)

    def _share(self, depth: int) -> float:
        scored = self.answerable
        if not scored:
            return 0.0
        return sum(1 for r in scored if r.first_hit_rank is not None and r.first_hit_rank <= depth) / len(scored)

    def to_json(self) -> dict[str, object]:
        return {
            "mode": "questions",
            "questions": len(self.results),
            "hit_at_1": self.hit_at_1,
            "hit_at_3": self.hit_at_3,
            "mrr_at_10": self.mrr_at_10,
            "misses": [r.to_json() for r in self.misses],
            "answerable": len(self.answerable),
            "unanswerable": len(self.unanswerable),
            "unanswerable_flagged": self.unanswerable_flagged,
            "unflagged": [r.to_json() for r in self.unflagged],
            "answer_questions": len(self.with_answer_type),
            "answers_shown": self.answers_shown,
            "answer_precision": self.answer_precision,
            "answer_coverage": self.answer_coverage,
            "answer_exact_match": self.answer_exact_match,
            "wrong_answers": [r.to_json() for r in self.wrong_answers],
        }


def load_questions(path: str | Path) -> list[DevQuestion]:
    """Read a questions file: a JSON list of objects with ``q`` and ``expect_any`` (a list of phrases)."""
    source = Path(path)
    example = 'e.g. [{"q": "who is on the US delegation?", "expect_any": ["Treasury Secretary"]}]'
    try:
        raw = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusbotError(f"No questions file at {source}. Give a JSON file of questions, {example}.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CorpusbotError(f"Cannot read {source}: {error}. Give a readable UTF-8 JSON file.") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise CorpusbotError(
            f"{source} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}). "
            f"Fix it; the expected format is {example}."
        ) from None
    if not isinstance(data, list) or not data:
        raise CorpusbotError(f"{source} must hold a non-empty JSON list of questions, {example}.")
    return [_question(source, number, item, example) for number, item in enumerate(data, start=1)]


METADATA_FIELDS = ("url", "source", "author", "published", "title")


def _question(source: Path, number: int, item: object, example: str) -> DevQuestion:
    """One entry of a questions file, checked (see the module docstring for the optional keys)."""
    entry = item if isinstance(item, dict) else {}
    question = entry.get("q")
    if not isinstance(question, str) or not question.strip():
        raise CorpusbotError(f'{source}: question {number} has no "q" text. Each entry needs one, {example}.')
    where = f"{source}: question {number} ({question.strip()!r})"
    unanswerable = entry.get("unanswerable", False)
    about = entry.get("about", [])
    after = entry.get("after")
    if not isinstance(unanswerable, bool):
        raise CorpusbotError(f'{where}: "unanswerable" must be true or false (for "expect_any" see {example}).')
    if not isinstance(about, list) or not all(name in METADATA_FIELDS for name in about):
        raise CorpusbotError(
            f'{where}: "about" must list fields of {", ".join(METADATA_FIELDS)} (for "expect_any" see {example}).'
        )
    if after is not None and (not isinstance(after, str) or not after.strip()):
        raise CorpusbotError(f'{where}: "after" must be the earlier question\'s text (for "expect_any" see {example}).')
    expected = _phrases(entry.get("expect_any"))
    if expected is None or (not expected and not (unanswerable or about)):
        raise CorpusbotError(f'{where} needs "expect_any": a non-empty list of phrases, {example}.')
    if unanswerable and expected:
        raise CorpusbotError(f'{where} is "unanswerable" and so takes no "expect_any" phrases, unlike {example}.')
    answers = _phrases(entry.get("answer_any"), empty_ok=True) if "answer_any" in entry else None
    if "answer_any" in entry and answers is None:
        raise CorpusbotError(f'{where}: "answer_any" must be a list of phrases (for "expect_any" see {example}).')
    return DevQuestion(
        question.strip(), expected, after.strip() if after else None, tuple(about), answers, unanswerable
    )


def _phrases(value: object, empty_ok: bool = False) -> tuple[str, ...] | None:
    """A list of non-blank strings (or one string) as a tuple; None when it is something else. Absent: ()."""
    if value is None and not empty_ok:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(phrase, str) and phrase.strip() for phrase in value):
        return None
    return tuple(value)


def normalise_for_match(text: str) -> str:
    """Text as phrases are compared: NFKC, case-folded, straight quotes, single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(_QUOTES)
    return " ".join(text.split())


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def contains_any(text: str, phrases: Iterable[str]) -> bool:
    haystack = normalise_for_match(text)
    return any(normalise_for_match(phrase) in haystack for phrase in phrases)


def evaluate_questions(
    service: SearchService, questions: Iterable[DevQuestion], *, progress: Progress | None = None
) -> QuestionsReport:
    """Ask every question for its top 10 passages and find the first one holding an expected phrase."""
    items = list(questions)
    wrap = progress or _no_progress
    results = []
    for question in wrap(items, len(items), "Questions"):
        answer = service.ask(question.q, k=QUESTION_K, context=question.after)
        flags = [contains_any(hit.passage.text, question.expect_any) for hit in answer.hits]
        first = next((rank for rank, flag in enumerate(flags, start=1) if flag), None)
        returned = tuple(
            ReturnedPassage(rank, hit.article.id, hit.passage.ordinal, hit.passage.text, flag)
            for rank, (hit, flag) in enumerate(zip(answer.hits, flags, strict=True), start=1)
            if rank <= MISS_CONTEXT
        )
        about = tuple(f"{name}: {item.value(name)}" for item in answer.about for name in item.asked if item.value(name))
        if question.about and _about_answers(question, answer.about):
            first = 1  # the line about the article is shown above the passages
        line = answer.answer.text if answer.answer else None
        results.append(QuestionResult(question, first, returned, answer.confident, line, about))
    return QuestionsReport(tuple(results))


def _about_answers(question: DevQuestion, about: Iterable[AboutArticle]) -> bool:
    """Whether an article's metadata line gives every field asked and, when phrases are expected, holds one."""
    for item in about:
        if not set(question.about) <= set(item.asked):
            continue
        values = " ".join(item.value(name) or "" for name in question.about)
        if not question.expect_any or contains_any(values, question.expect_any):
            return True
    return False


# -- BEIR ----------------------------------------------------------------------


@dataclass(frozen=True)
class BeirCollection:
    """A BEIR folder's judged queries: ``qrels[query_id][doc_id] = grade``."""

    root: Path
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(root: str | Path, split: str = "test") -> BeirCollection:
    """Check a BEIR folder and read its queries and judgments; only judged queries are kept."""
    base = Path(root)
    layout = f"corpus.jsonl, queries.jsonl and qrels/{split}.tsv"
    if not base.is_dir():
        raise CorpusbotError(f"No BEIR folder at {base}. Give the folder that holds {layout}.")
    corpus, queries_path, qrels_path = base / "corpus.jsonl", base / "queries.jsonl", base / "qrels" / f"{split}.tsv"
    for needed in (corpus, queries_path, qrels_path):
        if not needed.is_file():
            raise CorpusbotError(
                f"{base} is not a BEIR collection: {needed.relative_to(base)} is missing. "
                f"A BEIR folder holds {layout} (unzip the whole dataset, not only the corpus)."
            )
    qrels = _read_qrels(qrels_path)
    all_queries = _read_queries(queries_path)
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise CorpusbotError(
            f"{qrels_path} judges {len(missing)} queries that {queries_path.name} does not have ({shown}). "
            "Use the queries.jsonl that came with these qrels."
        )
    return BeirCollection(base, corpus, {qid: all_queries[qid] for qid in qrels}, qrels)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and fields[0] == "query-id"):
                continue
            try:
                query_id, doc_id, grade = fields
                qrels.setdefault(query_id.strip(), {})[doc_id.strip()] = int(grade)
            except ValueError:
                raise CorpusbotError(
                    f"{path}, line {number}: expected 'query-id<TAB>corpus-id<TAB>score' with an integer score, "
                    f"got {line.strip()[:80]!r}. Fix or replace the qrels file."
                ) from None
    if not qrels:
        raise CorpusbotError(f"{path} holds no judgments. Use the qrels file that came with the collection.")
    return qrels


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = str(record["text"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise CorpusbotError(
                    f'{path}, line {number}: expected a JSON object with "_id" and "text". '
                    "Fix or replace the queries file."
                ) from None
    return queries


@dataclass(frozen=True)
class BeirReport:
    name: str
    queries: int
    documents: int
    passages: int
    skipped_documents: int  # corpus lines dropped while indexing (no id or text, malformed, duplicate id)
    metrics: dict[str, float]  # nDCG@10, R@100, RR@10
    per_query: dict[str, dict[str, float]] = field(repr=False)
    params: BM25Params = field(default_factory=BM25Params)
    index_seconds: float = 0.0
    query_seconds: float = 0.0

    @property
    def ndcg_at_10(self) -> float:
        return self.metrics["nDCG@10"]

    @property
    def recall_at_100(self) -> float:
        return self.metrics["R@100"]

    @property
    def mrr_at_10(self) -> float:
        return self.metrics["RR@10"]

    @property
    def queries_without_relevant_in_top_10(self) -> int:
        return sum(1 for values in self.per_query.values() if values.get("RR@10", 0.0) == 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "mode": "beir",
            "collection": self.name,
            "queries": self.queries,
            "documents": self.documents,
            "passages": self.passages,
            "skipped_documents": self.skipped_documents,
            **{_REPORT_KEYS[name]: value for name, value in self.metrics.items()},
            "queries_without_relevant_in_top_10": self.queries_without_relevant_in_top_10,
            "bm25": self.params.to_json(),
            "index_seconds": round(self.index_seconds, 3),
            "query_seconds": round(self.query_seconds, 3),
        }


Run = dict[str, dict[str, float]]


def rank_documents(service: SearchService, query: str, *, docs: int = DOCS_PER_QUERY) -> dict[str, float]:
    """The best ``docs`` documents for ``query``, each scored by its best passage, best first.

    Asks for passages in growing batches until ``docs`` distinct documents are found, every
    matching passage has been seen (a longer batch brings no more: a short batch is not enough to
    tell, as near-duplicate passages are collapsed), or MAX_PASSAGES_PER_QUERY passages were looked
    at. Rankings are deterministic (score, then passage id), so a longer batch starts with the shorter one.
    """
    depth = 2 * docs
    previous = -1
    while True:
        ranked = service.rank(query, depth)
        best: dict[str, float] = {}
        for article_id, _, score in ranked:
            # Passages come best first, so an article's first passage is its best.
            if article_id not in best:
                best[article_id] = score
                if len(best) == docs:
                    return best
        if len(ranked) == previous or depth >= MAX_PASSAGES_PER_QUERY:
            return best
        previous = len(ranked)
        depth = min(4 * depth, MAX_PASSAGES_PER_QUERY)


def evaluate_beir(
    root: str | Path,
    *,
    params: BM25Params | None = None,
    split: str = "test",
    synonyms_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
) -> BeirReport:
    """Index a BEIR collection into a temporary database and measure document ranking on its judged queries."""
    collection = load_beir(root, split)
    params = params or BM25Params()
    say = status or _no_status
    wrap = progress or _no_progress
    with tempfile.TemporaryDirectory(prefix="corpusbot-beir-") as workdir:
        db_path = Path(workdir) / "beir.db"
        say(f"Indexing {collection.corpus} into a temporary database (k1={params.k1}, b={params.b})…")
        summary = index_corpus(db_path, [str(collection.corpus)], full=True, params=params)
        if summary.articles == 0:
            reasons = "; ".join(reason for _, reason in summary.skipped) or "no documents"
            raise CorpusbotError(f"{collection.corpus} gave no documents to index ({reasons}). Check the corpus file.")
        say(f"Indexed {summary.articles} documents ({summary.passages} passages) in {summary.seconds:.1f}s.")
        service = SearchService(db_path, synonyms_path=synonyms_path)
        try:
            started = time.perf_counter()
            run: Run = {
                query_id: rank_documents(service, collection.queries[query_id])
                for query_id in wrap(list(collection.queries), len(collection.queries), "Queries")
            }
            query_seconds = time.perf_counter() - started
        finally:
            service.close()
    metrics, per_query = trec_metrics(collection.qrels, run)
    return BeirReport(
        name=collection.root.name,
        queries=len(collection.queries),
        documents=summary.articles,
        passages=summary.passages,
        skipped_documents=len(summary.warnings),
        metrics=metrics,
        per_query=per_query,
        params=params,
        index_seconds=summary.seconds,
        query_seconds=query_seconds,
    )


def trec_metrics(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """nDCG@10, R@100 and RR@10, the standard way: (mean over judged queries, per query).

    Every query in ``qrels`` counts; one missing from ``run`` (nothing retrieved) scores 0.
    """
    measures = _measures()
    # ir-measures picks the provider per measure: trec_eval (pytrec_eval) for nDCG@10 and R@100, and
    # its MS MARCO provider for RR@10 (trec_eval's recip_rank has no cutoff).
    evaluator: Any = _ir_measures().evaluator(measures, {q: dict(docs) for q, docs in qrels.items()})
    per_query: dict[str, dict[str, float]] = {query_id: dict.fromkeys(BEIR_MEASURES, 0.0) for query_id in qrels}
    judged_run = {q: dict(docs) for q, docs in run.items() if q in qrels and docs}
    for metric in evaluator.iter_calc(judged_run):
        per_query[metric.query_id][str(metric.measure)] = float(metric.value)
    count = len(per_query)
    means = {
        name: (sum(values[name] for values in per_query.values()) / count if count else 0.0) for name in BEIR_MEASURES
    }
    return means, per_query


def _measures() -> list[Any]:
    ir_measures = _ir_measures()
    return [ir_measures.parse_measure(name) for name in BEIR_MEASURES]


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError:
        raise CorpusbotError(
            "The BEIR evaluation needs ir-measures. Install it with: pip install 'corpusbot[eval]'"
        ) from None
    return ir_measures
