"""Fixtures for the state tests: a clock the test moves by hand, and a real PostgreSQL server (tests.support.postgres)."""

from __future__ import annotations

import pytest

from tests.support.postgres import postgres_server, postgres_url

__all__ = ["Clock", "clock", "postgres_server", "postgres_url"]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
