"""Bars of every unit from second bars: alignment, windows, limits, the partial bar."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from simulator.bars import Bar, BarUnit, aggregate, bucket

T = datetime(2025, 11, 26, 14, 37, 45, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("unit", "size", "start"),
    [
        (BarUnit.SECOND, 1, T),
        (BarUnit.SECOND, 30, T.replace(second=30)),
        (BarUnit.MINUTE, 1, T.replace(second=0)),
        (BarUnit.MINUTE, 5, T.replace(minute=35, second=0)),
        (BarUnit.HOUR, 1, T.replace(minute=0, second=0)),
        (BarUnit.HOUR, 4, T.replace(hour=12, minute=0, second=0)),
        (BarUnit.DAY, 1, datetime(2025, 11, 26, tzinfo=UTC)),
        (BarUnit.WEEK, 1, datetime(2025, 11, 24, tzinfo=UTC)),  # the Monday
        (BarUnit.MONTH, 1, datetime(2025, 11, 1, tzinfo=UTC)),
        (BarUnit.MONTH, 3, datetime(2025, 10, 1, tzinfo=UTC)),
    ],
)
def test_bars_are_aligned_in_utc(unit: BarUnit, size: int, start: datetime) -> None:
    assert bucket(T, unit, size) == start


def second(at: datetime, o: str, h: str, low: str, c: str, v: int) -> Bar:
    return Bar(at, Decimal(o), Decimal(h), Decimal(low), Decimal(c), v)


SECONDS = [
    second(T, "10", "12", "9", "11", 1),
    second(T + timedelta(seconds=10), "11", "15", "11", "14", 2),
    second(T + timedelta(minutes=1), "14", "14", "8", "8", 4),
    second(T + timedelta(minutes=3), "8", "9", "8", "9", 8),
]


def test_minute_bars_newest_first_without_gaps() -> None:
    bars = aggregate(
        SECONDS,
        BarUnit.MINUTE,
        1,
        T - timedelta(hours=1),
        T + timedelta(hours=1),
        limit=10,
        include_partial=True,
        now=T + timedelta(hours=1),
    )
    assert [(b.start.minute, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (40, Decimal("8"), Decimal("9"), Decimal("8"), Decimal("9"), 8),
        (38, Decimal("14"), Decimal("14"), Decimal("8"), Decimal("8"), 4),
        (37, Decimal("10"), Decimal("15"), Decimal("9"), Decimal("14"), 3),
    ]


def test_the_limit_keeps_the_newest_and_the_window_is_inclusive() -> None:
    newest = aggregate(
        SECONDS,
        BarUnit.MINUTE,
        1,
        T.replace(second=0),
        T.replace(minute=38, second=0),
        limit=1,
        include_partial=True,
        now=T + timedelta(hours=1),
    )
    assert [b.start.minute for b in newest] == [38]


def test_the_forming_bar_is_left_out_unless_asked_for() -> None:
    now = T + timedelta(minutes=3, seconds=10)
    window = (T - timedelta(hours=1), now)
    kept = aggregate(SECONDS, BarUnit.MINUTE, 1, *window, limit=10, include_partial=True, now=now)
    left = aggregate(SECONDS, BarUnit.MINUTE, 1, *window, limit=10, include_partial=False, now=now)
    assert len(kept) == 3
    assert [b.start.minute for b in left] == [38, 37]


def test_five_minute_bars_merge_their_seconds() -> None:
    later, bar = aggregate(
        SECONDS,
        BarUnit.MINUTE,
        5,
        T - timedelta(hours=1),
        T + timedelta(hours=1),
        limit=10,
        include_partial=True,
        now=T,
    )
    assert (bar.start.minute, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        35,
        Decimal("10"),
        Decimal("15"),
        Decimal("8"),
        Decimal("8"),
        7,
    )
    assert (later.start.minute, later.volume) == (40, 8)
