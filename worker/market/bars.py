"""Bars from trades: live for one contract in many timeframes at once, and in batches for history.

Pure code: no I/O, and the clock is whatever the caller passes to ``advance``. The rules,
the same for the live and the batch path:

- **Alignment.** A bar covers ``[start, start + length)`` with ``start`` a multiple of its
  length since the UTC epoch (``Timeframe.start_of``); a trade exactly on a boundary
  opens the next bar (pandas' ``closed="left"``, ``label="left"``).
- **No trade, no bar.** An interval without a trade yields no bar, like the gateway's
  retrieveBars and pandas' ``resample().ohlc().dropna()``: no flat bar carries the last
  close forward. Session boundaries follow from it: the CME daily break, a weekend or a
  halt simply yields no bars, and bar boundaries stay on the clock, so a bar is never
  stretched over a gap. A 4 h bar whose interval holds the break holds the trades on
  both sides of it, as pandas does.
- **Order within a bar.** Open is the trade with the earliest time, close the one with
  the latest; trades with the same millisecond count in the order they arrived (pandas
  on a stable sort by time).

Live, a bar closes (``final=True``) once the clock passes its end by ``grace_ms``
(default 500 ms). The clock is the latest of the times given to ``advance`` and the
times of the trades seen: a trade stamped 10:00:01 proves 10:00:01 has come, so bars
close on time when trades flow and ``advance`` lags, and on the timer when none comes.
The grace is the tolerance for trades that arrive out of order: a trade is folded into
its bars, even behind newer ones, as long as none of them has closed, and any trade that
arrives at most ``grace_ms`` after its own time by that clock is always in. A trade
whose bar has already closed in some timeframe is dropped from all of them and counted
in ``dropped``, so every timeframe sees the same trades (a 1 m bar is exactly the sum of
its 1 s bars). The grace has to cover the feed's delay plus the skew between the venue's
clock and ours; 500 ms is several times a normal delay and costs a 1 s bar half a second.

The live path is built for one call per trade of every subscribed contract: a trade
inside the current *segment* (the span between two consecutive boundaries of any of the
timeframes) updates a handful of numbers in place, whatever the number of timeframes,
and allocates nothing; the segment is folded into each timeframe's bar at a boundary,
when a late trade comes, or when the bars are read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import islice
from operator import attrgetter, gt
from typing import Final

from producer.market import Bar, Timeframe

DEFAULT_GRACE_MS: Final = 500
STANDARD_TIMEFRAMES: Final = tuple(
    Timeframe.parse(text) for text in ("1s", "5s", "1m", "5m", "15m", "1h")
)

_NEVER: Final = -(1 << 62)
"""Earlier than any time."""
_FOREVER: Final = 1 << 62
"""Later than any time."""
_NO_BARS: Final[tuple[Bar, ...]] = ()

_BAR_COST: Final = 4
"""Reading a bar's fields costs about four times reading a trade from its columns."""

_HIGH: Final = attrgetter("high")
_LOW: Final = attrgetter("low")
_VOLUME: Final = attrgetter("volume")
_FINAL: Final = attrgetter("final")


class _OpenBar:
    """A bar still open to trades, changed in place: allocated once per bar, not per trade."""

    __slots__ = (
        "changed",
        "close",
        "close_at",
        "end",
        "high",
        "low",
        "name",
        "open",
        "open_at",
        "start",
        "volume",
    )

    def __init__(self, name: str, start: int, end: int) -> None:
        self.name = name
        self.start = start
        self.end = end
        self.open = self.close = 0.0
        self.open_at = _FOREVER
        self.close_at = _NEVER
        self.high = float("-inf")
        self.low = float("inf")
        self.volume = 0
        self.changed = False

    def bar(self, symbol: str, final: bool) -> Bar:
        return Bar(
            symbol=symbol,
            timeframe=self.name,
            start=self.start,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            final=final,
        )


def _fold(
    bars: Iterable[_OpenBar],
    open_: float,
    open_at: int,
    high: float,
    low: float,
    close: float,
    close_at: int,
    volume: int,
) -> None:
    """Adds trades to bars; they arrived after those already in, so a tie in time goes
    to them for the close and to the bar for the open."""
    for bar in bars:
        if open_at < bar.open_at:
            bar.open = open_
            bar.open_at = open_at
        if close_at >= bar.close_at:
            bar.close = close
            bar.close_at = close_at
        if high > bar.high:
            bar.high = high
        if low < bar.low:
            bar.low = low
        bar.volume += volume
        bar.changed = True


