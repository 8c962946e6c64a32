"""Article pages: only the article's paragraphs are kept; metadata from the page, the date in UTC."""

from __future__ import annotations

import pytest

from corpusbot.index.sources.pages import PageError, article_id_for, extract_page
from tests.support.feed_server import WEB

BASE = "http://news.test"
PAGES = ["port-strike-ends", "rare-earth-licences", "grain-corridor", "cafe-prices", "ferry-night-crossings"]
CLUTTER = [
    "cookies",
    "Accept all",
    "Subscribe",
    "Search the Ledger",
    "Share this article",
    "Facebook",
    "Related stories",
    "Container rates slip",
    "Most read",
    "Heatwave warning",
    "All rights reserved",
    "Privacy policy",
    "Newsletter",
    "dataLayer",
]


def page(name: str) -> bytes:
    return (WEB / f"news/2025/06/{name}.html").read_bytes().replace(b"{base}", BASE.encode())


@pytest.mark.parametrize("name", PAGES)
def test_only_the_article_paragraphs_are_kept(name: str) -> None:
    article = extract_page(page(name), "text/html; charset=utf-8", f"{BASE}/news/2025/06/{name}.html")
    expected = (WEB / f"news/2025/06/{name}.expected.txt").read_text(encoding="utf-8").split("\n\n")
    paragraphs = article.text.split("\n\n")
    for paragraph in expected:
        assert paragraph.strip() in paragraphs
    for clutter in CLUTTER:
        assert clutter not in article.text
    extra = [p for p in paragraphs if p not in [e.strip() for e in expected]]
    assert len(" ".join(extra).split()) <= 4  # at most the byline


def test_metadata_and_canonical_key() -> None:
    article = extract_page(page("port-strike-ends"), "text/html", f"{BASE}/news/2025/06/port-strike-ends.html?utm=x")
    assert article.title == "Port strike ends after nine days as dock workers accept pay offer"
    assert article.author == "Maren Holt" and article.source == "Harbour Ledger"
    assert article.published == "2025-06-09T08:15:00Z"  # +02:00 in the page
    assert article.url == article.path == f"{BASE}/news/2025/06/port-strike-ends.html"  # the canonical URL
    assert article.id == article_id_for(article.url) and article.id.startswith("news-test-port-strike-ends-")


def test_a_date_only_page_gets_midnight_utc() -> None:
    article = extract_page(page("grain-corridor"), "text/html", f"{BASE}/g.html")
    assert article.published == "2025-06-12T00:00:00Z"


def test_the_http_charset_decodes_a_page_that_is_not_utf8() -> None:
    html = "<html><head><title>Prix</title></head><body><article>" + "<p>Le café coûte plus cher. " * 30 + "</p>"
    body = (html + "</article></body></html>").encode("latin-1")
    article = extract_page(body, "text/html; charset=iso-8859-1", f"{BASE}/p.html")
    assert "café coûte" in article.text


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "text/html", "empty"),
        (b"<html><body><nav>menu</nav></body></html>", "text/html", "no article text"),
        (b"%PDF-1.7", "application/pdf", "not a web page or feed"),
    ],
)
def test_pages_without_an_article_are_reasons(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(PageError, match=reason):
        extract_page(body, content_type, f"{BASE}/x.html")


def test_a_canonical_link_elsewhere_than_http_is_ignored() -> None:
    html = '<html><head><link rel="canonical" href="javascript:x"></head><body><article>'
    html += "<p>" + "Words of the article here. " * 20 + "</p></article></body></html>"
    article = extract_page(html.encode(), "text/html", f"{BASE}/real.html#top")
    assert article.url == f"{BASE}/real.html"


def test_clutter_inside_the_article_is_mostly_dropped() -> None:
    """Advert label, newsletter box, photo caption and comments go; a one-line "Read more" link stays (measured
    in benchmarks/extraction.py)."""
    article = extract_page(page("harbour-dredging"), "text/html", f"{BASE}/news/2025/06/harbour-dredging.html")
    expected = (WEB / "news/2025/06/harbour-dredging.expected.txt").read_text(encoding="utf-8").split("\n\n")
    assert all(paragraph.strip() in article.text.split("\n\n") for paragraph in expected)
    for clutter in ("Advertisement", "newsletter", "Photo: Ledger archive", "Comments", "eyesore", "Most read"):
        assert clutter not in article.text


def test_a_canonical_url_on_another_site_is_not_trusted() -> None:
    """Else any page could claim another site's article as its own and replace it in the index."""
    html = '<html><head><link rel="canonical" href="https://victim.test/real-story"></head><body><article>'
    html += "<p>" + "Words of another article entirely. " * 20 + "</p></article></body></html>"
    assert extract_page(html.encode(), "text/html", "https://other.test/copy").url == "https://other.test/copy"
    html = html.replace("https://victim.test/real-story", "https://www.other.test/story")
    assert extract_page(html.encode(), "text/html", "https://other.test/copy").url == "https://www.other.test/story"
