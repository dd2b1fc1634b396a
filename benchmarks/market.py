"""The processes of scenario 12: quotes fanned out from the simulator's market hub to
strategies' ``MarketFeed.quotes()``, against one Redis stream hop.

    python -m benchmarks.market drive --redis-url URL --broker-url URL --rate R --seconds S
    python -m benchmarks.market strategy --redis-url URL

``strategy`` (one process per strategy) reads every symbol's quotes through a
``MarketFeed``, and reads a plain stream per symbol with XREAD BLOCK beside it (the floor:
one hop, the same client and blocking read the feed uses); it prints ``ready`` once a
quote of every symbol came, and on ``stop`` (stdin) writes what it received and when.

``drive`` pins two next-month contracts (so ten symbols trade: the simulator lists eight
products), moves every symbol's price now and then until it reads ``go <epoch>``, then
adds entries to the floor streams at ``rate`` per second across the symbols for
``seconds``, and then moves prices at the simulator (``POST /_sim/price``) at the same
rate for as long; each move has a price of its own (one tick higher each time), so a
quote is matched to its move by symbol and price. A sample runs from just before the
move's request (or the floor's XADD) until a strategy's iterator yields it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from redis.asyncio import Redis

from benchmarks.procs import deliver, emit, loadgen_parser, redis_option, run, wait_for_go
from ow_core.keys import Keys
from producer.feed import MarketFeed
from simulator.contracts import PRODUCTS, listed_contracts
from worker.broker.models import ContractInfo
from worker.fleet.contracts import SharedContracts

SYMBOLS: Final = (*(p.symbol for p in PRODUCTS), "MNQ2", "ES2")
"""The eight products' front months, and the next month of MNQ and ES under names of
their own (pinned, as ``order-worker contract set`` would)."""
_SECOND_MONTHS: Final = {"MNQ2": "MNQ", "ES2": "ES"}
_FLOOR: Final = "bench:hop:"
_BLOCK_MS: Final = 1000
_IN_FLIGHT: Final = 32
_WARMUP_EVERY_S: Final = 0.2


def price_key(symbol: str, price: float) -> str:
    """A move's identity: its symbol and price (rounded, as floats go through JSON)."""
    return f"{symbol}|{round(price, 6)}"


# --- the strategy ------------------------------------------------------------------------


async def strategy(redis_url: str) -> dict[str, Any]:
    """Quotes and floor entries of every symbol, with the time each arrived."""
    quotes: list[tuple[str, float]] = []
    hops: list[tuple[float, float]] = []
    seen: set[str] = set()
    ready = asyncio.Event()
    async with MarketFeed(redis_url, timeout=30) as feed:
        floor = Redis.from_url(redis_url, socket_timeout=_BLOCK_MS / 1000 + 5)

        async def read_quotes(symbol: str) -> None:
            async for quote in feed.quotes(symbol):
                if quote.last is not None:
                    quotes.append((price_key(symbol, quote.last), time.time()))
                seen.add(symbol)
                if len(seen) == len(SYMBOLS):
                    ready.set()

        async def read_floor(symbol: str) -> None:
            stream = _FLOOR + symbol
            cursor = "$"
            while True:
                answer = await floor.xread({stream: cursor}, count=500, block=_BLOCK_MS)
                for _, entries in answer or ():
                    for entry_id, fields in entries:
                        cursor = entry_id
                        hops.append((float(fields[b"t"]), time.time()))

        readers = [asyncio.create_task(read_quotes(s)) for s in SYMBOLS]
        readers += [asyncio.create_task(read_floor(s)) for s in SYMBOLS]
        await asyncio.wait_for(ready.wait(), 60)
        emit({"ready": True})
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await floor.aclose()
    return {"quotes": quotes, "hops": hops}


# --- the driver --------------------------------------------------------------------------


