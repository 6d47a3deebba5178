"""A fake clock for the stopping rule and the monitors' windows."""

from __future__ import annotations

import pytest


class FakeClock:
    """Time that moves only when a fake round or a fake sleep says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
