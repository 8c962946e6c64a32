"""``corpusbot eval``: answer quality on dev questions or on a BEIR collection."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterable, Iterator
from typing import TypeVar

import click

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.index.engine.bm25 import BM25Params
from corpusbot.index.maintenance.evaluate import (
    BeirReport,
    QuestionResult,
    QuestionsReport,
    evaluate_beir,
    evaluate_questions,
    load_questions,
)

T = TypeVar("T")
SNIPPET_CHARS = 160


@click.command("eval")
@click.argument("questions", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--beir",
    "beir_dir",
    type=click.Path(file_okay=False),
    help="Evaluate on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) instead.",
)
@click.option("--split", default="test", show_default=True, help="The BEIR qrels split (qrels/SPLIT.tsv).")
@click.option("--k1", type=click.FloatRange(min=0), help="BM25 k1 for the --beir index [default: 1.5].")
@click.option("--b", "b", type=click.FloatRange(0, 1), help="BM25 b for the --beir index [default: 0.75].")
@db_option
@json_option
def eval_command(
    questions: str | None,
    beir_dir: str | None,
    split: str,
    k1: float | None,
    b: float | None,
    db_path: str,
    as_json: bool,
) -> None:
    """Measure answer quality: dev questions on the index, or a BEIR collection.

    QUESTIONS is a JSON list of {"q": question, "expect_any": [phrases]}; a
    passage answers when it contains one of the phrases (case-insensitive,
    whitespace-normalised). Prints hit@1, hit@3 and MRR@10 over the top 10
    passages, and every question whose first passage misses. Optional keys:
    "after" (the earlier question of a follow-up), "about" (article fields
    such as ["url"] the answer must give), "answer_any" (phrases the answer
    line must hold) and "unanswerable": true; then it also prints the share
    of unanswerable questions flagged and the answer line's precision,
    coverage and exact match.

    With --beir DIR the collection's corpus is indexed into a temporary
    database and every judged query ranks documents (a document ranks where
    its best passage ranks): prints nDCG@10, Recall@100 and MRR@10 as
    trec_eval computes them.

    Example: corpusbot eval tests/data/questions-dev.json
    """
    if (questions is None) == (beir_dir is None):
        raise click.UsageError(
            "Give a questions file or --beir DIR, e.g. corpusbot eval questions.json "
            "or corpusbot eval --beir ~/beir/scifact"
        )
    if beir_dir is None:
        if k1 is not None or b is not None:
            raise click.UsageError(
                "--k1 and --b set the BM25 parameters of the temporary --beir index; "
                "the questions are asked against the database as it is indexed."
            )
        assert questions is not None
        parsed = load_questions(questions)
        report = evaluate_questions(open_service(db_path), parsed, progress=_progress)
        if as_json:
            echo_json(report.to_json())
        else:
            click.echo(format_questions(report))
        return
    defaults = BM25Params()
    params = BM25Params(k1=defaults.k1 if k1 is None else k1, b=defaults.b if b is None else b)
    beir = evaluate_beir(
        beir_dir,
        params=params,
        split=split,
        synonyms_path=config.synonyms_path(),
        progress=_progress,
        status=lambda message: click.echo(message, err=True),
    )
    if as_json:
        echo_json(beir.to_json())
    else:
        click.echo(format_beir(beir))


def _progress(items: Iterable[T], length: int, label: str) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; otherwise one line saying what runs."""
    if length < 20:
        yield from items
        return
    if not sys.stderr.isatty():
        click.echo(f"{label}: {length}…", err=True)
        yield from items
        return
    with click.progressbar(items, length=length, label=label, file=sys.stderr) as bar:
        yield from bar


def format_questions(report: QuestionsReport) -> str:
    total = len(report.answerable)
    at_1 = round(report.hit_at_1 * total)
    at_3 = round(report.hit_at_3 * total)
    unanswerable = len(report.unanswerable)
    lines = [
        f"questions  {len(report.results)}" + (f" ({unanswerable} unanswerable)" if unanswerable else ""),
        f"hit@1      {report.hit_at_1:.3f}  ({at_1}/{total})",
        f"hit@3      {report.hit_at_3:.3f}  ({at_3}/{total})",
        f"MRR@10     {report.mrr_at_10:.3f}",
    ]
    if report.unanswerable_flagged is not None:
        flagged = unanswerable - len(report.unflagged)
        lines.append(f"unanswerable flagged  {report.unanswerable_flagged:.3f}  ({flagged}/{unanswerable})")
    typed = report.with_answer_type
    if typed:
        having = sum(1 for r in typed if r.question.answer_any)
        right = sum(r.answer_right for r in typed)
        exact = sum(r.answer_exact for r in typed)
        lines += [
            f"answer line precision  {_share(report.answer_precision)}  ({right}/{report.answers_shown} shown right)",
            f"answer line coverage   {_share(report.answer_coverage)}  "
            f"({sum(r.answer_line is not None for r in typed if r.question.answer_any)}/{having} with an answer)",
            f"answer exact match     {_share(report.answer_exact_match)}  ({exact}/{having})",
        ]
    if report.misses:
        lines += ["", "Misses (the first passage holds no expected phrase):"]
        for result in report.misses:
            lines += _format_miss(result)
    if report.unflagged:
        lines += ["", "Unanswerable but answered (confident, an answer line or about an article):"]
        lines += [f"- {result.question.q}" for result in report.unflagged]
    if report.wrong_answers:
        lines += ["", "Answer lines holding no expected phrase:"]
        for result in report.wrong_answers:
            expected = ", ".join(json.dumps(a, ensure_ascii=False) for a in result.question.answer_any or ())
            lines.append(f"- {result.question.q}: {result.answer_line!r} (expected any of: {expected or 'no line'})")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _format_miss(result: QuestionResult) -> list[str]:
    where = f"first hit at rank {result.first_hit_rank}" if result.first_hit_rank else "no hit in the top 10"
    expected = ", ".join(json.dumps(phrase, ensure_ascii=False) for phrase in result.question.expect_any)
    asked = f"- {result.question.q}" + (f" (after {result.question.after!r})" if result.question.after else "")
    lines = [asked, f"  expected any of: {expected} ({where})"]
    if not result.returned:
        lines.append("  (no passage returned)")
    for passage in result.returned:
        mark = "✓" if passage.hit else " "
        snippet = textwrap.shorten(" ".join(passage.text.split()), SNIPPET_CHARS, placeholder=" …")
        lines.append(f"  {mark} [{passage.rank}] {passage.article_id} ¶{passage.passage}: {snippet}")
    return lines


def format_beir(report: BeirReport) -> str:
    per_query_ms = 1000 * report.query_seconds / report.queries if report.queries else 0.0
    lines = [
        f"collection  {report.name}: {report.queries} judged queries, {report.documents} documents, "
        f"{report.passages} passages",
        f"nDCG@10     {report.ndcg_at_10:.4f}",
        f"Recall@100  {report.recall_at_100:.4f}",
        f"MRR@10      {report.mrr_at_10:.4f}",
        f"bm25        k1={report.params.k1} b={report.params.b}",
        f"time        indexing {report.index_seconds:.1f}s, queries {report.query_seconds:.1f}s "
        f"({per_query_ms:.0f} ms/query)",
        f"queries with no relevant document in the top 10: {report.queries_without_relevant_in_top_10}",
    ]
    if report.skipped_documents:
        lines.append(f"corpus lines not indexed (no text, malformed or duplicate id): {report.skipped_documents}")
    return "\n".join(lines)
