"""worker/market/bars.py against pandas: live bars, history bars and the two joined.

The reference is pandas ``resample(..., origin="epoch").ohlc()`` plus the sum of sizes,
``dropna()``, on the same trades (sorted stably by time, so trades in one millisecond
keep their order), as the module's rules promise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from random import Random
from typing import NamedTuple

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.market import Bar, Timeframe
from worker.market.bars import (
    DEFAULT_GRACE_MS,
    STANDARD_TIMEFRAMES,
    BarAggregator,
    BarSplice,
    bars_from_ticks,
    merge_bars,
    resample_bars,
)

# Derandomized (the same examples on every run) and without a deadline, so a busy
# 2-core CI machine can neither flake nor fail on time.
DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=40)

ALL = (*STANDARD_TIMEFRAMES, Timeframe.parse("90s"), Timeframe.parse("4h"))
MIDNIGHT = 1_699_920_000_000  # 2023-11-14T00:00Z: a Tuesday in US winter time
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
LATER = 1 << 60  # a clock past every bar's end


class Trade(NamedTuple):
    price: float
    size: int
    at: int


Row = tuple[int, float, float, float, float, int]


def reference(trades: Sequence[Trade], timeframe: Timeframe) -> list[Row]:
    """pandas' bars of the trades: (start, open, high, low, close, volume)."""
    if not trades:
        return []
    frame = pd.DataFrame(
        {"price": [t.price for t in trades], "size": [t.size for t in trades]},
        index=pd.to_datetime([t.at for t in trades], unit="ms", utc=True),
    ).sort_index(kind="stable")
    resampler = frame.resample(f"{timeframe.seconds}s", origin="epoch", closed="left", label="left")
    bars = resampler["price"].ohlc()
    bars["volume"] = resampler["size"].sum()
    bars = bars.dropna()
    starts = pd.DatetimeIndex(bars.index).as_unit("ms").asi8
    return [
        (int(start), float(o), float(h), float(low), float(c), int(v))
        for start, o, h, low, c, v in zip(
            starts,
            bars["open"],
            bars["high"],
            bars["low"],
            bars["close"],
            bars["volume"],
            strict=True,
        )
    ]


def row(bar: Bar) -> Row:
    return (bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume)


def by_timeframe(bars: Iterable[Bar]) -> dict[str, list[Bar]]:
    grouped: dict[str, list[Bar]] = {t.name: [] for t in ALL}
    for bar in bars:
        grouped[bar.timeframe].append(bar)
    return grouped


def columns(trades: Sequence[Trade]) -> tuple[list[float], list[int], list[int]]:
    return [t.price for t in trades], [t.size for t in trades], [t.at for t in trades]


@st.composite
def trade_streams(draw: st.DrawFn, max_size: int = 150) -> list[Trade]:
    """Trades in time order: bursts within a millisecond, seconds apart, and gaps of hours."""
    at = draw(st.integers(MIDNIGHT - 3 * HOUR, MIDNIGHT + 3 * HOUR))
    price = 20_000.0
    steps = draw(
        st.lists(
            st.tuples(
                st.one_of(
                    st.integers(0, 3),
                    st.integers(0, 700),
                    st.integers(0, 20 * SECOND),
                    st.integers(0, 90 * MINUTE),
                ),
                st.integers(-8, 8),
                st.integers(1, 30),
            ),
            max_size=max_size,
        )
    )
    trades = []
    for gap, move, size in steps:
        at += gap
        price += move * 0.25
        trades.append(Trade(price, size, at))
    return trades


def feed(
    aggregator: BarAggregator, trades: Sequence[Trade], arrivals: Sequence[int] | None = None
) -> list[Bar]:
    """Feeds the trades (advancing the clock to each arrival first, if given), then ends
    every bar; returns the final bars in the order they were published."""
    finals: list[Bar] = []
    for trade, arrival in zip(trades, arrivals or [t.at for t in trades], strict=True):
        finals += aggregator.advance(arrival)
        finals += aggregator.add(trade.price, trade.size, trade.at)
    finals += aggregator.advance(LATER)
    return finals


