"""The state package: the names other packages import from it, and what it may import itself."""

from __future__ import annotations

import ast
from pathlib import Path

import corpusbot.bot.state as state

# Imported as `from corpusbot.bot.state import ...` by bot/slack, bot/cli and the tests.
USED_ELSEWHERE = ("BotState", "EVENTS_TABLE", "Feedback", "RateLimiter", "Verdict", "read_feedback")
ALLOWED = ("corpusbot.index", "corpusbot.bot.config", "corpusbot.bot.state")


def test_the_names_others_use_are_importable_from_the_package() -> None:
    for name in USED_ELSEWHERE:
        assert name in state.__all__ and getattr(state, name) is not None, name


def test_the_package_imports_nothing_else_of_the_bot() -> None:
    package = Path(state.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert {module.stem for module in modules} >= {"events", "feedback", "ratelimit", "database", "botstate"}
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("corpusbot"):
                    assert any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED), (
                        f"{module.name} imports {name}"
                    )
