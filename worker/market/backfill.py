"""Bars rebuilt from history after a gap (the start of a feed, a reconnect, a new leader):
pure.

The hub's trades are live from the moment the subscription is made, and retrieveBars has
every earlier trade as one-second bars. The seam is a whole second, the ``cutoff``: every
trade before it comes from history, every trade from it on from the hub (the ones the
hub delivers earlier are dropped, history has them), so no trade is counted twice or
missed. The cutoff is the first whole second that starts after the subscription took
effect, and history is asked for once the venue has closed the second before it.

A one-second bar goes into the aggregator as four trades in the same millisecond: its
open, high and low without volume, then its close with all of it, which makes every
longer bar that holds it exactly what the trades would have made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from producer.market import Bar, Tick, Timeframe
from worker.market.bars import BarAggregator

SUBSCRIBE_MARGIN_MS: Final = 200
"""How long a subscription may take to reach the venue before its trades flow."""
VENUE_MARGIN_MS: Final = 250
"""How long after a second ends the venue is given to have it among its bars."""
MAX_SECONDS: Final = 20_000
"""The most one-second bars one retrieveBars request returns."""


def cutoff_after(subscribed_at: int) -> int:
    """The seam (epoch ms, a whole second) for a subscription made at ``subscribed_at``."""
    at = subscribed_at + SUBSCRIBE_MARGIN_MS
    return at - at % 1000 + 1000


def history_ready_at(cutoff: int) -> int:
    """When history can be asked for up to ``cutoff``."""
    return cutoff + VENUE_MARGIN_MS


def since(timeframes: Iterable[Timeframe], last_final: Mapping[str, int], cutoff: int) -> int:
    """Where history must start: the bar in progress at ``cutoff`` in every timeframe, or
    earlier, the first bar not yet published final; at most ``MAX_SECONDS`` back."""
    first = cutoff
    for timeframe in timeframes:
        start = timeframe.start_of(cutoff)
        last = last_final.get(timeframe.name)
        if last is not None:
            start = min(start, last + timeframe.ms)
        first = min(first, start)
    return max(first, cutoff - MAX_SECONDS * 1000)


def replay(
    aggregator: BarAggregator, seconds: Sequence[Bar], live: Iterable[Tick], cutoff: int
) -> list[Bar]:
    """Feeds history's one-second bars before ``cutoff``, then the live trades from it on;
    returns the bars that closed on the way (final)."""
    closed: list[Bar] = []
    for second in sorted(seconds, key=lambda bar: bar.start):
        at = second.start
        if at >= cutoff:
            break
        closed.extend(aggregator.add(second.open, 0, at))
        closed.extend(aggregator.add(second.high, 0, at))
        closed.extend(aggregator.add(second.low, 0, at))
        closed.extend(aggregator.add(second.close, second.volume, at))
    for tick in live:
        if tick.at >= cutoff:
            closed.extend(aggregator.add(tick.price, tick.size, tick.at))
    return closed
