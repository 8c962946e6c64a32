"""`index_corpus` with web sources: what gets indexed, what each failure reports, and that nothing is lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from corpusbot.index import index_corpus
from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.sources import registry
from tests.index.sources.conftest import options
from tests.support.feed_server import FeedServer

FEEDS = ["feeds/rss.xml", "feeds/atom.xml", "feeds/feed.json", "feeds/rss091.xml", "feeds/wrong-encoding.latin1.xml"]


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def articles(db: Path) -> dict[str, tuple]:
    """url -> (title, published, author, source) of every indexed article."""
    return {r[0]: r[1:] for r in rows(db, "SELECT url, title, published, author, source FROM articles")}


def test_feeds_of_every_format_are_indexed_once_each_with_dates(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    summary = index_corpus(db, [web.url(f) for f in FEEDS], fetch=options())
    found = articles(db)
    assert sorted(found) == sorted(
        web.url(f"news/2025/06/{name}.html")
        for name in ("port-strike-ends", "rare-earth-licences", "grain-corridor", "cafe-prices")
    )  # the syndicated copy (canonical) and the mirror (same text) are the originals
    assert found[web.url("news/2025/06/port-strike-ends.html")][:3] == (
        "Port strike ends after nine days as dock workers accept pay offer",
        "2025-06-09T08:15:00Z",
        "Maren Holt",
    )
    assert found[web.url("news/2025/06/cafe-prices.html")][1:3] == ("2025-06-13T08:00:00Z", "Élodie Marchand")
    assert all(published for _, published, _, _ in found.values())
    assert summary.failed_sources == [] and len(summary.added) == 4
    # every page was fetched once, however many feeds link to it
    assert len(web.hits("news/2025/06/rare-earth-licences.html")) == 1
    assert len(web.hits("news/2025/06/grain-corridor.html")) == 1
    text = rows(db, "SELECT text FROM articles")
    assert not any("cookies" in t or "Most read" in t for (t,) in text)


def test_a_run_where_nothing_changed_costs_only_conditional_requests(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    index_corpus(db, [web.url(f) for f in FEEDS] + [web.url("news/2025/06/port-strike-ends.html")], fetch=options())
    generation = rows(db, "SELECT value FROM meta WHERE key = 'generation'")
    before = len(web.requests)
    summary = index_corpus(db, fetch=options())  # the remembered sources
    later = web.requests[before:]
    assert sorted(r.path for r in later) == sorted(
        ["/robots.txt", *(f"/{f}" for f in FEEDS), "/news/2025/06/port-strike-ends.html"]
    )
    assert all("if-none-match" in r.headers for r in later if r.path != "/robots.txt")
    assert summary.added == summary.updated == summary.removed == [] and len(summary.unchanged) == 4
    assert rows(db, "SELECT value FROM meta WHERE key = 'generation'") == generation  # nothing rewritten


def test_failures_are_reported_per_source_and_never_abort_the_run(
    tmp_path: Path, web: FeedServer, other_web: FeedServer
) -> None:
    db = tmp_path / "web.db"
    sources = [
        web.url("feeds/rss.xml"),
        web.url("feeds/malformed.xml"),
        web.url("feeds/private.xml"),
        web.url("loop/a"),
        web.url("huge.xml"),
        web.url("hang"),
        web.url("missing.xml"),
        other_web.url("closed"),
    ]
    summary = index_corpus(db, sources, fetch=options(read_timeout=0.3, max_bytes=128 * 1024))
    reasons = dict(summary.failed_sources)
    assert "malformed feed" in reasons[web.url("feeds/malformed.xml")]
    assert "robots.txt" in reasons[web.url("private/memo.html")]  # the entry's page, not the feed
    assert "too many redirects" in reasons[web.url("loop/a")]
    assert "too large" in reasons[web.url("huge.xml")]
    assert "timed out" in reasons[web.url("hang")]
    assert "HTTP 404" in reasons[web.url("missing.xml")]
    assert "Retry-After 3600s" in reasons[other_web.url("closed")]
    assert len(reasons) == 7
    assert len(articles(db)) == 2  # the working feed's articles are indexed all the same
    failing = {row.url: row for row in registry.failing_sources(db)}
    assert set(failing) == set(reasons)
    assert failing[web.url("private/memo.html")].kind == "entry"
    assert failing[web.url("private/memo.html")].parent == web.url("feeds/private.xml")
    assert all(row.failing_since and row.last_error for row in failing.values())


def test_a_source_that_starts_failing_keeps_its_articles_and_its_first_failure_time(
    tmp_path: Path, web: FeedServer
) -> None:
    db = tmp_path / "web.db"
    feed = web.url("feeds/rss.xml")
    index_corpus(db, [feed], fetch=options())
    before = articles(db)
    assert len(before) == 2
    web.set("feeds/rss.xml", b"server trouble", "text/plain", status=500)
    first = index_corpus(db, fetch=options())
    assert first.failed_sources == [(feed, "HTTP 500 Internal Server Error")]
    assert articles(db) == before and first.removed == []
    (row,) = registry.failing_sources(db)
    since = row.failing_since
    index_corpus(db, fetch=options())
    index_corpus(db, full=True, fetch=options())  # even a full rebuild keeps them
    assert articles(db) == before
    (row,) = registry.failing_sources(db)
    assert row.failing_since == since and row.url == feed
    web.routes.pop("/feeds/rss.xml")
    assert index_corpus(db, fetch=options()).failed_sources == []
    assert registry.failing_sources(db) == []


def test_entries_that_leave_the_feed_stay_and_new_ones_come(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    index_corpus(db, [web.url("feeds/rss.xml")], fetch=options())
    web.set(
        "feeds/rss.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Business</title>'
        "<item><title>Grain</title><link>{base}/news/2025/06/grain-corridor.html</link>"
        "<pubDate>Thu, 12 Jun 2025 06:00:00 GMT</pubDate></item></channel></rss>",
        "application/rss+xml",
    )
    summary = index_corpus(db, fetch=options())
    assert summary.added == [web.url("news/2025/06/grain-corridor.html")] and summary.removed == []
    assert len(articles(db)) == 3
    assert len(web.hits("news/2025/06/port-strike-ends.html")) == 1  # a known entry is not fetched again


def test_a_changed_page_is_updated(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    url = web.url("story.html")
    body = "<html><head><title>Story</title></head><body><article>{}</article></body></html>"
    web.set("story.html", body.format("<p>" + "The ferry left on time this morning. " * 12 + "</p>"))
    index_corpus(db, [url], fetch=options())
    web.set("story.html", body.format("<p>" + "The ferry was cancelled because of the storm. " * 12 + "</p>"))
    summary = index_corpus(db, fetch=options())
    assert summary.updated == [url]
    (text,) = rows(db, "SELECT text FROM articles")[0]
    assert "cancelled" in text


def test_removing_a_source_from_the_corpus_removes_its_articles(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    index_corpus(db, [web.url("feeds/rss.xml"), web.url("feeds/atom.xml")], fetch=options())
    assert len(articles(db)) == 3
    registry.remove_roots(db, [web.url("feeds/rss.xml")])
    summary = index_corpus(db, fetch=options())
    assert sorted(articles(db)) == [
        web.url("news/2025/06/grain-corridor.html"),
        web.url("news/2025/06/rare-earth-licences.html"),
    ]  # rare earths came through both feeds: the atom feed keeps it
    assert summary.removed == [web.url("news/2025/06/port-strike-ends.html")]
    assert rows(db, "SELECT DISTINCT source FROM source_items") == [(web.url("feeds/atom.xml"),)]


def test_files_and_web_sources_together(tmp_path: Path, web: FeedServer, corpus_dir: Path) -> None:
    (corpus_dir / "local.md").write_text("# Local\n\nA local article about harbour cranes.\n", encoding="utf-8")
    db = tmp_path / "web.db"
    index_corpus(db, [str(corpus_dir), web.url("feeds/atom.xml")], fetch=options())
    assert len(rows(db, "SELECT id FROM articles")) == 3
    summary = index_corpus(db, fetch=options())
    assert summary.corpus_paths == [str(corpus_dir), web.url("feeds/atom.xml")] and len(summary.unchanged) == 3


def test_without_the_allow_list_loopback_sources_are_refused(tmp_path: Path, web: FeedServer) -> None:
    from corpusbot.index.sources.guard import AllowList

    db = tmp_path / "web.db"
    summary = index_corpus(db, [web.url("feeds/rss.xml")], fetch=options(allow=AllowList()))
    ((url, reason),) = summary.failed_sources
    assert url == web.url("feeds/rss.xml") and "not a public address" in reason
    assert web.requests == []


@pytest.mark.parametrize("kill_at", ["refresh", "write"])
def test_a_killed_run_stores_no_validators(tmp_path: Path, web: FeedServer, monkeypatch, kill_at: str) -> None:
    """Validators are written with the index: after a failed run the content is fetched again, not 304'd."""
    from corpusbot.index.indexing import writer

    db = tmp_path / "web.db"
    index_corpus(db)  # the bundled sample: an index exists
    target = writer if kill_at == "write" else registry

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(target, "write_index" if kill_at == "write" else "save", boom)
    with pytest.raises(KeyboardInterrupt):
        index_corpus(db, [web.url("feeds/rss.xml")], fetch=options())
    monkeypatch.undo()
    assert rows(db, "SELECT count(*) FROM sources") == [(0,)]
    summary = index_corpus(db, [web.url("feeds/rss.xml")], fetch=options())
    assert len(summary.added) == 2


