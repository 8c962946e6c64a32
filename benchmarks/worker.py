"""A fresh query process: import the engine, open its index, answer the queries; print one JSON object.

Run by ``benchmarks.run``; usage: python -m benchmarks.worker ENGINE INDEX_DIR QUERIES_FILE [REFERENCE]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.memory import peak_rss_mb

K = 10


def main() -> None:
    started = time.perf_counter()
    name, folder, queries_file = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    from benchmarks.engines import ENGINES

    engine = ENGINES[name]
    queries = queries_file.read_text(encoding="utf-8").splitlines()
    harness = time.perf_counter()
    before = set(sys.modules)
    search = engine.open(folder)
    opened = time.perf_counter()
    first = search(queries[0], K)
    ready = time.perf_counter()
    wall_ready = time.time()
    del first
    engine_tops = json.loads(Path(sys.argv[4]).read_text()) if len(sys.argv) > 4 else None
    reference: dict = {"own": [], "engines": {name: [] for name in engine_tops or {}}}
    latencies = []
    tops = []
    for i, query in enumerate(queries):
        t0 = time.perf_counter()
        top = search(query, K)
        latencies.append((time.perf_counter() - t0) * 1000)
        tops.append(top)
        if engine_tops is not None:
            _reference(search.last_scores, top, i, engine_tops, reference)  # type: ignore[attr-defined]
    result = {
        "engine": name,
        "open_s": opened - harness,
        "first_query_ms": (ready - opened) * 1000,
        "process_to_ready_s": ready - started,
        "ready_wall": wall_ready,
        "latencies_ms": latencies,
        "tops": tops,
        "modules_loaded": len(set(sys.modules) - before),
        "peak_rss_mb": peak_rss_mb(),
    }
    if engine_tops is not None:
        result["reference"] = reference
    print(json.dumps(result))


def _reference(scores, own_top: list[int], i: int, engine_tops: dict[str, list[list[int]]], out: dict) -> None:
    """rank-bm25's scores of its own top-10 and of every engine's returned passages for query ``i``."""
    out["own"].append([float(scores[j]) for j in own_top])
    for name, tops in engine_tops.items():
        out["engines"][name].append([float(scores[j]) for j in tops[i]])


if __name__ == "__main__":
    main()
