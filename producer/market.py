"""Market data on the wire: quotes, trades and bars as strategies receive them.

Defined once, used by the worker that publishes them and the strategies that read them.
Times are epoch milliseconds (UTC) like the rest of the wire contract, prices floats,
sizes and volumes whole contracts. A bar's ``timeframe`` is its canonical text
(``Timeframe.name``): ``"1s"``, ``"5s"``, ``"1m"``, ``"5m"``, ``"15m"``, ``"1h"`` or any
multiple such as ``"90s"``, ``"2m"``, ``"4h"``.

``Timeframe`` lives here rather than in the worker because both sides need it: the
worker to build bars, a strategy to name the bars it asks for (``"60s"`` and ``"1m"`` are
one timeframe with one name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec

from producer.contract import EpochMs, Side

TimeframeUnit = Literal["s", "m", "h"]

_UNIT_SECONDS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600}
_TIMEFRAME_TEXT: Final = re.compile(r"([1-9][0-9]*)([smh])")
MAX_TIMEFRAME_SECONDS: Final = 86_400
"""Bars are aligned to the UTC epoch; past a day that stops meaning anything a trader
expects (a trading day follows the session, not UTC midnight), so longer ones are refused."""

TimeframeName = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]*[smh]$")]


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar length in whole seconds, from 1 s to a day.

    Bars are aligned to the UTC epoch: a bar starts at a multiple of its length since
    1970-01-01T00:00Z (pandas' ``origin="epoch"``), so every length that divides a day
    (1 s … 1 h, 90 s, 4 h) starts at midnight UTC, and every process agrees on where a
    bar starts without talking to the others.
    """

    seconds: int

    def __post_init__(self) -> None:
        if not 1 <= self.seconds <= MAX_TIMEFRAME_SECONDS:
            raise ValueError(
                f"timeframe of {self.seconds} s: must be between 1 s and 24 h "
                f"({MAX_TIMEFRAME_SECONDS} s)"
            )

    @classmethod
    def parse(cls, text: str | Timeframe) -> Timeframe:
        """``"1m"``, ``"90s"``, ``"4h"``… (a Timeframe is returned as it is).

        Raises ``ValueError`` naming the accepted forms for anything else: no spaces, no
        fractions, units in lower case (``"1M"`` is refused rather than guessed).
        """
        if isinstance(text, Timeframe):
            return text
        match = _TIMEFRAME_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(
                f"timeframe {text!r}: expected a whole number and a unit s, m or h "
                "in lower case, such as '1s', '5s', '1m', '5m', '15m', '1h', '90s' or '4h'"
            )
        return cls(int(match[1]) * _UNIT_SECONDS[match[2]])

    @property
    def ms(self) -> int:
        """The length in milliseconds."""
        return self.seconds * 1000

    @property
    def unit(self) -> TimeframeUnit:
        """The largest unit that divides the length: ``"h"``, ``"m"`` or ``"s"``."""
        if self.seconds % 3600 == 0:
            return "h"
        if self.seconds % 60 == 0:
            return "m"
        return "s"

    @property
    def count(self) -> int:
        """How many ``unit``s the length is (``unit`` and ``count`` are what retrieveBars asks)."""
        return self.seconds // _UNIT_SECONDS[self.unit]

    @property
    def name(self) -> str:
        """The canonical text: ``"1m"`` for 60 s, ``"90s"``, ``"2h"`` for 120 minutes."""
        return f"{self.count}{self.unit}"

    def start_of(self, at: int) -> int:
        """The start (epoch ms) of the bar that holds the instant ``at`` (epoch ms)."""
        return at - at % self.ms

    def __str__(self) -> str:
        return self.name


# gc=False on the types below: they hold only strings and numbers, so they can never be
# part of a reference cycle, and history of a million bars does not slow the collector.


class Quote(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The best bid and ask and the last trade price of a contract."""

    symbol: str
    contract_id: str
    bid: float | None
    """``None`` while the book has no bid (the same for ``ask`` and ``last``)."""
    ask: float | None
    last: float | None
    at: EpochMs
    """When the venue stamped the quote."""


class Tick(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One trade in the market (anyone's, not the strategy's own fills)."""

    symbol: str
    contract_id: str
    price: float
    size: Annotated[int, msgspec.Meta(gt=0)]
    side: Side | None
    """The aggressor: ``BUY`` lifted the offer, ``SELL`` hit the bid; ``None`` if unknown."""
    at: EpochMs


class Bar(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Open, high, low, close and volume of the trades in ``[start, start + timeframe)``.

    A bar in progress (``final=False``) is published again each time it changes; the
    same ``start`` with ``final=True`` is its last word. An interval without a trade has
    no bar.
    """

    symbol: str
    timeframe: TimeframeName
    """The canonical name (``Timeframe.name``)."""
    start: EpochMs
    open: float
    high: float
    low: float
    close: float
    volume: Annotated[int, msgspec.Meta(ge=0)]
    final: bool


QUOTE_DECODER: Final = msgspec.json.Decoder(Quote)
TICK_DECODER: Final = msgspec.json.Decoder(Tick)
BAR_DECODER: Final = msgspec.json.Decoder(Bar)


# --- between a strategy's MarketFeed and the fleet (worker/market) ---------------------


class FeedContract(msgspec.Struct, kw_only=True, frozen=True):
    """The contract the fleet serves a symbol from, or why it serves none."""

    contract_id: str | None = None
    error: str | None = None
    """The broker's refusal (an unknown symbol, say): ``"<code>: <message>"``."""


MAX_HISTORY_BARS: Final = 20_000
"""The most bars one history request returns (the gateway's limit per retrieveBars)."""


class HistoryRequest(msgspec.Struct, kw_only=True, frozen=True):
    """A strategy's request for the last ``count`` final bars (answered on
    ``Keys.history_answer(request_id)``)."""

    request_id: str
    symbol: str
    timeframe: TimeframeName
    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_HISTORY_BARS)]
    end: EpochMs
    """Bars that start before this time."""


class HistoryAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """The bars, oldest first, or the error code and message of why there are none."""

    bars: list[Bar] = msgspec.field(default_factory=list)
    error: str | None = None
    message: str | None = None


FEED_CONTRACT_DECODER: Final = msgspec.json.Decoder(FeedContract)
HISTORY_REQUEST_DECODER: Final = msgspec.json.Decoder(HistoryRequest)
HISTORY_ANSWER_DECODER: Final = msgspec.json.Decoder(HistoryAnswer)


def demand_member(feed_id: str, symbol: str, timeframe: str = "") -> str:
    """A strategy's entry in the fleet's subscription registry (``Keys.market_demand``):
    one per feed, symbol and bar timeframe asked for (``""`` for quotes and trades)."""
    return f"{feed_id}|{symbol}|{timeframe}"


def parse_demand_member(member: str) -> tuple[str, str] | None:
    """The symbol and timeframe name of a registry entry (``None`` if it is not one)."""
    parts = member.split("|")
    if len(parts) != 3 or not parts[1]:
        return None
    return parts[1], parts[2]
