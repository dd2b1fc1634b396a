"""Shared fixtures: a fleet of real processes (Redis, the simulator, workers) per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """``fleet(sim_args=[...], appendonly=..., env={...})`` starts one; all are closed after."""
    started: list[Fleet] = []

    def start(**kwargs: Any) -> Fleet:
        one = Fleet.start(tmp_path / f"fleet{len(started)}", **kwargs)
        started.append(one)
        return one

    yield start
    for one in started:
        one.close()
