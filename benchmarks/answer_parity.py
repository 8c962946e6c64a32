"""Same answers before and after a speed change: dump every answer of some question sets, then diff two dumps.

A dump holds, for each question, ``SearchService.ask(q, k, explain=True, context=after).to_json()`` for the first
page of ``k`` and the page after it (scores, boosts, highlights, matches, near-duplicate counts, the answer
line and the article answer: everything ``corpusbot ask --json --explain`` prints). Questions come from JSON
question sets (``[{"q": ..., "after": ...}, ...]``, as ``corpusbot eval`` reads them) or plain files of one
question a line. Usage::

    python -m benchmarks.answer_parity dump --db sample.db tests/data/questions-dev.json --out before.jsonl
    python -m benchmarks.answer_parity dump --db sample.db tests/data/questions-dev.json --out after.jsonl
    python -m benchmarks.answer_parity diff before.jsonl after.jsonl

``diff`` prints each question whose answers differ (the first differing key) and exits 1 when any do. Dump
both with the same ``PYTHONHASHSEED`` (e.g. 0): some sums run over sets of words, whose order follows the string
hashes, so the last bit of a score can differ between two processes of the same code.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from corpusbot.index.search.service import SearchService

PAGES = 2  # the first page and "more results"


def questions(path: Path) -> Iterator[tuple[str, str | None]]:
    """``(question, earlier question or None)`` of a question set (JSON list) or a file of one question a line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        for item in json.loads(text):
            yield item["q"], item.get("after")
    else:
        for line in text.splitlines():
            if line.strip():
                yield line, None


def dump(db: Path, sources: list[Path], k: int) -> Iterator[dict[str, object]]:
    service = SearchService(db)
    try:
        for source in sources:
            for number, (question, after) in enumerate(questions(source)):
                pages = [
                    service.ask(question, k=k, offset=page * k, explain=True, context=after).to_json()
                    for page in range(PAGES)
                ]
                yield {"source": source.name, "number": number, "q": question, "after": after, "pages": pages}
    finally:
        service.close()


def first_difference(a: object, b: object, where: str = "") -> str | None:
    """The path of the first place ``a`` and ``b`` differ, None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [key for key in b if key not in a]:
            if key not in a or key not in b:
                return f"{where}.{key} (only in {'the second' if key not in a else 'the first'})"
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where} (length {len(a)} vs {len(b)})"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} vs {b!r}"


def diff(before: Path, after: Path) -> list[str]:
    """One line per question whose dumped answers differ (or that only one dump has)."""
    old = [json.loads(line) for line in before.read_text(encoding="utf-8").splitlines()]
    new = [json.loads(line) for line in after.read_text(encoding="utf-8").splitlines()]
    problems = []
    if len(old) != len(new):
        problems.append(f"{before} has {len(old)} questions, {after} {len(new)}")
    for a, b in zip(old, new, strict=False):
        found = first_difference(a, b)
        if found:
            problems.append(f"{a['source']} #{a['number']} {a['q']!r}: {found}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump", help="write every answer of the question sets, one JSON line each")
    dumping.add_argument("--db", type=Path, required=True)
    dumping.add_argument("--k", type=int, default=3)
    dumping.add_argument("--out", type=Path, required=True)
    dumping.add_argument("sources", type=Path, nargs="+", help="question sets (.json) or files of one question a line")
    diffing = commands.add_parser("diff", help="compare two dumps; exit 1 when any answer differs")
    diffing.add_argument("before", type=Path)
    diffing.add_argument("after", type=Path)
    options = parser.parse_args(argv)
    if options.command == "dump":
        with options.out.open("w", encoding="utf-8") as out:
            count = 0
            for record in dump(options.db, options.sources, options.k):
                out.write(json.dumps(record, sort_keys=True) + "\n")
                count += 1
        print(f"{count} questions written to {options.out}")
        return 0
    problems = diff(options.before, options.after)
    for line in problems:
        print(line)
    total = len(options.before.read_text(encoding="utf-8").splitlines())
    print(f"{total - len(problems)} of {total} questions answered identically")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
