"""``python -m benchmarks.aggregation``: bars from trades, ours against pandas, in one run.

Issue 15's aggregation figures, on one core (one process, one thread), on the same
synthetic trades for both sides (a seeded random walk on a 0.25 grid, Poisson arrivals,
sizes 1-10), all into the six standard timeframes at once:

- **live**: trades arrive one by one and the bars in progress must be published as
  they change. Ours adds every trade and reads the changed bars once per batch of
  ``B`` trades. pandas has no incremental resample; its best way to do the same job is
  to resample each batch alone and fold the batch's first bar into the one carried
  over from the batch before (re-resampling a rolling window of every open bar's
  trades would be far slower: a 1 h bar holds tens of thousands). Both publish the
  same bars per batch; at ``B = 1`` that is every trade, which is what the worker
  does. pandas is given sorted trades and no closing of bars on the clock.
- **history**: a batch of trades (or of 1 m bars, 20,000 as one retrieveBars answer
  holds at most) to bars. Both start from the same Python lists, as the worker has
  them decoded from a stream, and end with the same list of ``Bar``; pandas builds
  its frame the fast way (numpy arrays, a ``datetime64[ms]`` index). Its time without
  making ``Bar``s is shown too, as the strictest bar. Every history result is checked
  equal on both sides, so the two do the same job.

Times are the process's CPU time, so other work on a shared machine does not count
against either side. Ratios: live is ours ÷ pandas in trades/s (above 1, ours is
faster; the goal is above 1); history is our time ÷ pandas' (the goal is at most 2).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from producer.market import Bar, Timeframe
from worker.market.bars import STANDARD_TIMEFRAMES, BarAggregator, bars_from_ticks, resample_bars

SYMBOL = "MNQ"
START = 1_699_920_000_000  # 2023-11-14T00:00Z
LATER = 1 << 60
T = TypeVar("T")


@dataclass(frozen=True)
class Trades:
    """Columns of trades, oldest first."""

    prices: list[float]
    sizes: list[int]
    times: list[int]

    def __len__(self) -> int:
        return len(self.times)


def synthetic_trades(count: int, per_second: float, seed: int = 15) -> Trades:
    """A random walk on a 0.25 grid with Poisson arrivals (whole ms, so some share one)."""
    rng = random.Random(seed)
    prices: list[float] = []
    sizes: list[int] = []
    times: list[int] = []
    price, at, gap = 20_000.0, float(START), 1000.0 / per_second
    for _ in range(count):
        at += rng.expovariate(1.0 / gap)
        price += rng.choice((-0.25, 0.0, 0.0, 0.25))
        prices.append(price)
        sizes.append(min(10, int(rng.expovariate(0.4)) + 1))
        times.append(int(at))
    return Trades(prices, sizes, times)


def synthetic_minute_bars(count: int, seed: int = 15) -> list[Bar]:
    """Final 1 m bars of a random walk; about one minute in 30 has no trade (no bar)."""
    rng = random.Random(seed)
    bars: list[Bar] = []
    price, minute = 20_000.0, START
    while len(bars) < count:
        minute += 60_000
        if rng.random() < 1 / 30:
            continue
        moves = [rng.choice((-0.25, 0.0, 0.25)) * rng.randint(1, 8) for _ in range(4)]
        path = [price + sum(moves[:k]) for k in range(5)]
        price = path[-1]
        bars.append(
            Bar(
                symbol=SYMBOL,
                timeframe="1m",
                start=minute,
                open=path[0],
                high=max(path),
                low=min(path),
                close=path[-1],
                volume=rng.randint(1, 400),
                final=True,
            )
        )
    return bars


def best_of(repeat: int, job: Callable[[], T]) -> tuple[float, T]:
    """The shortest of ``repeat`` runs (seconds) and the job's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = job()
        best = min(best, time.process_time() - started)
    assert result is not None
    return best, result


# --- ours ----------------------------------------------------------------------------


def ours_live(trades: Trades, batch: int) -> float:
    """Trades per second: every trade added, the changed bars read once per batch."""
    aggregator = BarAggregator(SYMBOL, STANDARD_TIMEFRAMES)
    add, changed = aggregator.add, aggregator.changed
    published = 0
    started = time.process_time()
    for index, (price, size, at) in enumerate(
        zip(trades.prices, trades.sizes, trades.times, strict=True)
    ):
        published += len(add(price, size, at))
        if index % batch == batch - 1:
            published += len(changed())
    published += len(aggregator.advance(LATER))
    elapsed = time.process_time() - started
    assert published > 0
    assert aggregator.dropped == 0
    return len(trades) / elapsed


