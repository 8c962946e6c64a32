"""Small typed records shared by the indexer, the search service and its front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class Article:
    """One article as read from the corpus, before it is split into passages."""

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    published: str | None = None
    author: str | None = None
    path: str | None = None


class Span(NamedTuple):
    """A half-open character range ``[start, end)`` into some text."""

    start: int
    end: int


class Token(NamedTuple):
    """A term produced by the tokenizer and where it came from in the text."""

    term: str
    start: int
    end: int


@dataclass(frozen=True)
class ArticleInfo:
    """What a citation needs to know about an article."""

    id: str
    title: str
    url: str | None
    source: str | None
    published: str | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "source": self.source,
            "published": self.published,
        }


@dataclass(frozen=True)
class Passage:
    """A stored passage: ``ordinal`` is its 1-based position (¶n) in the article."""

    id: int
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str


class Contribution(NamedTuple):
    """One query term's share of a passage's score (for ``--explain``)."""

    term: str
    weight: float  # 1 for the user's words, less for synonyms
    idf: float
    tf: int
    score: float
    origin: str = "query"  # "query", "synonym" or "context" (a follow-up's earlier question)

    def to_json(self) -> dict[str, object]:
        return self._asdict()


@dataclass(frozen=True)
class Hit:
    """One ranked passage in an answer."""

    rank: int
    score: float
    passage: Passage
    article: ArticleInfo
    matches: tuple[Span, ...] = ()
    highlight: Span | None = None
    duplicates: int = 0
    bm25: float = 0.0  # the plain BM25Okapi score before answer-type boosts
    explanation: tuple[Contribution, ...] = ()
    boosts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "score": self.score,
            "text": self.passage.text,
            "passage": self.passage.ordinal,
            "passage_id": self.passage.id,
            "article": self.article.to_json(),
            "highlight": list(self.highlight) if self.highlight else None,
            "matches": [list(span) for span in self.matches],
            "duplicates": self.duplicates,
            "bm25": self.bm25,
            **(
                {"explain": [c.to_json() for c in self.explanation], "boosts": list(self.boosts)}
                if self.explanation
                else {}
            ),
        }


@dataclass(frozen=True)
class DirectAnswer:
    """A one-line extractive answer to a who/when/where/how-many question: ``span`` of the hit's passage text."""

    text: str
    kind: str  # the answer type: "person", "date", "place" or "number"
    hit: Hit
    span: Span

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "type": self.kind,
            "rank": self.hit.rank,
            "passage": self.hit.passage.ordinal,
            "passage_id": self.hit.passage.id,
            "span": list(self.span),
            "article": self.hit.article.to_json(),
        }


@dataclass(frozen=True)
class AboutArticle:
    """What a question asked about an article itself (its link, source, author, date, title), from its metadata."""

    article: ArticleInfo
    author: str | None
    asked: tuple[str, ...]  # of "url", "source", "author", "published", "title", in that order

    def value(self, name: str) -> str | None:
        return self.author if name == "author" else getattr(self.article, name)

    def to_json(self) -> dict[str, object]:
        return {
            "asked": list(self.asked),
            "values": {name: self.value(name) for name in self.asked},
            "article": {**self.article.to_json(), "author": self.author},
        }


@dataclass(frozen=True)
class Answer:
    """The result of a question: ranked hits plus what the query analysis found."""

    query: str
    hits: tuple[Hit, ...]
    terms: tuple[str, ...]
    unknown_terms: tuple[str, ...] = ()
    confident: bool = True
    offset: int = 0
    has_more: bool = False
    notices: tuple[str, ...] = field(default=())
    answer: DirectAnswer | None = None  # who/when/where/how-many: the answer line, None when unsure
    about: tuple[AboutArticle, ...] = ()  # questions about the articles themselves (link, author, date …)
    context: str | None = None  # the earlier question a follow-up was read with

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "results": [hit.to_json() for hit in self.hits],
            "confident": self.confident,
            "terms": list(self.terms),
            "unknown_terms": list(self.unknown_terms),
            "offset": self.offset,
            "has_more": self.has_more,
            "notices": list(self.notices),
            "answer": self.answer.to_json() if self.answer else None,
            "about": [item.to_json() for item in self.about],
            "context": self.context,
        }


@dataclass(frozen=True)
class ArticleMatch:
    """An article found by ``find_articles``: why it matched and how well."""

    article: ArticleInfo
    score: float
    title_match: bool
    passage_count: int

    def to_json(self) -> dict[str, object]:
        return {
            **self.article.to_json(),
            "score": self.score,
            "title_match": self.title_match,
            "passages": self.passage_count,
        }


@dataclass(frozen=True)
class Stats:
    """What the index holds."""

    articles: int
    passages: int
    vocabulary: int
    built_at: str | None
    build_seconds: float | None
    db_path: str
    db_bytes: int
    corpus_paths: tuple[str, ...]
    schema_version: int
    tokenizer: str
    bm25: dict[str, float]

    def to_json(self) -> dict[str, object]:
        return {
            "articles": self.articles,
            "passages": self.passages,
            "vocabulary": self.vocabulary,
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "db_path": self.db_path,
            "db_bytes": self.db_bytes,
            "corpus_paths": list(self.corpus_paths),
            "schema_version": self.schema_version,
            "tokenizer": self.tokenizer,
            "bm25": self.bm25,
        }
