"""Fixtures of the end-to-end scenarios that need a fleet: two workers on their own Redis
and simulator, and a strategy's client on it once the account's mirror is live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from producer import OrderClient
from tests.faults.harness import Fleet
from tests.integration.lifecycle.venue import live
from worker.local.pytest_plugin import DEMO_ACCOUNT


@pytest.fixture
def two_workers(fleet: Callable[..., Fleet]) -> Fleet:
    """Redis, the simulator and two workers (one of their listeners leads the user hub)."""
    started = fleet()
    started.start_worker("w1")
    started.start_worker("w2")
    return started


@pytest.fixture
async def strategy(two_workers: Fleet) -> AsyncIterator[OrderClient]:
    """An ``OrderClient`` for the demo account, once a leader keeps its mirror live."""
    async with OrderClient(two_workers.redis_url, account_id=DEMO_ACCOUNT, timeout=30) as opened:
        await live(opened)
        yield opened