class BarAggregator:
    """Live bars of one contract in several timeframes, from its trades as they arrive.

    ``symbol`` goes into every bar; ``timeframes`` are ``Timeframe``s or their text (the
    same length twice counts once); ``grace_ms`` is how long after its end a bar waits
    for trades that arrive out of order (see the module's docstring). Use::

        for bar in aggregator.add(trade.price, trade.size, trade.at):
            publish(bar)             # bars the trade's time closed: final
        for bar in aggregator.changed():
            publish(bar)             # bars in progress the trades changed: not final
        ...
        for bar in aggregator.advance(now_ms):   # on a timer: closes bars without a trade
            publish(bar)

    ``changed`` may be called after every trade or once per batch of trades (it returns
    each changed bar once, as it is then); a bar that closed in between is only returned
    final, by ``add`` or ``advance``.
    """

    __slots__ = (
        "_clock",
        "_fast_end",
        "_ms",
        "_names",
        "_next_close",
        "_open",
        "_seg_bars",
        "_seg_close",
        "_seg_close_at",
        "_seg_end",
        "_seg_high",
        "_seg_low",
        "_seg_open",
        "_seg_open_at",
        "_seg_start",
        "_seg_volume",
        "dropped",
        "grace_ms",
        "symbol",
        "timeframes",
    )

    def __init__(
        self,
        symbol: str,
        timeframes: Iterable[Timeframe | str] = STANDARD_TIMEFRAMES,
        *,
        grace_ms: int = DEFAULT_GRACE_MS,
    ) -> None:
        ordered = sorted({Timeframe.parse(t) for t in timeframes}, key=attrgetter("seconds"))
        if not ordered:
            raise ValueError("a bar aggregator needs at least one timeframe")
        if grace_ms < 0:
            raise ValueError(f"grace_ms must not be negative, not {grace_ms}")
        self.symbol = symbol
        self.timeframes: tuple[Timeframe, ...] = tuple(ordered)
        self.grace_ms = grace_ms
        self.dropped = 0
        """Trades dropped because their bar had already closed."""
        self._ms = [t.ms for t in ordered]
        self._names = [t.name for t in ordered]
        self._open: list[list[_OpenBar]] = [[] for _ in ordered]
        """Per timeframe, the bars not yet closed, oldest first (one, or a few in the grace)."""
        self._clock = _NEVER
        self._next_close = _FOREVER
        """When the oldest open bar closes (its end plus the grace)."""
        # The segment: trades between two consecutive boundaries of all the timeframes,
        # kept as one running bar and folded into every timeframe's bar later.
        self._seg_bars: list[_OpenBar] = []
        self._seg_start = self._seg_end = _NEVER
        self._fast_end = _NEVER
        """Trades in [_seg_start, _fast_end) take the fast path: in the segment, closing nothing."""
        self._seg_open = self._seg_close = 0.0
        self._seg_open_at = _FOREVER
        self._seg_close_at = _NEVER
        self._seg_high = float("-inf")
        self._seg_low = float("inf")
        self._seg_volume = 0

    def add(self, price: float, size: int, at: int) -> Sequence[Bar]:
        """Takes one trade (``at`` in epoch ms); returns the bars its time closed (final).

        A trade whose bar has already closed in any timeframe is dropped from all of them
        and counted in ``dropped`` (the bars its time closed are still returned).
        """
        if self._seg_start <= at < self._fast_end:
            if price > self._seg_high:
                self._seg_high = price
            if price < self._seg_low:
                self._seg_low = price
            if at >= self._seg_close_at:
                self._seg_close = price
                self._seg_close_at = at
            if at < self._seg_open_at:
                self._seg_open = price
                self._seg_open_at = at
            self._seg_volume += size
            return _NO_BARS
        return self._add_slow(price, size, at)

    def advance(self, now: int) -> Sequence[Bar]:
        """Moves the clock to ``now`` (epoch ms; an earlier time is ignored) and returns the
        bars that closed, final, oldest first within each timeframe."""
        if now > self._clock:
            self._clock = now
        clock = max(self._clock, self._seg_close_at)
        if clock < self._next_close:
            return _NO_BARS
        return self._close_due(clock)

    def changed(self) -> list[Bar]:
        """The bars in progress that trades changed since the last call (``final=False``),
        shortest timeframe first, oldest first within one."""
        self._flush()
        changed: list[Bar] = []
        for bars in self._open:
            for bar in bars:
                if bar.changed:
                    bar.changed = False
                    changed.append(bar.bar(self.symbol, False))
        return changed

    def _add_slow(self, price: float, size: int, at: int) -> Sequence[Bar]:
        clock = max(self._clock, self._seg_close_at, at)
        closed = self._close_due(clock) if clock >= self._next_close else _NO_BARS
        grace = self.grace_ms
        # In only if its bar is open in every timeframe (of those, the shortest ends first),
        # which it surely is if it is no older than the grace.
        if at + grace < clock and min(at - at % ms + ms for ms in self._ms) + grace <= clock:
            self.dropped += 1
            return closed
        self._clock = clock
        if at < self._seg_start:
            # Older than the segment: straight into its bars, after the segment so that
            # ties in time keep the arrival order.
            self._flush()
            bars = [self._bar_at(index, at - at % ms) for index, ms in enumerate(self._ms)]
            _fold(bars, price, at, price, price, price, at, size)
            self._fast_end = min(self._seg_end, self._next_close)
            return closed
        if at >= self._seg_end:
            self._flush()
            self._seg_bars = [
                self._bar_at(index, at - at % ms) for index, ms in enumerate(self._ms)
            ]
            self._seg_start = max([bar.start for bar in self._seg_bars])
            self._seg_end = min([bar.end for bar in self._seg_bars])
        self._fast_end = min(self._seg_end, self._next_close)
        # The trade is now in the segment and closes nothing: the fast path takes it.
        self.add(price, size, at)
        return closed

    def _bar_at(self, index: int, start: int) -> _OpenBar:
        """The open bar of a timeframe that starts at ``start``, made if it has no trade yet."""
        bars = self._open[index]
        position = len(bars)
        while position and bars[position - 1].start >= start:
            position -= 1
            if bars[position].start == start:
                return bars[position]
        bar = _OpenBar(self._names[index], start, start + self._ms[index])
        bars.insert(position, bar)
        self._next_close = min(self._next_close, bar.end + self.grace_ms)
        return bar

    def _flush(self) -> None:
        """Folds the segment's trades into its bars and empties it (its span stays)."""
        if self._seg_close_at == _NEVER:
            return
        _fold(
            self._seg_bars,
            self._seg_open,
            self._seg_open_at,
            self._seg_high,
            self._seg_low,
            self._seg_close,
            self._seg_close_at,
            self._seg_volume,
        )
        self._clock = max(self._clock, self._seg_close_at)
        self._seg_open_at = _FOREVER
        self._seg_close_at = _NEVER
        self._seg_high = float("-inf")
        self._seg_low = float("inf")
        self._seg_volume = 0

    def _close_due(self, clock: int) -> list[Bar]:
        grace = self.grace_ms
        if self._seg_end + grace <= clock:
            # The segment's shortest bar closes: the segment ends with it.
            self._flush()
            self._seg_bars = []
            self._seg_start = self._seg_end = _NEVER
        closed: list[Bar] = []
        next_close = _FOREVER
        for bars in self._open:
            while bars and bars[0].end + grace <= clock:
                closed.append(bars.pop(0).bar(self.symbol, True))
            if bars:
                next_close = min(next_close, bars[0].end + grace)
        self._next_close = next_close
        self._fast_end = min(self._seg_end, next_close)
        return closed


