"""Reference SciFact number: plain rank-bm25 BM25Okapi over corpusbot's tokenizer, whole documents.

Each document is indexed as its title + text (as the published BM25 baselines do),
tokenized by corpusbot's tokenizer (stopwords, US spelling, Snowball stemming); each
judged test query is scored against every document with ``BM25Okapi.get_scores`` and
the top 100 documents are measured with the same metrics code as ``corpusbot eval``.

Usage: python benchmarks/scifact_reference.py /path/to/scifact [--k1 1.5] [--b 0.75]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from rank_bm25 import BM25Okapi

from corpusbot.index.maintenance.evaluate import load_beir, trec_metrics
from corpusbot.index.text.tokenizer import default_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir_dir")
    parser.add_argument("--k1", type=float, default=1.5)
    parser.add_argument("--b", type=float, default=0.75)
    args = parser.parse_args()

    collection = load_beir(args.beir_dir)
    tokenizer = default_tokenizer()
    doc_ids: list[str] = []
    documents: list[list[str]] = []
    with collection.corpus.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            doc_ids.append(str(record["_id"]))
            documents.append(tokenizer.terms(f"{record.get('title') or ''}\n{record.get('text') or ''}"))
    started = time.perf_counter()
    bm25 = BM25Okapi(documents, k1=args.k1, b=args.b)
    run: dict[str, dict[str, float]] = {}
    for query_id, text in collection.queries.items():
        scores = bm25.get_scores(tokenizer.terms(text))
        top = np.argsort(-scores, kind="stable")[:100]
        run[query_id] = {doc_ids[i]: float(scores[i]) for i in top if scores[i] > 0}
    seconds = time.perf_counter() - started
    means, _ = trec_metrics(collection.qrels, run)
    print(f"rank-bm25 BM25Okapi (k1={args.k1}, b={args.b}), corpusbot tokenizer, title + text documents")
    print(f"queries {len(collection.queries)}, documents {len(documents)}, {seconds:.1f}s")
    print(f"nDCG@10 {means['nDCG@10']:.4f}  Recall@100 {means['R@100']:.4f}  MRR@10 {means['RR@10']:.4f}")


if __name__ == "__main__":
    main()
