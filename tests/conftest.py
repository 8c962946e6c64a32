"""Shared fixtures: every test gets its own temporary database; nothing is shared."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corpusbot.index import SearchService, index_corpus
from corpusbot.index.corpus.discover import BUNDLED


@pytest.fixture
def fresh_db(tmp_path: Path) -> Path:
    """A path where no database exists yet."""
    return tmp_path / "corpusbot.db"


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """A database holding the bundled sample corpus."""
    path = tmp_path / "sample.db"
    index_corpus(path, [BUNDLED])
    return path


@pytest.fixture
def sample_service(sample_db: Path):
    service = SearchService(sample_db)
    yield service
    service.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """An empty folder to write test articles into."""
    path = tmp_path / "corpus"
    path.mkdir()
    return path