def bars_from_ticks(
    symbol: str,
    timeframes: Iterable[Timeframe | str],
    prices: Sequence[float],
    sizes: Sequence[int],
    times: Sequence[int],
    *,
    now: int,
) -> dict[Timeframe, list[Bar]]:
    """Bars in each timeframe from a batch of trades given as three columns.

    Trades out of order are sorted by time first (a stable sort: ties keep their order,
    as they would have arrived live), so the bars are the aggregator's. A bar
    is final if it ended by ``now`` (epoch ms). Each timeframe is built from the bars of
    a shorter one already built that divides it (5 m from 1 m) when those are fewer than
    the trades by far, so six timeframes cost little more than the shortest.
    """
    count = len(times)
    if len(prices) != count or len(sizes) != count:
        raise ValueError(
            f"prices, sizes and times differ in length: {len(prices)}, {len(sizes)}, {count}"
        )
    if any(map(gt, times, islice(times, 1, None))):
        order = sorted(range(count), key=times.__getitem__)
        prices = [prices[k] for k in order]
        sizes = [sizes[k] for k in order]
        times = [times[k] for k in order]
    built: dict[Timeframe, list[Bar]] = {}
    for timeframe in sorted({Timeframe.parse(t) for t in timeframes}, key=attrgetter("seconds")):
        source = min(
            (bars for shorter, bars in built.items() if timeframe.seconds % shorter.seconds == 0),
            key=len,
            default=None,
        )
        if source is not None and len(source) * _BAR_COST <= count:
            built[timeframe] = _from_bars(source, timeframe, now)
        else:
            built[timeframe] = _from_ticks(symbol, timeframe, prices, sizes, times, now)
    return built


