"""History requests answered from retrieveBars (a fake broker): the last final bars, or the
broker's refusal, on the list the strategy pops."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import msgspec

from ow_core.keys import Keys
from producer.market import HISTORY_ANSWER_DECODER, Bar, HistoryRequest, Timeframe
from tests.unit.worker.ledger_fakes import make_redis
from worker.broker.errors import BrokerRejected
from worker.market.history import Historian, window

KEYS = Keys()
MINUTE = Timeframe(60)


def bar(start: int, final: bool = True) -> Bar:
    return Bar(symbol="CON.F.US.MNQ.Z25", timeframe="1m", start=start, open=1.0, high=2.0,
               low=0.5, close=1.5, volume=3, final=final)  # fmt: skip


class Contract(msgspec.Struct):
    contract_id: str


class Contracts:
    async def resolve(self, symbol: str) -> Contract:
        if symbol == "XYZ":
            raise BrokerRejected("/api/Contract/search", 0, "no contract for XYZ")
        return Contract("CON.F.US.MNQ.Z25")


class Broker:
    def __init__(self, bars: list[Bar]) -> None:
        self.contracts = Contracts()
        self.asked: list[tuple[Any, ...]] = []
        self._bars = bars

    async def retrieve_bars(
        self, contract_id: str, timeframe: Timeframe, start: datetime, end: datetime, *, limit: int
    ) -> list[Bar]:
        self.asked.append((contract_id, timeframe, start, end, limit))
        return self._bars


def this_minute() -> int:
    """Now, as a request's end (one older than a minute is not answered)."""
    return int(time.time() * 1000) // 60_000 * 60_000


async def answer(broker: Broker, symbol: str, count: int, end: int) -> Any:
    redis = make_redis()
    historian = Historian(broker, redis, KEYS, consumer="w1")  # type: ignore[arg-type]
    request = HistoryRequest(request_id="r1", symbol=symbol, timeframe="1m", count=count, end=end)
    await historian._answer_one(msgspec.json.encode(request))
    raw = await redis.lpop(KEYS.history_answer("r1"))
    assert await redis.ttl(KEYS.history_answer("r1")) in (-2, 60)
    return HISTORY_ANSWER_DECODER.decode(raw)


def test_history_is_looked_for_over_twice_its_span_and_a_long_weekend() -> None:
    end = this_minute()
    start, last = window(MINUTE, 500, end)
    assert last.timestamp() * 1000 == end - 1
    assert (last - start).total_seconds() == 2 * 500 * 60 + 4 * 86_400


async def test_the_last_final_bars_before_the_end_are_the_answer() -> None:
    end = this_minute()
    bars = [bar(end - k * 60_000) for k in (4, 3, 2, 1)] + [bar(end, final=False)]
    broker = Broker(bars)
    got = await answer(broker, "MNQ", 3, end)
    assert got.error is None
    assert [b.start for b in got.bars] == [end - 180_000, end - 120_000, end - 60_000]
    assert {b.symbol for b in got.bars} == {"MNQ"}
    assert broker.asked[0][0] == "CON.F.US.MNQ.Z25"
    assert broker.asked[0][4] == 3


async def test_a_refusal_is_the_answer_with_its_code() -> None:
    got = await answer(Broker([]), "XYZ", 3, this_minute())
    assert got.bars == []
    assert got.error == "broker_rejected"
