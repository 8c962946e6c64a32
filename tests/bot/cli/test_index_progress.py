"""`corpusbot index` shows progress by bytes and articles on a terminal, and nothing anywhere else."""

from __future__ import annotations

import io
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import corpusbot.bot.cli.service as service
from corpusbot.bot.cli import cli
from corpusbot.bot.cli.service import TerminalProgress, describe, indexing_progress
from corpusbot.index import index_corpus
from corpusbot.index.indexing.progress import IndexProgress

WORDS = "tariff export license rare earth magnet court ruling port trade minister treaty delegation senate".split()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def big_jsonl(folder: Path, size: int = 5_000_000) -> Path:
    """One JSONL file of about ``size`` bytes of article-like lines."""
    rng = np.random.default_rng(1)
    path = folder / "news.jsonl"
    lines, total, i = [], 0, 0
    while total < size:
        paragraphs = [" ".join(rng.choice(WORDS, size=60).tolist()) + "." for _ in range(int(rng.integers(1, 6)))]
        line = json.dumps({"id": f"n{i}", "title": f"Report {i}", "text": "\n\n".join(paragraphs)})
        lines.append(line)
        total += len(line) + 1
        i += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def frames(output: str) -> list[str]:
    """The lines drawn, each redrawn in place after a carriage return."""
    return [frame.rstrip() for frame in output.split("\r") if frame.strip()]


def test_a_terminal_sees_the_bytes_and_articles_of_one_big_jsonl_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: lines are not cut
    path = big_jsonl(tmp_path)
    megabytes = f"{path.stat().st_size / 1e6:.1f}"
    terminal = FakeTerminal()
    progress = TerminalProgress(terminal, delay=0, interval=0)
    summary = index_corpus(tmp_path / "index.db", [str(path)], on_progress=progress)
    progress.close()
    drawn = frames(terminal.getvalue())
    reading = [f for f in drawn if f.startswith("Indexing: reading")]
    # While the one file is read: bytes read so far of its size, and the articles found so far.
    assert any(f" of {megabytes} MB (" in f and not f.startswith(f"Indexing: reading {megabytes} of") for f in reading)
    assert reading[-1].startswith(
        f"Indexing: reading {megabytes} of {megabytes} MB (100%), {summary.articles:,} articles"
    )
    tokenizing = [f for f in drawn if f.startswith("Indexing: splitting and tokenizing")]
    assert len(tokenizing) > 1
    assert tokenizing[-1].startswith(
        f"Indexing: splitting and tokenizing {summary.articles:,} of {summary.articles:,} articles (100%), "
        f"{summary.passages:,} passages"
    )
    assert any(f.startswith(f"Indexing: writing {summary.articles:,} of {summary.articles:,} articles") for f in drawn)
    assert any(f.startswith("Indexing: writing postings") and " terms (100%)" in f for f in drawn)
    # Closing clears the line: what is printed next starts at the beginning of a clean line.
    assert terminal.getvalue().endswith("\r") and not terminal.getvalue().rsplit("\r", 2)[-2].strip()


def test_the_line_is_drawn_after_a_delay_and_at_most_once_an_interval_per_stage() -> None:
    now = [0.0]
    terminal = FakeTerminal()
    progress = TerminalProgress(terminal, delay=0.5, interval=0.2, clock=lambda: now[0])

    def report(stage: str, done: int, at: float) -> None:
        now[0] = at
        progress(IndexProgress(stage, done, 100, "articles"))

    report("tokenizing", 1, 0.1)  # within the delay: a small corpus never shows anything
    assert terminal.getvalue() == ""
    report("tokenizing", 2, 0.6)
    report("tokenizing", 3, 0.7)  # within the interval: skipped
    report("tokenizing", 4, 0.85)
    report("writing", 5, 0.9)  # a new stage is shown at once
    assert [f.split(" (")[0] for f in frames(terminal.getvalue())] == [
        "Indexing: splitting and tokenizing 2 of 100 articles",
        "Indexing: splitting and tokenizing 4 of 100 articles",
        "Indexing: writing 5 of 100 articles",
    ]


def test_a_line_never_wraps_and_a_shorter_one_covers_the_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    terminal = FakeTerminal()
    progress = TerminalProgress(terminal, delay=0, interval=0)
    progress(IndexProgress("reading", 5_000_000, 9_000_000, "bytes", articles=123_456, files=(3, 40)))
    progress(IndexProgress("writing", 1, 2, "articles"))
    first, second = terminal.getvalue().split("\r")[1:]
    assert len(first) == 39 and len(second) == 39  # cut to the width; padded over the longer line


def test_descriptions() -> None:
    assert describe(IndexProgress("reading", 412_000_000, 1_074_000_000, "bytes", articles=118_300), 41) == (
        "Indexing: reading 412 of 1,074 MB (38%), 118,300 articles [0:41]"
    )
    assert describe(IndexProgress("reading", 1_500_000, 5_200_000, "bytes", articles=9, files=(2, 3)), 75) == (
        "Indexing: reading 1.5 of 5.2 MB (28%), file 2 of 3, 9 articles [1:15]"
    )
    assert describe(IndexProgress("tokenizing", 3, 4, "articles", passages=7), 0) == (
        "Indexing: splitting and tokenizing 3 of 4 articles (75%), 7 passages [0:00]"
    )
    assert (
        describe(IndexProgress("writing postings", 0, 0, "terms"), 0)
        == "Indexing: writing postings 0 of 0 terms [0:00]"
    )


def test_progress_only_on_a_terminal() -> None:
    quiet = NotATerminal()
    with indexing_progress(quiet) as progress:
        assert progress is None
    assert quiet.getvalue() == ""
    terminal = FakeTerminal()
    with indexing_progress(terminal) as progress:
        assert isinstance(progress, TerminalProgress)


def test_index_json_output_and_a_non_terminal_stderr_are_unchanged(tmp_path: Path) -> None:
    path = big_jsonl(tmp_path, size=300_000)
    result = CliRunner().invoke(cli, ["index", str(path), "--db", str(tmp_path / "index.db"), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert list(summary) == [
        "added",
        "updated",
        "removed",
        "unchanged",
        "skipped",
        "warnings",
        "articles",
        "passages",
        "seconds",
        "full",
        "corpus_paths",
        "failed_sources",
    ]
    assert summary["added"] == [str(path)]


def test_index_on_a_terminal_draws_progress_on_stderr_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    path = big_jsonl(tmp_path, size=300_000)
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(service, "TerminalProgress", partial(TerminalProgress, delay=0, interval=0))
    cli.main(["index", str(path), "--db", str(tmp_path / "index.db"), "--json"], standalone_mode=False)
    summary = json.loads(capsys.readouterr().out)  # stdout: the JSON alone
    assert summary["added"] == [str(path)]
    drawn = frames(terminal.getvalue())
    assert any(f.startswith("Indexing: reading") and "MB" in f and "articles" in f for f in drawn)
    assert any(f.startswith(f"Indexing: writing {summary['articles']:,} of {summary['articles']:,}") for f in drawn)
