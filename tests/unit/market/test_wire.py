"""producer/market.py: timeframes by name, and the market-data types on the wire."""

from __future__ import annotations

import msgspec
import pytest

from producer.contract import ENCODER
from producer.market import BAR_DECODER, QUOTE_DECODER, TICK_DECODER, Bar, Quote, Tick, Timeframe


@pytest.mark.parametrize(
    ("text", "seconds", "name"),
    [
        ("1s", 1, "1s"),
        ("5s", 5, "5s"),
        ("1m", 60, "1m"),
        ("5m", 300, "5m"),
        ("15m", 900, "15m"),
        ("1h", 3600, "1h"),
        ("90s", 90, "90s"),
        ("2m", 120, "2m"),
        ("4h", 14_400, "4h"),
        ("24h", 86_400, "24h"),
        # the same length has one name, so two strategies asking for it share its bars
        ("60s", 60, "1m"),
        ("3600s", 3600, "1h"),
        ("120m", 7200, "2h"),
        ("90m", 5400, "90m"),
        ("1440m", 86_400, "24h"),
    ],
)
def test_timeframes_parse_to_a_length_and_one_canonical_name(
    text: str, seconds: int, name: str
) -> None:
    timeframe = Timeframe.parse(text)
    assert timeframe.seconds == seconds
    assert timeframe.ms == seconds * 1000
    assert timeframe.name == name == str(timeframe)
    assert Timeframe.parse(name) == timeframe


@pytest.mark.parametrize(
    "text", ["", "m", "0s", "0m", "-1m", "1M", "1H", "1.5h", " 1m", "1m ", "01m", "1d", "1 m", "m1"]
)
def test_malformed_timeframes_are_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(ValueError, match=r"whole number and a unit s, m or h.*'90s'"):
        Timeframe.parse(text)


@pytest.mark.parametrize("text", ["25h", "86401s", "2000m"])
def test_timeframes_longer_than_a_day_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="between 1 s and 24 h"):
        Timeframe.parse(text)


def test_a_timeframe_is_accepted_where_its_text_is() -> None:
    five = Timeframe.parse("5m")
    assert Timeframe.parse(five) is five


@pytest.mark.parametrize(
    ("text", "unit", "count"),
    [("1s", "s", 1), ("90s", "s", 90), ("1m", "m", 1), ("90m", "m", 90), ("4h", "h", 4)],
)
def test_unit_and_count_are_what_retrieve_bars_asks_for(text: str, unit: str, count: int) -> None:
    assert (Timeframe.parse(text).unit, Timeframe.parse(text).count) == (unit, count)


def test_bars_start_on_the_utc_epoch_grid() -> None:
    midnight = 1_699_920_000_000  # 2023-11-14T00:00Z
    assert Timeframe.parse("1m").start_of(midnight + 61_999) == midnight + 60_000
    assert Timeframe.parse("1m").start_of(midnight + 60_000) == midnight + 60_000
    assert Timeframe.parse("4h").start_of(midnight + 5 * 3_600_000) == midnight + 4 * 3_600_000
    # 90 s divides a day, so its bars start at midnight too
    assert Timeframe.parse("90s").start_of(midnight + 89_999) == midnight
    # 7 m does not; its bars stay on the epoch grid, as pandas' origin="epoch" has them
    seven = Timeframe.parse("7m")
    assert seven.start_of(midnight) % seven.ms == 0
    assert seven.start_of(midnight) != midnight


def test_market_types_round_trip_through_json() -> None:
    quote = Quote(symbol="MNQ", contract_id="CON.F.US.MNQ.Z25", bid=1.25, ask=1.5, last=None, at=7)
    tick = Tick(symbol="MNQ", contract_id="CON.F.US.MNQ.Z25", price=1.5, size=2, side="BUY", at=8)
    bar = Bar(
        symbol="MNQ",
        timeframe="5m",
        start=300_000,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=12,
        final=True,
    )
    assert QUOTE_DECODER.decode(ENCODER.encode(quote)) == quote
    assert TICK_DECODER.decode(ENCODER.encode(tick)) == tick
    assert BAR_DECODER.decode(ENCODER.encode(bar)) == bar


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"timeframe": "1M"}, "timeframe"), ({"volume": -1}, "volume"), ({"start": -5}, "start")],
)
def test_a_bar_that_cannot_be_right_does_not_decode(changes: dict[str, object], field: str) -> None:
    good = {
        "symbol": "MNQ",
        "timeframe": "1m",
        "start": 60_000,
        "open": 1.0,
        "high": 1.0,
        "low": 1.0,
        "close": 1.0,
        "volume": 1,
        "final": False,
    }
    with pytest.raises(msgspec.ValidationError, match=f"at `\\$.{field}`"):
        BAR_DECODER.decode(ENCODER.encode(good | changes))