def assert_match(finals: Iterable[Bar], trades: Sequence[Trade]) -> None:
    grouped = by_timeframe(finals)
    for timeframe in ALL:
        bars = grouped[timeframe.name]
        assert all(bar.final and bar.symbol == "MNQ" for bar in bars)
        assert [row(bar) for bar in bars] == reference(trades, timeframe), timeframe.name


# --- live ----------------------------------------------------------------------------


@DETERMINISTIC
@given(trade_streams())
def test_live_bars_in_eight_timeframes_match_pandas(trades: list[Trade]) -> None:
    aggregator = BarAggregator("MNQ", ALL)
    assert_match(feed(aggregator, trades), trades)
    assert aggregator.dropped == 0


@DETERMINISTIC
@given(trade_streams(max_size=60), st.data())
def test_bars_in_progress_match_pandas_on_the_trades_so_far(
    trades: list[Trade], data: st.DataObject
) -> None:
    """Read now and then (after every trade, or once per batch): each bar that trades
    changed since the last read comes once, as pandas has it on the trades so far."""
    aggregator = BarAggregator("MNQ", ALL)
    reads = data.draw(st.sets(st.integers(0, max(len(trades) - 1, 0)), max_size=6))
    since_read: set[tuple[str, int]] = set()
    expected: dict[tuple[int, str], dict[int, Row]] = {}
    for index, trade in enumerate(trades):
        for bar in aggregator.add(trade.price, trade.size, trade.at):
            since_read.discard((bar.timeframe, bar.start))
        since_read |= {(t.name, t.start_of(trade.at)) for t in ALL}
        if index not in reads:
            continue
        changed = aggregator.changed()
        assert {(bar.timeframe, bar.start) for bar in changed} == since_read
        since_read = set()
        for bar in changed:
            assert not bar.final
            if (index, bar.timeframe) not in expected:
                rows = reference(trades[: index + 1], Timeframe.parse(bar.timeframe))
                expected[index, bar.timeframe] = {r[0]: r for r in rows}
            assert row(bar) == expected[index, bar.timeframe][bar.start]


@DETERMINISTIC
@given(trade_streams(), st.lists(st.integers(0, DEFAULT_GRACE_MS), min_size=150))
def test_trades_out_of_order_within_the_grace_are_all_counted(
    trades: list[Trade], delays: list[int]
) -> None:
    arrivals = [t.at + delay for t, delay in zip(trades, delays, strict=False)]
    order = sorted(range(len(trades)), key=arrivals.__getitem__)
    arrived = [trades[k] for k in order]
    aggregator = BarAggregator("MNQ", ALL)
    finals = feed(aggregator, arrived, [arrivals[k] for k in order])
    assert aggregator.dropped == 0
    assert_match(finals, arrived)  # trades in one millisecond count in arrival order


@DETERMINISTIC
@given(trade_streams(), st.lists(st.integers(0, 6 * DEFAULT_GRACE_MS), min_size=150))
def test_trades_later_than_their_bar_are_dropped_and_counted_and_only_those(
    trades: list[Trade], delays: list[int]
) -> None:
    grace = DEFAULT_GRACE_MS
    arrivals = [t.at + delay for t, delay in zip(trades, delays, strict=False)]
    order = sorted(range(len(trades)), key=arrivals.__getitem__)
    aggregator = BarAggregator("MNQ", ALL)
    finals: list[Bar] = []
    published: set[tuple[str, int]] = set()
    accepted: list[Trade] = []
    clock = -1
    for k in order:
        trade, arrival = trades[k], arrivals[k]
        clock = max(clock, arrival)
        dropped = aggregator.dropped
        for bar in [*aggregator.advance(arrival), *aggregator.add(*trade)]:
            finals.append(bar)
            published.add((bar.timeframe, bar.start))
        bars = {(t.name, t.start_of(trade.at)) for t in ALL}
        if aggregator.dropped == dropped:
            accepted.append(trade)
            assert not bars & published, "a final bar changed after it was published"
        else:
            assert aggregator.dropped == dropped + 1
            # dropped only because the trade's bar in some timeframe had closed
            assert any(t.start_of(trade.at) + t.ms + grace <= clock for t in ALL)
            assert delays[k] > grace
        clock = max(clock, trade.at)
    finals += aggregator.advance(LATER)
    assert_match(finals, accepted)


