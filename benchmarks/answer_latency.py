"""Where the time of a whole answer goes: ``SearchService.ask`` by stage, and the ranking core alone.

One thread, warm: the index is opened, every query is asked once (and ranked once by the core) untimed, then
each query is timed ``--rounds`` times. Prints one markdown table of p50/p95/p99 per stage. Usage::

    python -m benchmarks.answer_latency --db /tmp/serving-bench/1M.db --queries /tmp/serving-bench/1M/queries.txt

Stages are timed by wrapping the service's own steps (``StageClock``), each counted without the steps it calls:

- **core**: the query terms' postings (``_postings``) and the compiled BM25 top-k (``Scorer.top``);
- **fetch**: passage and article rows read from SQLite;
- **rerank**: the second stage over the rerank window (tokens, adjacent words, article evidence, confidence);
- **answers**: answer finding in the candidates of who/when/where/how-many questions, the answer line, the
  article-metadata answer;
- **highlight/near-dups**: the highlighted words and sentence of each hit, and the near-duplicate collapse;
- **other**: the rest of ``ask`` (question cleanup, query analysis, the read transaction, building the answer);
- **total**: the whole ``ask`` (the same call, timed around it: the wrappers' own cost is in it).

**core alone** is ``TermRanker.top(tokenizer.terms(q), 10)`` on its own connection and cache, as
``benchmarks/worker.py`` times the ranking core (warm like the rest). The wrappers cost well under a microsecond
a call; ``--no-stages`` times ``ask`` unwrapped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from corpusbot.index.engine.store import TermRanker
from corpusbot.index.search import service as service_module
from corpusbot.index.search.service import SearchService
from corpusbot.index.text.tokenizer import default_tokenizer

STAGES = ("core", "fetch", "rerank", "answers", "highlight/near-dups", "other", "total")
# (stage, where, attribute): the service's steps wrapped on the instance ("service"), its scorer ("scorer"), the
# service module ("module") or the answer search's class ("finder", its __call__ for each candidate). A step renamed
# or removed is reported (``StageClock.install`` raises), not skipped; OLD_HOOKS are steps of earlier versions, timed
# when present (to compare a tree from before a change).
OLD_HOOKS = (
    ("answers", "module", "find_answer"),
    ("fetch", "service", "_passage_texts"),
    ("highlight/near-dups", "service", "_matches"),
    ("highlight/near-dups", "service", "_best_sentence"),
    ("fetch", "service", "_read_window"),
)
HOOKS = (
    ("core", "service", "_postings"),
    ("core", "scorer", "top"),
    ("fetch", "service", "_passages"),
    ("fetch", "service", "_article_infos"),
    ("rerank", "service", "_rank"),
    ("rerank", "service", "_rerank"),
    ("rerank", "service", "_rerank_lazily"),
    ("rerank", "service", "_second_stage"),
    ("rerank", "service", "_pairs_held"),
    ("rerank", "service", "_article_evidence"),
    ("rerank", "service", "_is_confident"),
    ("answers", "finder", "__call__"),
    ("answers", "module", "_answer_line"),
    ("answers", "module", "_answers_first"),
    ("answers", "service", "_about_articles"),
    ("highlight/near-dups", "service", "_highlights"),
    ("highlight/near-dups", "module", "_collapse_near_duplicates"),
    ("highlight/near-dups", "service", "_maybe_near_pairs"),
)


@dataclass
class StageClock:
    """Exclusive nanoseconds per stage for the question being timed (a step's callees count in their own stage)."""

    spent: dict[str, int] = field(default_factory=dict)
    _open: list[list[int]] = field(default_factory=list)  # per running step: [its callees' nanoseconds]
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def wrap(self, stage: str, step: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter_ns
        spent, running = self.spent, self._open

        def timed(*args: Any, **kwargs: Any) -> Any:
            inner = [0]
            running.append(inner)
            started = clock()
            try:
                return step(*args, **kwargs)
            finally:
                elapsed = clock() - started
                running.pop()
                spent[stage] = spent.get(stage, 0) + elapsed - inner[0]
                if running:
                    running[-1][0] += elapsed

        return timed

    def install(self, service: SearchService) -> None:
        """Wrap the steps of ``service`` (its scorer must be loaded: ask one question first)."""
        finder = getattr(service_module, "AnswerFinder", None)
        owners = {"service": service, "scorer": service._scorer, "module": service_module, "finder": finder}
        # (a tree from before AnswerFinder: find_answer is timed instead, by OLD_HOOKS)
        hooks = [hook for hook in HOOKS if hook[1] != "finder"] if finder is None else list(HOOKS)
        old = [(stage, where, name) for stage, where, name in OLD_HOOKS if hasattr(owners[where], name)]
        for stage, where, name in [*hooks, *old]:
            owner = owners[where]
            if owner is None or not callable(getattr(owner, name, None)):
                raise RuntimeError(f"no step {where}.{name} to time: update benchmarks/answer_latency.HOOKS")
            original = getattr(owner, name)
            setattr(owner, name, self.wrap(stage, original))
            if where in ("module", "finder"):
                self._undo.append(partial(setattr, owner, name, original))
            else:  # the wrapper shadows the class's method on the instance
                self._undo.append(partial(delattr, owner, name))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    @contextmanager
    def question(self) -> Iterator[dict[str, int]]:
        """Stage nanoseconds of one question, ``total`` and ``other`` included once it ends."""
        self.spent.clear()
        started = time.perf_counter_ns()
        result: dict[str, int] = {}
        yield result
        total = time.perf_counter_ns() - started
        result.update(self.spent)
        result["total"] = total
        result["other"] = total - sum(self.spent.values())


@dataclass(frozen=True)
class Timings:
    stages: dict[str, list[float]]  # milliseconds per timed question, by stage
    core_alone: list[float]
    queries: int
    rounds: int
    k: int
    load_before: float
    load_after: float


def measure(db: Path, queries: list[str], *, k: int = 3, rounds: int = 1, stages: bool = True) -> Timings:
    """Warm up on every query, then time each ``rounds`` times: ``ask`` by stage, then the core alone."""
    load_before = os.getloadavg()[0]
    service = SearchService(db)
    ranker = TermRanker(db)
    tokenizer = default_tokenizer()
    for query in queries:  # warm: imports, page cache, postings cache, tokenizer cache
        service.ask(query, k=k)
        ranker.top(tokenizer.terms(query), 10)
    clock = StageClock()
    if stages:
        clock.install(service)
    by_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    try:
        for _ in range(rounds):
            for query in queries:
                if stages:
                    with clock.question() as spent:
                        service.ask(query, k=k)
                else:
                    started = time.perf_counter_ns()
                    service.ask(query, k=k)
                    spent = {"total": time.perf_counter_ns() - started}
                for stage in STAGES:
                    by_stage[stage].append(spent.get(stage, 0) / 1e6)
    finally:
        clock.uninstall()
    core = []
    for _ in range(rounds):
        for query in queries:
            started = time.perf_counter_ns()
            ranker.top(tokenizer.terms(query), 10)
            core.append((time.perf_counter_ns() - started) / 1e6)
    ranker.close()
    service.close()
    if not stages:
        by_stage = {"total": by_stage["total"]}
    return Timings(by_stage, core, len(queries), rounds, k, load_before, os.getloadavg()[0])


def table(timings: Timings, label: str = "") -> str:
    """Markdown: one row per stage, p50/p95/p99/mean in milliseconds."""
    rows = ["| run | stage | p50 ms | p95 ms | p99 ms | mean ms |", "|---|---|---|---|---|---|"]
    named = [*timings.stages.items(), ("core alone (TermRanker, top-10)", timings.core_alone)]
    for stage, values in named:
        array = np.asarray(values)
        p50, p95, p99 = np.percentile(array, [50, 95, 99]) if len(array) else (0.0, 0.0, 0.0)
        mean = float(array.mean()) if len(array) else 0.0
        rows.append(f"| {label} | {stage} | {p50:.3f} | {p95:.3f} | {p99:.3f} | {mean:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the index database")
    parser.add_argument("--queries", type=Path, required=True, help="one question a line")
    parser.add_argument("--k", type=int, default=3, help="passages per answer (default 3, as the bot asks)")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the queries (default 1)")
    parser.add_argument("--no-stages", action="store_true", help="time ask() without the stage wrappers")
    parser.add_argument("--label", default="", help="the run's name in the table's first column")
    options = parser.parse_args(argv)
    if not options.db.exists():
        print(f"No index at {options.db}: build one with `corpusbot index --db {options.db} FOLDER`.", file=sys.stderr)
        return 2
    queries = [line for line in options.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not queries:
        print(f"{options.queries} holds no questions (one a line).", file=sys.stderr)
        return 2
    timings = measure(options.db, queries, k=options.k, rounds=options.rounds, stages=not options.no_stages)
    print(table(timings, options.label))
    print(
        f"\n{timings.queries} questions × {timings.rounds} round(s), k={timings.k}, one thread, warm; "
        f"1-minute load average {timings.load_before:.2f} before, {timings.load_after:.2f} after."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
