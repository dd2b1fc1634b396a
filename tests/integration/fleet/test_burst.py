"""Bursts into the gateway's real limit: the sliding-window budget lets up to the limit
through at once, paces only beyond it, keeps room for cancels, and never draws a 429."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from producer import OrderClient, OrderResult
from tests.faults.harness import FAR_LIMITS, Fleet
from worker.local.pytest_plugin import DEMO_ACCOUNT

# An empty variable is an unset one: the worker's default budget (200/60), as deployed.
DEFAULT_BUDGET = {"PROJECTX_RATE_LIMIT": ""}


async def resting_limits(client: OrderClient, count: int, timeout: float) -> list[OrderResult]:
    """``count`` limit orders far from the market, submitted together, then awaited."""
    ids = [
        await client.submit(
            client.make_place(
                "MNQ", "BUY", 1, order_type="limit", limit_price=FAR_LIMITS["MNQ"] / 2,
                timeout=timeout,
            )
        )
        for _ in range(count)
    ]  # fmt: skip
    return list(await asyncio.gather(*(client.wait(r, timeout=timeout + 10) for r in ids)))


async def test_120_new_orders_at_the_gateways_limit_go_at_once(
    fleet: Callable[..., Fleet],
) -> None:
    stack = fleet(sim_args=["--rate-limit", "200/60"], env=DEFAULT_BUDGET)
    for name in ("w1", "w2"):
        stack.start_worker(name)
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.place_order("MNQ", "BUY", 1, timeout=30) for _ in range(120))
        )
        took = time.monotonic() - started
        assert Counter(r.status for r in results) == {"accepted": 120}
        # A token bucket took 36 s for these; the window sends them as fast as the workers
        # can (about a second here), so the bound only has to be loose for a busy machine.
        assert took < 12, f"120 orders took {took:.1f} s"

        # Beyond what the window holds for new orders, they wait (here: expire unsent),
        # and a cancel still goes at once: it may use the reserve new orders may not.
        resting = await resting_limits(client, 40, timeout=3)
        placed = [r for r in resting if r.status == "accepted"]
        waited = [r for r in resting if r.status == "expired"]
        assert placed, Counter(r.status for r in resting)
        assert waited, Counter(r.status for r in resting)
        assert {r.error_code for r in waited} == {"rate_budget"}
        cancelled = await asyncio.gather(
            *(client.cancel_order(r.order_id, timeout=3) for r in placed[:10] if r.order_id)
        )
        assert {r.status for r in cancelled} == {"accepted"}
    stats = stack.broker.stats()
    assert stats["rate_limited"] == 0
    assert stats["requests"] <= 200


async def test_a_burst_beyond_the_window_is_paced_and_cancels_pass_the_queue(
    fleet: Callable[..., Fleet],
) -> None:
    """The same at 40 per 3 s, so the pacing shows in a few seconds."""
    stack = fleet(sim_args=["--rate-limit", "40/3"], env={"PROJECTX_RATE_LIMIT": "40/3"})
    stack.start_worker("w1")
    await asyncio.sleep(3.5)  # the start-up's log-in and look-ups leave the window
    async with OrderClient(stack.redis_url, account_id=DEMO_ACCOUNT) as client:
        first = await resting_limits(client, 30, timeout=10)
        assert {r.status for r in first} == {"accepted"}
        # 30 more than the window has room for: they wait for the first burst's sends to
        # leave it, while cancels of the first go ahead of them.
        started = time.monotonic()
        second = asyncio.ensure_future(resting_limits(client, 30, timeout=15))
        await asyncio.sleep(0.3)
        cancels = await asyncio.gather(
            *(client.cancel_order(r.order_id, timeout=5) for r in first[:5] if r.order_id)
        )
        cancelled_after = time.monotonic() - started
        assert {r.status for r in cancels} == {"accepted"}
        assert not second.done()
        paced = await second
        took = time.monotonic() - started
        assert {r.status for r in paced} == {"accepted"}
        # The second burst had to wait for the window to slide, the cancels did not.
        assert took > 2.0
        assert cancelled_after < took
    assert stack.broker.stats()["rate_limited"] == 0
