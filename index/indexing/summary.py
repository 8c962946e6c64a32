"""``IndexSummary``: what one indexing run did, for the CLI, the Slack bot and the evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IndexSummary:
    """Corpus files by what happened to them, and the index's size and build time after the run."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (path, message)
    failed_sources: list[tuple[str, str]] = field(default_factory=list)  # (URL, reason): kept what they gave before
    articles: int = 0
    passages: int = 0
    seconds: float = 0.0
    full: bool = False
    corpus_paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "warnings": [{"path": path, "message": message} for path, message in self.warnings],
            "articles": self.articles,
            "passages": self.passages,
            "seconds": round(self.seconds, 3),
            "full": self.full,
            "corpus_paths": self.corpus_paths,
            "failed_sources": [{"url": url, "reason": reason} for url, reason in self.failed_sources],
        }