async def _pin_next_months(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = SharedContracts(redis, Keys())
    listed = listed_contracts(datetime.now(UTC).date())
    for symbol, product in _SECOND_MONTHS.items():
        months = [c for c in listed if c.product == product and c.active_contract]
        contract = months[1]
        info = ContractInfo(
            symbol, contract.id, float(contract.tick_size), float(contract.tick_value), True
        )
        await store.pin(info)
    await redis.aclose()


def _contract_ids() -> dict[str, str]:
    listed = listed_contracts(datetime.now(UTC).date())
    ids: dict[str, str] = {}
    for symbol in SYMBOLS:
        product = _SECOND_MONTHS.get(symbol, symbol)
        months = [c for c in listed if c.product == product and c.active_contract]
        ids[symbol] = months[1 if symbol in _SECOND_MONTHS else 0].id
    return ids


async def drive(redis_url: str, broker_url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Pace floor entries, then price moves; when each was sent."""
    await _pin_next_months(redis_url)
    ids = _contract_ids()
    ticks = {p.symbol: float(p.tick_size) for p in PRODUCTS}
    async with aiohttp.ClientSession(broker_url) as sim:
        base: dict[str, float] = {}
        for symbol, contract_id in ids.items():
            async with sim.get("/_sim/price", params={"contractId": contract_id}) as answer:
                base[symbol] = float((await answer.json())["lastPrice"])

        async def move(symbol: str, price: float) -> None:
            body = {"contractId": ids[symbol], "price": round(price, 6)}
            async with sim.post("/_sim/price", json=body) as answer:
                await answer.read()

        async def warm_up() -> None:
            while True:
                for symbol in SYMBOLS:
                    await move(symbol, base[symbol])
                await asyncio.sleep(_WARMUP_EVERY_S)

        warming = asyncio.create_task(warm_up())
        await wait_for_go()
        warming.cancel()
        await asyncio.gather(warming, return_exceptions=True)

        redis = Redis.from_url(redis_url)
        count = int(rate * seconds)
        floor_sent = 0

        async def hop(index: int) -> None:
            nonlocal floor_sent
            await redis.xadd(
                _FLOOR + SYMBOLS[index % len(SYMBOLS)], {"t": repr(time.time())}, maxlen=10_000
            )
            floor_sent += 1

        await _paced(count, rate, hop)
        sent: dict[str, float] = {}
        posts: list[float] = []

        async def quote(index: int) -> None:
            symbol = SYMBOLS[index % len(SYMBOLS)]
            step = index // len(SYMBOLS) + 2
            price = base[symbol] + ticks[_SECOND_MONTHS.get(symbol, symbol)] * step
            started = time.time()
            sent[price_key(symbol, price)] = started
            await move(symbol, price)
            posts.append((time.time() - started) * 1000)

        began = time.monotonic()
        await _paced(count, rate, quote)
        achieved = count / (time.monotonic() - began)
        await redis.aclose()
    return {"sent": sent, "floor_sent": floor_sent, "post_ms": posts, "rate": achieved}


async def _paced(count: int, rate: float, send: Any) -> None:
    """``send(index)`` for every index, the k-th due k / rate seconds from now, at most
    ``_IN_FLIGHT`` at a time (the pace falls behind rather than pile up)."""
    slots = asyncio.Semaphore(_IN_FLIGHT)
    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []

    async def one(index: int) -> None:
        try:
            await send(index)
        finally:
            slots.release()

    for index in range(count):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.market``."""
    parser = loadgen_parser("benchmarks.market", __doc__)
    parser.add_argument("role", choices=("drive", "strategy"))
    redis_option(parser)
    parser.add_argument("--broker-url", help="drive: the simulator, http://HOST:PORT")
    parser.add_argument("--rate", type=float, default=1000.0, help="drive: per second, in all")
    parser.add_argument("--seconds", type=float, default=5.0, help="drive: per phase")
    args: argparse.Namespace = parser.parse_args(argv)
    if args.role == "strategy":
        deliver(args.result, run(strategy(args.redis_url)))
    else:
        deliver(args.result, run(drive(args.redis_url, args.broker_url, args.rate, args.seconds)))


if __name__ == "__main__":
    main()
