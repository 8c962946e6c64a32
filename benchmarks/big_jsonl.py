"""Index one big JSONL file: wall time, peak memory of the indexing process and its workers, progress on a terminal.

Usage:

    python -m benchmarks.big_jsonl --sizes 100MB,1GB [--workdir DIR] [--keep] [--no-tty] [--out FILE.json]

For each size, one JSONL file of that many bytes is generated (seeded, streamed to disk: the generator
never holds more than a batch of articles) in a temporary folder (``--workdir``, default a new folder in the
system temp dir), then ``corpusbot index FILE --db DB --json`` is run in a fresh process. That process is the
CLI itself (``corpusbot.bot.cli:main``, what the ``corpusbot`` script runs) started through a few lines that
report, at exit, its own peak RSS (the kernel's VmHWM) and the largest peak RSS of the worker processes it
forked and reaped (``getrusage(RUSAGE_CHILDREN)``). ``wait4`` gives the peak of the whole process tree too.
Unless ``--no-tty``, the run's stderr is a pseudo-terminal (as on a user's terminal), and the seconds until
the first progress output and the number of progress updates are recorded. Generated files and databases are
removed at the end unless ``--keep`` (a kept corpus of the same size and seed is reused).

The articles look like news: a headline, 1-12 paragraphs of 40-120 words (English word frequencies from
``benchmarks.corpus.vocabulary``, plus a long tail of names and numbers so the vocabulary keeps growing
with the corpus, as real news does), url, source, author and date.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DRIVER = r"""
import atexit, json, os, resource, sys

def _report():
    peak = 0.0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.environ["BIG_JSONL_REPORT"], "w", encoding="utf-8") as out:
        json.dump({"parent_peak_mb": peak, "workers_peak_mb": workers}, out)