def test_a_trade_on_a_boundary_opens_the_next_bar() -> None:
    aggregator = BarAggregator("MNQ", ["1s", "1m"])
    trades = [Trade(1.0, 1, MIDNIGHT + 999), Trade(2.0, 1, MIDNIGHT + 1000)]
    trades += [Trade(3.0, 1, MIDNIGHT + MINUTE)]
    finals = feed(aggregator, trades)
    assert [(b.timeframe, b.start, b.close) for b in finals if b.timeframe == "1s"] == [
        ("1s", MIDNIGHT, 1.0),
        ("1s", MIDNIGHT + 1000, 2.0),
        ("1s", MIDNIGHT + MINUTE, 3.0),
    ]
    assert [(b.start, b.close) for b in finals if b.timeframe == "1m"] == [
        (MIDNIGHT, 2.0),
        (MIDNIGHT + MINUTE, 3.0),
    ]


def test_a_bar_closes_on_time_without_another_trade() -> None:
    aggregator = BarAggregator("MNQ", ["1s", "1m"], grace_ms=500)
    assert aggregator.add(5.0, 3, MIDNIGHT + 10_200) == ()
    assert aggregator.advance(MIDNIGHT + 11_499) == ()
    [closed] = aggregator.advance(MIDNIGHT + 11_500)
    assert closed == Bar(
        symbol="MNQ",
        timeframe="1s",
        start=MIDNIGHT + 10_000,
        open=5.0,
        high=5.0,
        low=5.0,
        close=5.0,
        volume=3,
        final=True,
    )
    assert aggregator.advance(MIDNIGHT + MINUTE + 499) == ()
    [minute] = aggregator.advance(MIDNIGHT + MINUTE + 500)
    assert (minute.timeframe, minute.start, minute.final) == ("1m", MIDNIGHT, True)
    assert aggregator.advance(LATER) == ()


def test_a_trade_closes_the_bars_its_time_has_passed() -> None:
    """The clock is also the trades' own time: bars close when the next trade proves it."""
    aggregator = BarAggregator("MNQ", ["1s"], grace_ms=500)
    aggregator.add(5.0, 1, MIDNIGHT + 100)
    assert aggregator.add(6.0, 1, MIDNIGHT + 1400) == ()
    [closed] = aggregator.add(7.0, 1, MIDNIGHT + 1500)
    assert (closed.start, closed.close, closed.final) == (MIDNIGHT, 5.0, True)


def test_an_earlier_clock_does_not_reopen_anything() -> None:
    aggregator = BarAggregator("MNQ", ["1s"], grace_ms=0)
    aggregator.add(5.0, 1, MIDNIGHT + 100)
    assert len(aggregator.advance(MIDNIGHT + 1000)) == 1
    assert aggregator.advance(MIDNIGHT) == ()
    aggregator.add(6.0, 1, MIDNIGHT + 200)
    assert aggregator.dropped == 1


def test_a_late_trade_within_the_grace_updates_the_previous_bar() -> None:
    aggregator = BarAggregator("MNQ", ["1s", "1m"], grace_ms=500)
    aggregator.add(10.0, 1, MIDNIGHT + 900)
    aggregator.add(11.0, 1, MIDNIGHT + 1100)
    aggregator.changed()
    # 300 ms after the 1 s bar ended, a trade from inside it: it still counts, there and
    # in the minute, and it is not the close of either (it is older than their last trade)
    assert aggregator.add(9.0, 2, MIDNIGHT + 500) == ()
    changed = {(bar.timeframe, bar.start): bar for bar in aggregator.changed()}
    assert set(changed) == {("1s", MIDNIGHT), ("1m", MIDNIGHT)}
    assert row(changed["1s", MIDNIGHT]) == (MIDNIGHT, 9.0, 10.0, 9.0, 10.0, 3)
    assert row(changed["1m", MIDNIGHT]) == (MIDNIGHT, 9.0, 11.0, 9.0, 11.0, 4)


