"""The layers of corpusbot: `corpusbot.index` never imports `corpusbot.bot`, the parts of the index import
only what their `__init__` docstrings allow, and nothing imports the repository folders by their bare names.

The static checks parse every file with `ast` (imports inside functions and `if TYPE_CHECKING:` blocks count:
a lazy or type-only import is still a dependency); the dynamic one looks at `sys.modules` after a real search.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

INDEX = ROOT / "index"
BOT = ROOT / "bot"
FOLDERS = {"index": "corpusbot.index", "bot": "corpusbot.bot"}  # repository folder -> installed name

# What each part of corpusbot.index may import from the rest of it, besides itself. From the docstrings:
# corpus: "errors and models only"; text: "models only"; engine: "errors and models only";
# indexing: "corpus, text, engine and sources; never search or maintenance"; sources: "corpus, engine, errors and
# models"; search: "text and engine; never
# [indexing] or maintenance"; maintenance: "any other part". errors and models are the shared records
# everything may use (indexing and search use them without their docstrings naming them), and import
# nothing of corpusbot themselves. PACKAGE is `corpusbot.index` itself: its __init__ re-exports
# indexing and search, so importing it from inside would go round these rules.
PACKAGE = "the package"
SHARED = {"errors", "models"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "models": set(),
    "corpus": {"errors", "models"},
    "text": {"models"},
    "engine": {"errors", "models"},
    "indexing": {"corpus", "text", "engine", "sources"} | SHARED,
    "sources": {"corpus", "engine"} | SHARED,
    "search": {"text", "engine"} | SHARED,
    "maintenance": {"corpus", "text", "engine", "indexing", "search", "sources"} | SHARED,
    PACKAGE: {"corpus", "text", "engine", "indexing", "search", "maintenance", "sources"} | SHARED,
}

IMPORT_FUNCTIONS = {"import_module", "__import__"}


def module_name(path: Path) -> tuple[str, bool]:
    """The installed module name of a file under index/ or bot/, and whether it is a package's __init__."""
    relative = path.relative_to(ROOT).with_suffix("")
    parts = [FOLDERS[relative.parts[0]], *relative.parts[1:]]
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def known_modules() -> set[str]:
    """Every module and package of corpusbot.index and corpusbot.bot (the compiled kernel by its stub or source)."""
    names = set()
    for folder in (INDEX, BOT):
        for path in folder.rglob("*"):
            if path.suffix in (".py", ".pyi", ".c"):
                names.add(module_name(path)[0])
    return names


KNOWN = known_modules()