# --- pandas --------------------------------------------------------------------------


def _frame(prices: Sequence[float], sizes: Sequence[int], times: Sequence[int]) -> pd.DataFrame:
    index = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ms]"), tz="UTC")
    return pd.DataFrame({"price": np.asarray(prices), "size": np.asarray(sizes)}, index=index)


Row = tuple[int, float, float, float, float, int]


def _ohlcv(frame: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    resampler = frame.resample(f"{timeframe.seconds}s", origin="epoch")
    bars = resampler["price"].ohlc()
    bars["volume"] = resampler["size"].sum()
    return bars.dropna()


def _rows(bars: pd.DataFrame) -> list[Row]:
    starts: list[int] = pd.DatetimeIndex(bars.index).as_unit("ms").asi8.tolist()
    return list(
        zip(
            starts,
            bars["open"].tolist(),
            bars["high"].tolist(),
            bars["low"].tolist(),
            bars["close"].tolist(),
            bars["volume"].tolist(),
            strict=True,
        )
    )


def _to_bars(rows: Sequence[Row], timeframe: Timeframe, now: int) -> list[Bar]:
    name, ms = timeframe.name, timeframe.ms
    return [
        Bar(
            symbol=SYMBOL,
            timeframe=name,
            start=start,
            open=o,
            high=h,
            low=low,
            close=c,
            volume=int(v),
            final=start + ms <= now,
        )
        for start, o, h, low, c, v in rows
    ]


def pandas_live(trades: Trades, batch: int, budget_s: float) -> float:
    """Trades per second, over as many batches as fit in the budget."""
    carried: dict[Timeframe, Row] = {}
    done, published = 0, 0
    started = time.process_time()
    while done < len(trades) and time.process_time() - started < budget_s:
        end = min(done + batch, len(trades))
        frame = _frame(trades.prices[done:end], trades.sizes[done:end], trades.times[done:end])
        for timeframe in STANDARD_TIMEFRAMES:
            rows = _rows(_ohlcv(frame, timeframe))
            before = carried.get(timeframe)
            if before is not None and before[0] == rows[0][0]:
                first = rows[0]
                rows[0] = (
                    first[0],
                    before[1],
                    max(before[2], first[2]),
                    min(before[3], first[3]),
                    first[4],
                    before[5] + first[5],
                )
            carried[timeframe] = rows[-1]
            published += len(_to_bars(rows, timeframe, now=0))
        done = end
    elapsed = time.process_time() - started
    assert published > 0
    return done / elapsed


# --- the run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    live_trades: int
    history_trades: int
    minute_bars: int
    pandas_budget_s: float
    repeat: int


FULL = Sizes(
    live_trades=100_000,
    history_trades=300_000,
    minute_bars=20_000,
    pandas_budget_s=1.5,
    repeat=3,
)
QUICK = Sizes(
    live_trades=20_000, history_trades=50_000, minute_bars=2_000, pandas_budget_s=0.3, repeat=1
)

LIVE_BATCHES = (1, 10, 100, 1000)
HISTORY_RATES = (20.0, 2.0)
"""Trades per second in the history runs: a busy session, and a quiet one where most
1 s bars hold one or two trades (our slowest case: the work per bar is Python's)."""


def run(sizes: Sizes, per_second: float = 20.0) -> list[dict[str, object]]:
    """Every figure as a row: what, ours, pandas, unit, ratio (ours ÷ pandas)."""
    figures: list[dict[str, object]] = []
    live = synthetic_trades(sizes.live_trades, per_second)
    for batch in LIVE_BATCHES:
        ours = max(ours_live(live, batch) for _ in range(sizes.repeat))
        theirs = pandas_live(live, batch, sizes.pandas_budget_s)
        figures.append(
            {
                "what": f"live, bars read every {batch} trade{'s' if batch > 1 else ''}",
                "ours": ours,
                "pandas": theirs,
                "unit": "trades/s",
                "ratio": ours / theirs,
                "goal": "ratio > 1",
            }
        )
    for rate in HISTORY_RATES:
        trades = synthetic_trades(sizes.history_trades, rate)
        figures += history_from_trades(trades, rate, sizes.repeat)
    figures += history_from_bars(synthetic_minute_bars(sizes.minute_bars), sizes.repeat)
    return figures


def history_from_trades(trades: Trades, rate: float, repeat: int) -> list[dict[str, object]]:
    columns = (trades.prices, trades.sizes, trades.times)
    ours_s, ours = best_of(
        repeat, lambda: bars_from_ticks(SYMBOL, STANDARD_TIMEFRAMES, *columns, now=LATER)
    )

    def pandas_frames() -> list[pd.DataFrame]:
        frame = _frame(*columns)
        return [_ohlcv(frame, timeframe) for timeframe in STANDARD_TIMEFRAMES]

    def pandas_bars() -> dict[Timeframe, list[Bar]]:
        frames = pandas_frames()
        return {
            timeframe: _to_bars(_rows(bars), timeframe, LATER)
            for timeframe, bars in zip(STANDARD_TIMEFRAMES, frames, strict=True)
        }

    frames_s, _ = best_of(repeat, pandas_frames)
    theirs_s, theirs = best_of(repeat, pandas_bars)
    assert ours == theirs, "ours and pandas disagree: the comparison is not of one job"
    what = f"history: {len(trades):,} trades at {rate:g}/s into 6 timeframes"
    return [
        _history_row(what, ours_s, theirs_s, len(trades)),
        _history_row(f"{what} (pandas without making Bars)", ours_s, frames_s, len(trades)),
    ]


def history_from_bars(minute_bars: list[Bar], repeat: int) -> list[dict[str, object]]:
    targets = [Timeframe.parse(text) for text in ("5m", "15m", "1h")]
    ours_s, ours = best_of(
        repeat, lambda: [resample_bars(minute_bars, target, now=LATER) for target in targets]
    )

    def pandas_bars() -> list[list[Bar]]:
        index = pd.DatetimeIndex(
            np.asarray([b.start for b in minute_bars], dtype="datetime64[ms]"), tz="UTC"
        )
        frame = pd.DataFrame(
            {
                "open": [b.open for b in minute_bars],
                "high": [b.high for b in minute_bars],
                "low": [b.low for b in minute_bars],
                "close": [b.close for b in minute_bars],
                "volume": [b.volume for b in minute_bars],
            },
            index=index,
        )
        rules = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        out = []
        for target in targets:
            bars = frame.resample(f"{target.seconds}s", origin="epoch").agg(rules).dropna()
            out.append(_to_bars(_rows(bars), target, LATER))
        return out

    theirs_s, theirs = best_of(repeat, pandas_bars)
    assert ours == theirs, "ours and pandas disagree: the comparison is not of one job"
    what = f"history: {len(minute_bars):,} 1m bars into 5m, 15m, 1h"
    return [_history_row(what, ours_s, theirs_s, len(minute_bars))]


def _history_row(what: str, ours_s: float, theirs_s: float, rows: int) -> dict[str, object]:
    return {
        "what": what,
        "ours": ours_s * 1000,
        "pandas": theirs_s * 1000,
        "unit": "ms",
        "ratio": ours_s / theirs_s,
        "goal": "ratio ≤ 2",
        "per_row_ns": ours_s / rows * 1e9,
    }


def table(figures: Sequence[dict[str, object]]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| what | ours | pandas | unit | ours ÷ pandas | goal |",
        "|---|---:|---:|---|---:|---|",
    ]
    for f in figures:
        ours, theirs, ratio = f["ours"], f["pandas"], f["ratio"]
        assert isinstance(ours, float)
        assert isinstance(theirs, float)
        assert isinstance(ratio, float)
        lines.append(
            f"| {f['what']} | {ours:,.0f} | {theirs:,.0f} | {f['unit']} | {ratio:.2f} "
            f"| {f['goal']} {'met' if _met(f) else 'NOT met'} |"
        )
    return "\n".join(lines)


def _met(figure: dict[str, object]) -> bool:
    ratio = figure["ratio"]
    assert isinstance(ratio, float)
    return ratio > 1 if figure["unit"] == "trades/s" else ratio <= 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.aggregation",
        description="Bars from trades into six timeframes, ours against pandas (issue 15).",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="trades per second in the live runs (20)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    figures = run(sizes, args.rate)
    print(table(figures))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nPython {platform.python_version()}, pandas {pd.__version__}, one core of "
        f"{os.cpu_count()} (load average {load:.2f}); live: {sizes.live_trades:,} trades at "
        f"{args.rate:g}/s (pandas for {sizes.pandas_budget_s:g} s of CPU per row); "
        f"took {time.perf_counter() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