def test_a_trade_beyond_the_grace_is_dropped_from_every_timeframe() -> None:
    aggregator = BarAggregator("MNQ", ["1s", "1m"], grace_ms=500)
    aggregator.add(10.0, 1, MIDNIGHT + 900)
    [second] = aggregator.add(11.0, 1, MIDNIGHT + 1600)
    assert second.start == MIDNIGHT
    assert aggregator.add(9.0, 2, MIDNIGHT + 950) == ()
    assert aggregator.dropped == 1
    # the minute is still open, but takes only what its seconds took
    minute = next(bar for bar in feed(aggregator, []) if bar.timeframe == "1m")
    assert row(minute) == (MIDNIGHT, 10.0, 11.0, 10.0, 11.0, 2)


def test_trades_in_one_millisecond_keep_their_order() -> None:
    aggregator = BarAggregator("MNQ", ["1s"])
    trades = [Trade(3.0, 1, MIDNIGHT + 5), Trade(1.0, 1, MIDNIGHT + 5), Trade(2.0, 1, MIDNIGHT + 5)]
    [bar] = feed(aggregator, trades)
    assert (bar.open, bar.close) == (3.0, 2.0)
    assert [row(bar)] == reference(trades, Timeframe.parse("1s"))


def test_a_gap_of_hours_yields_no_bars_and_the_last_bars_close_on_time() -> None:
    aggregator = BarAggregator("MNQ", ALL)
    before = [Trade(1.0, 1, MIDNIGHT + 10 * MINUTE), Trade(2.0, 1, MIDNIGHT + 10 * MINUTE + 1)]
    for trade in before:
        aggregator.add(*trade)
    # three hours without a trade: the clock alone closes every bar but the 4 h one
    closed = aggregator.advance(MIDNIGHT + 3 * HOUR)
    assert {bar.timeframe for bar in closed} == {t.name for t in ALL} - {"4h"}
    after = Trade(3.0, 1, MIDNIGHT + 3 * HOUR + 5)
    aggregator.add(*after)
    bars = by_timeframe([*closed, *aggregator.advance(LATER)])
    for timeframe in ALL:
        starts = [bar.start for bar in bars[timeframe.name]]
        expected = {timeframe.start_of(before[0].at), timeframe.start_of(after.at)}
        assert starts == sorted(expected), timeframe.name
    assert_match([bar for group in bars.values() for bar in group], [*before, after])


def test_the_cme_daily_break_yields_no_bars_and_a_4h_bar_spans_it_as_pandas_does() -> None:
    """16:00-17:00 Chicago is 22:00-23:00 UTC in November."""
    break_starts, break_ends = MIDNIGHT + 22 * HOUR, MIDNIGHT + 23 * HOUR
    trades = [
        Trade(100.0, 2, break_starts - 400),
        Trade(101.0, 1, break_starts - 1),
        Trade(99.0, 4, break_ends),
        Trade(99.5, 1, break_ends + 30 * SECOND),
    ]
    aggregator = BarAggregator("MNQ", ALL)
    closed_in_break: list[Bar] = []
    for trade in trades[:2]:
        aggregator.add(*trade)
    for now in range(break_starts, break_ends, 5 * MINUTE):
        closed_in_break += aggregator.advance(now)
    assert {bar.timeframe for bar in closed_in_break} == {t.name for t in ALL} - {"4h"}
    finals = feed(aggregator, trades[2:])
    assert_match([*closed_in_break, *finals], trades)
    hours = [bar.start for bar in by_timeframe([*closed_in_break, *finals])["1h"]]
    assert hours == [break_starts - HOUR, break_ends]
    [four] = by_timeframe(finals)["4h"]
    assert row(four) == (MIDNIGHT + 20 * HOUR, 100.0, 101.0, 99.0, 99.5, 8)


