"""The market of a contract: quotes, prints, sessions, the random walk, second bars."""

import random
from datetime import timedelta
from decimal import Decimal

from simulator.contracts import is_on_tick
from simulator.market import Market
from simulator.orders import OrderSide
from tests.unit.simulator.helpers import CL, CONTRACTS, MNQ, NOW
from tests.unit.simulator.recorder import Recorder


def test_a_contract_nobody_moved_sits_at_its_reference_price() -> None:
    quote = Market(CONTRACTS).quote("CON.F.US.EP.H26")
    assert (quote.bid, quote.last, quote.ask) == (
        Decimal("6000.00"),
        Decimal("6000.00"),
        Decimal("6000.25"),
    )


def test_set_price_moves_the_quote_and_fills_do_not() -> None:
    market = Market(CONTRACTS)
    market.set_price(MNQ, Decimal("21010"), NOW)
    market.print_fill(MNQ, Decimal("21010.25"), 3, OrderSide.BID, NOW)
    assert market.quote(MNQ).last == Decimal("21010")
    assert market.quote("CON.F.US.MNQ.H26").last == Decimal("21000")  # each month its own


def test_the_session_counts_the_day_and_starts_again_on_the_next() -> None:
    recorder = Recorder()
    market = Market(CONTRACTS, recorder)
    market.set_price(MNQ, Decimal("21010"), NOW, volume=4)
    market.set_price(MNQ, Decimal("20990"), NOW, volume=2)
    market.print_fill(MNQ, Decimal("20990"), 1, OrderSide.ASK, NOW)
    quote = [e.payload for e in recorder.take() if e.target == "GatewayQuote"][-1]
    assert (quote["open"], quote["high"], quote["low"], quote["volume"]) == (
        Decimal("21000"),
        Decimal("21010"),
        Decimal("20990"),
        7,
    )
    assert (quote["change"], quote["changePercent"]) == (Decimal("-10"), Decimal("-0.05"))
    # 17:00 in Chicago: a new trading day opens at the last price.
    market.set_price(MNQ, Decimal("20995"), NOW.replace(hour=23), volume=1)
    quote = [e.payload for e in recorder.take() if e.target == "GatewayQuote"][-1]
    assert (quote["open"], quote["high"], quote["low"], quote["volume"]) == (
        Decimal("20990"),
        Decimal("20995"),
        Decimal("20990"),
        1,
    )


def test_a_print_without_volume_moves_the_price_but_is_not_a_trade() -> None:
    recorder = Recorder()
    Market(CONTRACTS, recorder).set_price(MNQ, Decimal("21001"), NOW, volume=0)
    assert recorder.targets() == ["GatewayQuote", "GatewayDepth"]


def test_the_random_walk_is_seeded_stays_on_the_grid_and_above_zero() -> None:
    paths = []
    for _ in range(2):
        market, rng = Market(CONTRACTS), random.Random(3)
        path = []
        for step in range(500):
            moved = market.walk(rng, NOW + timedelta(seconds=step))
            assert set(moved) <= {c.id for c in CONTRACTS.active()}
            path.append(market.quote(CL).last)
        paths.append(path)
    assert paths[0] == paths[1]
    assert all(is_on_tick(p, Decimal("0.01")) and p > 0 for p in paths[0])
    assert len(set(paths[0])) > 20


def test_the_walk_never_takes_the_bid_below_one_tick() -> None:
    market = Market(CONTRACTS, spread_ticks=2)
    market.set_price(CL, market.lowest_price(CONTRACTS[CL]), NOW)
    rng = random.Random(0)
    for step in range(200):
        market.walk(rng, NOW + timedelta(seconds=step))
        assert market.quote(CL).bid >= Decimal("0.01")


def test_prints_make_second_bars() -> None:
    market = Market(CONTRACTS)
    market.set_price(MNQ, Decimal("21001"), NOW, volume=2)
    market.set_price(MNQ, Decimal("20999"), NOW + timedelta(milliseconds=300), volume=1)
    market.set_price(MNQ, Decimal("21003"), NOW + timedelta(seconds=1), volume=5)
    first, second = market.seconds(MNQ)
    assert (first.start, first.open, first.high, first.low, first.close, first.volume) == (
        NOW,
        Decimal("21001"),
        Decimal("21001"),
        Decimal("20999"),
        Decimal("20999"),
        3,
    )
    assert (second.start, second.close, second.volume) == (
        NOW + timedelta(seconds=1),
        Decimal("21003"),
        5,
    )
    market.clear()
    assert market.seconds(MNQ) == []
    assert market.quote(MNQ).last == Decimal("21000")
