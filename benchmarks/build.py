"""A fresh build process for one engine; prints one JSON object (timings, peak memory).

Run by ``benchmarks.run``; usage: python -m benchmarks.build ENGINE CORPUS_DIR INDEX_DIR
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from benchmarks.memory import peak_rss_mb


def main() -> None:
    name, corpus_dir, index_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    from benchmarks.corpus import read_passages
    from benchmarks.engines import ENGINES

    engine = ENGINES[name]
    # An engine that reads the corpus files itself does not get the texts: they would count in its peak memory.
    passages = None if engine.reads_files else read_passages(corpus_dir)
    result = engine.build(corpus_dir, passages, index_dir)
    own = peak_rss_mb()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    count = len(passages) if passages is not None else result.pop("passages")
    print(json.dumps({**result, "peak_rss_mb": own, "worker_peak_rss_mb": workers, "passages": count}))


if __name__ == "__main__":
    main()
