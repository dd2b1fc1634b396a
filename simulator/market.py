"""The market of every contract: its last price, bid and ask, the trades printed, and the
second bars History/retrieveBars is built from.

Pure: prices move only when told (`set_price`, or a step of the seeded random walk a demo
turns on), never by the simulator's own fills, so a test decides every price. Each change
goes to the Publisher as the market hub's GatewayQuote, GatewayTrade and GatewayDepth.
"""

import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from simulator.bars import Bar
from simulator.contracts import Contract, ContractTable, trading_day, trading_day_start
from simulator.orders import OrderSide
from simulator.publish import NoPublisher, Publisher
from simulator.wire import GatewayDepth, GatewayQuote, GatewayTrade, price, timestamp

# Largest step of the random walk, in ticks.
MAX_WALK_TICKS = 3
# Second bars kept per contract: about six days of prices every second.
MAX_SECOND_BARS = 500_000
# ProjectX DomType (project-x-py types/market_data.py): 3 BestAsk, 4 BestBid.
DOM_BEST_ASK, DOM_BEST_BID = 3, 4
# The venue has no other participants; its synthetic book shows one lot at the best prices.
DISPLAYED_SIZE = 1


@dataclass(frozen=True, slots=True)
class Quote:
    """A contract's top of book: bid = last - spread // 2 ticks, ask = bid + spread ticks."""

    last: Decimal
    bid: Decimal
    ask: Decimal


@dataclass(slots=True)
class _Session:
    """One contract's market today."""

    quote: Quote
    ends: datetime  # when its trading day ends
    open: Decimal
    high: Decimal
    low: Decimal
    volume: int
    updated: datetime | None


