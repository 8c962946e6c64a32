"""Feeds of each format become entry links with dates, authors and titles; broken ones give a reason."""

from __future__ import annotations

import json

import pytest

from corpusbot.index.sources.feeds import FeedError, parse_feed
from tests.support.feed_server import WEB

BASE = "http://news.test"


def feed(name: str) -> bytes:
    return (WEB / "feeds" / name).read_bytes().replace(b"{base}", BASE.encode())


def test_rss_2() -> None:
    parsed = parse_feed(feed("rss.xml"), "application/rss+xml", f"{BASE}/feeds/rss.xml")
    assert parsed is not None and parsed.title == "Harbour Ledger: Business"
    first, second = parsed.entries
    assert first.link == f"{BASE}/news/2025/06/port-strike-ends.html"
    assert first.published == "2025-06-09T08:15:00Z" and first.author == "Maren Holt"
    assert second.published == "2025-06-11T07:30:00Z"  # +0200 normalised to UTC


def test_atom_with_a_relative_link() -> None:
    parsed = parse_feed(feed("atom.xml"), "application/atom+xml", f"{BASE}/feeds/atom.xml")
    assert parsed is not None
    assert [e.link for e in parsed.entries] == [
        f"{BASE}/news/2025/06/rare-earth-licences.html",
        f"{BASE}/news/2025/06/grain-corridor.html",  # href="/news/..." made absolute
    ]
    assert [e.published for e in parsed.entries] == ["2025-06-11T07:30:00Z", "2025-06-12T02:45:00Z"]
    assert parsed.entries[1].author == "Aino Virtanen"


def test_json_feed_read_with_json() -> None:
    parsed = parse_feed(feed("feed.json"), "application/feed+json", f"{BASE}/feeds/feed.json")
    assert parsed is not None and parsed.title == "Harbour Ledger: Syndication"
    assert [e.link for e in parsed.entries] == [
        f"{BASE}/news/2025/06/grain-corridor.html",
        f"{BASE}/syndicated/port-strike.html",
    ]  # the item without a URL is left out
    assert parsed.entries[0].published == "2025-06-12T02:45:00Z" and parsed.entries[0].author == "Aino Virtanen"


def test_rss_0_91_with_a_doctype_and_a_generic_content_type() -> None:
    parsed = parse_feed(feed("rss091.xml"), "text/xml", f"{BASE}/feeds/rss091.xml")
    assert parsed is not None and [e.link for e in parsed.entries] == [f"{BASE}/mirror/rare-earths.html"]
    assert parsed.entries[0].published is None


def test_a_feed_declaring_the_wrong_encoding_is_still_read() -> None:
    data = feed("wrong-encoding.latin1.xml")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fixture is what it says: declared UTF-8, written in Latin-1
    parsed = parse_feed(data, "application/xml", f"{BASE}/feeds/wrong-encoding.latin1.xml")
    assert parsed is not None and parsed.title == "Ledger Café Guide"
    (entry,) = parsed.entries
    assert entry.title == "Café owners raise prices as coffee bean costs climb"
    assert entry.published == "2025-06-13T08:00:00Z"


def test_malformed_xml_is_a_reason() -> None:
    with pytest.raises(FeedError, match="malformed feed"):
        parse_feed(feed("malformed.xml"), "application/rss+xml", f"{BASE}/feeds/malformed.xml")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', '"items" is not a list'),
        (b'{"title": "no version"}', "no JSON Feed"),
        (b"{not json", "malformed JSON Feed"),
        (b"[" * 100_000, "malformed JSON Feed"),  # nested too deeply
    ],
)
def test_bad_json_feeds_are_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body, "application/json", f"{BASE}/feed.json")


def test_a_web_page_is_no_feed() -> None:
    page = (WEB / "news/2025/06/port-strike-ends.html").read_bytes()
    assert parse_feed(page, "text/html; charset=utf-8", f"{BASE}/a.html") is None


def test_only_http_links_are_kept() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><link>javascript:alert(1)</link></item><item><link>file:///etc/passwd</link></item>
    <item><link>https://news.test/ok</link></item><item><link>https://news.test/ok</link></item></channel></rss>"""
    parsed = parse_feed(body, "application/rss+xml", f"{BASE}/f.xml")
    assert parsed is not None and [e.link for e in parsed.entries] == ["https://news.test/ok"]


def test_only_the_first_max_entries_distinct_links_are_read() -> None:
    items = "".join(f"<item><link>{BASE}/story/{n % 7}.html</link></item>" for n in range(70))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'.encode()
    everything = parse_feed(body, "application/rss+xml", f"{BASE}/f.xml")
    first = parse_feed(body, "application/rss+xml", f"{BASE}/f.xml", max_entries=3)
    assert everything is not None and first is not None
    assert [e.link for e in everything.entries] == [f"{BASE}/story/{n}.html" for n in range(7)]  # each link once
    assert [e.link for e in first.entries] == [f"{BASE}/story/{n}.html" for n in range(3)]


@pytest.mark.parametrize(
    "date",
    ["Mon, 99 Jan 2025 25:61:00 GMT", "0000-00-00", "1", "yesterday", "", "\u0000"],
)
def test_malformed_entry_dates_are_no_dates(date: str) -> None:
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><item><title>A</title>'
        f"<link>{BASE}/a.html</link><pubDate>{date}</pubDate></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, "application/rss+xml", f"{BASE}/f.xml")
    assert parsed is not None and [(e.link, e.published) for e in parsed.entries] == [(f"{BASE}/a.html", None)]


def test_links_with_control_characters_are_dropped() -> None:
    """A JSON Feed can escape any character: a terminal escape in a link would reach `corpusbot stats` output."""
    items = [{"url": "http://news.test/a\u001b[2J\u001b]0;pwned\u0007"}, {"url": "http://news.test/\u0085b"}]
    items.append({"url": "http://news.test/ok"})
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    parsed = parse_feed(body, "application/feed+json", f"{BASE}/feed.json")
    assert parsed is not None and [e.link for e in parsed.entries] == ["http://news.test/ok"]