def test_a_feed_with_thousands_of_entries_costs_at_most_max_entries_requests(tmp_path: Path, web: FeedServer) -> None:
    items = "".join(f"<item><link>{{base}}/flood/{n}.html</link></item>" for n in range(5000))
    web.set("flood.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>')
    for n in range(5):
        web.set(
            f"flood/{n}.html",
            f"<html><body><article><p>Story number {n} about the harbour.</p></article></body></html>",
        )
    summary = index_corpus(tmp_path / "web.db", [web.url("flood.xml")], fetch=options(max_entries=5))
    assert len(summary.added) == 5 and summary.failed_sources == []
    assert len([r for r in web.requests if r.path.startswith("/flood/")]) == 5


def test_an_entry_known_from_another_source_is_not_fetched_again(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    index_corpus(db, [web.url("feeds/rss.xml")], fetch=options())
    summary = index_corpus(db, [web.url("feeds/rss.xml"), web.url("feeds/atom.xml")], fetch=options())
    assert len(web.hits("news/2025/06/rare-earth-licences.html")) == 1  # rss gave it; atom lists it too
    assert summary.added == [web.url("news/2025/06/grain-corridor.html")]
    keys = rows(db, f"SELECT key FROM source_items WHERE source = '{web.url('feeds/atom.xml')}' ORDER BY key")
    assert keys == [(web.url("news/2025/06/grain-corridor.html"),), (web.url("news/2025/06/rare-earth-licences.html"),)]


def test_a_parser_crash_fails_that_source_only(tmp_path: Path, web: FeedServer, monkeypatch) -> None:
    from corpusbot.index.sources import refresh

    real = refresh.parse_feed

    def crashing(body: bytes, content_type: str, url: str, max_entries: int | None = None):
        if url.endswith("atom.xml"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(body, content_type, url, max_entries)

    monkeypatch.setattr(refresh, "parse_feed", crashing)
    summary = index_corpus(tmp_path / "web.db", [web.url("feeds/atom.xml"), web.url("feeds/rss.xml")], fetch=options())
    assert summary.failed_sources == [
        (web.url("feeds/atom.xml"), "could not be read (RecursionError: maximum recursion depth exceeded)")
    ]
    assert len(summary.added) == 2


def test_a_failed_entry_page_is_tried_again_while_the_feed_is_unchanged(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    web.set("news/2025/06/grain-corridor.html", b"down for maintenance", "text/plain", status=503)
    first = index_corpus(db, [web.url("feeds/atom.xml")], fetch=options())
    assert first.failed_sources == [(web.url("news/2025/06/grain-corridor.html"), "HTTP 503 Service Unavailable")]
    web.routes.pop("/news/2025/06/grain-corridor.html")
    second = index_corpus(db, fetch=options())
    assert web.hits("feeds/atom.xml")[-1].headers.get("if-none-match")  # the feed: a 304
    assert second.added == [web.url("news/2025/06/grain-corridor.html")] and second.failed_sources == []
    assert registry.failing_sources(db) == []
    published = rows(db, f"SELECT published FROM articles WHERE url = '{web.url('news/2025/06/grain-corridor.html')}'")
    assert published == [("2025-06-12T00:00:00Z",)]  # the page's date (the feed's was not at hand)
    third = index_corpus(db, fetch=options())
    assert len(web.hits("news/2025/06/grain-corridor.html")) == 2 and len(third.unchanged) == 2


def test_a_malformed_feed_is_reported_as_a_feed(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    index_corpus(db, [web.url("feeds/malformed.xml")], fetch=options())
    (row,) = registry.failing_sources(db)
    assert row.kind == "feed" and row.last_error.startswith("malformed feed")


def set_schema_version(db: Path, version: int) -> None:
    """Make ``db`` an index of another schema version, as after upgrading corpusbot."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (json.dumps(version),))
    conn.close()


def schema_version(db: Path) -> int:
    return json.loads(rows(db, "SELECT value FROM meta WHERE key = 'schema_version'")[0][0])


ONLY_GRAIN = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Business</title>'
    "<item><title>Grain</title><link>{base}/news/2025/06/grain-corridor.html</link>"
    "<pubDate>Thu, 12 Jun 2025 06:00:00 GMT</pubDate></item></channel></rss>"
)


@pytest.mark.parametrize("then", ["the feed fails", "its entries left the feed"])
def test_replacing_the_index_schema_keeps_web_articles_that_cannot_be_fetched_again(
    tmp_path: Path, web: FeedServer, then: str
) -> None:
    """`corpusbot index --full` after an upgrade to a new index schema: the old index's web articles carry over."""
    db = tmp_path / "web.db"
    index_corpus(db, [web.url("feeds/rss.xml")], fetch=options())
    before = articles(db)
    assert len(before) == 2
    set_schema_version(db, store.SCHEMA_VERSION + 1)
    if then == "the feed fails":
        web.set("feeds/rss.xml", b"server trouble", "text/plain", status=500)
    else:
        web.set("feeds/rss.xml", ONLY_GRAIN, "application/rss+xml")
    summary = index_corpus(db, full=True, fetch=options())
    assert schema_version(db) == store.SCHEMA_VERSION
    after = articles(db)
    assert {url: after[url] for url in before} == before  # nothing indexed before is lost
    assert len(after) == (2 if then == "the feed fails" else 3)
    assert summary.removed == []
    texts = dict(rows(db, "SELECT url, text FROM articles"))
    assert all("dock workers" in texts[url].lower() or len(texts[url]) > 200 for url in before)
    again = index_corpus(db, fetch=options())  # the carried-over copies are the indexed state from now on
    assert again.added == again.updated == again.removed == []


def test_replacing_an_unreadable_old_index_with_a_failing_source_is_refused(tmp_path: Path, web: FeedServer) -> None:
    db = tmp_path / "web.db"
    feed = web.url("feeds/rss.xml")
    index_corpus(db, [feed], fetch=options())
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("ALTER TABLE articles RENAME TO articles_of_some_old_schema")
    conn.close()
    set_schema_version(db, store.SCHEMA_VERSION + 1)
    web.set("feeds/rss.xml", b"server trouble", "text/plain", status=500)
    with pytest.raises(CorpusbotError) as refused:
        index_corpus(db, full=True, fetch=options())
    message = str(refused.value)
    assert feed in message and "HTTP 500" in message and "Nothing was written" in message
    assert "corpusbot sources remove" in message and "corpusbot index --full" in message
    assert schema_version(db) == store.SCHEMA_VERSION + 1  # the old index is still there, untouched
    assert rows(db, "SELECT count(*) FROM articles_of_some_old_schema") == [(2,)]


def broken_feed(web: FeedServer, names: list[str]) -> None:
    items = "".join(f"<item><title>{n}</title><link>{{base}}/broken/{n}.html</link></item>" for n in names)
    web.set("broken.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>{items}</channel></rss>')


def test_failed_entries_retried_are_bounded_and_forgotten_once_they_leave_the_feed(
    tmp_path: Path, web: FeedServer
) -> None:
    """A feed rotating broken links each run must not pile up retries: at most max_entries pages per feed and run."""
    db = tmp_path / "web.db"
    broken = lambda: [r for r in web.requests if r.path.startswith("/broken/")]  # noqa: E731
    for run, names in enumerate([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]):
        broken_feed(web, names)
        before = len(broken())
        summary = index_corpus(db, [web.url("broken.xml")] if run == 0 else None, fetch=options(max_entries=3))
        assert sorted(r.path for r in broken()[before:]) == [f"/broken/{n}.html" for n in names]
        assert sorted(url for url, _ in summary.failed_sources) == [web.url(f"broken/{n}.html") for n in names]
        failing = sorted(row.url for row in registry.failing_sources(db) if row.kind == "entry")
        assert failing == [web.url(f"broken/{n}.html") for n in names]  # the ones that left the feed are forgotten
    before = len(broken())
    index_corpus(db, fetch=options(max_entries=2))  # the feed unchanged (304): failed entries retried, within the cap
    assert len(broken()) - before == 2


def test_a_feed_whose_entries_all_point_to_one_page_fetches_and_indexes_it_once(
    tmp_path: Path, web: FeedServer
) -> None:
    items = "".join(f"<item><title>Copy {n}</title><link>{{base}}/same.html</link></item>" for n in range(500))
    web.set("same.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>{items}</channel></rss>')
    web.set("same.html", "<html><body><article><p>The one story every entry points at, the harbour.</p></article>")
    summary = index_corpus(tmp_path / "web.db", [web.url("same.xml")], fetch=options())
    assert summary.added == [web.url("same.html")] and summary.failed_sources == []
    assert len(web.hits("same.html")) == 1 and len(articles(tmp_path / "web.db")) == 1
