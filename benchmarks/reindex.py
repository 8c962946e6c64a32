"""Incremental reindex after 1% of the articles change, against a full rebuild of the same changed corpus.

Run by ``benchmarks.run`` (engine name ``corpusbot-reindex``); usage:

    python -m benchmarks.reindex JSONL_FOLDER WORK_DIR QUERIES_FILE [--share 0.01] [--scenarios a,b]

Every 100th article (for a 1% share) is changed: its text is replaced by the
next article's text (other words, another passage count), title and id kept.
Scenarios, each in its own copy of the corpus under WORK_DIR:

- ``separate-files``: the articles that change are kept one per file (a
  one-line ``.jsonl`` each), the rest in the JSONL parts without them;
- ``in-place``: the changed articles are rewritten inside the JSONL parts, so
  every part file changes (the indexer re-reads whole changed files).

Per scenario: build the index of the original corpus, change the files, time
``index_corpus`` incremental, then time a full rebuild of the changed corpus
into a second database, and check that both give the same top-10 (scores and
passages, ties aside) for the benchmark queries. Each build runs in a fresh
process (``python -m benchmarks.reindex --step ...``) so its peak memory is its own.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.memory import peak_rss_mb

SCENARIOS = ("separate-files", "in-place")
TITLE_WEIGHT = 0  # as the corpusbot engine of the benchmark
K = 10
RTOL = 1e-9


def changed_lines(n_articles: int, share: float) -> set[int]:
    """The article (line) numbers that change: every ``1/share``-th one, offset to the middle of each stride."""
    stride = max(1, round(1 / share))
    return set(range(stride // 2, n_articles - 1, stride))  # never the last: it borrows the next article's text


def read_lines(folder: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            lines.extend(line.rstrip("\n") for line in handle)
    return lines


def changed_record(lines: list[str], i: int) -> str:
    record = json.loads(lines[i])
    record["text"] = json.loads(lines[i + 1])["text"]
    return json.dumps(record)


def write_layout(folder: Path, lines: list[str], changed: set[int], scenario: str, *, after: bool) -> None:
    """The corpus of ``scenario`` before (``after=False``) or after the change."""
    if folder.exists() and not after:
        shutil.rmtree(folder)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    per_part = 10_000
    if scenario == "separate-files":
        (folder / "articles").mkdir(exist_ok=True)
        for i in sorted(changed):
            text = changed_record(lines, i) if after else lines[i]
            (folder / "articles" / f"article-{i:08d}.jsonl").write_text(text + "\n", encoding="utf-8")
        if after:
            return
    for start in range(0, len(lines), per_part):
        out = []
        for i in range(start, min(start + per_part, len(lines))):
            if i in changed:
                if scenario == "separate-files":
                    continue
                out.append(changed_record(lines, i) if after else lines[i])
            else:
                out.append(lines[i])
        (folder / "parts" / f"part-{start // per_part:04d}.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")


def step(db: Path, corpus: Path, full: bool) -> dict:
    """One timed ``index_corpus`` in this (fresh) process."""
    from corpusbot.index.indexing.indexer import index_corpus

    load = os.getloadavg()[0]  # other work on the machine skews the timing: reported with it
    started = time.perf_counter()
    summary = index_corpus(db, [str(corpus)], full=full, title_weight=TITLE_WEIGHT)
    seconds = time.perf_counter() - started
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "peak_rss_mb": max(peak_rss_mb(), workers),
        "passages": summary.passages,
        "articles": summary.articles,
        "files_changed": len(summary.added) + len(summary.updated),
        "load_1min": load,
    }


def _run_step(db: Path, corpus: Path, full: bool) -> dict:
    args = [sys.executable, "-m", "benchmarks.reindex", "--step", str(db), str(corpus), "full" if full else "update"]
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"reindex step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tops(db: Path, queries: list[str]) -> list[list[tuple[str, int, float]]]:
    """Per query: top-10 as (article id, passage ordinal, score); passage ids differ between the two databases."""
    import sqlite3

    from corpusbot.index.engine.store import TermRanker
    from corpusbot.index.text.tokenizer import default_tokenizer

    ranker = TermRanker(db)
    tokenizer = default_tokenizer()
    conn = sqlite3.connect(db)
    out = []
    try:
        for query in queries:
            found = ranker.top(tokenizer.terms(query), K)
            where = {
                row[0]: (row[1], row[2])
                for row in conn.execute(
                    f"SELECT id, article_id, ordinal FROM passages WHERE id IN ({','.join('?' * len(found))})",
                    [pid for pid, _ in found],
                )
            }
            out.append([(*where[pid], score) for pid, score in found])
    finally:
        conn.close()
        ranker.close()
    return out


def same_top(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> bool:
    """Same scores, and the same passages above the last (possibly tied) score."""
    import numpy as np

    if len(a) != len(b):
        return False
    if not a:
        return True
    sa, sb = [x[2] for x in a], [x[2] for x in b]
    if not np.allclose(sa, sb, rtol=RTOL, atol=0):
        return False
    last = sa[-1]
    above = {x[:2] for x in a if x[2] > last * (1 + RTOL)}
    return above == {x[:2] for x in b if x[2] > last * (1 + RTOL)}


def scenario_run(name: str, work: Path, lines: list[str], changed: set[int], queries: list[str]) -> dict:
    folder = work / name
    corpus = folder / "corpus"
    incremental_db, full_db = folder / "incremental.db", folder / "full.db"
    for db in (incremental_db, full_db):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    write_layout(corpus, lines, changed, name, after=False)
    print(f"   reindex {name}: initial build", file=sys.stderr, flush=True)
    initial = _run_step(incremental_db, corpus, full=True)
    write_layout(corpus, lines, changed, name, after=True)
    print(f"   reindex {name}: incremental", file=sys.stderr, flush=True)
    incremental = _run_step(incremental_db, corpus, full=False)
    print(f"   reindex {name}: full rebuild", file=sys.stderr, flush=True)
    full = _run_step(full_db, corpus, full=True)
    a, b = tops(incremental_db, queries), tops(full_db, queries)
    identical = sum(same_top(x, y) for x, y in zip(a, b, strict=True))
    if incremental["passages"] != full["passages"]:
        raise RuntimeError(f"{name}: incremental has {incremental['passages']} passages, full {full['passages']}")
    shutil.rmtree(folder, ignore_errors=True)
    what = {
        "separate-files": "changed articles are one file each",
        "in-place": "changed articles rewritten inside the JSONL parts (every part changes)",
    }[name]
    return {
        "name": name,
        "what": what,
        "initial_s": initial["seconds"],
        "incremental_s": incremental["seconds"],
        "incremental_peak_rss_mb": incremental["peak_rss_mb"],
        "incremental_load_1min": incremental["load_1min"],
        "full_s": full["seconds"],
        "full_peak_rss_mb": full["peak_rss_mb"],
        "full_load_1min": full["load_1min"],
        "files_changed": incremental["files_changed"],
        "passages": full["passages"],
        "identical_top10": identical,
        "queries": len(queries),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--step":
        db, corpus, mode = argv[1:4]
        print(json.dumps(step(Path(db), Path(corpus), full=mode == "full")))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reindex")
    parser.add_argument("jsonl_folder", type=Path)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("queries_file", type=Path)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)
    lines = read_lines(args.jsonl_folder)
    changed = changed_lines(len(lines), args.share)
    queries = args.queries_file.read_text(encoding="utf-8").splitlines()
    changed_passages = sum(len(json.loads(lines[i + 1])["text"].split("\n\n")) for i in changed)
    scenarios = [
        scenario_run(name, args.work_dir, lines, changed, queries) for name in args.scenarios.split(",") if name
    ]
    shutil.rmtree(args.work_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "articles": len(lines),
                "changed_articles": len(changed),
                "changed_share": len(changed) / len(lines),
                "changed_passages": changed_passages,
                "title_weight": TITLE_WEIGHT,
                "scenarios": scenarios,
            }
        )
    )


if __name__ == "__main__":
    main()
