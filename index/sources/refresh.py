"""Fetch the remembered web sources for one indexing run; what comes back is articles for ``changes``.

Each source URL is fetched conditionally (its stored ETag / Last-Modified; not on a full
rebuild): a 304 keeps what the source gave before. A feed's entries whose link the source gave
before are kept without a request (news articles are written once); new entries' pages are
fetched and extracted. A source that fails (any reason: refused, timeout, HTTP error, too
large, malformed) is reported with the reason, and everything it gave before is kept.

An article is indexed once however many sources or URLs give it: its key is its canonical URL
(the page's ``rel=canonical`` / ``og:url``, else the URL it was fetched from), and an article
whose text is the same as another's (SHA-256) is that other article.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from corpusbot.index.engine import store
from corpusbot.index.models import Article
from corpusbot.index.sources import registry
from corpusbot.index.sources.feeds import Feed, FeedEntry, FeedError, parse_feed
from corpusbot.index.sources.fetch import Fetcher, FetchError, FetchOptions
from corpusbot.index.sources.pages import PageError, extract_page
from corpusbot.index.sources.urls import normalize_url

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class FetchedArticle:
    """An article of a web source for this run: new content, or (``article`` None) the indexed one kept."""

    key: str  # its canonical URL: the ``files`` key and the article's path
    article: Article | None


@dataclass(frozen=True)
class SourceStatus:
    """How a source (or a feed entry's page) did in this run, as the ``sources`` table stores it."""

    url: str
    kind: str
    parent: str | None
    etag: str | None
    last_modified: str | None
    checked_at: str
    last_ok_at: str | None
    failing_since: str | None
    error: str | None


@dataclass
class Refresh:
    """What fetching the sources gave: articles for the indexer, statuses and items for the registry."""

    articles: list[FetchedArticle] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)
    items: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # source -> link -> (key, text hash)
    forgotten: list[str] = field(default_factory=list)  # failed entry pages whose feed no longer lists them

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(URL, reason) of every source and entry page that failed in this run."""
        return [(s.url, s.error) for s in self.statuses if s.error is not None]


@dataclass
class _RootResult:
    url: str
    kind: str  # feed or page ("page" until known)
    error: str | None = None
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    feed: Feed | None = None
    page: Article | None = None


def refresh_sources(
    db: store.Reader, urls: list[str], options: FetchOptions | None = None, *, full: bool = False
) -> Refresh:
    """Fetch ``urls`` (the remembered web sources) and what their feeds link to; never raises for a source."""
    state = registry.load(db)
    with Fetcher(options) as fetcher:
        run = _Run(state, full, fetcher.options.max_entries)
        workers = fetcher.options.workers
        roots = _parallel(workers, urls, lambda url: _fetch_root(fetcher, url, state.sources.get(url), full))
        for root in roots:
            run.add_root(root)
        pending = run.entries_to_fetch()
        pages = _parallel(workers, [link for link, _ in pending], lambda link: _fetch_entry(fetcher, link))
        for (link, entry), page in zip(pending, pages, strict=True):
            run.add_entry(link, entry, page)
    return run.finish(roots)


def _parallel(workers: int, items: list[T], work: Callable[[T], R]) -> list[R]:
    """``work`` over ``items`` in up to ``workers`` threads, results in order.

    Daemon threads, not a ``ThreadPoolExecutor``: Ctrl-C stops the run at once instead of waiting for the
    requests in flight (up to their timeouts); an abandoned request ends with its timeout.
    """
    if len(items) <= 1:
        return [work(item) for item in items]
    results: list[R | None] = [None] * len(items)
    errors: list[BaseException] = []
    taken = iter(range(len(items)))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                index = next(taken, None)
            if index is None or errors:
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # handed to the caller's thread
                errors.append(error)
                return

    threads = [threading.Thread(target=run, daemon=True) for _ in range(max(1, min(workers, len(items))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]  # every index was filled


def _fetch_root(fetcher: Fetcher, url: str, stored: registry.SourceRow | None, full: bool) -> _RootResult:
    kind = stored.kind if stored and stored.kind in ("feed", "page") else "page"
    conditional = stored is not None and not full
    try:
        fetched = fetcher.fetch(
            url,
            etag=stored.etag if conditional and stored else None,
            last_modified=stored.last_modified if conditional and stored else None,
        )
    except FetchError as error:
        return _RootResult(url, kind, error=str(error))
    except Exception as error:
        return _RootResult(url, kind, error=_unexpected(error))
    if fetched.not_modified:
        assert stored is not None
        return _RootResult(url, kind, not_modified=True, etag=stored.etag, last_modified=stored.last_modified)
    result = _RootResult(url, kind, etag=fetched.etag, last_modified=fetched.last_modified)
    try:
        result.feed = parse_feed(fetched.body, fetched.content_type, fetched.url, fetcher.options.max_entries)
        if result.feed is not None:
            result.kind = "feed"
        else:
            result.kind = "page"
            result.page = extract_page(fetched.body, fetched.content_type, fetched.url)
    except FeedError as error:
        result.kind, result.error = "feed", str(error)
    except PageError as error:
        result.error = str(error)
    except Exception as error:  # a parser's failure on hostile input fails this source, never the run
        result.error = _unexpected(error)
    return result


def _fetch_entry(fetcher: Fetcher, link: str) -> Article | str:
    """The article on a feed entry's page, or the reason it could not be had."""
    try:
        fetched = fetcher.fetch(link)
        return extract_page(fetched.body, fetched.content_type, fetched.url)
    except (FetchError, PageError) as error:
        return str(error)
    except Exception as error:
        return _unexpected(error)


