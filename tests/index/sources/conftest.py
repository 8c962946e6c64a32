"""Web source fixtures: the feed server on loopback, and fetch options allowing it with small limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corpusbot.index.sources.fetch import FetchOptions
from corpusbot.index.sources.guard import AllowList
from tests.support.feed_server import FeedServer

# Every real fetch in these tests goes to a FeedServer on 127.0.0.1, which only this allow-list lets through.
LOOPBACK = AllowList.parse(["127.0.0.1"])


def options(**overrides: object) -> FetchOptions:
    """Fetch options for the loopback server: allowed, with limits small enough for fast tests."""
    settings: dict[str, object] = {
        "allow": LOOPBACK,
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
        "deadline": 3.0,
        "max_bytes": 1 << 20,
        "retry_after_cap": 2.0,
    }
    settings.update(overrides)
    return FetchOptions(**settings)  # type: ignore[arg-type]


@pytest.fixture
def web() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def other_web() -> Iterator[FeedServer]:
    """A second server (another port: another host for politeness)."""
    with FeedServer() as server:
        yield server
