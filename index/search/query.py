"""Query analysis: what a question asks for, before any scoring.

- Quoted phrases (``"rare earth"``) must appear as adjacent terms in a passage.
- ``-term`` excludes passages containing that term.
- Question words and stopwords are dropped by the tokenizer; conversational
  filler ("tell me", "please", "explain") is dropped too when other words remain.
- Synonyms (a small bundled file plus the user's) add the other forms of a
  word or phrase to the query at half weight.
- The question word decides an expected answer type (who -> a person,
  when -> a date, where -> a place, how many/much -> a number), used by the
  ranker as a mild boost.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from corpusbot.index.errors import CorpusbotError
from corpusbot.index.text.tokenizer import Tokenizer

SYNONYM_WEIGHT = 0.5

_QUOTED = re.compile(r"[\"“”]([^\"“”]+)[\"“”]")
_EXCLUDED = re.compile(r"(?:(?<=\s)|^)-([^\W_][\w'’.]*)")
# Conversational filler, dropped from a question when other words remain (compared after stemming).
FILLER_WORDS = (
    "tell please know explain describe information info anything something thing things want wonder anyone "
    "somebody anybody give show find many much"
)
_ANSWER_TYPES = (
    ("person", re.compile(r"^\s*(?:who|whom|whose)\b", re.IGNORECASE)),
    ("number", re.compile(r"^\s*how\s+(?:many|much|long|far|old|big|large)\b", re.IGNORECASE)),
    (
        "date",
        re.compile(
            r"^\s*(?:when\b|what\s+(?:time|date|day|year|month)\b|which\s+(?:day|date|year|month)\b)", re.IGNORECASE
        ),
    ),
    ("place", re.compile(r"^\s*where\b", re.IGNORECASE)),
)


@dataclass(frozen=True)
class WeightedTerm:
    term: str
    weight: float
    origin: str  # "query", "synonym" (which word it came from is in `source`)
    source: str = ""


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    terms: tuple[WeightedTerm, ...]  # in query order; a repeated word appears twice
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: frozenset[str] = frozenset()
    answer_type: str | None = None
    surface: dict[str, str] = field(default_factory=dict)  # term -> the word the user typed

    @property
    def query_terms(self) -> tuple[str, ...]:
        return tuple(t.term for t in self.terms if t.origin == "query")


class Synonyms:
    """Groups of equivalent words/phrases, keyed by their token sequences."""

    def __init__(self, groups: Iterable[list[tuple[str, ...]]] = ()) -> None:
        self._alternatives: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        for group in groups:
            for form in group:
                self._alternatives.setdefault(form, set()).update(other for other in group if other != form)
        self.longest = max((len(form) for form in self._alternatives), default=0)

    def alternatives(self, form: tuple[str, ...]) -> set[tuple[str, ...]]:
        return self._alternatives.get(form, set())

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
        for text in texts:
            for line in text.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                forms = {tuple(tokenizer.terms(part)) for part in line.split(",")}
                forms.discard(())
                if len(forms) > 1:
                    groups.append(sorted(forms))
        return cls(groups)


def parse_query(text: str, tokenizer: Tokenizer, synonyms: Synonyms | None = None) -> ParsedQuery:
    phrases = []
    for match in _QUOTED.finditer(text):
        phrase = tuple(tokenizer.terms(match.group(1)))
        if len(phrase) > 1:
            phrases.append(phrase)
    excluded = frozenset(term for match in _EXCLUDED.finditer(text) for term in tokenizer.terms(match.group(1)))
    positive_text = _EXCLUDED.sub(" ", text)
    tokens = tokenizer.tokens(positive_text)
    surface = {t.term: positive_text[t.start : t.end] for t in tokens}
    words = [t.term for t in tokens if t.term not in excluded]
    filler = _filler_terms(tokenizer)
    content = [w for w in words if w not in filler]
    if content:
        words = content
    terms = [WeightedTerm(w, 1.0, "query") for w in words]
    if synonyms is not None:
        terms.extend(_expansions(words, synonyms))
    answer_type = next((name for name, pattern in _ANSWER_TYPES if pattern.search(text)), None)
    return ParsedQuery(text, tuple(terms), tuple(phrases), excluded, answer_type, surface)


_filler_cache: dict[int, frozenset[str]] = {}


def _filler_terms(tokenizer: Tokenizer) -> frozenset[str]:
    key = id(tokenizer)
    if key not in _filler_cache:
        _filler_cache[key] = frozenset(tokenizer.terms(FILLER_WORDS))
    return _filler_cache[key]


def _expansions(words: list[str], synonyms: Synonyms) -> list[WeightedTerm]:
    """Synonym terms not already in the query, each once at its highest weight."""
    present = set(words)
    best: dict[str, WeightedTerm] = {}
    seen: set[tuple[str, ...]] = set()
    for size in range(1, synonyms.longest + 1):
        for start in range(len(words) - size + 1):
            form = tuple(words[start : start + size])
            for alternative in sorted(synonyms.alternatives(form)):
                if alternative in seen or set(alternative) <= present:
                    continue
                seen.add(alternative)
                weight = SYNONYM_WEIGHT / len(alternative)
                for term in alternative:
                    if term not in present and (term not in best or best[term].weight < weight):
                        best[term] = WeightedTerm(term, weight, "synonym", " ".join(form))
    return list(best.values())
