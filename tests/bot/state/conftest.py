"""Fixtures for the state tests: a clock the test moves by hand."""

from __future__ import annotations

import pytest


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
