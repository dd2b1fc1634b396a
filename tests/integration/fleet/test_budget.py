"""The shared rate budget's sliding window, on a real Redis: burst, pacing, priorities,
logins, pause."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from ow_core.keys import Keys
from worker.broker.errors import BrokerRateLimited
from worker.fleet.budget import HISTORY_ENDPOINT, RateBudget, RateLimit, Window
from worker.local.stack import RedisServer

PLACE, MODIFY, CANCEL = "/api/Order/place", "/api/Order/modify", "/api/Order/cancel"
BARS = HISTORY_ENDPOINT
# 40 per 2 s: a window of 39 (one kept back), new orders up to 32, modifies up to 36.
LIMIT = RateLimit(40, 2.0)


@pytest_asyncio.fixture
async def redis(redis_server: RedisServer, clean_stack: None) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def budget_of(redis: aioredis.Redis, login: str = "alice") -> RateBudget:
    keys = Keys()
    return RateBudget(
        redis, Window.of(keys, login, LIMIT), Window.of(keys, login, RateLimit(5, 2.0), "history")
    )


@pytest_asyncio.fixture
async def budget(redis: aioredis.Redis) -> RateBudget:
    return budget_of(redis)


async def granted(budget: RateBudget, endpoint: str, n: int) -> int:
    """How many of n requests get a slot at once."""
    count = 0
    for _ in range(n):
        try:
            await budget.take(endpoint, deadline=time.monotonic())
        except BrokerRateLimited:
            continue
        count += 1
    return count


def test_the_window_keeps_a_margin_under_the_limit() -> None:
    for text, capacity in (("200/60", 196), ("50/30", 49), ("40/4", 39), ("2/1", 1)):
        limit = RateLimit.parse(text)
        assert limit is not None
        assert limit.capacity == capacity
        assert limit.allowance("place") <= limit.allowance("modify") <= capacity
        # A send counts a little longer than the gateway's window, never shorter.
        assert limit.seconds * 1000 < limit.window_ms <= limit.seconds * 1000 + 1000
    gateway = RateLimit(200, 60.0)
    # The burst the gateway would take, less the reserve for cancels: 157 new orders.
    assert gateway.allowance("place") == 157
    assert RateLimit.parse("off") is None
    for bad in ("200 per minute", "1/1", "10/0", "10/inf"):
        with pytest.raises(ValueError, match="REQUESTS/SECONDS"):
            RateLimit.parse(bad)


async def test_a_burst_up_to_the_limit_goes_at_once_and_cancels_keep_their_reserve(
    budget: RateBudget,
) -> None:
    places = await granted(budget, PLACE, 50)
    modifies = await granted(budget, MODIFY, 50)
    cancels = await granted(budget, CANCEL, 50)
    # New orders fill the window but its last fifth; modifies stop a tenth short; cancels
    # (and the way out) take what remains.
    assert (places, modifies, cancels) == (32, 4, 3)


async def test_beyond_the_window_a_request_waits_for_the_oldest_send_to_leave(
    budget: RateBudget,
) -> None:
    assert await granted(budget, PLACE, 32) == 32
    started = time.monotonic()
    with pytest.raises(BrokerRateLimited) as refused:
        await budget.take(PLACE, deadline=time.monotonic() + 0.5)
    # It said how long: until the first send leaves the window (2 s and the pad).
    assert refused.value.retry_after is not None
    assert 1.5 < refused.value.retry_after <= 2.1
    await budget.take(PLACE, deadline=time.monotonic() + 5)
    # The wait is measured, not bounded by the wall clock a busy machine could overrun.
    assert time.monotonic() - started > 1.5


async def test_each_login_and_history_have_their_own_window(redis: aioredis.Redis) -> None:
    alice, bob = budget_of(redis, "alice"), budget_of(redis, "bob")
    assert await granted(alice, PLACE, 40) == 32
    assert await granted(bob, PLACE, 40) == 32
    # retrieveBars counts against its own limit, not the orders' (nor they against it).
    assert await granted(alice, BARS, 10) == 4
    assert await granted(alice, CANCEL, 10) == 7


async def test_a_429_pauses_every_taker_of_that_window(budget: RateBudget) -> None:
    await budget.pause(PLACE, 0.3)
    with pytest.raises(BrokerRateLimited):
        await budget.take(CANCEL, deadline=time.monotonic() + 0.1)
    assert await granted(budget, BARS, 1) == 1
    started = time.monotonic()
    await budget.take(CANCEL, deadline=time.monotonic() + 2)
    assert time.monotonic() - started >= 0.1
