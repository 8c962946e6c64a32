"""Questions about an article itself rather than its text: its link, source, author, date or title.

The reader keeps such facts out of the passages (an ``Original article: URL``
line, front matter and HTML meta become the article's metadata), so no passage
can answer "link to the original article" or "who wrote it". This module
recognises those questions and says which fields they ask for and what is left
of the question to find the article by ("the delegation story" -> "delegation").

Words that are unambiguous ("link", "url", "author", "byline", "published",
"headline") are enough on their own. Words with everyday meanings ("source",
"title", "wrote", "original", "posted") count only next to a word naming an
article ("article", "story", "piece", "it", "this", …), so "who wrote Hamlet?"
or "the source of rare earths" stay ordinary questions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpusbot.index.search.query import hint_words

FIELDS = ("url", "source", "author", "published", "title")  # the order they are shown in

_ARTICLE_WORDS = r"article|articles|story|stories|piece|report|post|item|news|it|this|that"
_ARTICLE = re.compile(rf"\b(?:{_ARTICLE_WORDS})\b", re.IGNORECASE)
_ALWAYS = {
    "url": re.compile(r"\b(?:links?|urls?|permalink|web\s*address)\b", re.IGNORECASE),
    "author": re.compile(r"\b(?:authors?|authored|byline|written\s+by)\b", re.IGNORECASE),
    "published": re.compile(r"\b(?:published|publish|publication\s+date|date\s+of\s+publication)\b", re.IGNORECASE),
    "source": re.compile(
        r"\b(?:which|what)\s+(?:outlet|newspaper|paper|publication|site|website)\b|\bsources?\s+(?:for|on)\b",
        re.IGNORECASE,
    ),
    "title": re.compile(r"\bheadlines?\b", re.IGNORECASE),
}
_WITH_AN_ARTICLE = {
    "url": re.compile(r"\boriginal\b", re.IGNORECASE),
    "author": re.compile(r"\b(?:wrote|writer|reporter|journalist)\b", re.IGNORECASE),
    "published": re.compile(r"\b(?:posted|dated|date)\b", re.IGNORECASE),
    "source": re.compile(r"\b(?:sources?|outlet)\b", re.IGNORECASE),
    "title": re.compile(r"\b(?:title|titled|called)\b", re.IGNORECASE),
}
# For each group of patterns, a word every match of one of them has (see ``hint_words``): a question with none of a
# group's words matches none of its patterns, so most questions are told apart without running any.
_ALWAYS_HINTS = frozenset(
    "link links url urls permalink web webaddress author authors authored byline written published publish "
    "publication outlet newspaper paper site website sources source headline headlines".split()
)
_WITH_AN_ARTICLE_HINTS = frozenset(
    "original wrote writer reporter journalist posted dated date sources source outlet title titled called".split()
)
_ARTICLE_HINTS = frozenset(_ARTICLE_WORDS.split("|"))
_WHERE = re.compile(r"\bwhere\b|\bin\s+(?:what|which)\b", re.IGNORECASE)
# Removed from the question to leave what it says about the article (the rest the articles are found by).
_ASKING_WORDS = re.compile(
    r"\b(?:links?|urls?|permalink|web\s*address|original|authors?|authored|byline|written|wrote|writer|reporter|"
    r"journalist|published|publish|publication|posted|dated|date|sources?|outlet|newspaper|paper|site|website|"
    r"titled|title|headlines?|called|who|when|where|what's|whats|what|which|is|was|were|the|of|for|to|a|an|"
    rf"give|me|please|pls|send|share|{_ARTICLE_WORDS})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MetadataQuestion:
    fields: tuple[str, ...]  # of FIELDS, in that order
    rest: str  # the question without its asking words: what identifies the article ("" when nothing does)


def parse_metadata_question(question: str) -> MetadataQuestion | None:
    """The article fields ``question`` asks for and what is left to find the article by; None for other questions."""
    words = hint_words(question)
    if _ALWAYS_HINTS.isdisjoint(words) and (
        _WITH_AN_ARTICLE_HINTS.isdisjoint(words) or _ARTICLE_HINTS.isdisjoint(words)
    ):
        return None
    asked = {name for name, pattern in _ALWAYS.items() if pattern.search(question)}
    if _ARTICLE.search(question):
        asked |= {name for name, pattern in _WITH_AN_ARTICLE.items() if pattern.search(question)}
    if "published" in asked and _WHERE.search(question):  # "where was it published?" asks for the source
        asked = (asked - {"published"}) | {"source"}
    if not asked:
        return None
    rest = " ".join(_ASKING_WORDS.sub(" ", question).replace("?", " ").split())
    return MetadataQuestion(tuple(name for name in FIELDS if name in asked), rest)
