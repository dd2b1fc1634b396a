"""The shared rate budget's bucket, on a real Redis: burst, refill, priorities, pause."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from ow_core.keys import Keys
from worker.broker.errors import BrokerRateLimited
from worker.fleet.budget import RateBudget, RateLimit
from worker.local.stack import RedisServer

PLACE, MODIFY, CANCEL = "/api/Order/place", "/api/Order/modify", "/api/Order/cancel"


@pytest_asyncio.fixture
async def budget(redis_server: RedisServer, clean_stack: None) -> AsyncIterator[RateBudget]:
    client = aioredis.Redis.from_url(redis_server.url)
    # 40 per 4 s: a burst of 9.5, then 7.125 a second.
    yield RateBudget(client, Keys(), RateLimit(40, 4.0))
    await client.aclose()


async def granted(budget: RateBudget, endpoint: str, n: int) -> int:
    """How many of n requests get a token at once."""
    count = 0
    for _ in range(n):
        try:
            await budget.take(endpoint, deadline=time.monotonic())
        except BrokerRateLimited:
            continue
        count += 1
    return count


def test_the_bucket_never_lets_more_through_than_the_limit() -> None:
    for text in ("200/60", "50/30", "40/4", "3/60", "2/1"):
        limit = RateLimit.parse(text)
        assert limit is not None
        # Worst case over any window: a full burst, then a window of refill.
        assert limit.burst + limit.refill_per_ms * limit.seconds * 1000 <= limit.requests
    assert RateLimit.parse("off") is None
    for bad in ("200 per minute", "1/1", "10/0", "10/inf"):
        with pytest.raises(ValueError, match="REQUESTS/SECONDS"):
            RateLimit.parse(bad)


async def test_new_orders_leave_room_for_cancels(budget: RateBudget) -> None:
    places = await granted(budget, PLACE, 20)
    modifies = await granted(budget, MODIFY, 20)
    cancels = await granted(budget, CANCEL, 20)
    # From a full bucket of 9.5: new orders stop while a quarter is left, modifies while a
    # tenth is, cancels take what remains.
    assert (places, modifies, cancels) == (7, 1, 1)


async def test_the_budget_refills_and_a_wait_respects_the_deadline(budget: RateBudget) -> None:
    await granted(budget, CANCEL, 20)
    started = time.monotonic()
    await budget.take(CANCEL, deadline=time.monotonic() + 2)
    # It waited for a token to refill (about 0.14 s), and got it before its deadline (else
    # take() raises): the wait itself is measured, not a wall-clock bound a busy machine
    # could overrun.
    assert time.monotonic() - started > 0.05
    with pytest.raises(BrokerRateLimited):
        await budget.take(PLACE, deadline=time.monotonic() + 0.01)


async def test_a_429_pauses_every_taker(budget: RateBudget) -> None:
    await budget.pause(0.3)
    with pytest.raises(BrokerRateLimited):
        await budget.take(CANCEL, deadline=time.monotonic() + 0.1)
    started = time.monotonic()
    await budget.take(CANCEL, deadline=time.monotonic() + 2)
    assert time.monotonic() - started >= 0.1
