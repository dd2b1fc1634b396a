"""Shared fixtures: a fleet of real processes (Redis, the simulator, workers) per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.faults.harness import Fleet

# Property tests are deterministic everywhere: the same examples on every run (derandomize,
# no example database), no per-example deadline and no "too slow" health check, so a busy
# 2-core machine never turns CI red by chance. HYPOTHESIS_PROFILE=explore searches anew.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