class Market:
    """Prices of every contract; a contract nobody moved sits at its reference price."""

    def __init__(
        self,
        contracts: ContractTable,
        publisher: Publisher | None = None,
        *,
        spread_ticks: int = 1,
    ) -> None:
        if spread_ticks < 1:
            raise ValueError(f"spread_ticks must be at least 1, got {spread_ticks}")
        self._contracts = contracts
        # None when nobody listens, so no payload is built for nothing.
        self._publisher = None if isinstance(publisher, NoPublisher | None) else publisher
        self._spread_ticks = spread_ticks
        self.clear()

    def clear(self) -> None:
        """Every contract back at its reference price, with no history."""
        self._sessions: dict[str, _Session] = {}
        self._seconds: dict[str, deque[Bar]] = {}

    # --- queries -------------------------------------------------------------------------

    def quote(self, contract_id: str) -> Quote:
        """The contract's last price, bid and ask."""
        session = self._sessions.get(contract_id)
        if session is not None:
            return session.quote
        return self._quote(
            self._contracts[contract_id], self._contracts[contract_id].reference_price
        )

    def lowest_price(self, contract: Contract) -> Decimal:
        """The lowest last price the spread leaves a bid of at least one tick under."""
        return (self._spread_ticks // 2 + 1) * contract.tick_size

    def seconds(self, contract_id: str) -> list[Bar]:
        """The contract's one-second bars, oldest first."""
        return list(self._seconds.get(contract_id, ()))

    # --- changes -------------------------------------------------------------------------

    def set_price(self, contract_id: str, last: Decimal, now: datetime, volume: int = 1) -> Quote:
        """A trade of `volume` printed at `last` (on the tick grid, at least `lowest_price`)."""
        contract = self._contracts[contract_id]
        session = self._session(contract, now)
        before = session.quote
        session.quote = self._quote(contract, last)
        self._print(contract, session, last, volume, self._aggressor(before.last, last), now)
        moved = session.quote.bid != before.bid or session.quote.ask != before.ask
        if moved and self._publisher is not None:
            self._publisher.market(contract_id, "GatewayDepth", self._depth(session.quote, now))
        return session.quote

    def print_fill(
        self, contract_id: str, fill_price: Decimal, size: int, aggressor: OrderSide, now: datetime
    ) -> None:
        """A fill of the venue's own: it prints and counts in volume, but moves no price."""
        contract = self._contracts[contract_id]
        self._print(contract, self._session(contract, now), fill_price, size, aggressor, now)

    def walk(self, rng: random.Random, now: datetime) -> list[str]:
        """One step of the random walk for every active contract; the IDs of those that moved."""
        moved = []
        for contract in self._contracts.active():
            step = rng.randint(-MAX_WALK_TICKS, MAX_WALK_TICKS)
            if step == 0:
                continue
            last = self.quote(contract.id).last + step * contract.tick_size
            self.set_price(contract.id, max(last, self.lowest_price(contract)), now)
            moved.append(contract.id)
        return moved

    # --- internals -----------------------------------------------------------------------

    def _quote(self, contract: Contract, last: Decimal) -> Quote:
        bid = last - self._spread_ticks // 2 * contract.tick_size
        return Quote(last, bid, bid + self._spread_ticks * contract.tick_size)

    def _session(self, contract: Contract, now: datetime) -> _Session:
        """Today's session of the contract; a new trading day opens at the last price."""
        session = self._sessions.get(contract.id)
        if session is not None and now < session.ends:
            return session
        ends = trading_day_start(trading_day(now) + timedelta(days=1))
        if session is None:
            last = contract.reference_price
            session = _Session(self._quote(contract, last), ends, last, last, last, 0, None)
            self._sessions[contract.id] = session
        else:
            last = session.quote.last
            session.ends, session.open, session.high, session.low = ends, last, last, last
            session.volume = 0
        return session

    @staticmethod
    def _aggressor(before: Decimal, after: Decimal) -> OrderSide:
        # Simulator choice: a print below the last price was a seller's, any other a buyer's.
        return OrderSide.ASK if after < before else OrderSide.BID

    def _print(
        self,
        contract: Contract,
        session: _Session,
        at: Decimal,
        volume: int,
        aggressor: OrderSide,
        now: datetime,
    ) -> None:
        session.high = max(session.high, at)
        session.low = min(session.low, at)
        session.volume += volume
        session.updated = now
        self._record_second(contract.id, at, volume, now)
        if self._publisher is None:
            return
        self._publisher.market(contract.id, "GatewayQuote", self._quote_model(contract, session))
        if volume > 0:
            # project-x-py's handlers read GatewayTrade as a list of prints.
            prints = [
                GatewayTrade(
                    symbol_id=contract.symbol_id,
                    price=price(at),
                    timestamp=timestamp(now),
                    type=aggressor,
                    volume=volume,
                )
            ]
            self._publisher.market(contract.id, "GatewayTrade", prints)

    def _record_second(self, contract_id: str, at: Decimal, volume: int, now: datetime) -> None:
        start = now.replace(microsecond=0)
        bars = self._seconds.setdefault(contract_id, deque(maxlen=MAX_SECOND_BARS))
        if bars and bars[-1].start >= start:
            # The same second, or a clock that stepped back: the print joins the newest bar.
            bars[-1].add(at, volume)
        else:
            bars.append(Bar(start, at, at, at, at, volume))

    @staticmethod
    def _quote_model(contract: Contract, session: _Session) -> GatewayQuote:
        quote, updated = session.quote, session.updated
        assert updated is not None  # set by the print that publishes it
        change = quote.last - session.open
        return GatewayQuote(
            symbol=contract.symbol_id,
            symbol_name=f"/{contract.product}",
            last_price=price(quote.last),
            best_bid=price(quote.bid),
            best_ask=price(quote.ask),
            change=price(change),
            change_percent=(change / session.open * 100).quantize(Decimal("0.01")),
            open=price(session.open),
            high=price(session.high),
            low=price(session.low),
            volume=session.volume,
            last_updated=timestamp(updated),
            timestamp=timestamp(updated),
        )

    @staticmethod
    def _depth(quote: Quote, now: datetime) -> list[GatewayDepth]:
        at = timestamp(now)
        return [
            GatewayDepth(
                timestamp=at,
                type=DOM_BEST_BID,
                price=price(quote.bid),
                volume=DISPLAYED_SIZE,
                current_volume=DISPLAYED_SIZE,
            ),
            GatewayDepth(
                timestamp=at,
                type=DOM_BEST_ASK,
                price=price(quote.ask),
                volume=DISPLAYED_SIZE,
                current_volume=DISPLAYED_SIZE,
            ),
        ]
