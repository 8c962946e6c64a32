"""Bad corpus files, tried on purpose: each is reported in the summary and never costs what was indexed before.

Every test indexes two good articles first, adds the bad input, reindexes and
checks both the summary (skipped reason or warning) and that the good
articles are still there, unchanged, and found; the database passes
``check_database`` afterwards.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpusbot.index import IndexSummary, SearchService, index_corpus
from corpusbot.index.maintenance.check import check_database

CORPUSBOT = Path(sys.executable).with_name("corpusbot")
GOOD = {
    "talks.txt": (
        "London trade talks\n\nThe delegation will meet in London next Monday for a new round of trade talks. "
        "Treasury officials said the agenda covers tariffs, export licenses and the supply of rare earth magnets.\n"
    ),
    "harvest.txt": (
        "A record harvest\n\nFarmers in the northern provinces reported a record wheat harvest this autumn after "
        "steady rain in spring. Grain prices fell as silos filled across the region.\n"
    ),
}
PROBES = {"talks": "delegation london trade talks", "harvest": "wheat harvest farmers"}


@dataclass
class Corpus:
    folder: Path
    db: Path
    before: dict[str, tuple]

    def reindex(self, **kwargs) -> IndexSummary:
        return index_corpus(self.db, [str(self.folder)], **kwargs)

    def add(self, name: str, data: bytes | str) -> Path:
        path = self.folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def assert_earlier_data_intact(self) -> None:
        assert good_articles(self.db) == self.before
        service = SearchService(self.db)
        try:
            for article_id, question in PROBES.items():
                assert service.ask(question).hits[0].article.id == article_id
        finally:
            service.close()
        report = check_database(self.db, queries=5)
        assert report.ok, report.problems


def good_articles(db: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT a.id, a.title, a.text, group_concat(p.text, '|') FROM articles a JOIN passages p "
            "ON p.article_id = a.id WHERE a.id IN ('talks', 'harvest') GROUP BY a.id ORDER BY a.id"
        ).fetchall()
    finally:
        conn.close()
    return {row[0]: row[1:] for row in rows}


def article_text(db: Path, article_id: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT text FROM articles WHERE id = ?", (article_id,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


@pytest.fixture
def corpus(corpus_dir: Path, tmp_path: Path) -> Corpus:
    for name, text in GOOD.items():
        (corpus_dir / name).write_text(text, encoding="utf-8")
    db = tmp_path / "index.db"
    summary = index_corpus(db, [str(corpus_dir)])
    assert summary.articles == 2
    return Corpus(corpus_dir, db, good_articles(db))


def skipped(summary: IndexSummary) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in summary.skipped}


def warnings(summary: IndexSummary) -> list[str]:
    return [f"{Path(path).name}: {message}" for path, message in summary.warnings]


# -- binary, encodings, empty ------------------------------------------------------------


def test_binary_file_is_skipped(corpus: Corpus) -> None:
    corpus.add("photo.txt", bytes(range(256)) * 40)
    corpus.add("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    summary = corpus.reindex()
    assert "binary" in skipped(summary)["photo.txt"]
    assert "unsupported type .png" in skipped(summary)["photo.png"]
    assert summary.articles == 2
    corpus.assert_earlier_data_intact()


FRENCH = "Le café était très animé. Les élèves ont étudié la géographie à l'école près du marché, dit-il."
QUOTES = "The company’s “big” deal — worth €5 million — was signed on Monday. It’s done, officials said."
# Detection needs a few sentences: a single short line of KOI8-R is easily taken for another code page.
RUSSIAN = (
    "Переговоры о торговле между Китаем и США пройдут в Лондоне в понедельник. "
    "Делегации обсудят экспорт редкоземельных металлов и пошлины. "
    "Министр заявил, что стороны надеются на скорое соглашение."
)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("latin1.txt", FRENCH.encode("latin-1"), FRENCH),
        ("cp1252.txt", QUOTES.encode("cp1252"), QUOTES),
        ("utf16-bom.txt", FRENCH.encode("utf-16"), FRENCH),  # with a byte-order mark
        ("utf16-le.txt", QUOTES.encode("utf-16-le"), QUOTES),  # without one
        ("utf8-bom.txt", b"\xef\xbb\xbf" + FRENCH.encode("utf-8"), FRENCH),
        ("koi8r.txt", RUSSIAN.encode("koi8-r"), RUSSIAN),
        ("cp1251.txt", RUSSIAN.encode("cp1251"), RUSSIAN),
        (
            "declared.html",
            '<html><head><meta charset="iso-8859-2"></head><body><p>Zażółć gęślą jaźń. Łódź</p></body></html>'.encode(
                "iso-8859-2"
            ),
            "Zażółć gęślą jaźń. Łódź",
        ),
    ],
)
def test_other_encodings_are_decoded(corpus: Corpus, name: str, data: bytes, expected: str) -> None:
    corpus.add(name, data)
    summary = corpus.reindex()
    assert [Path(p).name for p in summary.added] == [name], summary.skipped
    text = article_text(corpus.db, Path(name).stem)
    assert text is not None and expected in text
    corpus.assert_earlier_data_intact()


def test_undecodable_bytes_are_skipped_with_the_reason(corpus: Corpus) -> None:
    rng = random.Random(5)
    corpus.add("noise.txt", bytes(rng.randrange(0x80, 0x100) for _ in range(4000)))
    summary = corpus.reindex()
    assert "undecodable" in skipped(summary)["noise.txt"]
    corpus.assert_earlier_data_intact()


@pytest.mark.parametrize("content", [b"", b"   \n\n\t  \n", b"\xef\xbb\xbf"])
def test_empty_files_are_skipped(corpus: Corpus, content: bytes) -> None:
    corpus.add("empty.txt", content)
    corpus.add("empty.md", content)
    corpus.add("empty.jsonl", content)
    summary = corpus.reindex()
    reasons = skipped(summary)
    assert set(reasons) == {"empty.txt", "empty.md", "empty.jsonl"}
    assert all("empty" in reason or "no article text" in reason for reason in reasons.values()), reasons
    corpus.assert_earlier_data_intact()


def test_a_file_that_turns_bad_keeps_its_previously_indexed_version(corpus: Corpus) -> None:
    (corpus.folder / "talks.txt").write_bytes(b"\x00\x01\x02 binary now")
    summary = corpus.reindex()
    assert "previously indexed version is kept" in skipped(summary)["talks.txt"]
    corpus.assert_earlier_data_intact()


# -- JSONL -----------------------------------------------------------------------------------


def test_jsonl_malformed_lines_are_reported_by_number_and_the_rest_kept(corpus: Corpus) -> None:
    lines = [
        json.dumps({"id": "j1", "title": "First", "text": "Oil prices rose after the pipeline outage."}),
        '{"id": "j2", "text": "an unfinished line',
        json.dumps(["an", "array"]),
        json.dumps({"id": "j4", "title": "No text"}),
        json.dumps({"text": "No id at all."}),
        "",
        json.dumps({"_id": "j7", "text": "BEIR-style ids are accepted too, the pipeline said."}),
        # JSON allows U+2028/U+2029 unescaped inside strings: they are not line breaks in JSON Lines.
        json.dumps({"id": "j8", "text": "A line\u2028separator and a\u2029paragraph separator."}, ensure_ascii=False),
        "[" * 50_000,  # deep nesting: a RecursionError inside json, not a crash of the run
        json.dumps({"id": "j10", "text": "The last good line, about the pipeline."}),
    ]
    corpus.add("feed.jsonl", "\n".join(lines) + "\n")
    summary = corpus.reindex()
    problems = warnings(summary)
    for expected in (
        "feed.jsonl: malformed JSONL line 2",
        "feed.jsonl: malformed JSONL line 3: expected an object",
        "feed.jsonl: JSONL line 4: no 'text'",
        "feed.jsonl: JSONL line 5: no 'id'",
        "feed.jsonl: malformed JSONL line 9: nested too deeply",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert len(problems) == 5
    assert summary.articles == 2 + 4
    assert "separator and a\u2029paragraph" in (article_text(corpus.db, "j8") or "")
    corpus.assert_earlier_data_intact()


def test_jsonl_escapes_that_are_no_character_are_replaced_not_fatal(corpus: Corpus) -> None:
    # "\udce9" alone is valid JSON but no character (SQLite's UTF-8 cannot hold it); a pair is one emoji.
    corpus.add(
        "escapes.jsonl",
        '{"id": "s1", "title": "Caf\\udce9 opens", "text": "The caf\\udce9 on the harbour opened its doors."}\n'
        '{"id": "s2", "text": "A smile \\ud83d\\ude00 in a headline about the harbour."}\n',
    )
    summary = corpus.reindex()
    assert [Path(p).name for p in summary.added] == ["escapes.jsonl"], summary.skipped
    assert any("JSONL line 1: a \\u escape that is not a character" in p for p in warnings(summary))
    assert len(warnings(summary)) == 1
    assert article_text(corpus.db, "s1") == "The caf\ufffd on the harbour opened its doors."
    assert "\U0001f600" in (article_text(corpus.db, "s2") or "")
    corpus.assert_earlier_data_intact()


def test_a_jsonl_file_without_one_usable_line_is_skipped(corpus: Corpus) -> None:
    corpus.add("junk.jsonl", "not json\n{also not}\n")
    summary = corpus.reindex()
    assert "no usable lines" in skipped(summary)["junk.jsonl"]
    assert "line 1" in skipped(summary)["junk.jsonl"]
    corpus.assert_earlier_data_intact()


def test_duplicate_ids_are_reported_and_the_first_in_path_then_line_order_wins(corpus: Corpus, tmp_path: Path) -> None:
    corpus.add("b.jsonl", json.dumps({"id": "dup", "text": "Version from b.jsonl about tariffs."}) + "\n")
    corpus.add(
        "a.jsonl",
        json.dumps({"id": "dup", "text": "Version from a.jsonl line 1 about tariffs."})
        + "\n"
        + json.dumps({"id": "dup", "text": "Version from a.jsonl line 2 about tariffs."})
        + "\n",
    )
    summary = corpus.reindex()
    reported = [w for w in warnings(summary) if "duplicate article id 'dup'" in w]
    assert len(reported) == 2, warnings(summary)
    winner = article_text(corpus.db, "dup")
    assert winner == "Version from a.jsonl line 1 about tariffs."
    # Deterministic: a full rebuild, and a fresh index of the same files, pick the same one.
    corpus.reindex(full=True)
    assert article_text(corpus.db, "dup") == winner
    fresh = tmp_path / "fresh.db"
    index_corpus(fresh, [str(corpus.folder)])
    assert article_text(fresh, "dup") == winner
    corpus.assert_earlier_data_intact()


def test_a_new_file_reusing_an_indexed_id_follows_the_same_path_order_rule(corpus: Corpus) -> None:
    """talks.txt has the id "talks"; a JSONL line with that id wins only if its file sorts first."""
    corpus.add("zz.jsonl", json.dumps({"id": "talks", "text": "A late impostor with the id talks."}) + "\n")
    summary = corpus.reindex()
    assert "zz.jsonl: duplicate article id 'talks': kept the one from" in "\n".join(warnings(summary))
    corpus.assert_earlier_data_intact()  # talks.txt sorts first and keeps its article

    corpus.add("aa.jsonl", json.dumps({"id": "talks", "text": "An early impostor with the id talks."}) + "\n")
    summary = corpus.reindex()
    assert any(w.startswith("talks.txt: duplicate article id 'talks'") for w in warnings(summary))
    assert article_text(corpus.db, "talks") == "An early impostor with the id talks."
    assert check_database(corpus.db, queries=3).ok
    (corpus.folder / "aa.jsonl").unlink()
    corpus.reindex()
    corpus.assert_earlier_data_intact()  # and talks.txt's article comes back when the other file goes


# -- HTML ------------------------------------------------------------------------------------


def test_html_scripts_boilerplate_and_huge_attributes_are_dropped(corpus: Corpus) -> None:
    blob = "QUJD" * 2_000_000  # an 8 MB inline data attribute
    html = (
        "<!DOCTYPE html><html><head><title>Port strike ends</title>"
        "<script>var trackingsecret = 'scriptword';</script><style>.x { color: red }</style></head>"
        f'<body><nav>Home | Sports | menuword</nav><div data-blob="{blob}" onclick="alert(1)">'
        "<p>Dock workers ended their strike on Friday after the union accepted a new wage offer.</p>"
        f'<img src="data:image/png;base64,{blob[:100_000]}" alt="alttextword">'
        "<p>Shipping lines said cargo would move again within days.</p></div>"
        "<footer>footerword</footer><noscript>noscriptword</noscript></body></html>"
    )
    corpus.add("strike.html", html)
    started = time.perf_counter()
    summary = corpus.reindex()
    elapsed = time.perf_counter() - started
    assert [Path(p).name for p in summary.added] == ["strike.html"]
    text = article_text(corpus.db, "strike") or ""
    assert "Dock workers ended their strike" in text and "cargo would move again" in text
    for word in ("scriptword", "trackingsecret", "menuword", "footerword", "noscriptword", "QUJD", "alert", "color"):
        assert word not in text
    print(f"8 MB attribute HTML indexed in {elapsed:.2f}s")
    corpus.assert_earlier_data_intact()


def test_deeply_nested_html_is_read_in_one_pass(corpus: Corpus) -> None:
    """20,000 nested <div>: reading used to take time quadratic in the depth (minutes at 100,000)."""
    depth = 20_000
    corpus.add("nested.html", "<html><body>" + "<div>" * depth + "Deep text about a port strike." + "</div>" * depth)
    summary = corpus.reindex()
    assert [Path(p).name for p in summary.added] == ["nested.html"]
    assert article_text(corpus.db, "nested") == "Deep text about a port strike."
    corpus.assert_earlier_data_intact()


# -- the file system -------------------------------------------------------------------------------


def test_symlink_loops_and_broken_links_are_skipped(corpus: Corpus) -> None:
    (corpus.folder / "loop").symlink_to(corpus.folder, target_is_directory=True)
    sub = corpus.folder / "sub"
    sub.mkdir()
    (sub / "up").symlink_to(corpus.folder, target_is_directory=True)
    (corpus.folder / "a.txt").symlink_to(corpus.folder / "b.txt")
    (corpus.folder / "b.txt").symlink_to(corpus.folder / "a.txt")
    (corpus.folder / "gone.txt").symlink_to(corpus.folder / "missing.txt")
    summary = corpus.reindex()
    reasons = {Path(path).relative_to(corpus.folder).as_posix(): reason for path, reason in summary.skipped}
    assert "symlink loop" in reasons["loop"] and "symlink loop" in reasons["sub/up"]
    assert "symlink loop" in reasons["a.txt"] and "symlink loop" in reasons["b.txt"]
    assert "broken symlink" in reasons["gone.txt"]
    assert summary.articles == 2 and not summary.added  # nothing indexed twice through a loop
    corpus.assert_earlier_data_intact()


def test_a_fifo_named_like_an_article_does_not_hang_the_run(corpus: Corpus) -> None:
    os.mkfifo(corpus.folder / "pipe.txt")
    summary = corpus.reindex()  # reading a FIFO would block forever
    assert "not a regular file" in skipped(summary)["pipe.txt"]
    corpus.assert_earlier_data_intact()


def test_a_folder_named_like_an_article_is_walked(corpus: Corpus) -> None:
    folder = corpus.folder / "archive.txt"
    folder.mkdir()
    (folder / "inside.md").write_text("# Inside\n\nAn article about a refinery fire in a folder named archive.txt.\n")
    summary = corpus.reindex()
    assert [Path(p).name for p in summary.added] == ["inside.md"]
    corpus.assert_earlier_data_intact()


def _drop_file_permission_override() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def index_bound_by_permissions(corpus: Corpus) -> dict:
    """`corpusbot index --json` in a child where file permissions apply, also when the tests run as root."""
    preexec = None
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_drop_file_permission_override, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            pytest.skip(f"running as root without a way to drop CAP_DAC_OVERRIDE ({error}): permissions not testable")
        preexec = _drop_file_permission_override
    finished = subprocess.run(
        [str(CORPUSBOT), "index", str(corpus.folder), "--db", str(corpus.db), "--json"],
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def test_unreadable_files_and_folders_are_skipped_and_old_versions_kept(corpus: Corpus) -> None:
    secret = corpus.add("secret.txt", "A new article nobody may read, about the harvest.\n")
    locked = corpus.folder / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("Hidden article.\n")
    secret.chmod(0)
    locked.chmod(0)
    (corpus.folder / "talks.txt").chmod(0)  # indexed before: its article must survive
    try:
        summary = index_bound_by_permissions(corpus)
    finally:
        for path in (secret, locked, corpus.folder / "talks.txt"):
            path.chmod(0o700 if path.is_dir() else 0o600)
    reasons = {Path(item["path"]).name: item["reason"] for item in summary["skipped"]}
    assert "Permission denied" in reasons["secret.txt"] and "unreadable" in reasons["secret.txt"]
    assert "Permission denied" in reasons["talks.txt"]
    assert "unreadable folder" in reasons["locked"]
    assert summary["articles"] == 2
    corpus.assert_earlier_data_intact()


# -- size ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_50_mb_text_file_indexes_in_bounded_memory(corpus: Corpus) -> None:
    """50 MB of prose in one .txt file (with 1 MB of abbreviation-heavy text that once made the splitter quadratic).

    Measured in a child process: wall time and peak memory are printed (run with -s to see them); the memory
    bound is generous (about 25x the file) and only catches a blow-up, not a regression of a few percent.
    """
    rng = random.Random(11)
    # Letter-only words (one term each: the tokenizer splits "trade12" into two).
    suffixes = [f"{chr(97 + n // 26)}{chr(97 + n % 26)}" for n in range(400)]
    vocabulary = [f"{word}{suffix}" for suffix in suffixes for word in ("trade", "port", "grain", "tariff", "vote")]
    paragraphs = []
    size = 0
    while size < 49_000_000:
        sentences = [" ".join(rng.choices(vocabulary, k=rng.randint(8, 24))).capitalize() + "." for _ in range(5)]
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    paragraphs.insert(len(paragraphs) // 2, "Mr. Smith Dr. Jones " * 50_000)
    corpus.add("huge.txt", "\n\n".join(paragraphs))
    file_mb = (corpus.folder / "huge.txt").stat().st_size / 1e6
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    finished = subprocess.run(
        [str(CORPUSBOT), "index", str(corpus.folder), "--db", str(corpus.db), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    print(
        f"\n{file_mb:.1f} MB .txt: indexed in {seconds:.1f}s, peak RSS {peak_mb:.0f} MB, {summary['passages']} passages"
    )
    assert [Path(p).name for p in summary["added"]] == ["huge.txt"]
    assert summary["articles"] == 3 and summary["passages"] > 50_000
    assert peak_mb >= before / 1024 and peak_mb < 25 * file_mb
    corpus.assert_earlier_data_intact()
