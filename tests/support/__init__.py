"""Helpers the tests share: a fake Slack Web API (`fake_slack`), a harness that runs the real app over HTTP
(`slack_harness`), a BM25 scorer over hand-made token lists (`bm25`), tiny BEIR collections (`beir`), and the
paths below."""

from __future__ import annotations

import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
DATA = ROOT / "tests" / "data"
DEV_QUESTIONS = DATA / "questions-dev.json"
SHARED = ROOT.parent / "shared"  # the user's corpus and the evaluation sets, beside the repository


def write_not_an_index(path: Path, content: bytes | None) -> Path:
    """A file that is no corpusbot index: ``content`` as it is, or (None) a SQLite database with another table."""
    if content is None:
        conn = sqlite3.connect(path)
        try:
            conn.execute("CREATE TABLE notes (text TEXT)")
            conn.commit()
        finally:
            conn.close()
    else:
        path.write_bytes(content)
    return path
