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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from corpusbot.index.models import Span, Token
from corpusbot.index.search.rerank import answer_spans, name_spans
from corpusbot.index.text.passages import sentence_spans
from corpusbot.index.text.tokenizer import Tokenizer

NUMBER_REACH = 3  # "how many": the number at most this far from a key term (1: next to it, 2: one word between)
LINE_COVERAGE = 0.3  # share of the question's weight the answer's sentence must hold to be shown as the answer
LINE_RELATIVE = 0.75  # … and this share of what the passage's best-matching sentence holds

_WORD = re.compile(r"\w+")
_WORD_START = re.compile(r"(?<!\w)\w")  # (a lookbehind sees before the scan's start)
_FEW_CANDIDATES = 3  # in a sentence: their distances to the key terms by a scan of each gap
_HOW_MANY = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
# Answers looked for in full in every sentence (titles and names, numbers: no quick test leaves a sentence); the
# question's words are looked for first (one compiled scan of the passage) and sentences without any are left.
_SLOW_TO_FIND = frozenset({"person", "number"})
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
    Names and numbers are looked for only in the sentences holding the question's words (``_keys_first``); dates and
    places, which most sentences are quickly found not to hold, in every sentence first (``_answers_first``).
    """
    return AnswerFinder(answer_type, weights, tokenizer, question)(text)


class AnswerFinder:
    """``find_answer`` for one question, called with each candidate passage's text: what depends only on the
    question (its words' total weight, whether it asks "how many") is worked out once."""

    def __init__(
        self, answer_type: str, weights: Mapping[str, float], tokenizer: Tokenizer, question: str = ""
    ) -> None:
        counting = answer_type == "number" and _HOW_MANY.search(question) is not None
        self._asked = _Asked(answer_type, weights, _total(weights), tokenizer, counting)

    def __call__(self, text: str) -> FoundAnswer | None:
        asked = self._asked
        if asked.total <= 0:
            return None
        sentences = sentence_spans(text)
        if asked.answer_type in _SLOW_TO_FIND and len(sentences) > 1:
            return _keys_first(asked, text, sentences)
        return _answers_first(text, sentences, *asked)


class _Asked(NamedTuple):
    answer_type: str
    weights: Mapping[str, float]
    total: float  # of the positive weights
    tokenizer: Tokenizer
    counting: bool  # "how many": a count, never money


def _answers_first(
    text: str,
    sentences: list[Span],
    answer_type: str,
    weights: Mapping[str, float],
    total: float,
    tokenizer: Tokenizer,
    counting: bool,
) -> FoundAnswer | None:
    """``find_answer`` looking for each sentence's answers, then for the question's words in those holding any."""
    asked: _Asked | None = None  # made when needed: most passages hold no answer of the type
    best: FoundAnswer | None = None
    for span in sentences:
        sentence = text[span.start : span.end]
        candidates = _candidates(answer_type, sentence)
        if not candidates:
            continue
        keys = tokenizer.tokens_of(sentence, weights)
        if keys:
            if asked is None:
                asked = _Asked(answer_type, weights, total, tokenizer, counting)
            best = _best_in_sentence(asked, sentence, span.start, candidates, keys, 0, _coverage(asked, keys), best)
    return best


def _keys_first(asked: _Asked, text: str, sentences: list[Span]) -> FoundAnswer | None:
    """``find_answer`` looking for the question's words first, in the whole passage at once, then for the answers of
    the sentences holding any, the one holding the most weight first: once one gives an answer, those holding less
    cannot give a better one and are not searched.

    Answers in different sentences never start at the same place, so the order in which the sentences are searched
    decides no tie.
    """
    found_keys = asked.tokenizer.tokens_of(text, asked.weights)
    if not found_keys:
        return None
    try:
        holding = [
            (_coverage(asked, keys), sentences[at], keys) for at, keys in _by_sentence(found_keys, sentences).items()
        ]
    except (ValueError, OverflowError):  # weights no question has (infinite, near the largest float): in text order
        return _answers_first(text, sentences, *asked)
    if any(math.isnan(coverage) for coverage, _, _ in holding):  # NaN compares false: no order but the text's
        return _answers_first(text, sentences, *asked)
    holding.sort(key=lambda sentence: -sentence[0])  # stable: of equal ones, the first in the text first
    best: FoundAnswer | None = None
    for coverage, span, keys in holding:
        if best is not None and coverage < best.coverage:
            break
        sentence = text[span.start : span.end]
        candidates = _candidates(asked.answer_type, sentence)
        if candidates:
            best = _best_in_sentence(asked, sentence, span.start, candidates, keys, span.start, coverage, best)
    return best


def _candidates(answer_type: str, sentence: str) -> list[tuple[int, int, int]]:
    """The possible answers in ``sentence``: (start, end, how near a key term it must be)."""
    candidates = [(start, end, 10**6) for start, end in answer_spans(answer_type, sentence)]
    if answer_type == "person":  # an untitled name counts right next to a key term: "Carla Mendes won"
        candidates += [(start, end, 1) for start, end in name_spans(sentence)]
    return candidates


def _by_sentence(keys: list[Token], sentences: list[Span]) -> dict[int, list[Token]]:
    """The ``keys`` (found in the whole passage, in order) of each sentence holding any, by its index, in order.

    Sentences end at punctuation before whitespace, where no word runs on: a sentence's words are the passage's
    words inside its span, the words its own scan would find.
    """
    starts = [span.start for span in sentences]
    found: dict[int, list[Token]] = {}
    for key in keys:
        at = bisect.bisect_right(starts, key.start) - 1
        if at >= 0 and key.end <= sentences[at].end:
            found.setdefault(at, []).append(key)
    return found


def _coverage(asked: _Asked, keys: list[Token]) -> float:
    """The share of the question's weight these key terms hold (``fsum``: in any order, the same value)."""
    return math.fsum(asked.weights[term] for term in {key.term for key in keys}) / asked.total


def _best_in_sentence(
    asked: _Asked,
    sentence: str,
    at: int,
    candidates: list[tuple[int, int, int]],
    keys: list[Token],
    keys_at: int,
    coverage: float,
    best: FoundAnswer | None,
) -> FoundAnswer | None:
    """``best``, or a better answer among the ``candidates`` of one ``sentence`` (at ``at`` in the passage) whose
    question's words are ``keys`` (their spans counted from ``keys_at`` before the sentence's start)."""
    weights = asked.weights
    numbers = asked.answer_type == "number"
    key_spans: list[tuple[int, int]] | None = None
    words_in: Callable[[int, int], int] | None = None
    for start, end, reach in candidates:
        inside = asked.tokenizer.terms(sentence[start:end])
        if inside and all(term in weights for term in inside):
            continue  # only the question's words again
        if asked.counting and _MONEY.search(sentence, start, end):
            continue
        if key_spans is None or words_in is None:
            key_spans = [(key.start - keys_at, key.end - keys_at) for key in keys]
            words_in = _words_counter(sentence, len(candidates))
        distance = _words_between(words_in, start, end, key_spans)
        if distance > (NUMBER_REACH if numbers else reach) or (reach == 1 and distance == 0):
            continue  # an untitled name holding a key term names the thing asked about: "Westfield Orchestra"
        # ties: the earlier answer, as news puts the subject first ("Carla Mendes won …, defeating … mayor X")
        if best is None or (coverage, -distance, -(at + start)) > (best.coverage, -best.distance, -best.span.start):
            best = FoundAnswer(Span(at + start, at + end), coverage, distance, frozenset(key.term for key in keys))
    return best


def shown_as_line(found: FoundAnswer, text: str, weights: Mapping[str, float], tokenizer: Tokenizer) -> bool:
    """Whether an answer found in ``text`` is sure enough to be the answer line (see the module docstring)."""
    total = _total(weights)
    if total <= 0 or found.coverage < LINE_COVERAGE:
        return False
    keys = tokenizer.tokens_of(text, weights)  # the question's words, once for the whole passage
    sentences = sentence_spans(text)
    held = _by_sentence(keys, sentences)
    best = max(
        math.fsum(weights[term] for term in {key.term for key in held.get(at, ())}) / total
        for at in range(len(sentences))
    )
    if found.coverage < LINE_RELATIVE * best:
        return False
    present = {key.term for key in keys}
    top = max(weights[term] for term in present)
    heaviest = {term for term in present if weights[term] >= top * (1 - 1e-9)}
    return heaviest <= found.keys


def _total(weights: Mapping[str, float]) -> float:
    return sum(weight for weight in weights.values() if weight > 0)


def _words_counter(sentence: str, candidates: int) -> Callable[[int, int], int]:
    """How many words of ``sentence`` start in ``[a, b)``, for ``_words_between`` (``\\w+`` words).

    For a few candidates, a scan of each gap (a word starts at a word character after none); for more, where each
    word starts, found once, and binary searches (a long sentence of many candidates stays cheap).
    """
    if candidates <= _FEW_CANDIDATES:
        return lambda a, b: len(_WORD_START.findall(sentence, a, b))
    words = [match.start() for match in _WORD.finditer(sentence)]
    return lambda a, b: bisect.bisect_left(words, b) - bisect.bisect_left(words, a)


def _words_between(words_in: Callable[[int, int], int], start: int, end: int, keys: list[tuple[int, int]]) -> int:
    """1 + the words between the answer and the nearest key term (0 when the answer holds one).

    ``words_in(a, b)``: how many words start in ``[a, b)``; ``keys``: the key terms' spans, in order (a binary
    search finds the nearest).
    """
    after = bisect.bisect_left(keys, (end, -1))  # the first key starting at or after the answer's end
    before = after - 1
    while before >= 0 and keys[before][1] > start:  # keys overlapping the answer
        if keys[before][0] < end:
            return 0
        before -= 1
    gaps = []
    if before >= 0:
        gaps.append(words_in(keys[before][1], start))
    if after < len(keys):
        gaps.append(words_in(end, keys[after][0]))
    return min(gaps) + 1 if gaps else 10**6
