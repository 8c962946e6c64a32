"""Helpers for the eval tests: tiny BEIR collections written to a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path


def write_beir(
    root: Path,
    docs: dict[str, tuple[str, str]],
    queries: dict[str, str],
    qrels: list[tuple[str, str, int]],
    split: str = "test",
) -> Path:
    """A BEIR folder: docs are {id: (title, text)}, qrels (query id, doc id, grade)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, (title, text) in docs.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, d, g in qrels]
    (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# Distinct filler topics keep every query word rare (positive idf) in these tiny collections.
FILLER = {
    f"f{i}": (f"Filler {i}", text)
    for i, text in enumerate(
        [
            "Bakers knead sourdough before dawn and sell warm loaves at the market stall.",
            "The orchestra rehearsed a long symphony while the conductor tapped the score.",
            "Cyclists climbed the mountain pass in heavy rain during the final stage.",
            "Gardeners planted tulips along the riverbank beside the old stone bridge.",
            "Chess players studied endgames late into the night at the club.",
            "Sailors repaired torn canvas on the harbour quay after the storm.",
        ]
    )
}
