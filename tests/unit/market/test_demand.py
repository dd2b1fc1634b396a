"""The leader following the registry (fakeredis, a fake broker, no hub connection): a
symbol asked for is served, one the broker refuses is answered with why, an alias shares
its contract's feed, and expired entries (a dead strategy's) are dropped."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from ow_core.fastlane import FastLane
from ow_core.keys import Keys
from producer.market import FEED_CONTRACT_DECODER, Timeframe, demand_member
from tests.unit.worker.ledger_fakes import make_redis
from worker.broker.errors import BrokerRejected, BrokerUnavailable
from worker.market.feed import MarketHub

KEYS = Keys()


class Contract(msgspec.Struct):
    contract_id: str


class Contracts:
    def __init__(self) -> None:
        self.down = False

    async def resolve(self, symbol: str) -> Contract:
        if self.down:
            raise BrokerUnavailable(
                "the broker is away", endpoint="/api/Contract/search", sent=False
            )
        if symbol == "XYZ":
            raise BrokerRejected("/api/Contract/search", 0, "no contract for XYZ")
        return Contract(
            "CON.F.US.MNQ.Z25" if symbol in ("MNQ", "NEAR") else f"CON.F.US.{symbol}.Z25"
        )


class Broker:
    def __init__(self) -> None:
        self.contracts = Contracts()


async def served(redis: Any, symbol: str) -> Any:
    raw = await redis.get(KEYS.market_contract(symbol))
    return None if raw is None else FEED_CONTRACT_DECODER.decode(raw)


async def ask(redis: Any, feed: str, symbol: str, timeframe: str = "", ttl_ms: int = 5000) -> None:
    expiry = int(time.time() * 1000) + ttl_ms
    await redis.zadd(KEYS.market_demand, {demand_member(feed, symbol, timeframe): expiry})


async def test_the_leader_serves_what_is_asked_for_while_it_is_asked_for() -> None:
    redis = make_redis()
    broker = Broker()
    hub = MarketHub(broker, redis, KEYS, hub_url="http://unused", lane=FastLane("redis://x:1"))  # type: ignore[arg-type]
    await ask(redis, "a", "MNQ", "90s")
    await ask(redis, "b", "NEAR")  # an alias of the same contract
    await ask(redis, "c", "XYZ")
    await ask(redis, "d", "ES", ttl_ms=-1)  # a dead strategy's entry, expired
    await hub._follow_demand()
    assert (await served(redis, "MNQ")).contract_id == "CON.F.US.MNQ.Z25"
    assert (await served(redis, "NEAR")).contract_id == "CON.F.US.MNQ.Z25"
    assert "no contract for XYZ" in (await served(redis, "XYZ")).error
    assert await served(redis, "ES") is None
    assert sorted(hub._feeds) == ["CON.F.US.MNQ.Z25"]
    assert Timeframe.parse("90s") in hub._feeds["CON.F.US.MNQ.Z25"].timeframes
    assert len(await redis.zrange(KEYS.market_demand, 0, -1)) == 3

    # One name goes: the other still holds the feed. Then both go.
    await redis.zrem(KEYS.market_demand, demand_member("b", "NEAR"))
    await hub._follow_demand()
    assert sorted(hub._feeds) == ["CON.F.US.MNQ.Z25"]
    await redis.zrem(KEYS.market_demand, demand_member("a", "MNQ", "90s"))
    await hub._follow_demand()
    assert hub._feeds == {}


async def test_a_broker_out_of_reach_is_not_an_unknown_symbol() -> None:
    redis = make_redis()
    broker = Broker()
    broker.contracts.down = True
    hub = MarketHub(broker, redis, KEYS, hub_url="http://unused", lane=FastLane("redis://x:1"))  # type: ignore[arg-type]
    await ask(redis, "a", "MNQ")
    await hub._follow_demand()
    assert await served(redis, "MNQ") is None  # the strategy waits, nothing is refused
    assert hub._feeds == {}