def _unexpected(error: Exception) -> str:
    return f"could not be read ({type(error).__name__}: {str(error)[:200]})"


class _Run:
    """Gathers one run's articles, deduplicated, and what the registry will store."""

    def __init__(self, state: registry.RegistryState, full: bool, max_entries: int) -> None:
        self.state = state
        self.full = full
        self.max_entries = max_entries  # per feed and run: a feed of a million entries is not a million requests
        self.checked_at = registry.now()
        self.refresh = Refresh()
        self.new: dict[str, int] = {}  # key -> position in refresh.articles
        self.kept: set[str] = set()
        self.by_text: dict[str, str] = {}  # text hash -> key, of stored and new articles
        self.known_links: dict[str, tuple[str, str]] = {}  # link -> (key, text hash), of every source
        for items in state.items.values():
            for link, (key, text_sha256) in items.items():
                self.by_text.setdefault(text_sha256, key)
                self.known_links.setdefault(link, (key, text_sha256))
        self.entry_feeds: dict[str, list[tuple[str, FeedEntry]]] = {}  # link -> (feed, entry) for each feed giving it

    def add_root(self, root: _RootResult) -> None:
        previous = self.state.items.get(root.url, {})
        if root.error is not None or root.not_modified:
            self.refresh.items[root.url] = dict(previous)
            for key, _ in previous.values():
                self._keep(key)
            if root.not_modified:
                self._retry_failed_entries(root.url, None)
            return
        if root.page is not None:
            key, text_sha256 = self._add_article(root.page)
            self.refresh.items[root.url] = {root.url: (key, text_sha256)}
            return
        assert root.feed is not None
        self.refresh.items[root.url] = dict(previous)  # entries stay after they leave the feed
        for key, _ in previous.values():
            self._keep(key)
        listed = root.feed.entries[: self.max_entries]
        for entry in listed:
            known = previous.get(entry.link) or self.known_links.get(entry.link)
            if known is not None and not self.full:  # indexed before, from this feed or another source
                self.refresh.items[root.url][entry.link] = known
                self._keep(known[0])
                continue
            self.entry_feeds.setdefault(entry.link, []).append((root.url, entry))
        self._retry_failed_entries(root.url, {entry.link for entry in listed})

    def _retry_failed_entries(self, feed: str, listed: set[str] | None) -> None:
        """Entries of ``feed`` whose page failed before are tried again while the feed lists them (``listed``;
        None: the feed is unchanged, a 304), at most ``max_entries`` per feed and run with its new entries; one
        the feed no longer lists is forgotten (it gave nothing to keep), so a feed rotating broken links cannot
        pile up retries run after run."""
        given = self.state.items.get(feed, {})
        budget = self.max_entries - sum(1 for feeds in self.entry_feeds.values() if any(f == feed for f, _ in feeds))
        for row in self.state.sources.values():
            if row.kind != "entry" or row.parent != feed or row.url in given or row.url in self.entry_feeds:
                continue
            if listed is not None and row.url not in listed:
                self.refresh.forgotten.append(row.url)
            elif budget > 0:
                self.entry_feeds[row.url] = [(feed, FeedEntry(row.url))]
                budget -= 1

    def entries_to_fetch(self) -> list[tuple[str, FeedEntry]]:
        """(link, the first feed entry with it) of each entry page to fetch, in feed order."""
        return [(link, feeds[0][1]) for link, feeds in self.entry_feeds.items()]

    def add_entry(self, link: str, entry: FeedEntry, page: Article | str) -> None:
        feeds = [feed for feed, _ in self.entry_feeds[link]]
        if isinstance(page, str):
            self.refresh.statuses.append(
                SourceStatus(
                    link,
                    "entry",
                    feeds[0],
                    None,
                    None,
                    self.checked_at,
                    None,
                    self._failing_since(link, page),
                    page,
                )
            )
            return
        article = replace(
            page,
            # the feed's date is the machine-readable one the publisher chose for the entry
            published=entry.published or page.published,
            title=entry.title or page.title,
            author=page.author or entry.author,
        )
        key, text_sha256 = self._add_article(article)
        for feed in feeds:
            self.refresh.items[feed][link] = (key, text_sha256)
        self.refresh.statuses.append(
            SourceStatus(link, "entry", feeds[0], None, None, self.checked_at, self.checked_at, None, None)
        )

    def finish(self, roots: Iterable[_RootResult]) -> Refresh:
        for root in roots:
            stored = self.state.sources.get(root.url)
            ok = root.error is None
            self.refresh.statuses.append(
                SourceStatus(
                    root.url,
                    root.kind,
                    None,
                    root.etag if ok else (stored.etag if stored else None),
                    root.last_modified if ok else (stored.last_modified if stored else None),
                    self.checked_at,
                    self.checked_at if ok else (stored.last_ok_at if stored else None),
                    None if ok else self._failing_since(root.url, root.error),
                    root.error,
                )
            )
        # A key kept for one source and given new content by another is the new content.
        self.refresh.articles = [a for a in self.refresh.articles if a.article is not None or a.key not in self.new]
        return self.refresh

    def _failing_since(self, url: str, error: str | None) -> str | None:
        """Since when ``url`` fails: the stored time if it failed before, else now; None when it works."""
        if error is None:
            return None
        stored = self.state.sources.get(url)
        return (stored.failing_since if stored else None) or self.checked_at

    def _add_article(self, article: Article) -> tuple[str, str]:
        """Add a new article unless its key or text is already there; the key and text hash it goes by."""
        key = normalize_url(article.path or article.url or "")
        text_sha256 = hashlib.sha256(article.text.encode("utf-8")).hexdigest()
        if key in self.new:
            return key, text_sha256
        same_text = self.by_text.get(text_sha256)
        if same_text is not None and same_text != key:
            self._keep(same_text)
            return same_text, text_sha256
        self.by_text[text_sha256] = key
        self.kept.discard(key)
        self.new[key] = len(self.refresh.articles)
        self.refresh.articles.append(FetchedArticle(key, article))
        return key, text_sha256

    def _keep(self, key: str) -> None:
        if key not in self.new and key not in self.kept:
            self.kept.add(key)
            self.refresh.articles.append(FetchedArticle(key, None))
