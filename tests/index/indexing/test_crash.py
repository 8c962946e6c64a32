"""SIGKILL `corpusbot index` mid-run: the previous index stays whole and usable, the next run completes.

The kill is made to land at a known point: a small driver runs the real CLI
(``bot.cli.main``) with hooks that stop the process at a chosen moment (after
reading some files, while splitting/tokenizing, in the middle of the write
transaction, right before COMMIT) and say so on stderr; the test then sends
SIGKILL. One more run is killed without any hook, as soon as the write-ahead
log starts growing. After every kill the database must answer exactly as
before, pass ``corpusbot check``, and a normal run must then complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.bot.cli import cli
from corpusbot.index import SearchService, index_corpus

ARTICLES = 6_000
FILES = 4
MARKER = "zebrafinch"  # only in the second version of the corpus
PROBES = ("trade talks in london", "rare earth export licenses", "w17 w230 delegation", MARKER)
CORPUSBOT = Path(sys.executable).with_name("corpusbot")
WAIT_SECONDS = 120

DRIVER = r"""
import os
import sqlite3
import sys
import time

PAUSE_AT = os.environ.get("CB_PAUSE_AT", "")
AFTER = int(os.environ.get("CB_PAUSE_AFTER", "1"))
state = {"calls": 0, "transaction": "none"}


def pause(where):
    sys.stderr.write(f"PAUSED {where} transaction={state['transaction']} pid={os.getpid()}\n")
    sys.stderr.flush()
    time.sleep(3600)


def count(where):
    state["calls"] += 1
    if state["calls"] == AFTER:
        pause(where)


if PAUSE_AT == "read":
    import corpusbot.index.corpus.readers as readers

    original_read = readers.read_file

    def read_file(*args, **kwargs):
        result = original_read(*args, **kwargs)
        count("read")
        return result

    readers.read_file = read_file
elif PAUSE_AT == "split":
    import corpusbot.index.indexing.passage_encoding as passage_encoding

    original_split = passage_encoding.split_passages

    def split_passages(*args, **kwargs):
        count("split")
        return original_split(*args, **kwargs)

    passage_encoding.split_passages = split_passages

original_connect = sqlite3.connect


def traced_connect(*args, **kwargs):
    conn = original_connect(*args, **kwargs)

    def trace(statement):
        head = statement.lstrip()[:24].upper()
        if head.startswith("BEGIN"):
            state["transaction"] = "_".join(head.split())
        elif head.startswith(("COMMIT", "ROLLBACK")):
            if PAUSE_AT == "commit" and state["transaction"] == "BEGIN_IMMEDIATE":
                pause("commit")
            state["transaction"] = "none"
        elif PAUSE_AT == "write" and head.startswith("INSERT INTO PASSAGES"):
            count("write")

    conn.set_trace_callback(trace)
    return conn


sqlite3.connect = traced_connect

from corpusbot.bot.cli import main  # noqa: E402

