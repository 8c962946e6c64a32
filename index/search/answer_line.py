"""Finding the answer itself in a passage, for who/when/where/how-many questions.

A passage *holds an answer* when one of its sentences holds both a word of the
question (its key terms, weighted by idf) and an answer of the asked type
(``rerank.answer_spans``) that is not just the question's own words again
("where are the London talks?" is not answered by "in London"). For "how many"
the number must stand within a few words of a key term ("cost 4.2 million
dollars", "250,000 commuters"): a sentence holds numbers of all kinds.

Of several answers the one whose sentence holds the most of the question's
weight wins, then the one nearest a key term ("next Monday, June 9" right after
"London" for "when are the London talks?", not "June 6" at the sentence's start).
The ranker uses it to put answer-holding passages first; the service shows it
as the answer line when it is in the best passage and its sentence holds at
least ``LINE_COVERAGE`` of the question's weight and ``LINE_RELATIVE`` of what
the passage's best-matching sentence holds (a sentence that matches the
question less well than its neighbour is probably about something else:
"talks in London next Monday" beside "after a phone call" for "when did they
talk on the phone?").
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from corpusbot.index.models import Span
from corpusbot.index.search.rerank import answer_spans, name_spans
from corpusbot.index.text.passages import sentence_spans
from corpusbot.index.text.tokenizer import Tokenizer

NUMBER_REACH = 3  # "how many": the number at most this far from a key term (1: next to it, 2: one word between)
LINE_COVERAGE = 0.3  # share of the question's weight the answer's sentence must hold to be shown as the answer
LINE_RELATIVE = 0.75  # … and this share of what the passage's best-matching sentence holds

_WORD = re.compile(r"\w+")
_HOW_MANY = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
_MONEY = re.compile(r"\b(?:percent|per\s+cent|dollars|euros|pounds|yuan|yen)\b|[$€£¥%]", re.IGNORECASE)


@dataclass(frozen=True)
class FoundAnswer:
    span: Span  # in the passage text
    coverage: float  # share of the question's weight in the answer's sentence
    distance: int  # words between the answer and the nearest key term outside it (0: it holds one)
    keys: frozenset[str]  # the question's words in the answer's sentence


def find_answer(
    answer_type: str, text: str, weights: Mapping[str, float], tokenizer: Tokenizer, question: str = ""
) -> FoundAnswer | None:
    """The best answer of ``answer_type`` in ``text`` for a question of these term ``weights``, or None.

    ``question``: its wording refines the type ("how many" is never answered with money or a percentage).
    """
    total = _total(weights)
    if total <= 0:
        return None
    counting = answer_type == "number" and _HOW_MANY.search(question) is not None
    best: FoundAnswer | None = None
    for sentence_span in sentence_spans(text):
        sentence = text[sentence_span.start : sentence_span.end]
        candidates = [(start, end, 10**6) for start, end in answer_spans(answer_type, sentence)]
        if answer_type == "person":  # an untitled name counts right next to a key term: "Carla Mendes won"
            candidates += [(start, end, 1) for start, end in name_spans(sentence)]
        if not candidates:
            continue
        keys = tokenizer.spans(sentence, weights)
        if not keys:
            continue
        words = [match.start() for match in _WORD.finditer(sentence)]  # to count words between two places
        found_terms = frozenset(term for s, e in keys for term in tokenizer.terms(sentence[s:e]) if term in weights)
        coverage = math.fsum(weights[term] for term in found_terms) / total  # any order: the same value
        for start, end, reach in candidates:
            inside = tokenizer.terms(sentence[start:end])
            if inside and all(term in weights for term in inside):
                continue  # only the question's words again
            if counting and _MONEY.search(sentence, start, end):
                continue
            distance = _words_between(words, start, end, keys)
            if distance > (NUMBER_REACH if answer_type == "number" else reach) or (reach == 1 and distance == 0):
                continue  # an untitled name holding a key term names the thing asked about: "Westfield Orchestra"
            span = Span(sentence_span.start + start, sentence_span.start + end)
            found = FoundAnswer(span, coverage, distance, found_terms)
            # ties: the earlier answer, as news puts the subject first ("Carla Mendes won …, defeating … mayor X")
            if best is None or (found.coverage, -found.distance, -span.start) > (
                best.coverage,
                -best.distance,
                -best.span.start,
            ):
                best = found
    return best


def shown_as_line(found: FoundAnswer, text: str, weights: Mapping[str, float], tokenizer: Tokenizer) -> bool:
    """Whether an answer found in ``text`` is sure enough to be the answer line (see the module docstring)."""
    total = _total(weights)
    if total <= 0 or found.coverage < LINE_COVERAGE:
        return False
    best = max(
        math.fsum(weights[term] for term in {t for t in tokenizer.terms(text[s.start : s.end]) if t in weights}) / total
        for s in sentence_spans(text)
    )
    if found.coverage < LINE_RELATIVE * best:
        return False
    present = {term for term in tokenizer.terms(text) if term in weights}
    top = max(weights[term] for term in present)
    heaviest = {term for term in present if weights[term] >= top * (1 - 1e-9)}
    return heaviest <= found.keys


def _total(weights: Mapping[str, float]) -> float:
    return sum(weight for weight in weights.values() if weight > 0)


def _words_between(words: list[int], start: int, end: int, keys: list[tuple[int, int]]) -> int:
    """1 + the words between the answer and the nearest key term (0 when the answer holds one).

    ``words``: where each word of the sentence starts; ``keys``: the key terms' spans, in order. Binary
    searches, so a long sentence of many candidates and many key terms stays cheap.
    """
    after = bisect.bisect_left(keys, (end, -1))  # the first key starting at or after the answer's end
    before = after - 1
    while before >= 0 and keys[before][1] > start:  # keys overlapping the answer
        if keys[before][0] < end:
            return 0
        before -= 1
    gaps = []
    if before >= 0:
        gaps.append(bisect.bisect_left(words, start) - bisect.bisect_left(words, keys[before][1]))
    if after < len(keys):
        gaps.append(bisect.bisect_left(words, keys[after][0]) - bisect.bisect_left(words, end))
    return min(gaps) + 1 if gaps else 10**6
