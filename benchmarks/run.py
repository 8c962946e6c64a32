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
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from .corpus import generate
from .engines import ENGINES, SHARED_INDEX

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REINDEX = "corpusbot-reindex"  # not an engine: the incremental reindex step (benchmarks/reindex.py)
DEFAULT_ENGINES = f"corpusbot,corpusbot-service,bm25s,bm25s-numba,tantivy,sqlite-fts5,rank-bm25,{REINDEX}"
PEERS = ("rank-bm25", "bm25s", "bm25s-numba", "tantivy", "sqlite-fts5")
RTOL = 1e-9


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * factor)


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else str(size)


def run_size(size: int, args: argparse.Namespace, out: Path) -> dict:
    """Measure every engine at one size, saving ``<size>.json`` after each step (so an interrupted run keeps
    what it measured; ``--resume`` continues it)."""
    data = Path(args.data) / label(size)
    print(f"== {label(size)} passages: corpus", file=sys.stderr, flush=True)
    started = time.perf_counter()
    corpus = generate(data, size, args.queries, seed=args.seed)
    print(f"   corpus ready in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    queries_file = data / "queries.txt"
    results_file = out / f"{label(size)}.json"
    run = _previous(results_file, size, len(corpus.queries), args.seed) if args.resume else None
    if run is None:
        run = {"size": size, "queries": len(corpus.queries), "seed": args.seed, "engines": {}, "skipped": {}}
    run["vocabulary"] = corpus.vocabulary_source
    for name in args.redo:
        run["engines"].pop(name, None)
        if name == REINDEX:
            run.pop("reindex", None)
    results: dict[str, dict] = run["engines"]

    def save() -> None:
        _save(results_file, run)
        (out / f"report-{label(size)}.md").write_text(report([run], _command(args)) + "\n")

    names = [n for n in args.engines.split(",") if n]
    for name in names:
        if name == REINDEX:
            continue
        engine = ENGINES[name]
        if not engine.available():
            run["skipped"][name] = f"{engine.module} not installed (pip install '.[bench]')"
            continue
        if name == "rank-bm25" and size > args.rank_bm25_max:
            run["skipped"][name] = f"skipped above {label(args.rank_bm25_max)} passages (--rank-bm25-max)"
            continue
        run["skipped"].pop(name, None)
        if name == "rank-bm25":
            continue  # queried last, with every engine's answers to score
        if "query" in results.get(name, {}):
            print(f"   {name}: measured already ({results[name].get('measured_at', '?')}), kept", file=sys.stderr)
            continue
        index_dir = data / "indexes" / SHARED_INDEX.get(name, name)
        entry: dict = {"how": engine.how, "measured_at": _now()}
        if name in SHARED_INDEX:
            if not _has_files(index_dir):  # its owner was measured by an earlier, resumed run
                _build(SHARED_INDEX[name], corpus.folder, index_dir)
        else:
            entry["build"] = _build(name, corpus.folder, index_dir)
            results[name] = entry
            save()
        entry["query"] = _query(name, index_dir, queries_file, None)
        entry["index_bytes"], entry["disk_bytes"] = engine.index_bytes(index_dir)
        results[name] = entry
        save()
    if "rank-bm25" in names and "rank-bm25" not in run["skipped"]:
        _reference(run, data, corpus.folder, queries_file, save)
    if REINDEX in names and "reindex" not in run:
        print(f"   {REINDEX}: 1% of the articles changed, incremental vs full", file=sys.stderr, flush=True)
        scenarios = "separate-files,in-place" if size <= args.reindex_in_place_max else "separate-files"
        run["reindex"] = _json_process(
            [
                "benchmarks.reindex",
                str(corpus.folder),
                str(data / "reindex"),
                str(queries_file),
                "--scenarios",
                scenarios,
            ]
        )
        run["reindex"]["measured_at"] = _now()
        save()
    if not args.keep_indexes:
        shutil.rmtree(data / "indexes", ignore_errors=True)
    return run


def _reference(run: dict, data: Path, corpus_folder: Path, queries_file: Path, save: Callable[[], None]) -> None:
    """Measure rank-bm25 (unless done) and score every engine's top-10s that lack agreement figures with it."""
    results = run["engines"]
    measured = "query" in results.get("rank-bm25", {})
    waiting = [
        n for n, r in results.items() if n != "rank-bm25" and "query" in r and "identical_top10" not in r["query"]
    ]
    if measured and not waiting:
        print("   rank-bm25: measured already, kept", file=sys.stderr)
        return
    index_dir = data / "indexes" / "rank-bm25"
    entry = results.get("rank-bm25") if measured else {"how": ENGINES["rank-bm25"].how, "measured_at": _now()}
    assert entry is not None
    if not measured or not _has_files(index_dir):
        entry["build"] = _build("rank-bm25", corpus_folder, index_dir)
        results["rank-bm25"] = entry
        save()
    tops_file = data / "tops.json"
    tops_file.write_text(json.dumps({n: results[n]["query"]["tops"] for n in waiting}))
    query = _query("rank-bm25", index_dir, queries_file, tops_file)
    reference = query.pop("reference")
    if not measured:
        entry["query"] = query
        entry["index_bytes"], entry["disk_bytes"] = ENGINES["rank-bm25"].index_bytes(index_dir)
        entry["query"].update(overlap_at_10=1.0, identical_top10=len(reference["own"]))
    _agreement(results, reference, query["tops"])
    results["rank-bm25"] = entry
    save()


def _build(name: str, corpus_folder: Path, index_dir: Path) -> dict:
    if index_dir.exists():
        shutil.rmtree(index_dir)
    print(f"   build {name}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    result = _json_process(["benchmarks.build", name, str(corpus_folder), str(index_dir)])
    result["load_before"] = load
    return result


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _previous(results_file: Path, size: int, queries: int, seed: int) -> dict | None:
    """The saved results of an earlier run on the same corpus and queries, to continue."""
    if not results_file.exists():
        return None
    try:
        run = json.loads(results_file.read_text())
    except json.JSONDecodeError:
        return None
    if run.get("size") != size or run.get("queries") != queries or run.get("seed", seed) != seed:
        print(f"   {results_file} is from another corpus; starting afresh", file=sys.stderr)
        return None
    return run


def _save(path: Path, run: dict) -> None:
    """Replace ``path`` atomically: a run killed mid-write leaves the previous version."""
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(run))
    os.replace(temporary, path)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _command(args: argparse.Namespace) -> str:
    return "python -m benchmarks.run " + " ".join(args.argv)


def _json_process(module_args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", *module_args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(module_args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _query(name: str, index_dir: Path, queries_file: Path, tops_file: Path | None) -> dict:
    print(f"   query {name}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    spawned = time.time()
    extra = [str(tops_file)] if tops_file else []
    result = _json_process(["benchmarks.worker", name, str(index_dir), str(queries_file), *extra])
    result["cold_start_s"] = result.pop("ready_wall") - spawned
    result["load_before"] = load
    lat = np.array(result["latencies_ms"])
    result.update(
        p50_ms=float(np.percentile(lat, 50)), p95_ms=float(np.percentile(lat, 95)), p99_ms=float(np.percentile(lat, 99))
    )
    return result


def _agreement(results: dict[str, dict], reference: dict, ref_tops: list[list[int]]) -> None:
    """Per engine: mean overlap with rank-bm25's top-10, and how many top-10s are identical ties aside."""
    own = reference["own"]
    for name, scores_per_query in reference["engines"].items():
        query = results[name]["query"]
        overlaps, exact = [], 0
        for i, got_scores in enumerate(scores_per_query):
            want = own[i]
            got_ids, want_ids = set(query["tops"][i]), set(ref_tops[i])
            overlaps.append(len(got_ids & want_ids) / len(want_ids) if want_ids else float(not got_ids))
            # Identical ties aside: the returned passages' exact scores are the reference's top scores.
            if len(got_scores) == len(want) and np.allclose(sorted(got_scores, reverse=True), want, rtol=RTOL, atol=0):
                exact += 1
        query["overlap_at_10"] = float(np.mean(overlaps))
        query["identical_top10"] = exact


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
        for name, r in _ordered(engines):
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
        lines.append(_when(engines))
        lines.append("")
        if "reindex" in run:
            lines.extend(_reindex_table(run["reindex"]))
    lines.append("Engines: " + "; ".join(f"**{n}**: {ENGINES[n].how}" for n in ENGINES))
    lines.append("")
    lines.append("Versions: " + ", ".join(_versions()))
    return "\n".join(lines)


def _ordered(engines: dict[str, dict]) -> list[tuple[str, dict]]:
    known = list(ENGINES)
    return sorted(engines.items(), key=lambda item: known.index(item[0]) if item[0] in known else len(known))


def _when(engines: dict[str, dict]) -> str:
    """When each engine was measured and how busy the machine was (1-minute load average; 2 cores here)."""
    parts = []
    for name, r in _ordered(engines):
        b, q = r.get("build", {}), r.get("query", {})
        loads = "/".join(_fmt(x) for x in (b.get("load_before"), q.get("load_before")) if x is not None)
        parts.append(f"{name} {r.get('measured_at', '?')}" + (f" (load {loads})" if loads else ""))
    return "Measured (start; 1-min load average before build/query): " + "; ".join(parts) + "."


def _reindex_table(r: dict) -> list[str]:
    lines = [
        f"Incremental reindex: {r['changed_articles']:,} of {r['articles']:,} articles changed "
        f"({r['changed_share']:.1%}; {r['changed_passages']:,} passages), title_weight={r['title_weight']}.",
        "",
        "| scenario | full rebuild s | incremental s | incremental / full | incremental peak RSS MB "
        "| same top-10 as the full rebuild |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["scenarios"]:
        lines.append(
            f"| {s['name']}: {s['what']} | {_fmt(s['full_s'])} | {_fmt(s['incremental_s'])} "
            f"| {s['incremental_s'] / s['full_s']:.1%} | {_fmt(s.get('incremental_peak_rss_mb'))} "
            f"| {s['identical_top10']}/{s['queries']} |"
        )
    lines.append("")
    return lines


def _ratios(run: dict) -> list[str]:
    engines = run["engines"]
    peers = {n: r for n, r in engines.items() if n in PEERS and "query" in r}
    if not peers:
        return []
    fastest50 = min(peers, key=lambda n: peers[n]["query"]["p50_ms"])
    fastest95 = min(peers, key=lambda n: peers[n]["query"]["p95_ms"])
    built = {n: r for n, r in peers.items() if "build" in r}
    fastest_build = min(built, key=lambda n: _build_s(built[n]["build"])) if built else "n/a"
    fb_s = _build_s(built[fastest_build]["build"]) if built else None
    out = [
        f"Ratios vs the fastest peer (p50: {fastest50}, p95: {fastest95}, build: {fastest_build}); "
        "below 1 = faster than it.",
        "",
        "| engine | p50 ratio | p95 ratio | build time ratio | query RSS vs tantivy | index size vs tantivy |",
        "|---|---|---|---|---|---|",
    ]
    tantivy = engines.get("tantivy", {})
    for name, r in _ordered(engines):
        q = r.get("query")
        if not q:
            continue
        b = r.get("build")
        build_ratio = _fmt(_build_s(b) / fb_s) if b and fb_s else ""
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


def _build_s(build: dict) -> float:
    return build["build_s"] + build.get("save_s", 0)


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
    parser.add_argument(
        "--reindex-in-place-max",
        type=parse_size,
        default=100_000,
        help="largest size to also time the in-place JSONL edit scenario at (two more full builds)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue <size>.json: engines measured there already are kept"
    )
    parser.add_argument(
        "--redo", default="", help="with --resume: comma-separated engines (or corpusbot-reindex) to measure again"
    )
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    args.redo = [n for n in args.redo.split(",") if n]
    unknown = [n for n in [*args.engines.split(","), *args.redo] if n and n not in ENGINES and n != REINDEX]
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}; known: {', '.join([*ENGINES, REINDEX])}")
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_size(size, args, out) for size in sizes]
    text = report(runs, _command(args))
    (out / f"report-{'-'.join(label(s) for s in sizes)}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