sys.argv[0] = "corpusbot"
main()
"""


def write_corpus(folder: Path, seed: int, marker: str | None) -> None:
    """``ARTICLES`` short articles in ``FILES`` JSONL files; every 10th mentions ``marker``."""
    rng = random.Random(seed)
    topical = "trade talks london rare earth export licenses delegation treasury tariff magnets".split()
    words = [f"w{i}" for i in range(3000)] + topical * 20
    folder.mkdir()
    per_file = ARTICLES // FILES
    for number in range(FILES):
        lines = []
        for index in range(number * per_file, (number + 1) * per_file):
            body = " ".join(rng.choice(words) for _ in range(rng.randint(10, 22)))
            if marker and index % 10 == 0:
                body += f" {marker}"
            record = {"id": f"a{index}", "title": f"Report {index} {rng.choice(topical)}", "text": body + "."}
            lines.append(json.dumps(record))
        (folder / f"part{number}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def answers(db: Path) -> dict[str, list[tuple[str, int, float]]]:
    """What the index answers to the probes: (article id, ¶, BM25 score) of the top 5."""
    service = SearchService(db)
    try:
        return {
            probe: [(h.article.id, h.passage.ordinal, round(h.bm25, 9)) for h in service.ask(probe, k=5).hits]
            for probe in PROBES
        }
    finally:
        service.close()


def counts(db: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages), "
            "(SELECT value FROM meta WHERE key = 'generation')"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1]), int(row[2])


@dataclass(frozen=True)
class Corpora:
    old: Path
    new: Path
    old_db: Path  # the index of ``old``: the "previous index" every kill must leave intact
    old_answers: dict[str, list[tuple[str, int, float]]]
    new_answers: dict[str, list[tuple[str, int, float]]]
    old_counts: tuple[int, int, int]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Corpora:
    root = tmp_path_factory.mktemp("crash")
    old, new = root / "old", root / "new"
    write_corpus(old, seed=1, marker=None)
    write_corpus(new, seed=2, marker=MARKER)
    old_db, new_db = root / "old.db", root / "new.db"
    index_corpus(old_db, [str(old)])
    index_corpus(new_db, [str(new)])
    result = Corpora(old, new, old_db, answers(old_db), answers(new_db), counts(old_db))
    assert result.old_answers[MARKER] == [] and result.new_answers[MARKER], "the probes must tell old from new"
    assert result.old_answers != result.new_answers
    return result


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the test can clean up everything it started
    )


def run_until_paused(tmp_path: Path, db: Path, corpus: Path, pause_at: str, after: int) -> tuple[int, str]:
    """Run the hooked CLI until it pauses at ``pause_at``, SIGKILL it; returns (returncode, the pause line)."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {"CB_PAUSE_AT": pause_at, "CB_PAUSE_AFTER": str(after)}
    process = start([sys.executable, str(driver), "index", str(corpus), "--db", str(db)], tmp_path, env)
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("PAUSED"):
                break
        else:
            pytest.fail(f"the indexer never reached {pause_at!r}; stderr:\n{''.join(lines)}")
        os.kill(process.pid, signal.SIGKILL)
        return process.wait(WAIT_SECONDS), lines[-1]
    finally:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(WAIT_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.stderr:
        process.stderr.close()


def assert_previous_index_intact(db: Path, corpora: Corpora) -> None:
    assert counts(db) == corpora.old_counts
    assert answers(db) == corpora.old_answers
    result = CliRunner().invoke(cli, ["check", "--db", str(db), "--queries", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK:")
    ask = CliRunner().invoke(cli, ["ask", "--json", "--db", str(db), "trade talks in london"])
    assert ask.exit_code == 0 and json.loads(ask.stdout)["results"]


def wal_bytes(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


# Where the kill lands: (hook, after how many hook calls).
KILL_POINTS = {
    "reading files": ("read", 2),  # two of the four files read and parsed
    "splitting and tokenizing": ("split", ARTICLES // 2),  # half the articles split into passages
    "inserting passages": ("write", ARTICLES // 2),  # half the new passages inserted, in the transaction
    "just before COMMIT": ("commit", 1),  # everything written, not committed
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_leaves_the_previous_index_whole(point: str, corpora: Corpora, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    shutil.copy(corpora.old_db, db)
    hook, after = KILL_POINTS[point]
    returncode, paused = run_until_paused(tmp_path, db, corpora.new, hook, after)
    assert returncode == -signal.SIGKILL
    if hook in ("write", "commit"):
        # The kill really landed inside the one write transaction, with data already in the WAL.
        assert "transaction=BEGIN_IMMEDIATE" in paused, paused
        assert wal_bytes(db) > 0
    else:
        assert "transaction=none" in paused, paused
    assert_previous_index_intact(db, corpora)


def test_next_run_after_a_kill_completes_normally(corpora: Corpora, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    shutil.copy(corpora.old_db, db)
    returncode, _ = run_until_paused(tmp_path, db, corpora.new, "commit", 1)
    assert returncode == -signal.SIGKILL
    finished = subprocess.run(
        [str(CORPUSBOT), "index", str(corpora.new), "--db", str(db), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["articles"] == ARTICLES and len(summary["added"]) == FILES and len(summary["removed"]) == FILES
    assert answers(db) == corpora.new_answers
    assert counts(db)[2] == corpora.old_counts[2] + 1  # exactly one more committed generation
    result = CliRunner().invoke(cli, ["check", "--db", str(db), "--queries", "5"])
    assert result.exit_code == 0, result.output


def test_kill_without_hooks_once_the_wal_grows(corpora: Corpora, tmp_path: Path) -> None:
    """The plain console script, killed from outside as soon as its write-ahead log passes 256 kB."""
    db = tmp_path / "index.db"
    shutil.copy(corpora.old_db, db)
    process = start([str(CORPUSBOT), "index", str(corpora.new), "--db", str(db)], tmp_path)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while wal_bytes(db) < 256 * 1024 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(WAIT_SECONDS)
    finally:
        _kill_group(process)
    # Killed mid-write or (if the commit won the race) just after it: old or new, never a mix.
    seen = answers(db)
    assert seen in (corpora.old_answers, corpora.new_answers)
    assert counts(db)[:2] in (corpora.old_counts[:2], (ARTICLES, ARTICLES))
    result = CliRunner().invoke(cli, ["check", "--db", str(db), "--queries", "5"])
    assert result.exit_code == 0, result.output
    rerun = subprocess.run(
        [str(CORPUSBOT), "index", str(corpora.new), "--db", str(db)], cwd=tmp_path, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert answers(db) == corpora.new_answers


def test_index_writes_in_one_begin_immediate_transaction_in_wal_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every data change of a reindex happens between one BEGIN IMMEDIATE and its COMMIT."""
    folder = tmp_path / "small"
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.txt").write_text(f"Article {number} about trade talks in London.\n\nMore text.\n")
    db = tmp_path / "small.db"
    index_corpus(db, [str(folder)])
    (folder / "1.txt").write_text("A changed article about rare earth export licenses.\n")
    (folder / "2.txt").unlink()
    (folder / "3.txt").write_text("A new article about the delegation.\n")

    statements: list[str] = []
    original_connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        conn = original_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    summary = index_corpus(db, [str(folder)])
    monkeypatch.undo()
    assert summary.updated and summary.removed and summary.added

    heads = [" ".join(s.split()[:2]).upper() for s in statements]
    # (sqlite-utils wraps each CREATE TABLE IF NOT EXISTS in its own short transaction: no data in those.)
    begins = [i for i, h in enumerate(heads) if h == "BEGIN IMMEDIATE"]
    assert len(begins) == 1, begins
    commit = next(i for i in range(begins[0], len(heads)) if heads[i].startswith("COMMIT"))
    writes = [i for i, h in enumerate(heads) if h.split()[0] in ("INSERT", "UPDATE", "DELETE", "REPLACE", "DROP")]
    assert len(writes) > 10, "the reindex wrote nothing?"
    outside = [statements[i][:80] for i in writes if not begins[0] < i < commit]
    assert outside == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_killing_the_indexer_leaves_no_worker_processes(corpora: Corpora, tmp_path: Path) -> None:
    """With worker processes forced on, SIGKILL of the main process must not leave them running."""
    driver = tmp_path / "workers.py"
    driver.write_text(
        "import os, sys, time\n"
        "import corpusbot.index.indexing.passage_encoding as passage_encoding\n"
        "passage_encoding.PARALLEL_MIN_CHARS = 0\n"
        "passage_encoding.CHUNK_CHARS = 50_000\n"
        "original = passage_encoding._encode_chunk\n"
        "def encode(chunk):\n"
        "    sys.stderr.write(f'WORKER {os.getpid()}\\n'); sys.stderr.flush()\n"
        "    return original(chunk)\n"
        "passage_encoding._encode_chunk = encode\n"
        "from corpusbot.bot.cli import main\n"
        "sys.argv[0] = 'corpusbot'\n"
        "main()\n",
        encoding="utf-8",
    )
    db = tmp_path / "index.db"
    shutil.copy(corpora.old_db, db)
    process = start([sys.executable, str(driver), "index", str(corpora.new), "--db", str(db)], tmp_path)
    workers: set[int] = set()
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("WORKER"):
                workers.add(int(line.split()[1]))
                if len(workers) >= 2:
                    break
        assert len(workers) >= 2, "the indexer did not start worker processes"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(WAIT_SECONDS)
        deadline = time.monotonic() + 10
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(workers), f"orphaned indexer workers still running: {sorted(_alive(workers))}"
    finally:
        _kill_group(process)
    assert_previous_index_intact(db, corpora)


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive
