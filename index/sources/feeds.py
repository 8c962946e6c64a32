"""Feeds: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed (the json module: feedparser does not read it).

A feed gives the links of its entries, each fetched as an article page, with the entry's
title, author and date (used when the page has none).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

from corpusbot.index.sources.dates import iso_utc
from corpusbot.index.sources.urls import is_web_url

_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
_XML_FEED_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>]*>|<\?[^>]*>)\s*)*<(?:rss|feed|rdf:RDF)\b",
    re.DOTALL | re.IGNORECASE,
)
_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml"}
)


class FeedError(Exception):
    """A feed that cannot be read; the message is the reason shown for the source."""


@dataclass(frozen=True)
class FeedEntry:
    link: str  # absolute http(s) URL of the entry's page
    title: str | None = None
    published: str | None = None  # ISO 8601 UTC
    author: str | None = None


@dataclass(frozen=True)
class Feed:
    title: str | None
    entries: list[FeedEntry] = field(default_factory=list)


def parse_feed(body: bytes, content_type: str, url: str, max_entries: int | None = None) -> Feed | None:
    """The feed in ``body`` (fetched from ``url``), or None when it is no feed (a web page).

    Only the first ``max_entries`` distinct entries are read (a feed of 100,000 entries costs feedparser's
    parse, not also ours of every entry). Raises ``FeedError`` for a feed that does not parse and yields no entry.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("application/feed+json", "application/json") or body.lstrip()[:1] == b"{":
        return _json_feed(body, url, max_entries)
    looks_like_feed = bool(_XML_FEED_START.match(body[:4096])) or kind in _FEED_TYPES
    if not looks_like_feed:
        return None
    import feedparser

    # bytes, never a str: feedparser fetches a str that looks like a URL itself, past the guard.
    parsed = feedparser.parse(body, response_headers={"content-type": content_type, "content-location": url})
    found = (
        FeedEntry(
            link,
            _text(entry.get("title")),
            # dict.get: feedparser's own get() maps a missing published_parsed to updated_parsed with a warning
            iso_utc(dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")),
            _text(entry.get("author")),
        )
        for entry in parsed.entries
        if (link := _link(url, entry.get("link")))
    )
    entries = _unique(found, max_entries)
    if not entries and parsed.get("bozo"):
        error = parsed.get("bozo_exception")
        raise FeedError(f"malformed feed: {str(error)[:200] or type(error).__name__}")
    return Feed(_text(parsed.feed.get("title")), entries)


def _json_feed(body: bytes, url: str, max_entries: int | None) -> Feed | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise FeedError(f"malformed JSON Feed: {str(error)[:200]}") from None
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith(_JSON_FEED_VERSION):
        raise FeedError('JSON that is no JSON Feed (no https://jsonfeed.org/version/ "version")')
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError('malformed JSON Feed: "items" is not a list')
    return Feed(_text(data.get("title")), _unique(_json_entries(url, items), max_entries))


def _json_entries(url: str, items: list[object]) -> Iterator[FeedEntry]:
    for item in items:
        if not isinstance(item, dict):
            continue
        link = _link(url, item.get("url")) or _link(url, item.get("external_url"))
        if link:
            published = item.get("date_published") or item.get("date_modified")
            yield FeedEntry(link, _text(item.get("title")), iso_utc(published), _json_author(item))


def _json_author(item: dict[str, object]) -> str | None:
    authors = item.get("authors")  # version 1.1; "author" in 1.0
    first = authors[0] if isinstance(authors, list) and authors else item.get("author")
    return _text(first.get("name")) if isinstance(first, dict) else None


def _link(base: str, value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    link = urljoin(base, value.strip())
    return link if is_web_url(link) else None  # (no control characters: links are printed in terminals)


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text[:500] or None


def _unique(entries: Iterable[FeedEntry], limit: int | None) -> list[FeedEntry]:
    """The first entry of each link, at most ``limit`` of them (read no further than needed)."""
    seen: dict[str, FeedEntry] = {}
    for entry in entries:
        if limit is not None and len(seen) >= limit:
            break
        seen.setdefault(entry.link, entry)
    return list(seen.values())
