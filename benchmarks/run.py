"""Run the benchmark: corpusbot and peer BM25 engines side by side on one synthetic corpus.

    python -m benchmarks.run --sizes 10k,100k,1M

For each size: generate (or reuse) the corpus and queries under
benchmarks/data/, build every installed engine in a fresh process, then query
each in a fresh process (cold start, latency, peak RSS), and compare every
engine's top-10 with rank-bm25's on corpusbot's token lists. Writes
benchmarks/results/<size>.json and prints (and saves) a Markdown report.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from .corpus import generate
from .engines import ENGINES, SHARED_INDEX

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_ENGINES = "corpusbot,corpusbot-service,bm25s,bm25s-numba,tantivy,sqlite-fts5,rank-bm25"
PEERS = ("rank-bm25", "bm25s", "bm25s-numba", "tantivy", "sqlite-fts5")
RTOL = 1e-9


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else str(size)


def run_size(size: int, args: argparse.Namespace) -> dict:
    data = Path(args.data) / label(size)
    print(f"== {label(size)} passages: corpus", file=sys.stderr, flush=True)
    started = time.perf_counter()
    corpus = generate(data, size, args.queries, seed=args.seed)
    print(f"   corpus ready in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    queries_file = data / "queries.txt"
    names = [n for n in args.engines.split(",") if n]
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for name in names:
        engine = ENGINES[name]
        if not engine.available():
            skipped[name] = f"{engine.module} not installed (pip install '.[bench]')"
            continue
        if name == "rank-bm25" and size > args.rank_bm25_max:
            skipped[name] = f"skipped above {label(args.rank_bm25_max)} passages (--rank-bm25-max)"
            continue
        index_dir = data / "indexes" / SHARED_INDEX.get(name, name)
        entry: dict = {"how": engine.how}
        if name not in SHARED_INDEX:
            if index_dir.exists():
                shutil.rmtree(index_dir)
            print(f"   build {name}", file=sys.stderr, flush=True)
            entry["build"] = _json_process(["benchmarks.build", name, str(corpus.folder), str(index_dir)])
        if name == "rank-bm25":
            results[name] = entry
            continue  # queried last, with every engine's answers to score
        entry["query"] = _query(name, index_dir, queries_file, None)
        entry["index_bytes"], entry["disk_bytes"] = engine.index_bytes(index_dir)
        results[name] = entry
    if "rank-bm25" in results:
        index_dir = data / "indexes" / "rank-bm25"
        tops = {n: r["query"]["tops"] for n, r in results.items() if "query" in r}
        tops_file = data / "tops.json"
        tops_file.write_text(json.dumps(tops))
        entry = results["rank-bm25"]
        entry["query"] = _query("rank-bm25", index_dir, queries_file, tops_file)
        entry["index_bytes"], entry["disk_bytes"] = ENGINES["rank-bm25"].index_bytes(index_dir)
        _agreement(results, entry["query"].pop("reference"))
    if not args.keep_indexes:
        shutil.rmtree(data / "indexes", ignore_errors=True)
    return {
        "size": size,
        "queries": len(corpus.queries),
        "vocabulary": corpus.vocabulary_source,
        "engines": results,
        "skipped": skipped,
    }


def _json_process(module_args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", *module_args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(module_args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _query(name: str, index_dir: Path, queries_file: Path, tops_file: Path | None) -> dict:
    print(f"   query {name}", file=sys.stderr, flush=True)
    spawned = time.time()
    extra = [str(tops_file)] if tops_file else []
    result = _json_process(["benchmarks.worker", name, str(index_dir), str(queries_file), *extra])
    result["cold_start_s"] = result.pop("ready_wall") - spawned
    lat = np.array(result["latencies_ms"])
    result.update(
        p50_ms=float(np.percentile(lat, 50)), p95_ms=float(np.percentile(lat, 95)), p99_ms=float(np.percentile(lat, 99))
    )
    return result


def _agreement(results: dict[str, dict], reference: dict) -> None:
    """Per engine: mean overlap with rank-bm25's top-10, and how many top-10s are identical ties aside."""
    own = reference["own"]
    for name, scores_per_query in reference["engines"].items():
        query = results[name]["query"]
        overlaps, exact = [], 0
        ref_tops = results["rank-bm25"]["query"]["tops"]
        for i, got_scores in enumerate(scores_per_query):
            want = own[i]
            got_ids, want_ids = set(query["tops"][i]), set(ref_tops[i])
            overlaps.append(len(got_ids & want_ids) / len(want_ids) if want_ids else float(not got_ids))
            # Identical ties aside: the returned passages' exact scores are the reference's top scores.
            if len(got_scores) == len(want) and np.allclose(sorted(got_scores, reverse=True), want, rtol=RTOL, atol=0):
                exact += 1
        query["overlap_at_10"] = float(np.mean(overlaps))
        query["identical_top10"] = exact
    results["rank-bm25"]["query"]["overlap_at_10"] = 1.0
    results["rank-bm25"]["query"]["identical_top10"] = len(own)


