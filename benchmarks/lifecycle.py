"""The load of scenario 11: a fill at the simulator, timed until ``events()`` yields it.

    python -m benchmarks.lifecycle --redis-url URL --broker-url URL --samples N --warmup W

Waits until a leader keeps the account's mirror live, then, one sample at a time: rests a
limit order ten ticks away (BUY below, then SELL above, alternately, so the position stays
within one contract), waits for its ``open`` event, and moves the simulator's price
through it (``POST /_sim/price``). The sample runs from just before that request until
``events()`` yields the order's ``filled`` update: the venue's fill, the user hub's
push over its WebSocket, the leader's write to the mirror and the events stream, and the
strategy's read. ``post_ms`` is the price request's own round trip, for scale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

import aiohttp

from benchmarks.procs import deliver, loadgen_parser, redis_option, run
from benchmarks.workload import ACCOUNT, SYMBOL
from producer.client import OrderClient
from producer.events import OrderUpdate

_TICK: Final = 0.25
_LIVE_TIMEOUT_S: Final = 30.0
_FILL_TIMEOUT_S: Final = 10.0


async def _live(client: OrderClient) -> None:
    deadline = time.monotonic() + _LIVE_TIMEOUT_S
    while not await client.mirror_live():
        if time.monotonic() > deadline:
            raise SystemExit("no leader made the mirror live in time")
        await asyncio.sleep(0.05)


async def measure(redis_url: str, broker_url: str, samples: int, warmup: int) -> dict[str, Any]:
    """Every sample's fill-to-event time and price request time, in ms."""
    fills: list[float] = []
    posts: list[float] = []
    async with (
        OrderClient(redis_url, account_id=ACCOUNT, timeout=10) as client,
        aiohttp.ClientSession(broker_url) as sim,
    ):
        await _live(client)
        updates: asyncio.Queue[OrderUpdate] = asyncio.Queue()

        async def collect() -> None:
            async for event in client.events():
                if isinstance(event, OrderUpdate):
                    updates.put_nowait(event)

        reader = asyncio.create_task(collect())
        try:
            for index in range(samples + warmup):
                async with sim.get("/_sim/price", params={"symbol": SYMBOL}) as answer:
                    last = float((await answer.json())["lastPrice"])
                buy = index % 2 == 0
                limit = last - 10 * _TICK if buy else last + 10 * _TICK
                placed = await client.place_order(
                    SYMBOL, "BUY" if buy else "SELL", 1, order_type="limit", limit_price=limit
                )
                order_id = placed.order_id
                await _until(updates, order_id, "open")
                # A buy fills once the ask (last + 1 tick) reaches it; a sell at the bid.
                price = limit - _TICK if buy else limit
                started = time.perf_counter()
                async with sim.post("/_sim/price", json={"symbol": SYMBOL, "price": price}) as r:
                    await r.read()
                posted = time.perf_counter()
                await _until(updates, order_id, "filled")
                done = time.perf_counter()
                if index >= warmup:
                    fills.append((done - started) * 1000)
                    posts.append((posted - started) * 1000)
        finally:
            reader.cancel()
    sent = samples + warmup
    return {"samples": fills, "post_ms": posts, "sent": sent, "answered": sent,
            "statuses": {"filled": sent}}  # fmt: skip


async def _until(updates: asyncio.Queue[OrderUpdate], order_id: int | None, state: str) -> None:
    async with asyncio.timeout(_FILL_TIMEOUT_S):
        while True:
            update = await updates.get()
            if update.order_id == order_id and update.state == state:
                return


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.lifecycle``."""
    parser = loadgen_parser("benchmarks.lifecycle", __doc__)
    redis_option(parser)
    parser.add_argument("--broker-url", required=True, help="the simulator, http://HOST:PORT")
    parser.add_argument("--samples", type=int, required=True, help="fills measured")
    parser.add_argument("--warmup", type=int, default=5, help="fills before measuring")
    args = parser.parse_args(argv)
    deliver(args.result, run(measure(args.redis_url, args.broker_url, args.samples, args.warmup)))


if __name__ == "__main__":
    main()
