"""Main-text extraction quality on the fixture news pages: trafilatura (what corpusbot uses) vs our own extractor.

Usage:

    python -m benchmarks.extraction [--pages DIR]

Each page ``NAME.html`` under ``tests/data/web`` (or DIR) that has a ``NAME.expected.txt`` beside it (the
article's headline and paragraphs, written with the page) is extracted twice: by ``readers._main_text``
(trafilatura in precision mode, as corpusbot reads ``.html`` files and fetched pages) and by
``readers._hand_written_main_text`` (the extractor corpusbot had before, still its fallback). Words are
lower-cased ``\\w+`` runs, counted as multisets:

- article words: the expected text's; clutter words: the page's visible words (scripts and styles left
  out) that are not article words (cookie banner, menus, byline, share buttons, related / most read, footer);
- precision: article words kept / words extracted; recall: article words kept / article words;
- clutter dropped: 1 - clutter words kept / clutter words.

The pages are the test fixtures, written for corpusbot: a small sample of layouts (semantic HTML5 and
divs only), not a general benchmark of extractors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from corpusbot.index.corpus import readers

PAGES = Path(__file__).resolve().parents[1] / "tests" / "data" / "web"
_WORD = re.compile(r"\w+")


def words(text: str) -> Counter[str]:
    return Counter(word.lower() for word in _WORD.findall(text))


def visible_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(("script", "style", "noscript", "template", "head")):
        if not tag.decomposed:
            tag.decompose()
    return soup.get_text(" ")


def trafilatura_text(html: str) -> str:
    found = readers._main_text(html)
    return found[0] if found else ""


def hand_written_text(html: str) -> str:
    from bs4 import BeautifulSoup

    return readers._hand_written_main_text(BeautifulSoup(html, "html.parser"))


EXTRACTORS: dict[str, Callable[[str], str]] = {"trafilatura": trafilatura_text, "hand-written": hand_written_text}


def score(page: Path) -> dict[str, tuple[float, float, float]]:
    html = page.read_text(encoding="utf-8")
    article = words(page.with_suffix(".expected.txt").read_text(encoding="utf-8"))
    clutter = words(visible_text(html)) - article
    results = {}
    for name, extract in EXTRACTORS.items():
        out = words(extract(html))
        kept = sum((out & article).values())
        clutter_kept = sum(((out - article) & clutter).values())  # words beyond the article that are clutter
        total = sum(out.values())
        results[name] = (
            kept / total if total else 0.0,
            kept / sum(article.values()),
            1 - clutter_kept / sum(clutter.values()) if clutter else 1.0,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, default=PAGES, help="a folder of NAME.html + NAME.expected.txt")
    args = parser.parse_args(argv)
    pages = sorted(p for p in args.pages.rglob("*.html") if p.with_suffix(".expected.txt").exists())
    if not pages:
        print(f"no NAME.html with NAME.expected.txt under {args.pages}", file=sys.stderr)
        return 1
    print("| page | extractor | precision | recall | clutter dropped |\n|---|---|---:|---:|---:|")
    totals: dict[str, list[tuple[float, float, float]]] = {name: [] for name in EXTRACTORS}
    for page in pages:
        for name, (precision, recall, dropped) in score(page).items():
            totals[name].append((precision, recall, dropped))
            print(f"| {page.stem} | {name} | {precision:.3f} | {recall:.3f} | {dropped:.3f} |")
    for name, rows in totals.items():
        mean = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        print(f"| **mean of {len(rows)}** | {name} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
