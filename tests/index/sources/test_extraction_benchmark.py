"""benchmarks/extraction.py runs on the fixture pages and measures what it says (no figures asserted but the
ones that follow from the pages themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import extraction
from tests.support.feed_server import WEB


def test_it_prints_one_row_per_page_and_extractor(capsys: pytest.CaptureFixture[str]) -> None:
    assert extraction.main([]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    pages = sorted(WEB.rglob("*.expected.txt"))
    assert len(rows) == 2 * len(pages) + 2  # + the two means
    assert all(len(row.split("|")) == 7 for row in rows)


def test_the_scores_count_article_and_clutter_words(tmp_path: Path) -> None:
    (tmp_path / "p.expected.txt").write_text("Alpha beta gamma.", encoding="utf-8")
    (tmp_path / "p.html").write_text(
        "<html><body><div>Cookie notice text</div><p>Alpha beta gamma.</p></body></html>", encoding="utf-8"
    )
    extraction.EXTRACTORS["everything"] = lambda html: extraction.visible_text(html)
    try:
        scores = extraction.score(tmp_path / "p.html")
    finally:
        del extraction.EXTRACTORS["everything"]
    assert scores["everything"] == (0.5, 1.0, 0.0)  # 3 of 6 words are the article's; no clutter dropped


def test_a_folder_without_expected_texts_is_an_error(tmp_path: Path) -> None:
    assert extraction.main(["--pages", str(tmp_path)]) == 1
