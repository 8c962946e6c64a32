"""An article page fetched over HTTP: its main text and metadata, as a local ``.html`` file gives them.

The extraction is the HTML reader's (trafilatura in precision mode, our own extractor where it
finds no main text); here the page is decoded (the HTTP charset counts), its canonical URL made
absolute, and its date normalised to ISO 8601 UTC.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urljoin, urlsplit

from corpusbot.index.corpus.readers import Unreadable, decode, read_html, slug
from corpusbot.index.models import Article
from corpusbot.index.sources.dates import iso_utc
from corpusbot.index.sources.urls import is_web_url, normalize_url

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


class PageError(Exception):
    """A page that gives no article; the message is the reason shown for the source."""


def article_id_for(key: str) -> str:
    """A short id users can type, stable for the URL: host and last path part, and a hash of the whole."""
    parts = urlsplit(key)
    last = parts.path.rstrip("/").rpartition("/")[2]
    last = re.sub(r"\.(?:s?html?|php|aspx?)$", "", last, flags=re.IGNORECASE)
    host = parts.hostname or "web"
    readable = slug(f"{host.removeprefix('www.')}-{last}")[:48].rstrip("-")
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def extract_page(body: bytes, content_type: str, url: str) -> Article:
    """The article on the page fetched from ``url`` (after redirects); raises ``PageError`` without one.

    Its key (``Article.path``, and ``url``) is the page's canonical URL when it names an http(s) one on the
    same site, else ``url``.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and kind not in ("text/html", "application/xhtml+xml", "text/plain"):
        raise PageError(f"not a web page or feed (Content-Type {kind})")
    try:
        text = unicodedata.normalize("NFC", _decode(body, content_type))
        article = read_html(text, "page")
    except Unreadable as error:
        raise PageError(str(error)) from None
    except Exception as error:  # a parser's failure on hostile markup fails this page only
        raise PageError(f"could not be parsed ({type(error).__name__}: {str(error)[:200]})") from None
    if not article.text.strip():
        raise PageError("no article text found on the page")
    canonical = urljoin(url, article.url) if article.url else url
    key = normalize_url(canonical if is_web_url(canonical) and _same_site(canonical, url) else url)
    return Article(
        id=article_id_for(key),
        title=article.title,
        text=article.text,
        url=key,
        source=article.source or urlsplit(key).hostname,
        published=iso_utc(article.published),
        author=article.author,
        path=key,
    )


def _same_site(canonical: str, url: str) -> bool:
    """A canonical URL is trusted on the page's own site only (``www.`` aside): a page elsewhere naming another
    site's URL as its own would otherwise replace that site's article. Copies on other sites are found by their
    text instead."""

    def site(value: str) -> str:
        return (urlsplit(value).hostname or "").removeprefix("www.")

    return site(canonical) == site(url)


def _decode(body: bytes, content_type: str) -> str:
    """UTF-8 when it is; else the charset the HTTP header names; else what the HTML reader decides."""
    if not body.strip():
        raise Unreadable("empty response")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _CHARSET.search(content_type)
    if declared:
        try:
            return body.decode(declared.group(1))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(body, html=True)
