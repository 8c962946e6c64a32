"""Readers during a reindex: no errors, only whole indexes (old or new), and the new one without a restart."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.maintenance.check import check_database

CORPUSBOT = Path(sys.executable).with_name("corpusbot")
MARKER = "zebrafinch"
PROBES = ("trade talks in london", "rare earth export licenses", MARKER)


def write_corpus(folder: Path, seed: int, articles: int, marker: str | None) -> None:
    rng = random.Random(seed)
    topical = "trade talks london rare earth export licenses delegation treasury tariff magnets".split()
    words = [f"w{i}" for i in range(2000)] + topical * 20
    folder.mkdir()
    lines = []
    for index in range(articles):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(10, 22)))
        if marker and index % 10 == 0:
            body += f" {marker}"
        lines.append(json.dumps({"id": f"a{index}", "title": f"Report {index}", "text": body + "."}))
    (folder / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def snapshot(service: SearchService) -> tuple[tuple[int, int], dict[str, list[tuple[str, int, float]]]]:
    stats = service.stats()
    answers = {
        probe: [(h.article.id, h.passage.ordinal, round(h.bm25, 9)) for h in service.ask(probe, k=5).hits]
        for probe in PROBES
    }
    return (stats.articles, stats.passages), answers


NEW_ARTICLES = 12_000


def test_a_reader_process_sees_only_whole_indexes_while_another_process_reindexes(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    write_corpus(old, seed=1, articles=2500, marker=None)
    # Big enough that the reindex lasts long after the writer's start-up (the reader must overlap it).
    write_corpus(new, seed=2, articles=NEW_ARTICLES, marker=MARKER)
    db = tmp_path / "index.db"
    index_corpus(db, [str(old)])
    service = SearchService(db)  # one long-lived reader, as the bot holds
    expected_old = snapshot(service)
    assert expected_old[0] == (2500, 2500) and not expected_old[1][MARKER]

    writer = subprocess.Popen(
        [str(CORPUSBOT), "index", str(new), "--db", str(db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    observed, reports = [], []
    while_writing = 0
    try:
        while True:
            running = writer.poll() is None
            observed.append(snapshot(service))
            if len(observed) % 10 == 0:
                reports.append(check_database(db, sample=30, queries=1))  # check reads one snapshot too
            while_writing += running
            if not running:
                break
            time.sleep(0.01)  # a busy bot, not a spinning one: leave the writer a CPU
        _, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    assert while_writing > 20, "the reader barely overlapped the reindex; make the corpus bigger"

    # The same service switched to the new index without a restart.
    expected_new = snapshot(service)
    assert expected_new[0] == (NEW_ARTICLES, NEW_ARTICLES) and expected_new[1][MARKER]
    mixed = 0
    for counts, answers in observed:  # stats and each probe are separate reads: a commit may fall between them
        assert counts in (expected_old[0], expected_new[0]), f"a reader saw a partial index: {counts}"
        for probe in PROBES:
            assert answers[probe] in (expected_old[1][probe], expected_new[1][probe]), f"partial index: {probe}"
        mixed += answers not in (expected_old[1], expected_new[1])
    assert mixed <= 1
    assert [a for _, a in observed].count(expected_old[1]) >= 1
    service.close()
    assert reports and all(report.ok for report in reports), [r.problems for r in reports if not r.ok]
    assert {report.counts["articles"] for report in reports} <= {2500, NEW_ARTICLES}
    assert check_database(db, queries=3).ok
