"""The market-data feed end to end: the simulator's market hub, two workers (their
listeners compete for the market hub's lease), a real redis-server and strategies' feeds."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import pandas as pd
import pytest
import redis

from ow_core.aio import cancel_and_wait
from ow_core.keys import Keys
from producer import Bar, MarketFeed, Quote, Tick
from producer.market import TICK_DECODER
from tests.faults.harness import Fleet
from tests.integration.lifecycle.venue import TICK, eventually
from tests.integration.pipeline.test_replay_and_cli import run_cli

T = TypeVar("T")
Entries = list[tuple[bytes, dict[bytes, bytes]]]
# A longer grace for late trades than the default, as a busy CI machine may delay the
# hub's pushes by more than that.
MARKET = {"MARKET_BAR_GRACE_MS": "1000"}


def two_workers(fleet: Callable[..., Fleet], **env: str) -> Fleet:
    started = fleet(env={**MARKET, **env})
    started.start_worker("w1")
    started.start_worker("w2")
    return started


@pytest.fixture
def market(fleet: Callable[..., Fleet]) -> Fleet:
    """Redis, the simulator and two workers (one of their listeners holds the market hub)."""
    return two_workers(fleet)


@pytest.fixture
def fast_failover(fleet: Callable[..., Fleet]) -> Fleet:
    """The same with a short market-hub lease, so a new leader comes within 1.4 s."""
    return two_workers(fleet, LEADER_TTL_MS="1000")


class Collect:
    """Everything an async iterator yields, in a task of its own."""

    def __init__(self, iterator: AsyncIterator[T]) -> None:
        self.seen: list[Any] = []
        self._task = asyncio.create_task(self._run(iterator))

    async def _run(self, iterator: AsyncIterator[T]) -> None:
        async for item in iterator:
            self.seen.append(item)

    async def close(self) -> None:
        await cancel_and_wait([self._task])


def subscriptions(fleet: Fleet) -> set[str]:
    """The market hub subscriptions the simulator holds, over every connection."""
    return {
        topic
        for connection in fleet.broker.hubs()["connections"]
        if connection["hub"] == "market"
        for topic in connection["subscriptions"]
    }


def contract(fleet: Fleet, symbol: str) -> str:
    answer: dict[str, Any] = fleet.broker._request("GET", f"/_sim/price?symbol={symbol}")
    return str(answer["contractId"])


async def subscribed(fleet: Fleet, contract_id: str) -> None:
    def check() -> None:
        assert {f"quotes:{contract_id}", f"marketTrades:{contract_id}"} <= subscriptions(fleet)

    await eventually(check)


async def move(fleet: Fleet, symbol: str, price: float, volume: int = 1) -> None:
    await asyncio.to_thread(fleet.broker.move_price, symbol, price, volume)


def reference(ticks: list[Tick], seconds: int) -> pd.DataFrame:
    """pandas' bars of the same ticks: open, high, low, close and volume per interval."""
    frame = pd.DataFrame(
        {"price": [t.price for t in ticks], "size": [t.size for t in ticks]},
        index=pd.to_datetime([t.at for t in ticks], unit="ms", utc=True),
    )
    rule = f"{seconds}s"
    ohlc = frame["price"].resample(rule, origin="epoch").ohlc()
    ohlc["volume"] = frame["size"].resample(rule, origin="epoch").sum()
    return ohlc.dropna()


