"""Bars for History/retrieveBars: one-second bars of the prices seen, aggregated to the
requested unit (docs/gateway.md §6.5). Pure.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import IntEnum


class BarUnit(IntEnum):
    """Gateway AggregateBarUnit (§6.5)."""

    UNSPECIFIED = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    WEEK = 5
    MONTH = 6


class RetrieveBarErrorCode(IntEnum):
    """Gateway RetrieveBarErrorCode (§6.5)."""

    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1
    UNIT_INVALID = 2
    UNIT_NUMBER_INVALID = 3
    LIMIT_INVALID = 4


# §6.5: "The maximum number of bars that can be retrieved in a single request is 20,000."
MAX_BARS = 20_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)
_SECONDS = {BarUnit.SECOND: 1, BarUnit.MINUTE: 60, BarUnit.HOUR: 3600, BarUnit.DAY: 86400}


@dataclass(slots=True)
class Bar:
    """Open, high, low, close and volume of the prints from `start` on."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def add(self, price: Decimal, volume: int) -> None:
        """One more print, later than the ones before."""
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += volume

    def merge(self, later: "Bar") -> None:
        """The prints of a later bar."""
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.volume += later.volume


def bucket(moment: datetime, unit: BarUnit, size: int) -> datetime:
    """The start of the `size`-unit bar a moment falls in, in UTC.

    Simulator choices: bars are aligned to the Unix epoch in UTC, so days start at midnight
    UTC (not at the CME session open), weeks on Mondays and months on the 1st; a bar of n
    months starts at a month whose index since year 0 is a multiple of n.
    """
    moment = moment.astimezone(UTC)
    if unit is BarUnit.MONTH:
        index = (moment.year * 12 + moment.month - 1) // size * size
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    if unit is BarUnit.WEEK:
        weeks = (moment - _FIRST_MONDAY) // timedelta(weeks=size)
        return _FIRST_MONDAY + weeks * timedelta(weeks=size)
    period = timedelta(seconds=_SECONDS[unit] * size)
    return _EPOCH + (moment - _EPOCH) // period * period


def aggregate(
    seconds: Iterable[Bar],
    unit: BarUnit,
    size: int,
    start: datetime,
    end: datetime,
    *,
    limit: int,
    include_partial: bool,
    now: datetime,
) -> list[Bar]:
    """The bars starting in [start, end], newest first (as the docs' example), at most `limit`.

    Intervals without a print have no bar. The bar `now` falls in is still forming: it is
    left out unless `include_partial`.
    """
    bars: dict[datetime, Bar] = {}
    for second in seconds:
        key = bucket(second.start, unit, size)
        if not start <= key <= end:
            continue
        found = bars.get(key)
        if found is None:
            bars[key] = Bar(key, second.open, second.high, second.low, second.close, second.volume)
        else:
            found.merge(second)
    forming = bucket(now, unit, size)
    newest_first = sorted(
        (b for b in bars.values() if include_partial or b.start != forming),
        key=lambda b: b.start,
        reverse=True,
    )
    return newest_first[:limit]