def resample_bars(bars: Iterable[Bar], timeframe: Timeframe | str, *, now: int) -> list[Bar]:
    """Bars of a longer timeframe from bars of one shorter timeframe that divides it (5 m
    from 1 m as retrieveBars returns them; any order, no start twice).

    A bar is final if it ended by ``now`` (epoch ms) and every bar in it is final.
    """
    target = Timeframe.parse(timeframe)
    ordered = sorted(bars, key=attrgetter("start"))
    if not ordered:
        return []
    names = {bar.timeframe for bar in ordered}
    symbols = {bar.symbol for bar in ordered}
    if len(names) != 1 or len(symbols) != 1:
        raise ValueError(
            f"bars to resample must be of one symbol and one timeframe, not {symbols} {names}"
        )
    source = Timeframe.parse(names.pop())
    if target.seconds % source.seconds:
        raise ValueError(f"{target.name} bars cannot be built from {source.name} bars")
    starts = [bar.start for bar in ordered]
    if len(set(starts)) != len(starts):
        raise ValueError("bars to resample have a start twice")
    return _from_bars(ordered, target, now)


def _from_ticks(
    symbol: str,
    timeframe: Timeframe,
    prices: Sequence[float],
    sizes: Sequence[int],
    times: Sequence[int],
    now: int,
) -> list[Bar]:
    # Per bar, one search for its end and builtins (max, min, sum) over slices: the
    # per-trade work runs in C, which keeps pure Python near pandas.
    ms = timeframe.ms
    name = timeframe.name
    bars: list[Bar] = []
    append = bars.append
    count = len(times)
    i = 0
    while i < count:
        at = times[i]
        start = at - at % ms
        end = start + ms
        j = i + 1
        if j < count and times[j] < end:
            j = bisect_left(times, end, j + 1)
            window = prices[i:j]
            append(
                Bar(
                    symbol=symbol,
                    timeframe=name,
                    start=start,
                    open=window[0],
                    high=max(window),
                    low=min(window),
                    close=window[-1],
                    volume=sum(sizes[i:j]),
                    final=end <= now,
                )
            )
        else:
            price = prices[i]
            append(
                Bar(
                    symbol=symbol,
                    timeframe=name,
                    start=start,
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=sizes[i],
                    final=end <= now,
                )
            )
        i = j
    return bars


def _from_bars(bars: Sequence[Bar], timeframe: Timeframe, now: int) -> list[Bar]:
    ms = timeframe.ms
    name = timeframe.name
    starts = [bar.start for bar in bars]
    out: list[Bar] = []
    append = out.append
    count = len(bars)
    i = 0
    while i < count:
        first = bars[i]
        start = first.start - first.start % ms
        end = start + ms
        j = bisect_left(starts, end, i + 1)
        group = bars[i:j]
        append(
            Bar(
                symbol=first.symbol,
                timeframe=name,
                start=start,
                open=first.open,
                high=max(map(_HIGH, group)),
                low=min(map(_LOW, group)),
                close=group[-1].close,
                volume=sum(map(_VOLUME, group)),
                final=end <= now and all(map(_FINAL, group)),
            )
        )
        i = j
    return out


class BarSplice:
    """Joins history to live updates of one timeframe, with no gap and no overlap.

    ``history`` holds only the final bars it is given (a bar in progress comes live),
    oldest first, one per start (the last copy given wins), at most the last ``count``.
    ``accept(bar)`` says whether a live update comes after it: the history's last bar
    or later, so a live bar with the same start replaces the last history bar, and a
    live bar older than that is dropped (the history already has it). Live updates of a
    bar still in its grace may arrive after a newer bar's; they are accepted.
    """

    __slots__ = ("_since", "history")

    def __init__(self, history: Iterable[Bar], count: int | None = None) -> None:
        if count is not None and count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        by_start = {bar.start: bar for bar in history if bar.final}
        kept = [by_start[start] for start in sorted(by_start)]
        if len({(bar.symbol, bar.timeframe) for bar in kept}) > 1:
            raise ValueError("history mixes symbols or timeframes")
        self.history: list[Bar] = kept if count is None else kept[max(0, len(kept) - count) :]
        self._since = self.history[-1].start if self.history else _NEVER

    def accept(self, bar: Bar) -> bool:
        """Whether the live update ``bar`` follows the history."""
        return bar.start >= self._since


def merge_bars(history: Iterable[Bar], live: Iterable[Bar]) -> list[Bar]:
    """History then live bars as one list, one bar per start, oldest first: the final
    history bars, then the live updates from the last history bar on (the latest update
    of a start wins)."""
    splice = BarSplice(history)
    merged = {bar.start: bar for bar in splice.history}
    for bar in live:
        if splice.accept(bar):
            merged[bar.start] = bar
    return [merged[start] for start in sorted(merged)]