def imports(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved against ``module``.

    ``from package import name`` counts as importing ``package.name`` when that is a known module,
    else ``package``; ``import_module("...")`` and ``__import__("...")`` with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                yield node.lineno, candidate if candidate in KNOWN else origin
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if name in IMPORT_FUNCTIONS and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def index_files() -> list[Path]:
    return sorted(INDEX.rglob("*.py"))


def part_of(module: str) -> str | None:
    """The part of corpusbot.index a module belongs to (None outside the index)."""
    if module == "corpusbot.index":
        return PACKAGE
    if module.startswith("corpusbot.index."):
        return module.split(".")[2]
    return None


def within(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


# -- the import finder itself ------------------------------------------------------


def test_imports_are_found_and_resolved() -> None:
    source = """
import os
import corpusbot.bot.config
from corpusbot.index.engine import store
from corpusbot.index import errors, SearchService
from ..engine import bm25
from ... import bot
from . import query
from .rerank import jaccard
if TYPE_CHECKING:
    from corpusbot.index.indexing.indexer import IndexSummary
def later():
    importlib.import_module("corpusbot.bot.cli")
    __import__("click")
    import_module(name)
"""
    assert list(imports(source, "corpusbot.index.search.service", is_package=False)) == [
        (2, "os"),
        (3, "corpusbot.bot.config"),
        (4, "corpusbot.index.engine.store"),
        (5, "corpusbot.index.errors"),
        (5, "corpusbot.index"),
        (6, "corpusbot.index.engine.bm25"),
        (7, "corpusbot.bot"),
        (8, "corpusbot.index.search.query"),
        (9, "corpusbot.index.search.rerank"),
        (11, "corpusbot.index.indexing.indexer"),
        (13, "corpusbot.bot.cli"),
        (14, "click"),
    ]
    # In a package's __init__, "." is the package itself.
    assert list(imports("from . import store", "corpusbot.index.engine", is_package=True)) == [
        (1, "corpusbot.index.engine.store")
    ]


def test_every_index_file_has_a_part_with_rules() -> None:
    parts = {part_of(module_name(path)[0]) for path in index_files()}
    assert parts == set(ALLOWED)


# -- corpusbot.index knows nothing of the bot ---------------------------------------


def test_the_index_never_imports_the_bot_statically() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in index_files()
        for line, target in imports(path.read_text(encoding="utf-8"), *module_name(path))
        if within(target, "corpusbot.bot") or within(target, "slack_bolt") or within(target, "click")
    ]
    assert found == []


FRONT_END_MODULES = ("corpusbot.bot", "slack_bolt", "slack_sdk", "click")

LOADED_AFTER = """
import json, sys
from pathlib import Path

import corpusbot.index

db = Path(sys.argv[1])
if sys.argv[2] == "index":
    from corpusbot.index.corpus.discover import BUNDLED

    corpusbot.index.index_corpus(db, [BUNDLED])
service = corpusbot.index.SearchService(db)
try:
    hits = len(service.ask("who is on the US delegation?").hits)
finally:
    service.close()
print(json.dumps({"hits": hits, "modules": sorted(sys.modules)}))
"""


def front_end_modules_loaded(db: Path, steps: str, cwd: Path) -> list[str]:
    """The front-end modules in a fresh interpreter after ``steps`` ("search", or "index" then search) on ``db``.

    Run away from the checkout, so that its folders are not importable by their bare names.
    """
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, str(db), steps], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["hits"] > 0
    return [name for name in report["modules"] if any(within(name, top) for top in FRONT_END_MODULES)]


def test_searching_loads_nothing_of_the_bot(sample_db: Path, tmp_path: Path) -> None:
    assert front_end_modules_loaded(sample_db, "search", tmp_path) == []


def test_indexing_and_searching_load_nothing_of_the_bot(tmp_path: Path) -> None:
    loaded = front_end_modules_loaded(tmp_path / "sample.db", "index", tmp_path)
    # click may come in with sqlite-utils (its plugin hooks import it), which the index's schema
    # migrations use: a library's dependency, not the bot's. Nothing else of the front ends may.
    assert [name for name in loaded if not within(name, "click")] == []


# -- the parts of the index ----------------------------------------------------------


def test_the_parts_of_the_index_import_only_what_their_docstrings_allow() -> None:
    found = []
    for path in index_files():
        module, is_package = module_name(path)
        part = part_of(module)
        assert part is not None
        for line, target in imports(path.read_text(encoding="utf-8"), module, is_package):
            other = part_of(target)
            if other is not None and other != part and other not in ALLOWED[part]:
                found.append(f"{path.relative_to(ROOT)}:{line}: {part} imports {target} ({other})")
    assert found == []


@pytest.mark.parametrize(
    ("part", "target", "allowed"),
    [
        ("engine", "corpusbot.index.text.tokenizer", False),
        ("search", "corpusbot.index.indexing.indexer", False),
        ("search", "corpusbot.index.corpus.readers", False),
        ("indexing", "corpusbot.index.search.service", False),
        ("text", "corpusbot.index.errors", False),
        ("corpus", PACKAGE, False),
        ("maintenance", "corpusbot.index.indexing.indexer", True),
        ("search", "corpusbot.index.engine.store", True),
    ],
)
def test_the_rule_table(part: str, target: str, allowed: bool) -> None:
    other = target if target == PACKAGE else part_of(target)
    assert (other in ALLOWED[part]) is allowed


# -- the installed names only -----------------------------------------------------------


def python_files() -> list[Path]:
    folders = (INDEX, BOT, ROOT / "tests", ROOT / "benchmarks")
    return sorted(path for folder in folders for path in folder.rglob("*.py") if "data" not in path.parts)


def test_nothing_imports_the_repository_folders_by_their_bare_names() -> None:
    found = []
    for path in python_files():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in IMPORT_FUNCTIONS
            ):
                names = [node.args[0].value]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if any(within(name, bare) for bare in FOLDERS)
            ]
    assert found == []
