"""Find corpus files under the paths a user gives, and the bundled sample corpus."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from corpusbot.index.corpus.readers import SUPPORTED_SUFFIXES, slug
from corpusbot.index.errors import CorpusbotError

BUNDLED = "<bundled sample corpus>"


def bundled_corpus_dir() -> Path:
    """The sample articles shipped inside the package (installed as package data)."""
    return Path(str(files("corpusbot.index.corpus") / "sample"))


def resolve_root(root: str) -> Path:
    return bundled_corpus_dir() if root == BUNDLED else Path(root)


@dataclass(frozen=True)
class CorpusFile:
    path: Path  # as found (absolute, symlinks not resolved)
    article_id: str  # the id a single-article file gets


def discover(roots: list[str]) -> tuple[list[CorpusFile], list[tuple[str, str]]]:
    """Every supported file under ``roots`` (sorted), plus (path, reason) for what is skipped."""
    found: dict[Path, CorpusFile] = {}
    skipped: list[tuple[str, str]] = []
    taken_ids: set[str] = set()
    for root in roots:
        base = resolve_root(root)
        if not base.exists():
            kind = "folder or file" if not base.suffix else "file"
            raise CorpusbotError(
                f"No such {kind}: {base}. Give a folder or files of articles (.txt, .md, .html, .jsonl)."
            )
        base = base.absolute()
        for path in _walk(base, skipped):
            if path in found:
                continue
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                skipped.append((str(path), f"unsupported type {path.suffix or '(no extension)'}"))
                continue
            relative = path.relative_to(base) if path != base else Path(path.name)
            article_id = slug(str(relative.with_suffix("")))
            if article_id in taken_ids:
                article_id = slug(f"{relative.with_suffix('')}-{path.suffix.lstrip('.')}")
            taken_ids.add(article_id)
            found[path] = CorpusFile(path, article_id)
    return [found[path] for path in sorted(found)], skipped


_SPECIAL_FILE = "not a regular file (FIFO, socket or device)"


def _walk(base: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    if base.is_file():
        return [base]
    if not base.is_dir():
        skipped.append((str(base), _SPECIAL_FILE))
        return []
    paths: list[Path] = []
    seen_dirs: set[str] = set()

    def on_error(error: OSError) -> None:
        skipped.append((str(error.filename), f"unreadable folder: {error.strerror}"))

    for folder, dirnames, filenames in os.walk(base, followlinks=True, onerror=on_error):
        real = os.path.realpath(folder)
        if real in seen_dirs:
            skipped.append((folder, "symlink loop (folder already visited)"))
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                skipped.append((str(path), "broken symlink or symlink loop"))
                continue
            if not path.is_file():
                # Reading a FIFO would block the whole run; sockets and devices are not articles.
                skipped.append((str(path), _SPECIAL_FILE))
                continue
            paths.append(path)
    return paths