def test_one_length_under_two_names_is_one_timeframe() -> None:
    aggregator = BarAggregator("MNQ", ["60s", "1m", Timeframe.parse("1m")])
    assert aggregator.timeframes == (Timeframe.parse("1m"),)


@pytest.mark.parametrize(
    ("timeframes", "grace", "message"),
    [([], 0, "at least one timeframe"), (["1m"], -1, "not be negative"), (["1M"], 0, "unit")],
)
def test_an_aggregator_refuses_what_cannot_work(
    timeframes: list[str], grace: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BarAggregator("MNQ", timeframes, grace_ms=grace)


def test_nothing_changed_reads_as_nothing() -> None:
    aggregator = BarAggregator("MNQ")
    assert aggregator.changed() == []
    aggregator.add(1.0, 1, MIDNIGHT)
    assert len(aggregator.changed()) == len(STANDARD_TIMEFRAMES)
    assert aggregator.changed() == []


# --- history -------------------------------------------------------------------------


@DETERMINISTIC
@given(trade_streams(), st.randoms(use_true_random=False))
def test_history_bars_from_trades_match_pandas_in_any_order(
    trades: list[Trade], random: Random
) -> None:
    shuffled = list(trades)
    random.shuffle(shuffled)
    built = bars_from_ticks("MNQ", ALL, *columns(shuffled), now=LATER)
    assert list(built) == sorted(ALL, key=lambda t: t.seconds)
    for timeframe, bars in built.items():
        assert all(bar.final and bar.timeframe == timeframe.name for bar in bars)
        # a shuffle reorders ties too: compare with pandas on the same arrival order
        assert [row(bar) for bar in bars] == reference(shuffled, timeframe)


@DETERMINISTIC
@given(trade_streams())
def test_longer_bars_from_shorter_ones_are_the_bars_of_the_same_trades(
    trades: list[Trade],
) -> None:
    built = bars_from_ticks("MNQ", ["1m", "90s"], *columns(trades), now=LATER)
    for target in ("5m", "15m", "1h", "4h"):
        newest_first = list(reversed(built[Timeframe.parse("1m")]))  # as retrieveBars has them
        bars = resample_bars(newest_first, target, now=LATER)
        assert [row(bar) for bar in bars] == reference(trades, Timeframe.parse(target))
    bars = resample_bars(built[Timeframe.parse("90s")], "3m", now=LATER)
    assert [row(bar) for bar in bars] == reference(trades, Timeframe.parse("3m"))


def test_history_bars_are_final_once_they_have_ended() -> None:
    trades = [Trade(1.0, 1, MIDNIGHT + 10), Trade(2.0, 1, MIDNIGHT + MINUTE + 10)]
    now = MIDNIGHT + MINUTE + 20
    built = bars_from_ticks("MNQ", ["1m", "5m"], *columns(trades), now=now)
    assert [bar.final for bar in built[Timeframe.parse("1m")]] == [True, False]
    assert [bar.final for bar in built[Timeframe.parse("5m")]] == [False]
    ones = built[Timeframe.parse("1m")]
    assert [bar.final for bar in resample_bars(ones, "5m", now=LATER)] == [False]
    assert [bar.final for bar in resample_bars(ones[:1], "5m", now=LATER)] == [True]
    assert [bar.final for bar in resample_bars(ones[:1], "5m", now=now)] == [False]


def bar(start: int, close: float, *, timeframe: str = "1m", final: bool = True) -> Bar:
    return Bar(
        symbol="MNQ",
        timeframe=timeframe,
        start=start,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1,
        final=final,
    )


@pytest.mark.parametrize(
    ("bars", "target", "message"),
    [
        ([bar(0, 1.0)], "90s", "cannot be built from 1m"),
        ([bar(0, 1.0), bar(300_000, 1.0, timeframe="5m")], "15m", "one timeframe"),
        ([bar(0, 1.0), bar(0, 2.0)], "5m", "start twice"),
    ],
)
def test_resampling_refuses_bars_it_cannot_add_up(
    bars: list[Bar], target: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resample_bars(bars, target, now=LATER)


def test_resampling_nothing_gives_nothing() -> None:
    assert resample_bars([], "5m", now=LATER) == []
    assert bars_from_ticks("MNQ", ["1m"], [], [], [], now=LATER) == {Timeframe.parse("1m"): []}


def test_trade_columns_must_line_up() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        bars_from_ticks("MNQ", ["1m"], [1.0, 2.0], [1], [1, 2], now=LATER)


# --- history then live ---------------------------------------------------------------


def assert_seamless(bars: Sequence[Bar]) -> None:
    starts = [b.start for b in bars]
    assert starts == sorted(set(starts)), "a bar is missing its order or comes twice"


def test_merge_takes_final_history_then_live_from_the_last_history_bar() -> None:
    history = [bar(0, 1.0), bar(MINUTE, 2.0), bar(2 * MINUTE, 3.0, final=False)]
    live = [
        bar(0, 9.0),  # older than the history's last bar: the history has it already
        bar(MINUTE, 2.5),  # the same start as the last final history bar: replaces it
        bar(2 * MINUTE, 3.5, final=False),
        bar(2 * MINUTE, 3.75),  # its last word
        bar(3 * MINUTE, 4.0, final=False),
    ]
    merged = merge_bars(history, live)
    assert_seamless(merged)
    assert [(b.start, b.close, b.final) for b in merged] == [
        (0, 1.0, True),
        (MINUTE, 2.5, True),
        (2 * MINUTE, 3.75, True),
        (3 * MINUTE, 4.0, False),
    ]


def test_a_splice_keeps_the_last_count_final_bars_in_order() -> None:
    history = [bar(3 * MINUTE, 4.0), bar(MINUTE, 2.0), bar(2 * MINUTE, 3.0), bar(0, 1.0)]
    history += [bar(4 * MINUTE, 5.0, final=False), bar(MINUTE, 2.25)]
    splice = BarSplice(history, count=3)
    assert [(b.start, b.close) for b in splice.history] == [
        (MINUTE, 2.25),
        (2 * MINUTE, 3.0),
        (3 * MINUTE, 4.0),
    ]
    assert not splice.accept(bar(2 * MINUTE, 3.0))
    assert splice.accept(bar(3 * MINUTE, 4.5, final=False))
    assert BarSplice(history, count=0).history == []
    assert len(BarSplice(history, count=50).history) == 4
    assert BarSplice([]).accept(bar(0, 1.0))
    with pytest.raises(ValueError, match="mixes"):
        BarSplice([bar(0, 1.0), bar(MINUTE, 1.0, timeframe="5m")])
    with pytest.raises(ValueError, match="negative"):
        BarSplice(history, count=-1)


@DETERMINISTIC
@given(trade_streams(), st.integers(0, 150), st.sampled_from(["1m", "90s", "5m"]))
def test_history_then_live_has_no_gap_and_no_overlap(
    trades: list[Trade], split: int, timeframe_text: str
) -> None:
    """A strategy asks at some moment for history (bars made from the trades so far, the
    last one in progress) while the fleet's aggregator, running all along, goes on
    publishing; joined, they are the bars of all the trades."""
    timeframe = Timeframe.parse(timeframe_text)
    split = min(split, len(trades))
    asked_at = trades[split - 1].at if split else MIDNIGHT
    aggregator = BarAggregator("MNQ", [timeframe])
    for trade in trades[:split]:
        aggregator.add(*trade)
    aggregator.changed()  # what was published before the strategy asked, it never sees
    history = bars_from_ticks("MNQ", [timeframe], *columns(trades[:split]), now=asked_at)
    live: list[Bar] = []
    for trade in trades[split:]:
        live += aggregator.add(*trade)
        live += aggregator.changed()
    live += aggregator.advance(LATER)
    merged = merge_bars(history[timeframe], live)
    assert_seamless(merged)
    assert all(b.final for b in merged)
    assert [row(b) for b in merged] == reference(trades, timeframe)