atexit.register(_report)
from corpusbot.bot.cli import main
sys.argv[0] = "corpusbot"
main()
"""

SEED = 12
TAIL_SHARE = 0.03  # share of words drawn from the long tail (names, numbers)
TAIL_SIZE = 3_000_000
NAME_ENDINGS = ("ov", "ić", "sen", "ez", "é", "ão", "ski", "er", "ü", "ton")  # news has names from everywhere
QUOTE_SHARE = 0.3  # share of paragraphs with a quotation in curly quotes
SOURCES = ("Reuters", "AP", "Xinhua", "BBC", "Bloomberg", "Nikkei", "Le Monde", "The Hindu")
_UNITS = re.compile(r"^(\d+(?:\.\d+)?)\s*(KB|MB|GB|B)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    found = _UNITS.match(text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100MB, 1GB)")
    factor = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30}[(found.group(2) or "b").lower()]
    return int(float(found.group(1)) * factor)


def _tail_words(rng: np.random.Generator, count: int) -> list[str]:
    """Names and numbers of a Zipf-like long tail: most are rare, so the vocabulary grows with the corpus."""
    ranks = np.minimum(rng.zipf(1.3, size=count), TAIL_SIZE)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for rank in ranks.tolist():
        if rank % 5 == 0:
            out.append(f"{rank * 7 % 100_000:,}" if rank % 2 else str(1900 + rank % 130))
            continue
        name = []
        while rank:
            rank, digit = divmod(rank, 26)
            name.append(letters[digit])
        out.append(("".join(name) + NAME_ENDINGS[rank % len(NAME_ENDINGS)]).capitalize())
    return out


def generate(path: Path, size: int, seed: int = SEED) -> dict[str, int]:
    """Write JSONL articles to ``path`` until it holds ``size`` bytes; returns counts."""
    from benchmarks.corpus import vocabulary

    words, p, _ = vocabulary()
    word_array = np.array(words, dtype=object)
    rng = np.random.default_rng(seed)
    written = articles = paragraphs = 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            batch: list[str] = []
            for _ in range(200):
                n_paragraphs = int(rng.integers(1, 13))
                lengths = rng.integers(40, 121, size=n_paragraphs)
                drawn = word_array[rng.choice(len(words), size=int(lengths.sum()) + 10, p=p)].tolist()
                tail_at = np.flatnonzero(rng.random(len(drawn)) < TAIL_SHARE).tolist()
                for at, word in zip(tail_at, _tail_words(rng, len(tail_at)), strict=True):
                    drawn[at] = word
                title = " ".join(drawn[-10:]).capitalize()
                texts, at = [], 0
                for n in lengths.tolist():
                    sentence = drawn[at : at + n]
                    sentence[0] = sentence[0].capitalize()
                    if n > 12 and rng.random() < QUOTE_SHARE:
                        quote = int(rng.integers(1, n - 10))
                        sentence[quote] = "\u201c" + sentence[quote].capitalize()
                        sentence[quote + 8] += ",\u201d"
                    texts.append(" ".join(sentence) + ".")
                    at += n
                record = {
                    "id": f"n{articles:08d}",
                    "title": title,
                    "text": "\n\n".join(texts),
                    "url": f"https://news.example.com/{articles // 1000}/{articles}",
                    "source": SOURCES[articles % len(SOURCES)],
                    "author": " ".join(drawn[:2]).title(),
                    "published": f"20{10 + articles % 15:02d}-{1 + articles % 12:02d}-{1 + articles % 28:02d}",
                }
                batch.append(json.dumps(record, ensure_ascii=False))
                articles += 1
                paragraphs += n_paragraphs
            chunk = "\n".join(batch) + "\n"
            out.write(chunk)
            written += len(chunk.encode("utf-8"))
    return {"bytes": path.stat().st_size, "articles": articles, "paragraphs": paragraphs}


def corpus_file(workdir: Path, size: int) -> tuple[Path, dict[str, int]]:
    """The generated corpus of ``size`` bytes, reused if a finished one is there."""
    path = workdir / f"big-{size}.jsonl"
    info_path = workdir / f"big-{size}.json"
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("seed") == SEED and info.get("bytes") == path.stat().st_size:
            return path, info
    started = time.perf_counter()
    info = {**generate(path, size), "seed": SEED}
    info_path.write_text(json.dumps(info))
    print(f"generated {path} ({info['bytes'] / 1e6:,.0f} MB) in {time.perf_counter() - started:.0f}s", flush=True)
    return path, info


class _TerminalReader(threading.Thread):
    """Reads what the indexer writes to its terminal (stderr): when the first output came, how many updates."""

    def __init__(self, master: int, started: float) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.started = started
        self.first_output: float | None = None
        self.updates = 0
        self.tail = b""

    def run(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the other side closed
                return
            if not data:
                return
            if self.first_output is None:
                self.first_output = time.perf_counter() - self.started
            self.updates += data.count(b"\r") + data.count(b"\n")
            self.tail = (self.tail + data)[-400:]


def run_index(path: Path, db: Path, *, tty: bool) -> dict[str, object]:
    """``corpusbot index PATH --db DB --json`` in a fresh process: timings, peaks, the summary."""
    report = db.with_suffix(".report.json")
    env = {**os.environ, "BIG_JSONL_REPORT": str(report)}
    master = slave = -1
    if tty:
        master, slave = pty.openpty()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, "index", str(path), "--db", str(db), "--json"],
        stdout=subprocess.PIPE,
        stderr=slave if tty else subprocess.PIPE,
        env=env,
    )
    reader = None
    if tty:
        os.close(slave)
        reader = _TerminalReader(master, started)
        reader.start()
    assert process.stdout is not None
    stdout = process.stdout.read()
    stderr = process.stderr.read() if process.stderr else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if reader is not None:
        reader.join(5)
        os.close(master)
    if process.returncode != 0:
        tail = reader.tail if reader else stderr[-2000:]
        raise SystemExit(f"corpusbot index failed ({process.returncode}):\n{tail.decode('utf-8', 'replace')}")
    summary = json.loads(stdout)
    peaks = json.loads(report.read_text())
    report.unlink()
    return {
        "seconds": seconds,
        "articles": summary["articles"],
        "passages": summary["passages"],
        "passages_per_s": summary["passages"] / seconds,
        "parent_peak_mb": peaks["parent_peak_mb"],
        "workers_peak_mb": peaks["workers_peak_mb"],
        "tree_peak_mb": usage.ru_maxrss / 1024,
        "db_mb": db.stat().st_size / 1e6,
        "first_progress_s": reader.first_output if reader else None,
        "progress_updates": reader.updates if reader else None,
        "terminal_tail": reader.tail.decode("utf-8", "replace")[-160:] if reader else None,
    }


def table(rows: list[dict[str, object]]) -> str:
    head = (
        "| file | articles | passages | wall s | passages/s | parent peak RSS MB | worker peak RSS MB "
        "| first progress on the terminal s | progress updates |"
    )
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for row in rows:
        first = row["first_progress_s"]
        lines.append(
            f"| {row['file_mb']:,.0f} MB | {row['articles']:,} | {row['passages']:,} | {row['seconds']:.1f} "
            f"| {row['passages_per_s']:,.0f} | {row['parent_peak_mb']:,.0f} | {row['workers_peak_mb']:,.0f} "
            f"| {'none' if first is None else f'{first:.1f}'} | {row['progress_updates'] if first is not None else 0} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100MB,1GB", help="comma-separated file sizes, e.g. 100MB,1GB")
    parser.add_argument("--workdir", type=Path, help="where to generate the corpus (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and databases")
    parser.add_argument("--no-tty", action="store_true", help="stderr is a pipe, not a pseudo-terminal")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="big_jsonl-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    try:
        for size in sizes:
            path, info = corpus_file(workdir, size)
            db = workdir / f"big-{size}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            load = os.getloadavg()[0]
            result = run_index(path, db, tty=not args.no_tty)
            rows.append({"file_mb": info["bytes"] / 1e6, "file_bytes": info["bytes"], "load_before": load, **result})
            print(json.dumps(rows[-1]), flush=True)
            if not args.keep:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
