"""The corpus readers: each format, the seed corpus quirks, titles and ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corpusbot.index.corpus.discover import BUNDLED, bundled_corpus_dir, discover
from corpusbot.index.corpus.readers import TITLE_MAX_CHARS, Unreadable, derive_title, read_file, slug
from corpusbot.index.text.passages import split_passages

SEED = bundled_corpus_dir()
SEED_URL = "https://www.toutiao.com/article/7513089098832298534/"


def read(name: str, content: str | bytes, article_id: str = "doc"):
    data = content.encode("utf-8") if isinstance(content, str) else content
    return read_file(Path(name), data, article_id)


def one(name: str, content: str | bytes, article_id: str = "doc"):
    result = read(name, content, article_id)
    assert len(result.articles) == 1 and result.problems == []
    return result.articles[0]


def seed_article(name: str):
    path = SEED / name
    return one(str(path), path.read_bytes())


# -- the seed corpus ----------------------------------------------------------------


def test_seed_original_article_line_becomes_the_url_and_no_passage() -> None:
    article = seed_article("000_6b3987004aa82828.txt")
    assert article.url == SEED_URL
    assert "Original article" not in article.text and SEED_URL not in article.text
    assert "Original article:" in (SEED / "000_6b3987004aa82828.txt").read_text()  # it was there


def test_seed_disclaimer_is_dropped() -> None:
    raw = (SEED / "000_6b3987004aa82828.txt").read_text()
    assert "Disclaimer:" in raw
    article = seed_article("000_6b3987004aa82828.txt")
    assert "Disclaimer" not in article.text and "like/dislike" not in article.text
    assert article.text.endswith("will ultimately not materialize.")


@pytest.mark.parametrize(
    "caption", ["Rare Earth Resources", "port trade", "China-US relations", "U.S. President Trump"]
)
def test_seed_caption_lines_are_not_passages_on_their_own(caption: str) -> None:
    article = seed_article("001_6346928b0b16da65.txt")
    assert f"\n{caption}\n" in article.text  # the caption is kept as text...
    passages = [article.text[s.start : s.end] for s in split_passages(article.text)]
    holding = [p for p in passages if caption in p.split("\n")]
    assert len(holding) == 1
    assert holding[0].strip() != caption and len(holding[0].split()) >= 40  # ...inside a real passage


def test_seed_articles_get_titles_and_typable_ids() -> None:
    files, skipped = discover([BUNDLED])
    assert skipped == []
    assert [f.article_id for f in files] == ["000-6b3987004aa82828", "001-6346928b0b16da65"]
    for corpus_file in files:
        article = one(str(corpus_file.path), corpus_file.path.read_bytes(), corpus_file.article_id)
        assert re.fullmatch(r"[a-z0-9-]{1,60}", article.id)
        assert article.title and len(article.title) <= TITLE_MAX_CHARS + 1
    second = seed_article("001_6346928b0b16da65.txt")
    assert second.title == "The second round of Sino-US trade negotiations that Trump has long been waiting…"


# -- .txt -------------------------------------------------------------------------------------


def test_txt_headline_line_is_the_title() -> None:
    article = one("a.txt", "Port strike ends\n\nDock workers went back to work on Friday.\n")
    assert article.title == "Port strike ends"
    assert article.text.startswith("Port strike ends")


def test_txt_only_http_urls_are_kept_and_only_the_first_original_article_line_is_used() -> None:
    article = one(
        "a.txt",
        "Body text here.\nORIGINAL ARTICLE: javascript:alert(1)\nOriginal article: https://b.example/2\n",
    )
    assert article.url is None  # the first line wins and is not a web link
    assert "javascript" not in article.text
    assert "Original article: https://b.example/2" in article.text  # a second one is just text


def test_txt_with_only_boilerplate_is_unreadable() -> None:
    with pytest.raises(Unreadable, match="no article text"):
        read("a.txt", "Original article: https://a.example/\nDisclaimer: views are the author's own.\n")


# -- .md ---------------------------------------------------------------------------------------


def test_markdown_front_matter() -> None:
    article = one(
        "a.md",
        "---\ntitle: Grain prices fall\nurl: https://news.example/grain\npublished: 2025-06-09\n"
        "source: Farm Weekly\nauthor: A. Writer\n---\n# Another heading\n\nPrices fell again.\n",
    )
    assert article.title == "Grain prices fall"
    assert article.url == "https://news.example/grain"
    assert article.published == "2025-06-09"  # a YAML date, kept as text
    assert (article.source, article.author) == ("Farm Weekly", "A. Writer")
    assert article.text == "# Another heading\n\nPrices fell again."


def test_markdown_heading_title_without_front_matter() -> None:
    assert one("a.md", "Intro line.\n\n# The Heading\n\nBody.\n").title == "The Heading"


def test_markdown_invalid_front_matter_is_unreadable() -> None:
    with pytest.raises(Unreadable, match="invalid YAML front matter"):
        read("a.md", "---\ntitle: [unclosed\n---\nBody\n")


def test_markdown_front_matter_that_is_not_a_mapping_is_ignored() -> None:
    article = one("a.md", "---\n- a\n- list\n---\nBody text about ports.\n")
    assert article.text == "Body text about ports." and article.title == "Body text about ports"


# -- .html -------------------------------------------------------------------------------------


def test_html_main_text_title_and_metadata() -> None:
    article = one(
        "a.html",
        "<html><head><title>Port strike ends</title>"
        '<meta property="og:url" content="https://news.example/strike">'
        '<meta property="article:published_time" content="2025-06-09T10:00:00Z">'
        '<meta property="og:site_name" content="Harbour News"><meta name="author" content="B. Writer">'
        "<script>var x = 1;</script><style>p{}</style></head><body><header>Site header</header>"
        "<nav>Home</nav><article><h1>Strike over</h1><p>Dock workers returned.</p><p>Ships sail.<br>Soon.</p>"
        "</article><aside>Related</aside><footer>(c) 2025</footer></body></html>",
    )
    assert article.title == "Port strike ends"
    assert article.url == "https://news.example/strike"
    assert article.published == "2025-06-09T10:00:00Z"
    assert (article.source, article.author) == ("Harbour News", "B. Writer")
    assert article.text == "Strike over\n\nDock workers returned.\n\nShips sail.\nSoon."


def test_html_title_falls_back_to_h1_then_the_first_sentence() -> None:
    assert one("a.htm", "<body><h1>Heading</h1><p>Text.</p></body>").title == "Heading"
    assert one("a.htm", "<body><p>First sentence here. Second.</p></body>").title == "First sentence here"


def test_html_canonical_link_is_the_url() -> None:
    article = one("a.html", '<head><link rel="canonical" href="https://x.example/a"></head><p>Text.</p>')
    assert article.url == "https://x.example/a"


def test_html_without_text_is_unreadable() -> None:
    with pytest.raises(Unreadable, match="no article text"):
        read("a.html", "<html><head><script>x()</script></head><body><nav>menu</nav></body></html>")


# -- .jsonl -------------------------------------------------------------------------------------


def test_jsonl_fields_and_beir_ids() -> None:
    lines = [
        {"id": "r-1", "title": "One", "text": "First text.", "url": "https://a.example/1", "published": "2025-06-09"},
        {"_id": 42, "text": "BEIR style record. More.", "source": "Wire"},
        {"id": "r-3", "text": "Bad url.", "url": "ftp://a.example/3"},
    ]
    result = read("feed.jsonl", "\n".join(json.dumps(line) for line in lines))
    first, second, third = result.articles
    assert (first.id, first.title, first.url, first.published) == ("r-1", "One", "https://a.example/1", "2025-06-09")
    assert (second.id, second.title, second.source) == ("42", "BEIR style record", "Wire")  # ids as text
    assert third.url is None
    assert [a.path for a in result.articles] == ["feed.jsonl:1", "feed.jsonl:2", "feed.jsonl:3"]


def test_jsonl_bad_lines_are_problems_with_line_numbers() -> None:
    result = read("feed.jsonl", '{"id": "a", "text": "ok"}\n{"id": " ", "text": "blank id"}\n{"id": "b", "text": 5}\n')
    assert [a.id for a in result.articles] == ["a"]
    assert result.problems == ["JSONL line 2: no 'id' (or '_id')", "JSONL line 3: no 'text'"]


def test_jsonl_crlf_line_endings() -> None:
    result = read("feed.jsonl", '{"id": "a", "text": "one"}\r\n{"id": "b", "text": "two"}\r\n')
    assert [a.text for a in result.articles] == ["one", "two"] and result.problems == []


# -- titles, ids, files ------------------------------------------------------------------------------


def test_derive_title_cuts_long_sentences_at_a_word() -> None:
    title = derive_title("word " * 40 + "end.")
    assert title.endswith("…") and len(title) <= TITLE_MAX_CHARS + 1 and " wor…" not in title
    assert derive_title("Short one. Another.") == "Short one"


def test_slug_is_typable_and_never_empty() -> None:
    assert slug("2025/June/Trade Talks (final).txt") == "2025-june-trade-talks-final-txt"
    assert slug("中文") == "article"
    assert len(slug("x" * 200)) == 60


def test_unsupported_and_empty_files() -> None:
    with pytest.raises(Unreadable, match=r"unsupported type \.pdf"):
        read("a.pdf", b"%PDF-1.4 some text")
    with pytest.raises(Unreadable, match="empty file"):
        read("a.txt", b"  \n ")


def test_decomposed_accents_are_composed_so_questions_match() -> None:
    article = one("a.txt", "Un cafe\u0301 tre\u0300s na\u0308ive.\n")
    assert article.text == "Un café très näive."
