"""Query analysis: what a question asks for, before any scoring.

- Quoted phrases (``"rare earth"``) must appear as adjacent terms in a passage.
- ``-term`` excludes passages containing that term.
- Question words and stopwords are dropped by the tokenizer; conversational
  filler ("tell me", "please", "explain", "taking place", "going", the asker's
  own "I want") is dropped too when other words remain. What others want is
  asked: "what does China want?" keeps "want".
- Synonyms (a small bundled file plus the user's) add the other forms of a
  word or phrase to the query at half weight; a line "a, b => c" adds c to a
  question saying a or b, not the reverse.
- The question word decides an expected answer type (who -> a person,
  when -> a date, where -> a place, how many/much -> a number), also after a
  follow-up's "and"/"so"/"but"; people named by a noun are a person too
  ("which officials …", "delegation members?"); used by the ranker as a mild
  boost.
- A follow-up ("and what did they want from China?") can be given the earlier
  question as ``context``: its words that the follow-up lacks are added at
  CONTEXT_WEIGHT (0.3) of a query word's weight, so they steer the ranking
  without outweighing what is asked now (in full when the follow-up has only
  filler: "and who's going?"); their synonyms join at the synonym share.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib.resources import files
from pathlib import Path

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.text.tokenizer import Tokenizer

SYNONYM_WEIGHT = 0.5
CONTEXT_WEIGHT = 0.3  # an earlier question's words in a follow-up, relative to the follow-up's own words

_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")
_EXCLUDED = re.compile(r"(?:(?<=\s)|^)-([^\W_][\w'’.]*)")
# Conversational filler, dropped from a question when other words remain (compared after stemming).
FILLER_WORDS = (
    "tell please know explain describe information info anything something thing things wonder anyone "
    "somebody anybody give show find many much happen occur go going"
)
# "take place" says only that something happens ("where are the talks taking place"); dropped like filler.
_TAKE_PLACE = re.compile(r"\b(?:take|takes|taking|took|taken)\s+place\b", re.IGNORECASE)
# What the asker wants is filler ("I want information on …", "we'd like to know"); what others want is asked
# ("what does China want?").
_ASKER_WANTS = re.compile(
    r"\b(?:i|we)(?:['’]d)?(?:\s+(?:just|really|also|would|do|did))*\s+(?:want|wanted|wanna|like)\b", re.IGNORECASE
)
_IDLE = (_TAKE_PLACE, _ASKER_WANTS)
# A word every match of an _IDLE pattern has (see ``hint_words``): without one, no pattern is looked for.
_IDLE_HINTS = frozenset({"place", "want", "wanted", "wanna", "like"})
_LEAD = r"^\W*(?:(?:and|but|so|also|then|ok|okay)\W+)*"  # a follow-up's opening: "and who's going?", "so when?"
_PEOPLE_WORDS = (
    "members officials leaders names personnel participants delegates negotiators executives ministers "
    "representatives candidates winners speakers"
).split()
_PEOPLE = rf"(?:{'|'.join(_PEOPLE_WORDS)})\b"
_ASKING = r"(?:what|which|why|how|when|where|who|whom|whose|did|does|do|is|are|was|were|can|could|will|would)"
# The answer types a question word asks for, each with what follows the follow-up's opening (_LEAD).
_BY_QUESTION_WORD = (
    ("person", r"(?:who|whom|whose)\b"),
    ("number", r"how\s+(?:many|much|long|far|old|big|large)\b"),
    ("date", r"(?:when\b|what\s+(?:time|date|day|year|month)\b|which\s+(?:day|date|year|month)\b)"),
    ("place", r"where\b"),
)
# People asked for by a noun ("which officials …", or a fragment naming them: "delegation members?"): a person.
_BY_PEOPLE_NOUN = re.compile(
    rf"{_LEAD}(?:which|what)\s+(?:(?!{_ASKING}\b)\w+\s+)?{_PEOPLE}|^(?!.*\b{_ASKING}\b).*\b{_PEOPLE}",
    re.IGNORECASE,
)
# The answer type is that of the first pattern (_LEAD + a _BY_QUESTION_WORD, then _BY_PEOPLE_NOUN) that matches at
# the start. The question words are tried as one alternation after one opening: no opening word begins as a
# question word does, so none matches where a shorter opening ends, and where the longest ends the first group that
# matches (named by its type) is the first pattern that would. The people-noun pattern, costly (it reads the whole
# question for a question word), is tried only when the question has a people noun.
_QUESTION_WORD = re.compile(
    _LEAD + "(?:" + "|".join(f"(?P<{name}>{words})" for name, words in _BY_QUESTION_WORD) + ")", re.IGNORECASE
)
_PEOPLE_HINTS = frozenset(word.lower() for word in _PEOPLE_WORDS)
# Letters other than A-Z that a case-insensitive pattern letter matches (besides the Kelvin sign, which
# str.lower() makes "k"): İ and ı match "i", ſ matches "s".
_PATTERN_FOLDS = str.maketrans({"İ": "i", "ı": "i", "ſ": "s"})
_ASCII_LETTERS = re.compile("[a-z]+")


@dataclass(frozen=True)
class WeightedTerm:
    term: str
    weight: float
    origin: str  # "query", "synonym" (which word it came from is in `source`), "context" (the earlier question)
    source: str = ""


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    terms: tuple[WeightedTerm, ...]  # in query order; a repeated word appears twice
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: frozenset[str] = frozenset()
    answer_type: str | None = None
    surface: dict[str, str] = field(default_factory=dict)  # term -> the word the user typed
    context: str | None = None  # the earlier question a follow-up was read with

    # Worked out once (the fields never change; a frozen dataclass still has the __dict__ cached_property fills).
    @cached_property
    def query_terms(self) -> tuple[str, ...]:
        return tuple(t.term for t in self.terms if t.origin == "query")

    @cached_property
    def asked_terms(self) -> tuple[str, ...]:
        """The words confidence is judged on: the question's own, or the earlier question's when it has none."""
        return self.query_terms or tuple(t.term for t in self.terms if t.origin == "context")


class Synonyms:
    """Groups of equivalent words/phrases, keyed by their token sequences."""

    def __init__(
        self,
        groups: Iterable[list[tuple[str, ...]]] = (),
        one_way: Iterable[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = (),
    ) -> None:
        """``one_way``: (forms, alternatives) pairs — each form also matches the alternatives, not the reverse."""
        self._alternatives: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for group in groups:
            for form in group:
                self._alternatives.setdefault(form, set()).update(other for other in group if other != form)
        for forms, alternatives in one_way:
            for form in forms:
                self._alternatives.setdefault(form, set()).update(other for other in alternatives if other != form)
        self.longest = max((len(form) for form in self._alternatives), default=0)
        # The forms with alternatives by their first word, each with its alternatives sorted: a question's words
        # are each looked up once, instead of every run of up to `longest` of them.
        self._by_first_word: dict[str, list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]]] = {}
        for form, others in self._alternatives.items():
            if form and others:
                self._by_first_word.setdefault(form[0], []).append((form, tuple(sorted(others))))

    def alternatives(self, form: tuple[str, ...]) -> set[tuple[str, ...]]:
        return self._alternatives.get(form, set())

    def found_in(self, words: list[str]) -> list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]]:
        """The forms with alternatives that are runs of ``words``, each with its alternatives sorted.

        Shorter forms first, and forms of one length in the order they occur (as reading every run of one word,
        then of two, … would find them); a form occurring twice is there twice.
        """
        if self._by_first_word.keys().isdisjoint(words):  # most questions: no word starts a form
            return []
        found = []
        for start, word in enumerate(words):
            for form, others in self._by_first_word.get(word, ()):
                if len(form) == 1 or tuple(words[start : start + len(form)]) == form:
                    found.append((len(form), start, form, others))
        if len(found) > 1:
            found.sort(key=lambda hit: (hit[0], hit[1]))
        return [(form, others) for _, _, form, others in found]

    @classmethod
    def load(cls, tokenizer: Tokenizer, extra: str | os.PathLike[str] | None = None) -> Synonyms:
        """The bundled synonyms, plus ``extra`` (a user file in the same format) if given."""
        texts = [(files("corpusbot.index.search") / "synonyms.txt").read_text(encoding="utf-8")]
        if extra:
            path = Path(extra)
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as error:
                raise CorpusbotError(
                    f"Cannot read the synonyms file {path} ({error}). Fix CORPUSBOT_SYNONYMS or create the file "
                    "(one group per line, alternatives separated by commas)."
                ) from None
        groups = []
        one_way = []
        for text in texts:
            for line in text.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if "=>" in line:  # "talk on the phone => call": the left forms also match the right, not back
                    left, _, right = line.partition("=>")
                    forms, alternatives = _forms(left, tokenizer), _forms(right, tokenizer)
                    if forms and alternatives:
                        one_way.append((sorted(forms), sorted(alternatives)))
                    continue
                forms = _forms(line, tokenizer)
                if len(forms) > 1:
                    groups.append(sorted(forms))
        return cls(groups, one_way)


def _forms(text: str, tokenizer: Tokenizer) -> set[tuple[str, ...]]:
    """The token sequences of the comma-separated alternatives in ``text`` (empty ones dropped)."""
    forms = {tuple(tokenizer.terms(part)) for part in text.split(",")}
    forms.discard(())
    return forms


def parse_query(
    text: str, tokenizer: Tokenizer, synonyms: Synonyms | None = None, context: str | None = None
) -> ParsedQuery:
    """What ``text`` asks; with ``context`` (an earlier question), its other words join at CONTEXT_WEIGHT."""
    # Each optional part (quotes, minus words, idle phrases, people nouns) is looked for only when the characters
    # or words it needs are in the question: most questions have none of them.
    phrases = _phrases(text, tokenizer) if '"' in text or "“" in text or "”" in text else ()
    if "-" in text:
        excluded = frozenset(term for match in _EXCLUDED.finditer(text) for term in tokenizer.terms(match.group(1)))
        positive_text = _EXCLUDED.sub(" ", text)
    else:
        excluded, positive_text = _NOTHING_EXCLUDED, text
    hints = hint_words(text)
    idle_hints = hints if positive_text is text else hint_words(positive_text)
    idle = _idle_characters(positive_text) if not _IDLE_HINTS.isdisjoint(idle_hints) else _NO_CHARACTERS
    filler = _filler_terms(tokenizer)
    surface = {}
    words = []
    content = []
    for term, start, end in tokenizer.tokens(positive_text):
        surface[term] = positive_text[start:end]
        if term not in excluded:
            words.append(term)
            if term not in filler and start not in idle:
                content.append(term)
    context_text = " ".join(context.split()) if context else ""
    if content:
        words = content
    elif context_text and tokenizer.terms(context_text):
        words = []  # filler only ("and who's going?"), after a question: the earlier question says what is asked
    terms = [WeightedTerm(w, 1.0, "query") for w in words]
    if synonyms is not None and words:
        terms.extend(_expansions(words, synonyms))
    if context_text:
        # A follow-up with no words of its own ("and when?", "who's going?") is asked with the earlier question's
        # words in full.
        weight = CONTEXT_WEIGHT if words else 1.0
        earlier = _context_terms(context_text, {t.term for t in terms} | excluded, tokenizer, weight)
        terms.extend(earlier)
        if synonyms is not None:  # the earlier words' synonyms, at the synonym share of their weight
            present = {t.term for t in terms} | excluded
            extra = _expansions([t.term for t in earlier], synonyms)
            terms.extend(
                WeightedTerm(t.term, t.weight * weight, t.origin, t.source) for t in extra if t.term not in present
            )
    return ParsedQuery(text, tuple(terms), phrases, excluded, _answer_type(text, hints), surface, context_text or None)


def hint_words(text: str) -> list[str]:
    """The runs of letters a case-insensitive pattern of ASCII words can match in ``text``, as lowercase ASCII.

    A match of such a pattern's word (``\\bplace\\b``) is one of these runs: each character a pattern letter matches
    becomes that letter (``_PATTERN_FOLDS``, then ``str.lower``), and no character outside ``\\w`` becomes one. So a
    question none of whose runs is among a pattern's words cannot match it, and the pattern need not be run.
    """
    return _ASCII_LETTERS.findall((text if text.isascii() else text.translate(_PATTERN_FOLDS)).lower())


_NOTHING_EXCLUDED: frozenset[str] = frozenset()
_NO_CHARACTERS: frozenset[int] = frozenset()


def _phrases(text: str, tokenizer: Tokenizer) -> tuple[tuple[str, ...], ...]:
    """The quoted phrases of ``text`` of more than one term."""
    phrases = []
    for match in _QUOTED.finditer(text):
        phrase = tuple(tokenizer.terms(match.group(1)))
        if len(phrase) > 1:
            phrases.append(phrase)
    return tuple(phrases)


def _idle_characters(text: str) -> set[int]:
    """Where in ``text`` the phrases that say nothing of what is asked are ("taking place", "I want")."""
    return {start for pattern in _IDLE for match in pattern.finditer(text) for start in range(*match.span())}


def _answer_type(text: str, hints: list[str]) -> str | None:
    """The type of answer ``text`` asks for (see _QUESTION_WORD); ``hints`` are its ``hint_words``."""
    match = _QUESTION_WORD.match(text)
    if match:
        return match.lastgroup
    if not _PEOPLE_HINTS.isdisjoint(hints) and _BY_PEOPLE_NOUN.match(text):
        return "person"
    return None


_FOLLOW_UP_START = re.compile(
    r"^\W*(?:and|but|also|so|then|what\s+about|how\s+about|and\s+what\s+about)\b", re.IGNORECASE
)
_BACK_REFERENCE = re.compile(
    r"\b(?:they|them|it|he|him|she|this|that|these|those|there|the\s+same)\b",  # not "their": "the leaders' call"
    re.IGNORECASE,
)
FOLLOW_UP_MAX_WORDS = 1  # a question of at most this many content words ("when?", "the price?") leans on the last


def is_follow_up(text: str, tokenizer: Tokenizer) -> bool:
    """Whether ``text`` reads as a follow-up to an earlier question rather than a question of its own.

    It starts like one ("and …", "what about …"), points back ("they", "it", "that", "there"), or is too short
    to stand alone. The front ends use it to decide whether to pass the conversation's last question as
    ``context``.
    """
    if _FOLLOW_UP_START.search(text) or _BACK_REFERENCE.search(_QUOTED.sub(" ", text)):
        return True
    filler = _filler_terms(tokenizer)
    return len([term for term in tokenizer.terms(text) if term not in filler]) <= FOLLOW_UP_MAX_WORDS


def _context_terms(context: str, present: set[str], tokenizer: Tokenizer, weight: float) -> list[WeightedTerm]:
    """The earlier question's content words the follow-up does not already have, each once at ``weight``."""
    text = _EXCLUDED.sub(" ", context) if "-" in context else context
    if not _IDLE_HINTS.isdisjoint(hint_words(text)):
        for pattern in _IDLE:
            text = pattern.sub(" ", text)
    words = tokenizer.terms(text)
    filler = _filler_terms(tokenizer)
    content = [w for w in words if w not in filler] or words
    return [WeightedTerm(w, weight, "context", context) for w in dict.fromkeys(content) if w not in present]


_filler_cache: dict[int, frozenset[str]] = {}


def _filler_terms(tokenizer: Tokenizer) -> frozenset[str]:
    key = id(tokenizer)
    if key not in _filler_cache:
        _filler_cache[key] = frozenset(tokenizer.terms(FILLER_WORDS))
    return _filler_cache[key]


def _expansions(words: list[str], synonyms: Synonyms) -> list[WeightedTerm]:
    """Synonym terms not already in the query, each once at its highest weight."""
    found = synonyms.found_in(words)
    if not found:
        return []
    present = set(words)
    best: dict[str, WeightedTerm] = {}
    seen: set[tuple[str, ...]] = set()
    for form, alternatives in found:
        for alternative in alternatives:
            if alternative in seen or set(alternative) <= present:
                continue
            seen.add(alternative)
            weight = SYNONYM_WEIGHT / len(alternative)
            for term in alternative:
                if term not in present and (term not in best or best[term].weight < weight):
                    best[term] = WeightedTerm(term, weight, "synonym", " ".join(form))
    return list(best.values())
