"""The feed's pure parts: hub pushes to quotes and ticks, the registry's entries, what a
leader may publish, and bars rebuilt from history after a gap."""

from __future__ import annotations

from random import Random

import msgspec
import pytest

from producer.market import Bar, Quote, Tick, Timeframe, demand_member, parse_demand_member
from worker.market import backfill
from worker.market.bars import STANDARD_TIMEFRAMES, BarAggregator, bars_from_ticks
from worker.market.feed import fresh, wanted_of
from worker.market.normalize import merged_quote, ticks_of

CID = "CON.F.US.MNQ.Z25"
T0 = 1_764_590_400_000  # 2025-12-01T12:00Z
ALL = (*STANDARD_TIMEFRAMES, Timeframe.parse("2s"), Timeframe.parse("90s"))


def test_a_quote_keeps_the_fields_a_push_leaves_out() -> None:
    first = merged_quote(
        None,
        {"bestBid": 100.0, "bestAsk": 100.25, "lastPrice": 100.0,
         "timestamp": "2025-12-01T12:00:00.5+00:00"},
        symbol="MNQ", contract_id=CID, now=0,
    )  # fmt: skip
    assert first == Quote(symbol="MNQ", contract_id=CID, bid=100.0, ask=100.25, last=100.0,
                          at=T0 + 500)  # fmt: skip
    second = merged_quote(first, {"bestAsk": 100.5}, symbol="MNQ", contract_id=CID, now=T0 + 900)
    assert (second.bid, second.ask, second.last, second.at) == (100.0, 100.5, 100.0, T0 + 900)
    with pytest.raises(msgspec.ValidationError):
        merged_quote(None, {"bestBid": "high"}, symbol="MNQ", contract_id=CID, now=0)


def test_prints_become_ticks_with_their_aggressor_and_without_empty_ones() -> None:
    pushed = [
        {"price": 100.25, "volume": 3, "type": 0, "timestamp": "2025-12-01T12:00:01Z"},
        {"price": 100.0, "volume": 0, "type": 1},
        {"price": 100.0, "volume": 1, "type": 1, "timestamp": "2025-12-01T12:00:01.25Z"},
    ]
    ticks = ticks_of(pushed, symbol="MNQ", contract_id=CID, now=0)
    assert [(t.price, t.size, t.side, t.at) for t in ticks] == [
        (100.25, 3, "BUY", T0 + 1000),
        (100.0, 1, "SELL", T0 + 1250),
    ]
    one = ticks_of({"price": 99.0, "volume": 2}, symbol="MNQ", contract_id=CID, now=T0)
    assert [(t.side, t.at) for t in one] == [(None, T0)]


def test_registry_entries_name_symbols_and_the_timeframes_beyond_the_standard_ones() -> None:
    members: list[str | bytes] = [
        demand_member("a", "MNQ"),
        demand_member("b", "MNQ", "1m"),
        demand_member("b", "MNQ", "90s").encode(),
        demand_member("c", "ES", "60s"),
        "not an entry",
        demand_member("d", "NQ", "1M"),  # not a timeframe: the symbol, no extra bars
    ]
    assert parse_demand_member(demand_member("a", "MNQ", "5s")) == ("MNQ", "5s")
    assert wanted_of(members) == {
        "MNQ": {Timeframe.parse("90s")},
        "ES": set(),
        "NQ": set(),
    }


def bar(start: int, final: bool, timeframe: str = "1s") -> Bar:
    return Bar(symbol="MNQ", timeframe=timeframe, start=start, open=1.0, high=1.0, low=1.0,
               close=1.0, volume=1, final=final)  # fmt: skip


def test_nothing_at_or_before_a_final_bar_is_published_again() -> None:
    last: dict[str, int] = {}
    assert fresh(last, bar(T0, False))
    assert fresh(last, bar(T0, True))
    assert not fresh(last, bar(T0, True))  # a second leader's copy
    assert not fresh(last, bar(T0, False))
    assert not fresh(last, bar(T0 - 1000, True))
    assert fresh(last, bar(T0, True, "5s"))  # each timeframe on its own
    assert fresh(last, bar(T0 + 1000, False))
    assert last == {"1s": T0, "5s": T0}


def test_the_seam_is_a_whole_second_after_the_subscription_took_effect() -> None:
    assert backfill.cutoff_after(T0) == T0 + 1000
    assert backfill.cutoff_after(T0 + 850) == T0 + 2000
    assert backfill.history_ready_at(T0 + 1000) > T0 + 1000
    hour = Timeframe.parse("1h")
    cutoff = T0 + 30 * 60_000
    # Nothing published yet: from the start of the longest bar in progress.
    assert backfill.since(ALL, {}, cutoff) == hour.start_of(cutoff)
    # A gap longer than that: from the first bar not published final.
    assert backfill.since(ALL, {"1s": T0 - 7_200_000}, cutoff) == T0 - 7_199_000
    # At most a request's worth of seconds back.
    assert backfill.since(ALL, {"1s": 0}, cutoff) == cutoff - backfill.MAX_SECONDS * 1000


def trades(seed: int, count: int) -> list[Tick]:
    rng = Random(seed)
    at = T0 - 3_600_000 + rng.randrange(3_600_000)
    ticks = []
    for _ in range(count):
        at += rng.choice((0, 1, 7, 120, 999, 1000, 4_000, 65_000))
        ticks.append(Tick(symbol="MNQ", contract_id=CID, price=100 + rng.randrange(-40, 40) / 4,
                          size=rng.randint(1, 9), side=None, at=at))  # fmt: skip
    return ticks


@pytest.mark.parametrize("seed", range(8))
def test_bars_rebuilt_from_history_and_live_trades_are_the_bars_of_all_the_trades(
    seed: int,
) -> None:
    ticks = trades(seed, 600)
    cutoff = backfill.cutoff_after(ticks[len(ticks) // 2].at)
    before = [t for t in ticks if t.at < cutoff]
    seconds = bars_from_ticks(
        "MNQ", ["1s"], [t.price for t in before], [t.size for t in before],
        [t.at for t in before], now=cutoff,
    )[Timeframe(1)]  # fmt: skip
    # The hub delivered some trades from before the seam too: history has them already.
    live = [t for t in ticks if t.at >= cutoff - 1500]
    rebuilt = BarAggregator("MNQ", ALL)
    closed = backfill.replay(rebuilt, seconds, live, cutoff)
    closed.extend(rebuilt.advance(1 << 60))
    expected = bars_from_ticks(
        "MNQ", ALL, [t.price for t in ticks], [t.size for t in ticks], [t.at for t in ticks],
        now=1 << 60,
    )  # fmt: skip
    for timeframe in ALL:
        assert [b for b in closed if b.timeframe == timeframe.name] == expected[timeframe]