def as_rows(bars: list[Bar]) -> list[tuple[int, float, float, float, float, int]]:
    return [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def reference_rows(frame: pd.DataFrame) -> list[tuple[int, float, float, float, float, int]]:
    return [
        (int(pd.Timestamp(at).timestamp() * 1000), o, h, low, c, int(v))
        for at, o, h, low, c, v in frame.itertuples()
    ]


async def test_prices_reach_two_strategies_and_a_strategy_that_stops_is_unsubscribed(
    market: Fleet,
) -> None:
    mnq = contract(market, "MNQ")
    # One strategy in this process; the other a process of its own, killed later.
    script = (
        "import asyncio, sys\n"
        "from producer import MarketFeed\n"
        "async def main():\n"
        f"    async with MarketFeed({market.redis_url!r}, demand_ttl=1.0) as feed:\n"
        "        async for quote in feed.quotes('MNQ'):\n"
        "            print(quote.last, flush=True)\n"
        "asyncio.run(main())\n"
    )
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        async with MarketFeed(market.redis_url, demand_ttl=1.0) as feed:
            quotes: Collect = Collect(feed.quotes("MNQ"))
            await subscribed(market, mnq)
            base = market.broker.price("MNQ")
            await move(market, "MNQ", base)
            assert other.stdout is not None
            # Once it printed a quote, the other strategy reads from there on.
            await asyncio.wait_for(other.stdout.readline(), 15)
            prices = [base + TICK * k for k in (4, -3, 8, 1)]
            for price in prices:
                await move(market, "MNQ", price)

            def mine() -> None:
                assert [q.last for q in quotes.seen if isinstance(q, Quote)][-4:] == prices

            await eventually(mine)
            assert all(q.contract_id == mnq and q.bid is not None for q in quotes.seen)
            # The other strategy saw the same quotes, in order.
            lines: list[float] = []
            while lines[-4:] != prices:
                line = await asyncio.wait_for(other.stdout.readline(), 10)
                lines.append(float(line))
            # The strategy here stops: the other still asks, the contract stays subscribed.
            await quotes.close()
        await asyncio.sleep(1.5)
        assert f"quotes:{mnq}" in subscriptions(market)
        # The other dies without a word: its entry expires, and the fleet unsubscribes.
        other.kill()
        await other.wait()

        def gone() -> None:
            assert not {f"quotes:{mnq}", f"marketTrades:{mnq}"} & subscriptions(market)

        # Its entries lived 1 s after their last renewal: their expiry dropped it.
        await eventually(gone, timeout=8)
    finally:
        if other.returncode is None:
            other.kill()
        await other.wait()


async def test_bars_in_three_timeframes_match_the_reference(market: Fleet) -> None:
    mnq = contract(market, "MNQ")
    rng = random.Random(15)
    async with MarketFeed(market.redis_url) as feed:
        series = {name: Collect(feed.bars("MNQ", name)) for name in ("1s", "2s", "5s")}
        await subscribed(market, mnq)
        base = market.broker.price("MNQ")
        ends = time.time() + 6.5
        moves = 0
        joined: Collect | None = None
        while time.time() < ends:
            if joined is None and time.time() > ends - 3:
                # A strategy that joins late: the last bars from history, then live ones.
                joined = Collect(feed.bars("MNQ", "1s", history=3))
            price = base + TICK * rng.randint(-12, 12)
            await move(market, "MNQ", price, rng.randint(1, 5))
            moves += 1
            await asyncio.sleep(rng.uniform(0.0, 0.25))
        # Every trade the feed published (a strategy's trades() starts at its first read).
        client = redis.Redis.from_url(market.redis_url)
        ticks: list[Tick] = []

        def published() -> None:
            stream = cast(Entries, client.xrange(Keys().trades(mnq)))
            ticks[:] = [TICK_DECODER.decode(fields[b"d"]) for _, fields in stream]
            assert len(ticks) == moves

        await eventually(published)

        def finished() -> None:
            last = ticks[-1].at
            for name, collected in series.items():
                ms = int(name[:-1]) * 1000
                assert any(b.final and b.start == last - last % ms for b in collected.seen)

        await eventually(finished)
        for name, collected in series.items():
            finals = [b for b in collected.seen if b.final]
            # Every bar is final once, in order, and matches pandas on the same trades.
            assert [b.start for b in finals] == sorted({b.start for b in finals})
            assert as_rows(finals) == reference_rows(reference(ticks, int(name[:-1])))
            # Updates in progress came before each final bar.
            assert any(not b.final for b in collected.seen)
        # History then live, for the one that joined late: no gap, no overlap.
        assert joined is not None
        late = [b for b in joined.seen if b.final]
        assert len(late) > 3
        assert all(b.final for b in joined.seen[:3])
        assert [b.start for b in late] == sorted({b.start for b in late})
        assert all(b.start > late[2].start for b in joined.seen[3:])
        since = [b for b in series["1s"].seen if b.final and b.start >= late[0].start]
        assert as_rows(late) == as_rows(since[: len(late)])
        await joined.close()
        # History (the simulator's retrieveBars) agrees with the live bars.
        history = await feed.history("MNQ", "1s", 100)
        live = {b.start: b for b in series["1s"].seen if b.final}
        both = [b for b in history if b.start in live]
        assert len(both) >= 3
        assert both == [live[b.start] for b in both]
        for collected in series.values():
            await collected.close()
    # The shell's live tables: the latest quote, and the last bars from history.
    quotes = await asyncio.to_thread(
        run_cli, "quotes", "MNQ", "--count", "1", redis_url=market.redis_url
    )
    assert quotes.returncode == 0, quotes.stderr
    header, row = quotes.stdout.splitlines()
    assert header.split() == ["time", "(UTC)", "symbol", "bid", "ask", "last"]
    assert row.split()[-1] == f"{ticks[-1].price:.2f}"
    shown = await asyncio.to_thread(
        run_cli, "bars", "MNQ", "--timeframe", "1s", "--history", "3", "--count", "3",
        redis_url=market.redis_url,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:3] == ["start", "(UTC)", "bar"]
    assert [line.split()[-1] for line in lines[1:]] == [str(b.volume) for b in history[-3:]]


async def test_leader_killed_feed_resumes_on_another_with_the_gap_filled(
    fast_failover: Fleet,
) -> None:
    market = fast_failover
    mnq = contract(market, "MNQ")
    client = redis.Redis.from_url(market.redis_url)
    async with MarketFeed(market.redis_url) as feed:
        bars: Collect = Collect(feed.bars("MNQ", "1s"))
        quotes: Collect = Collect(feed.quotes("MNQ"))
        await subscribed(market, mnq)
        base = market.broker.price("MNQ")
        await move(market, "MNQ", base + TICK)
        leader = client.get("ow:leader:market")
        assert leader in (b"w1", b"w2")
        market.kill(leader.decode())
        # Prices move while nobody holds the hub: in different seconds.
        gap = [base + TICK * k for k in (5, -5, 9)]
        for price in gap:
            await move(market, "MNQ", price, 2)
            await asyncio.sleep(0.6)

        def taken_over() -> None:
            assert client.get("ow:leader:market") not in (None, leader)

        await eventually(taken_over)
        await subscribed(market, mnq)
        after = base + TICK * 2
        await move(market, "MNQ", after)

        def resumed() -> None:
            assert any(q.last == after for q in quotes.seen)
            assert any(b.final and b.close == after for b in bars.seen)

        await eventually(resumed)
        # Every second with trades came as one final bar, the gap's too (rebuilt from
        # history by the new leader), each as the venue's history has it.
        history = await feed.history("MNQ", "1s", 100)
        finals = [b for b in bars.seen if b.final]
        assert [b.start for b in finals] == sorted({b.start for b in finals})
        assert as_rows(finals) == as_rows([b for b in history if b.start >= finals[0].start])
        # The first of them was made before any worker could hold the hub again.
        for price in (*gap, after):
            assert any(b.low <= price <= b.high for b in finals)
        await bars.close()
        await quotes.close()
