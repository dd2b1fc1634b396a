"""MarketFeed's dealings with the registry and its errors, on fakeredis (the streams'
blocking reads run against a real server in tests/integration/market)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

from ow_core.aio import cancel_and_wait
from ow_core.keys import Keys
from producer import InvalidConfig, MarketDataUnavailable, MarketFeed
from producer.market import FeedContract
from tests.unit.worker.ledger_fakes import make_redis

KEYS = Keys()


@pytest.fixture
def redis(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = make_redis()
    monkeypatch.setattr("producer.feed.Redis.from_url", lambda *args, **kwargs: fake)
    return fake


async def members(redis: Any) -> list[bytes]:
    found: list[bytes] = await redis.zrange(KEYS.market_demand, 0, -1)
    return found


async def test_a_symbol_nobody_serves_fails_in_time_and_is_not_asked_for_any_more(
    redis: Any,
) -> None:
    async with MarketFeed(timeout=0.2) as feed:
        with pytest.raises(MarketDataUnavailable) as raised:
            async for _ in feed.quotes("MNQ"):
                pass
        assert raised.value.code == "feed_unavailable"
        assert await members(redis) == []


async def test_a_symbol_the_broker_refused_fails_with_its_reason(redis: Any) -> None:
    refusal = FeedContract(error="unknown_symbol: no contract for XYZ")
    await redis.set(KEYS.market_contract("XYZ"), msgspec.json.encode(refusal))
    async with MarketFeed() as feed:
        with pytest.raises(MarketDataUnavailable, match="no contract for XYZ") as raised:
            async for _ in feed.bars("XYZ", "90s"):
                pass
        assert raised.value.code == "unknown_symbol"


async def test_asking_registers_an_expiring_entry_per_symbol_and_timeframe(redis: Any) -> None:
    await redis.set(
        KEYS.market_contract("MNQ"),
        msgspec.json.encode(FeedContract(contract_id="CON.F.US.MNQ.Z25")),
    )
    async with MarketFeed(demand_ttl=3.0) as feed:
        # fakeredis' XREAD does not block: the readers spin, finding nothing.
        readers = [
            asyncio.create_task(anext(feed.quotes("MNQ"))),
            asyncio.create_task(anext(feed.bars("MNQ", "60s"))),
            asyncio.create_task(anext(feed.bars("MNQ", "1m"))),
        ]
        entries: list[tuple[bytes, float]] = []
        async with asyncio.timeout(10):
            while len(entries) < 2:
                await asyncio.sleep(0.01)
                entries = await redis.zrange(KEYS.market_demand, 0, -1, withscores=True)
        assert sorted(m.decode().split("|", 1)[1] for m, _ in entries) == ["MNQ|", "MNQ|1m"]
        now_ms = time.time() * 1000
        assert all(now_ms < expiry <= now_ms + 3000 for _, expiry in entries)
        # A reader that stops takes its entry out, once no other reader of the feed needs it.
        await cancel_and_wait(readers[:2])
        assert [m.decode().split("|", 1)[1] for m in await members(redis)] == ["MNQ|1m"]
        await cancel_and_wait(readers[2:])
        assert await members(redis) == []


async def test_bad_arguments_are_refused_before_anything_is_asked(redis: Any) -> None:
    with pytest.raises(InvalidConfig):
        MarketFeed(timeout=0)
    async with MarketFeed() as feed:
        with pytest.raises(InvalidConfig) as raised:
            await feed.history("MNQ", "1M", 10)
        assert raised.value.code == "invalid_timeframe"
        with pytest.raises(InvalidConfig):
            await feed.history("MNQ", "1m", 20_001)
        with pytest.raises(InvalidConfig):
            async for _ in feed.bars("MNQ", "1m", history=-1):
                pass