def report(runs: list[dict], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    for run in runs:
        engines = run["engines"]
        lines.append(f"### {run['size']:,} passages ({run['queries']} queries; {run['vocabulary']})")
        lines.append("")
        lines.append(
            "| engine | build s | passages/s | index MB (no text) | disk MB | build peak RSS MB | cold start s "
            "| open s | 1st query ms | p50 ms | p95 ms | p99 ms | query peak RSS MB | overlap@10 vs rank-bm25 "
            "| identical top-10 |"
        )
        lines.append("|" + "---|" * 15)
        for name, r in engines.items():
            q = r.get("query", {})
            b = r.get("build") or engines.get(SHARED_INDEX.get(name, ""), {}).get("build") or {}
            build_s = b.get("build_s", 0) + b.get("save_s", 0)
            shared = name in SHARED_INDEX
            lines.append(
                "| "
                + " | ".join(
                    [
                        name,
                        "(shared)" if shared else _fmt(build_s),
                        "" if shared else _fmt(run["size"] / build_s if build_s else None),
                        "" if shared else _fmt(r.get("index_bytes", 0) / 1e6),
                        "" if shared else _fmt(r.get("disk_bytes", 0) / 1e6),
                        "" if shared else _fmt(max(b.get("peak_rss_mb", 0), b.get("worker_peak_rss_mb", 0))),
                        _fmt(q.get("cold_start_s")),
                        _fmt(q.get("open_s")),
                        _fmt(q.get("first_query_ms")),
                        _fmt(q.get("p50_ms")),
                        _fmt(q.get("p95_ms")),
                        _fmt(q.get("p99_ms")),
                        _fmt(q.get("peak_rss_mb")),
                        _fmt(q.get("overlap_at_10")),
                        f"{q['identical_top10']}/{run['queries']}" if "identical_top10" in q else "n/a",
                    ]
                )
                + " |"
            )
        lines.append("")
        lines.extend(_ratios(run))
        for name, why in run["skipped"].items():
            lines.append(f"- {name}: {why}")
        lines.append("")
    lines.append("Engines: " + "; ".join(f"**{n}**: {ENGINES[n].how}" for n in ENGINES))
    lines.append("")
    lines.append("Versions: " + ", ".join(_versions()))
    return "\n".join(lines)


def _ratios(run: dict) -> list[str]:
    engines = run["engines"]
    peers = {n: r for n, r in engines.items() if n in PEERS and "query" in r}
    if not peers:
        return []
    fastest50 = min(peers, key=lambda n: peers[n]["query"]["p50_ms"])
    fastest95 = min(peers, key=lambda n: peers[n]["query"]["p95_ms"])
    built = {n: r for n, r in peers.items() if "build" in r}
    fastest_build = min(built, key=lambda n: built[n]["build"]["build_s"] + built[n]["build"].get("save_s", 0))
    fb = built[fastest_build]["build"]
    fb_s = fb["build_s"] + fb.get("save_s", 0)
    out = [
        f"Ratios vs the fastest peer (p50: {fastest50}, p95: {fastest95}, build: {fastest_build}); "
        "below 1 = faster than it.",
        "",
        "| engine | p50 ratio | p95 ratio | build time ratio | query RSS vs tantivy | index size vs tantivy |",
        "|---|---|---|---|---|---|",
    ]
    tantivy = engines.get("tantivy", {})
    for name, r in engines.items():
        q = r.get("query")
        if not q:
            continue
        b = r.get("build")
        build_ratio = _fmt((b["build_s"] + b.get("save_s", 0)) / fb_s) if b else ""
        rss = _fmt(q["peak_rss_mb"] / tantivy["query"]["peak_rss_mb"]) if "query" in tantivy else ""
        size = (
            _fmt(r["index_bytes"] / tantivy["index_bytes"]) if "index_bytes" in tantivy and "index_bytes" in r else ""
        )
        out.append(
            f"| {name} | {_fmt(q['p50_ms'] / peers[fastest50]['query']['p50_ms'])} "
            f"| {_fmt(q['p95_ms'] / peers[fastest95]['query']['p95_ms'])} | {build_ratio} | {rss} | {size} |"
        )
    out.append("")
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _versions() -> list[str]:
    found = [f"python {platform.python_version()}", f"sqlite {__import__('sqlite3').sqlite_version}"]
    for package in ("numpy", "rank-bm25", "bm25s", "numba", "tantivy", "wordfreq", "PyStemmer"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated passage counts, e.g. 10k,100k,1M")
    parser.add_argument("--engines", default=DEFAULT_ENGINES, help="comma-separated engine names")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rank-bm25-max", type=parse_size, default=1_000_000, help="largest size to run rank-bm25 at")
    parser.add_argument("--data", default=str(HERE / "data"), help="where corpora and indexes go")
    parser.add_argument("--out", default=str(HERE / "results"), help="where the JSON and Markdown results go")
    parser.add_argument("--keep-indexes", action="store_true")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for size in sizes:
        run = run_size(size, args)
        runs.append(run)
        (out / f"{label(size)}.json").write_text(json.dumps(run))
    command = "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(runs, command.strip())
    (out / f"report-{'-'.join(label(s) for s in sizes)}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
